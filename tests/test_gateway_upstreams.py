"""The real `anthropic` and `bedrock` provider adapters against local servers that speak
Anthropic's and Bedrock's wire formats. The fake Bedrock verifies every SigV4 signature with
botocore, so a forward that is not re-signed with the gateway's own credentials fails."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import closing
from typing import Any

import anthropic
import boto3
import botocore.exceptions
import pytest
from botocore.config import Config

from llmtrail.testing.anthropic_upstream import AnthropicUpstream
from llmtrail.testing.bedrock_upstream import BedrockUpstream
from tests.harness import ServerProcess

CALLER_KEY = "sk-ant-caller-key-000111"
GATEWAY_ANTHROPIC_KEY = "sk-ant-gateway-key-999888"
CALLER_KEY_ID = "AKIACALLERNOTFORAWS01"


@pytest.fixture(scope="module")
def anthropic_up() -> Iterator[AnthropicUpstream]:
    with AnthropicUpstream(api_key=GATEWAY_ANTHROPIC_KEY) as up:
        yield up


@pytest.fixture(scope="module")
def bedrock_up() -> Iterator[BedrockUpstream]:
    with BedrockUpstream() as up:
        yield up


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory,
    anthropic_up: AnthropicUpstream,
    bedrock_up: BedrockUpstream,
) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("upstreams")
    config = f"""
[providers.anth]
type = "anthropic"
base_url = "{anthropic_up.base_url}"
api_key_env = "TEST_ANTHROPIC_KEY"

[providers.aws]
type = "bedrock"
base_url = "{bedrock_up.endpoint_url}"
region = "us-east-1"

[providers.aws_wrong]
type = "bedrock"
base_url = "{bedrock_up.endpoint_url}"
region = "us-east-1"
profile = "wrong"

[[routes]]
match = "claude-*"
provider = "anth"

[[routes]]
match = "anth/*"
provider = "anth"

[[routes]]
match = "wrong.*"
provider = "aws_wrong"

[[routes]]
match = "*"
provider = "aws"
"""
    credentials = root / "credentials"
    credentials.write_text(
        "[wrong]\naws_access_key_id = "
        + BedrockUpstream.ACCESS_KEY_ID
        + "\naws_secret_access_key = not-the-secret\n"
    )
    env = {
        "TEST_ANTHROPIC_KEY": GATEWAY_ANTHROPIC_KEY,
        "AWS_ACCESS_KEY_ID": BedrockUpstream.ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": BedrockUpstream.SECRET_ACCESS_KEY,
        "AWS_SHARED_CREDENTIALS_FILE": str(credentials),
        "AWS_CONFIG_FILE": str(root / "no-config"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    with ServerProcess(root / "data", config=config, env=env) as proc:
        yield proc


@pytest.fixture
def client(server: ServerProcess) -> Iterator[Any]:
    """A Bedrock caller's boto3 client on `server`."""
    client = boto3.client(
        "bedrock-runtime",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id=CALLER_KEY_ID,
        aws_secret_access_key="caller-secret-is-not-the-gateways",
        config=Config(retries={"max_attempts": 1}),
    )
    with closing(client):
        yield client


def test_anthropic_upstream_gets_the_gateway_key_never_the_callers(
    server: ServerProcess, anthropic_up: AnthropicUpstream
) -> None:
    with anthropic.Anthropic(base_url=server.url, api_key=CALLER_KEY, max_retries=0) as client:
        raw = client.messages.with_raw_response.create(
            model="claude-sonnet-4", max_tokens=100, messages=[{"role": "user", "content": "Hello"}]
        )
        reply = raw.parse()
    received = anthropic_up.received[-1]
    assert received.headers["x-api-key"] == GATEWAY_ANTHROPIC_KEY
    assert CALLER_KEY not in json.dumps(received.headers)
    assert received.headers["anthropic-version"]
    assert json.loads(received.body)["model"] == "claude-sonnet-4"
    record = server.wait_for_record(raw.headers["x-llmtrail-request-id"])
    assert record["provider"] == "anth" and record["responseId"] == reply.id
    assert record["input"]["inputTokenCount"] == reply.usage.input_tokens
    assert record["output"]["outputTokenCount"] == reply.usage.output_tokens
    assert record["output"]["outputBodyJson"] == raw.http_response.json()


