"""examples/aws/logging_manager.py, written for AWS, run unchanged against a real llmtrail
with only ``--endpoint-url``: its effect shown through llmtrail's own API (the logging
configuration, the log group queries name) and through what the next gateway calls record."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from llmtrail.server.aws.router import load_operations
from tests.aws.conftest import ACCOUNT, REGION, aws_client, run_example
from tests.harness import ServerProcess, call

ROLE = f"arn:aws:iam::{ACCOUNT}:role/BedrockLogging"
MESSAGES = [{"role": "user", "content": [{"text": "a prompt only text delivery keeps"}]}]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("logging-manager") / "data"
    config = f'region = "{REGION}"\naccount_id = "{ACCOUNT}"\n'
    with ServerProcess(data, config=config) as proc:
        yield proc


@pytest.fixture(scope="module")
def runtime(server: ServerProcess) -> Iterator[Any]:
    client = aws_client(server.url, "bedrock-runtime")
    yield client
    client.close()


def manager(server: ServerProcess, *args: str) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(
        run_example("logging_manager.py", server.url, "--region", REGION, *args, timeout=60)
    )
    return report


def ours(server: ServerProcess) -> dict[str, Any]:
    status, body = call(server.url, "GET", "/api/logging-configuration")
    assert status == 200, body
    return dict(body)


def converse(server: ServerProcess, runtime: Any) -> dict[str, Any]:
    reply = runtime.converse(modelId="sim/fast", messages=MESSAGES)
    return server.wait_for_record(reply["ResponseMetadata"]["RequestId"])


def test_the_logging_manager_runs_unchanged_against_llmtrail(
    server: ServerProcess, runtime: Any, unique: str
) -> None:
    group = f"/teams/{unique}/bedrock"
    before = ours(server)
    count = {"queryString": f"SOURCE '{group}' | stats count(*) as n", "since": "1d"}
    assert call(server.url, "POST", "/api/query", count)[0] == 400  # no such group yet

    # deliver text to the chosen log group
    report = manager(server, "--log-group", group, "--role-arn", ROLE)
    assert report["before"] == before["loggingConfig"]
    assert report["verified"] is True
    now = ours(server)
    assert now["llmtrail"]["state"] == "configured"
    assert now["loggingConfig"] == report["after"]
    assert now["loggingConfig"]["cloudWatchConfig"] == {"logGroupName": group, "roleArn": ROLE}
    assert now["llmtrail"]["logGroupName"] == group
    delivered = converse(server, runtime)
    assert MESSAGES[0]["content"][0]["text"] in json.dumps(delivered["input"]["inputBodyJson"])
    status, counted = call(server.url, "POST", "/api/query", count)
    assert status == 200, counted
    everything = {"queryString": "stats count(*) as n", "since": "1d"}
    assert counted["results"] == call(server.url, "POST", "/api/query", everything)[1]["results"]
    if ("logs", "DescribeLogGroups") in load_operations():  # once the logs API is served
        logs = aws_client(server.url, "logs")
        try:
            groups = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
        finally:
            logs.close()
        assert [g["logGroupName"] for g in groups] == [group]

    # text off: the next call keeps its metadata and counts, not its text
    report = manager(server, "--log-group", group, "--role-arn", ROLE, "--text", "off")
    assert report["verified"] is True
    assert ours(server)["loggingConfig"]["textDataDeliveryEnabled"] is False
    withheld = converse(server, runtime)
    assert "inputBodyJson" not in withheld["input"]
    assert "outputBodyJson" not in withheld["output"]
    assert withheld["delivery"]["withheld"] == ["text"]
    assert withheld["input"]["inputTokenCount"] == delivered["input"]["inputTokenCount"]

    # delete: logging off, as Bedrock answers it; llmtrail still records the metadata
    report = manager(server, "--delete")
    assert report["before"] == now["loggingConfig"] | {"textDataDeliveryEnabled": False}
    assert report["after"] is None and report["verified"] is True
    assert ours(server)["llmtrail"]["state"] == "off"
    off = converse(server, runtime)
    assert off["delivery"]["reason"] == "logging-off"
    assert "inputBodyJson" not in off["input"] and off["output"]["outputTokenCount"] > 0
