"""One real ``llmtrail serve`` (open mode: loopback, no keys) shared by the AWS-shaped API
tests of a worker, with traffic from all three wire formats already stored.

Tests that change state use names of their own (``unique``); tests that need keys start
their own server, since one key ends open mode for everyone.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import anthropic
import boto3
import openai
import pytest
from botocore.config import Config

from tests.harness import ServerProcess

REGION = "us-east-1"
ACCOUNT = "123456789012"

CONFIG = f"""
region = "{REGION}"
account_id = "{ACCOUNT}"

[[routes]]
match = "sim/*"
provider = "sim"
"""

# (wire format, model, calls): what `aws_server` stores before any test runs.
TRAFFIC = (
    ("openai", "sim/fast", 6),
    ("openai", "sim/smart", 3),
    ("anthropic", "sim/smart", 4),
    ("bedrock", "sim/tiny", 5),
    ("bedrock", "sim/fast", 2),
)


def aws_client(url: str, service: str, **keys: str) -> Any:
    """A boto3 client for ``service`` pointed at llmtrail, as a user would make one: only
    ``endpoint_url`` differs from AWS. ``keys`` may give an issued key pair
    (aws_access_key_id / aws_secret_access_key); by default, dummy ones (open mode)."""
    return boto3.client(
        service,
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id=keys.get("aws_access_key_id", "AKIAEXAMPLEOPENMODE"),
        aws_secret_access_key=keys.get("aws_secret_access_key", "not-checked-in-open-mode"),
        config=Config(retries={"max_attempts": 1}),
    )


def send_traffic(url: str, traffic: tuple[tuple[str, str, int], ...] = TRAFFIC) -> list[str]:
    """Model calls through the gateway with the official clients; their request ids."""
    ids: list[str] = []
    oai = openai.OpenAI(base_url=url + "/v1", api_key="sk-test", max_retries=0)
    ant = anthropic.Anthropic(base_url=url, api_key="sk-test", max_retries=0)
    runtime = aws_client(url, "bedrock-runtime")
    try:
        for wire, model, count in traffic:
            for i in range(count):
                text = f"{wire} call {i} to {model}"
                if wire == "openai":
                    raw = oai.chat.completions.with_raw_response.create(
                        model=model,
                        messages=[{"role": "user", "content": text}],
                        user=f"user-{i % 3}",
                    )
                    ids.append(raw.headers["x-llmtrail-request-id"])
                elif wire == "anthropic":
                    raw_a = ant.messages.with_raw_response.create(
                        model=model,
                        max_tokens=64,
                        messages=[{"role": "user", "content": text}],
                        metadata={"user_id": f"user-{i % 3}"},
                    )
                    ids.append(raw_a.headers["x-llmtrail-request-id"])
                else:
                    reply = runtime.converse(
                        modelId=model,
                        messages=[{"role": "user", "content": [{"text": text}]}],
                        requestMetadata={"team": "search", "user": f"user-{i % 3}"},
                    )
                    ids.append(reply["ResponseMetadata"]["RequestId"])
    finally:
        oai.close()
        ant.close()
        runtime.close()
    return ids


EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "aws"


def run_example(name: str, url: str, *args: str, timeout: float = 120) -> str:
    """Run ``examples/aws/<name>`` as a user would — a separate program given only
    ``--endpoint-url``, with AWS credentials from the environment (any pair does in open
    mode) and no AWS configuration files — and return what it printed."""
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "AKIAEXAMPLEOPENMODE",
        "AWS_SECRET_ACCESS_KEY": "not-checked-in-open-mode",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name), "--endpoint-url", url, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    return done.stdout


class AwsServer:
    def __init__(self, proc: ServerProcess, request_ids: list[str]) -> None:
        self.proc = proc
        self.url = proc.url
        self.request_ids = request_ids

    def client(self, service: str, **keys: str) -> Any:
        return aws_client(self.url, service, **keys)


@pytest.fixture(scope="session")
def aws_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AwsServer]:
    root = tmp_path_factory.mktemp("aws")
    with ServerProcess(root / "data", config=CONFIG) as proc:
        ids = send_traffic(proc.url)
        proc.settle()
        yield AwsServer(proc, ids)


@pytest.fixture
def cw(aws_server: AwsServer) -> Iterator[Any]:
    """A boto3 ``cloudwatch`` client on `aws_server`."""
    with closing(aws_server.client("cloudwatch")) as client:
        yield client


@pytest.fixture
def unique() -> str:
    """A name no other test uses (tests share `aws_server`)."""
    return f"t{uuid.uuid4().hex[:10]}"