def test_anthropic_upstream_stream_is_relayed_byte_identical(
    server: ServerProcess, anthropic_up: AnthropicUpstream
) -> None:
    import httpx

    body = {
        "model": "claude-haiku",
        "max_tokens": 100,
        "stream": True,
        "messages": [{"role": "user", "content": "Stream please"}],
    }
    through = httpx.post(server.url + "/v1/messages", json=body, headers={"x-api-key": CALLER_KEY})
    direct = httpx.post(
        anthropic_up.base_url + "/v1/messages",
        json=body,
        headers={"x-api-key": GATEWAY_ANTHROPIC_KEY, "anthropic-version": "2023-06-01"},
    )
    assert through.status_code == direct.status_code == 200
    assert _without_ids(through.content) == _without_ids(direct.content)
    record = server.wait_for_record(through.headers["x-llmtrail-request-id"])
    events = [
        json.loads(line[6:]) for line in through.text.splitlines() if line.startswith("data: ")
    ]
    streamed = "".join(
        e["delta"].get("text", "") for e in events if e["type"] == "content_block_delta"
    )
    assert record["output"]["outputBodyJson"]["content"][0]["text"] == streamed != ""
    final = next(e for e in events if e["type"] == "message_delta")
    assert record["output"]["outputTokenCount"] == final["usage"]["output_tokens"]


def _without_ids(raw: bytes) -> list[Any]:
    out = []
    for line in raw.decode().splitlines():
        if line.startswith("data: "):
            event = json.loads(line[6:])
            event.get("message", {}).pop("id", None)
            out.append(event)
    return out


def test_anthropic_upstream_errors_are_relayed_in_its_shape(server: ServerProcess) -> None:
    with (
        anthropic.Anthropic(base_url=server.url, api_key=CALLER_KEY, max_retries=0) as client,
        pytest.raises(anthropic.RateLimitError) as info,
    ):
        client.messages.create(
            model="anth/fail-429", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )
    request_id = info.value.response.headers["x-llmtrail-request-id"]
    record = server.wait_for_record(request_id)
    assert record["status"] == "ERROR" and record["errorCode"] == "ThrottlingException"
    assert record["error"]["type"] == "rate_limit_error" and record["error"]["httpStatus"] == 429


def test_bedrock_forward_is_resigned_with_the_gateways_credentials(
    server: ServerProcess, client: Any, bedrock_up: BedrockUpstream
) -> None:
    model = "us.anthropic.claude-3-5-haiku-20241022-v1:0"
    response = client.converse(
        modelId=model,
        messages=[{"role": "user", "content": [{"text": "Hello"}]}],
        requestMetadata={"tenant_id": "acme"},
    )
    received = bedrock_up.received[-1]
    assert received.signature_valid and received.access_key_id == BedrockUpstream.ACCESS_KEY_ID
    assert received.model_id == model and received.operation == "Converse"
    assert json.loads(received.body)["requestMetadata"] == {"tenant_id": "acme"}
    request_id = response["ResponseMetadata"]["RequestId"]
    record = server.wait_for_record(request_id)
    assert record["requestId"] == request_id
    assert record["identity"]["arn"] == f"llmtrail:aws-access-key/{CALLER_KEY_ID}"
    assert record["input"]["inputTokenCount"] == response["usage"]["inputTokens"]
    assert record["output"]["outputTokenCount"] == response["usage"]["outputTokens"]
    assert record["provider"] == "aws" and record["resolvedModelId"] == model


@pytest.mark.parametrize("operation", ["converse_stream", "invoke_stream"])
def test_bedrock_streams_through_a_real_upstream(
    server: ServerProcess, client: Any, bedrock_up: BedrockUpstream, operation: str
) -> None:
    model = "anthropic.claude-3-haiku-20240307-v1:0"
    if operation == "converse_stream":
        response = client.converse_stream(
            modelId=model, messages=[{"role": "user", "content": [{"text": "Hello"}]}]
        )
        events = list(response["stream"])
        text = "".join(
            e["contentBlockDelta"]["delta"].get("text", "")
            for e in events
            if "contentBlockDelta" in e
        )
        usage = next(e["metadata"]["usage"] for e in events if "metadata" in e)
        counts = (usage["inputTokens"], usage["outputTokens"])
    else:
        body = {
            "anthropic_version": "bedrock-2023-05-31",
            "max_tokens": 100,
            "messages": [{"role": "user", "content": "Hello"}],
        }
        response = client.invoke_model_with_response_stream(modelId=model, body=json.dumps(body))
        chunks = [json.loads(e["chunk"]["bytes"]) for e in response["body"]]
        text = "".join(
            c["delta"].get("text", "") for c in chunks if c["type"] == "content_block_delta"
        )
        metrics = chunks[-1]["amazon-bedrock-invocationMetrics"]
        counts = (metrics["inputTokenCount"], metrics["outputTokenCount"])
    assert bedrock_up.received[-1].signature_valid
    record = server.wait_for_record(response["ResponseMetadata"]["RequestId"])
    out = record["output"]["outputBodyJson"]
    logged = (
        out["output"]["message"]["content"][0]["text"]
        if operation == "converse_stream"
        else out["content"][0]["text"]
    )
    assert logged == text != ""
    assert (record["input"]["inputTokenCount"], record["output"]["outputTokenCount"]) == counts


def test_bedrock_invoke_counts_come_from_the_body_and_headers(
    server: ServerProcess, client: Any
) -> None:
    body = {"prompt": "Hello llama", "max_gen_len": 50}
    response = client.invoke_model(modelId="meta.llama3-8b-instruct-v1:0", body=json.dumps(body))
    answer = json.loads(response["body"].read())
    headers = response["ResponseMetadata"]["HTTPHeaders"]
    record = server.wait_for_record(response["ResponseMetadata"]["RequestId"])
    assert record["input"]["inputTokenCount"] == answer["prompt_token_count"]
    assert record["output"]["outputTokenCount"] == answer["generation_token_count"]
    assert int(headers["x-amzn-bedrock-input-token-count"]) == answer["prompt_token_count"]
    assert record["output"]["outputBodyJson"] == answer


def test_bedrock_upstream_error_keeps_its_error_code(server: ServerProcess, client: Any) -> None:
    with pytest.raises(botocore.exceptions.ClientError) as info:
        client.converse(modelId="fail-429", messages=[{"role": "user", "content": [{"text": "x"}]}])
    error = info.value.response
    assert error["Error"]["Code"] == "ThrottlingException"
    record = server.wait_for_record(error["ResponseMetadata"]["RequestId"])
    assert record["errorCode"] == "ThrottlingException" and record["status"] == "ERROR"
    assert record["error"]["httpStatus"] == 429


def test_a_wrongly_signed_forward_is_refused_by_the_upstream(
    server: ServerProcess, client: Any, bedrock_up: BedrockUpstream
) -> None:
    with pytest.raises(botocore.exceptions.ClientError) as info:
        client.converse(
            modelId="wrong.model", messages=[{"role": "user", "content": [{"text": "x"}]}]
        )
    assert not bedrock_up.received[-1].signature_valid
    error = info.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert error["Error"]["Code"] == "InvalidSignatureException"
    record = server.wait_for_record(error["ResponseMetadata"]["RequestId"])
    assert record["errorCode"] == "InvalidSignatureException"
