"""End-to-end tests of the local Bedrock runtime stand-in, driven by boto3 ``bedrock-runtime``
and by hand-signed requests (to see the raw wire and to get signatures wrong on purpose)."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import closing
from typing import Any

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError, EventStreamError

from llmtrail.capture.gateway.bedrock.eventstream import decode_all
from llmtrail.testing.bedrock_upstream import BedrockRequest, BedrockUpstream

CLAUDE = "us.anthropic.claude-3-5-haiku-20241022-v1:0"
HELLO = [{"role": "user", "content": [{"text": "hello"}]}]
WEATHER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
    "required": ["city"],
}
WEATHER_TOOL: dict[str, Any] = {
    "toolSpec": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "inputSchema": {"json": WEATHER_SCHEMA},
    }
}
INVOKE_BODIES: dict[str, tuple[str, dict[str, Any]]] = {
    "anthropic": (
        "anthropic.claude-3-haiku-20240307-v1:0",
        {
            "anthropic_version": "bedrock-2023-05-31",
            "max_tokens": 500,
            "messages": [{"role": "user", "content": "hello"}],
        },
    ),
    "nova": ("amazon.nova-lite-v1:0", {"messages": HELLO}),
    "llama": (
        "meta.llama3-1-8b-instruct-v1:0",
        {
            "prompt": "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\nhello"
            "<|eot_id|><|start_header_id|>assistant<|end_header_id|>",
            "max_gen_len": 500,
        },
    ),
    "titan": ("amazon.titan-text-express-v1", {"inputText": "hello"}),
}
ECHO = ("echo: hello " * 20)[:200]


def make_client(upstream: BedrockUpstream, **overrides: Any) -> Any:
    options: dict[str, Any] = {
        "endpoint_url": upstream.endpoint_url,
        "region_name": "us-east-1",
        "aws_access_key_id": upstream.access_key_id,
        "aws_secret_access_key": upstream.secret_access_key,
        "config": Config(retries={"total_max_attempts": 1}),
    }
    return boto3.client("bedrock-runtime", **{**options, **overrides})


@pytest.fixture(scope="module")
def upstream() -> Iterator[BedrockUpstream]:
    with BedrockUpstream(response_bytes=200) as up:
        yield up


@pytest.fixture(scope="module")
def client(upstream: BedrockUpstream) -> Iterator[Any]:
    with closing(make_client(upstream)) as c:
        yield c


def last_request(upstream: BedrockUpstream) -> BedrockRequest:
    entry = upstream.received[-1]
    assert isinstance(entry, BedrockRequest)
    return entry


def signed_post(
    upstream: BedrockUpstream,
    raw_path: str,
    body: bytes,
    *,
    secret: str | None = None,
    service: str = "bedrock",
    tamper: bytes | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """POST signed with botocore's signer; ``tamper`` replaces the body after signing."""
    url = upstream.url + raw_path
    request = AWSRequest("POST", url, data=body, headers={"Content-Type": "application/json"})
    key = secret or upstream.secret_access_key
    SigV4Auth(Credentials(upstream.access_key_id, key), service, "us-east-1").add_auth(request)
    sent = urllib.request.Request(
        url, data=tamper or body, headers=dict(request.headers.items()), method="POST"
    )
    try:
        with urllib.request.urlopen(sent, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers), error.read()


# Converse and ConverseStream


def test_converse(client: Any, upstream: BedrockUpstream) -> None:
    response = client.converse(modelId=CLAUDE, messages=HELLO)
    assert response["output"]["message"] == {"role": "assistant", "content": [{"text": ECHO}]}
    assert response["stopReason"] == "end_turn"
    assert response["usage"] == {
        "inputTokens": len("hello") // 4 + 1,
        "outputTokens": len(ECHO) // 4 + 1,
        "totalTokens": len("hello") // 4 + 1 + len(ECHO) // 4 + 1,
        "cacheReadInputTokens": 0,
        "cacheWriteInputTokens": 0,
    }
    assert response["metrics"]["latencyMs"] >= 1
    seen = last_request(upstream)
    assert (
        response["ResponseMetadata"]["RequestId"]
        == response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    )
    assert (seen.operation, seen.model_id, seen.region) == ("Converse", CLAUDE, "us-east-1")
    assert seen.signature_valid and seen.access_key_id == upstream.access_key_id
    assert json.loads(seen.body)["messages"] == HELLO


def test_converse_tool_loop(client: Any) -> None:
    ask = [{"role": "user", "content": [{"text": "use get_weather for Paris"}]}]
    first = client.converse(modelId=CLAUDE, messages=ask, toolConfig={"tools": [WEATHER_TOOL]})
    assert first["stopReason"] == "tool_use"
    text, use = first["output"]["message"]["content"]
    assert text == {"text": "Calling get_weather."}
    assert use["toolUse"]["name"] == "get_weather"
    assert use["toolUse"]["input"] == {"city": "use get_weather for Paris"}
    result = {"toolUseId": use["toolUse"]["toolUseId"], "content": [{"json": {"temp": 21}}]}
    turns = [
        *ask,
        first["output"]["message"],
        {"role": "user", "content": [{"toolResult": result}]},
    ]
    second = client.converse(modelId=CLAUDE, messages=turns, toolConfig={"tools": [WEATHER_TOOL]})
    assert second["stopReason"] == "end_turn"
    [answer] = second["output"]["message"]["content"]
    assert answer["text"].startswith('echo: tool result {"temp":21} ')


def test_converse_stream_matches_converse(client: Any) -> None:
    plain = client.converse(modelId=CLAUDE, messages=HELLO)
    events = list(client.converse_stream(modelId=CLAUDE, messages=HELLO)["stream"])
    kinds = [next(iter(e)) for e in events]
    assert kinds[0] == "messageStart" and events[0]["messageStart"] == {"role": "assistant"}
    assert kinds[-3:] == ["contentBlockStop", "messageStop", "metadata"]
    assert set(kinds[1:-3]) == {"contentBlockDelta"} and len(kinds[1:-3]) >= 4
    text = "".join(e["contentBlockDelta"]["delta"]["text"] for e in events[1:-3])
    assert text == plain["output"]["message"]["content"][0]["text"]
    assert events[-2]["messageStop"] == {"stopReason": "end_turn"}
    assert events[-1]["metadata"]["usage"] == plain["usage"]
    assert events[-1]["metadata"]["metrics"]["latencyMs"] >= 1


def test_converse_stream_tool_use(client: Any) -> None:
    ask = [{"role": "user", "content": [{"text": "weather in Oslo"}]}]
    tools = {"tools": [WEATHER_TOOL]}
    events = list(client.converse_stream(modelId=CLAUDE, messages=ask, toolConfig=tools)["stream"])
    starts = [e["contentBlockStart"] for e in events if "contentBlockStart" in e]
    assert starts == [
        {
            "start": {"toolUse": {"toolUseId": starts[0]["start"]["toolUse"]["toolUseId"],
                                  "name": "get_weather"}},
            "contentBlockIndex": 1,
        }
    ]  # fmt: skip
    pieces = [
        e["contentBlockDelta"]["delta"]["toolUse"]["input"]
        for e in events
        if "contentBlockDelta" in e and e["contentBlockDelta"]["contentBlockIndex"] == 1
    ]
    assert len(pieces) >= 2
    assert json.loads("".join(pieces)) == {"city": "weather in Oslo"}
    stops = [e["contentBlockStop"]["contentBlockIndex"] for e in events if "contentBlockStop" in e]
    assert stops == [0, 1]
    assert {"messageStop": {"stopReason": "tool_use"}} in events


def test_prompt_cache_write_then_read(client: Any) -> None:
    instructions = "You are a very careful assistant. " * 8
    system = [{"text": instructions}, {"cachePoint": {"type": "default"}}]
    first = client.converse(modelId=CLAUDE, messages=HELLO, system=system)["usage"]
    second = client.converse(modelId=CLAUDE, messages=HELLO, system=system)["usage"]
    cached = len(instructions) // 4 + 1
    assert (first["cacheWriteInputTokens"], first["cacheReadInputTokens"]) == (cached, 0)
    assert (second["cacheWriteInputTokens"], second["cacheReadInputTokens"]) == (0, cached)
    assert (
        first["inputTokens"]
        == second["inputTokens"]
        == len(instructions + "hello") // 4 + 1 - cached
    )
    assert second["totalTokens"] == second["inputTokens"] + second["outputTokens"] + cached


def test_max_tokens_cuts_the_answer(client: Any) -> None:
    response = client.converse(modelId=CLAUDE, messages=HELLO, inferenceConfig={"maxTokens": 5})
    assert response["stopReason"] == "max_tokens"
    assert response["usage"]["outputTokens"] <= 5
    assert ECHO.startswith(response["output"]["message"]["content"][0]["text"])


# InvokeModel and InvokeModelWithResponseStream, per model family


def _text_of(family: str, body: dict[str, Any]) -> str:
    if family == "anthropic":
        return "".join(b["text"] for b in body["content"] if b["type"] == "text")
    if family == "nova":
        return "".join(b["text"] for b in body["output"]["message"]["content"])
    return body["generation"] if family == "llama" else body["results"][0]["outputText"]


def _tokens_of(family: str, body: dict[str, Any]) -> tuple[int, int]:
    if family == "anthropic":
        return body["usage"]["input_tokens"], body["usage"]["output_tokens"]
    if family == "nova":
        return body["usage"]["inputTokens"], body["usage"]["outputTokens"]
    if family == "llama":
        return body["prompt_token_count"], body["generation_token_count"]
    return body["inputTextTokenCount"], body["results"][0]["tokenCount"]


def _chunk_text(family: str, chunk: dict[str, Any]) -> str:
    if family == "anthropic":
        delta = chunk.get("delta", {}) if chunk["type"] == "content_block_delta" else {}
        return str(delta.get("text", ""))
    if family == "nova":
        return str(chunk.get("contentBlockDelta", {}).get("delta", {}).get("text", ""))
    return str(chunk["generation"] if family == "llama" else chunk["outputText"])


@pytest.mark.parametrize("family", sorted(INVOKE_BODIES))
def test_invoke_model(client: Any, family: str) -> None:
    model_id, request = INVOKE_BODIES[family]
    response = client.invoke_model(modelId=model_id, body=json.dumps(request))
    body = json.loads(response["body"].read())
    assert response["contentType"] == "application/json"
    assert _text_of(family, body) == ECHO
    headers = response["ResponseMetadata"]["HTTPHeaders"]
    in_tokens, out_tokens = _tokens_of(family, body)
    assert int(headers["x-amzn-bedrock-input-token-count"]) == in_tokens >= 1
    assert int(headers["x-amzn-bedrock-output-token-count"]) == out_tokens == len(ECHO) // 4 + 1
    assert int(headers["x-amzn-bedrock-invocation-latency"]) >= 1
    assert response["ResponseMetadata"]["RequestId"] == headers["x-amzn-requestid"]
    if family == "anthropic":
        assert body["id"].startswith("msg_bdrk_")
        assert body["model"] == "claude-3-haiku-20240307"
        assert body["stop_reason"] == "end_turn"
        assert set(body["usage"]) == {
            "input_tokens",
            "output_tokens",
            "cache_creation_input_tokens",
            "cache_read_input_tokens",
        }
    if family == "nova":
        assert body["stopReason"] == "end_turn"
        assert body["usage"]["totalTokens"] == in_tokens + out_tokens
    if family == "llama":
        assert body["stop_reason"] == "stop"
    if family == "titan":
        assert body["results"][0]["completionReason"] == "FINISH"


@pytest.mark.parametrize("family", sorted(INVOKE_BODIES))
def test_invoke_model_with_response_stream(client: Any, family: str) -> None:
    model_id, request = INVOKE_BODIES[family]
    plain = client.invoke_model(modelId=model_id, body=json.dumps(request))
    plain_headers = plain["ResponseMetadata"]["HTTPHeaders"]
    response = client.invoke_model_with_response_stream(modelId=model_id, body=json.dumps(request))
    assert response["contentType"] == "application/json"
    chunks = [json.loads(event["chunk"]["bytes"]) for event in response["body"]]
    assert len(chunks) >= 4
    assert "".join(_chunk_text(family, c) for c in chunks) == ECHO
    metrics = chunks[-1]["amazon-bedrock-invocationMetrics"]
    assert all("amazon-bedrock-invocationMetrics" not in c for c in chunks[:-1])
    assert metrics["inputTokenCount"] == int(plain_headers["x-amzn-bedrock-input-token-count"])
    assert metrics["outputTokenCount"] == int(plain_headers["x-amzn-bedrock-output-token-count"])
    assert metrics["invocationLatency"] >= metrics["firstByteLatency"] >= 1
    if family == "anthropic":
        assert [c["type"] for c in chunks[:2]] == ["message_start", "content_block_start"]
        assert [c["type"] for c in chunks[-2:]] == ["message_delta", "message_stop"]
        assert chunks[-2]["delta"]["stop_reason"] == "end_turn"
        assert "ping" not in [c["type"] for c in chunks]
    if family == "nova":
        assert next(iter(chunks[0])) == "messageStart"
        assert chunks[-1]["metadata"]["usage"]["outputTokens"] == metrics["outputTokenCount"]
    if family == "llama":
        assert chunks[0]["prompt_token_count"] == metrics["inputTokenCount"]
        assert [c["stop_reason"] for c in chunks[-2:]] == [None, "stop"]
    if family == "titan":
        assert chunks[0]["inputTextTokenCount"] == metrics["inputTokenCount"]
        assert chunks[-1]["completionReason"] == "FINISH"
        assert chunks[-1]["totalOutputTextTokenCount"] == metrics["outputTokenCount"]


def test_invoke_claude_tool_use(client: Any) -> None:
    model_id, request = INVOKE_BODIES["anthropic"]
    tool = {"name": "get_weather", "input_schema": WEATHER_SCHEMA}
    body = json.dumps({**request, "tools": [tool]})
    answer = json.loads(client.invoke_model(modelId=model_id, body=body)["body"].read())
    assert answer["stop_reason"] == "tool_use"
    assert answer["content"][1]["type"] == "tool_use"
    assert answer["content"][1]["id"].startswith("toolu_bdrk_")
    assert answer["content"][1]["input"] == {"city": "hello"}


def test_raw_stream_wire(upstream: BedrockUpstream) -> None:
    path = "/model/amazon.nova-lite-v1%3A0/converse-stream"
    status, headers, body = signed_post(upstream, path, json.dumps({"messages": HELLO}).encode())
    assert status == 200
    assert headers["Content-Type"] == "application/vnd.amazon.eventstream"
    assert headers["x-amzn-RequestId"]
    messages = decode_all(body)
    assert {m.message_type for m in messages} == {"event"}
    payloads = [m.json() for m in messages]
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    assert all(p["p"] and alphabet.startswith(p["p"]) for p in payloads)
    assert len({len(p["p"]) for p in payloads}) > 1
    path = "/model/amazon.titan-text-express-v1/invoke-with-response-stream"
    status, headers, body = signed_post(upstream, path, b'{"inputText": "hi"}')
    assert status == 200 and headers["X-Amzn-Bedrock-Content-Type"] == "application/json"
    first = decode_all(body)[0]
    assert first.event_type == "chunk" and set(first.json()) == {"bytes", "p"}


# model ids in the path


@pytest.mark.parametrize(
    ("model_id", "served"),
    [
        (CLAUDE, "claude-3-5-haiku-20241022"),
        ("eu.anthropic.claude-3-7-sonnet-20250219-v1:0", "claude-3-7-sonnet-20250219"),
        (
            "arn:aws:bedrock:us-east-1:123456789012:inference-profile/" + CLAUDE,
            "claude-3-5-haiku-20241022",
        ),
        (  # names no family: the body's shape picks Claude
            "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3d4e5f6",
            "a1b2c3d4e5f6",
        ),
    ],
)
def test_model_ids_arrive_decoded(
    client: Any, upstream: BedrockUpstream, model_id: str, served: str
) -> None:
    client.converse(modelId=model_id, messages=HELLO)
    seen = last_request(upstream)
    assert seen.model_id == model_id
    assert seen.path == f"/model/{model_id}/converse"
    assert ":" not in seen.raw_path and "%3A" in seen.raw_path
    assert ("%2F" in seen.raw_path) == ("/" in model_id)
    _, request = INVOKE_BODIES["anthropic"]
    response = client.invoke_model(modelId=model_id, body=json.dumps(request))
    assert (last_request(upstream).operation, last_request(upstream).model_id) == (
        "InvokeModel",
        model_id,
    )
    assert json.loads(response["body"].read())["model"] == served


def test_region_comes_from_the_credential_scope(upstream: BedrockUpstream) -> None:
    with closing(make_client(upstream, region_name="eu-west-1")) as elsewhere:
        elsewhere.converse(modelId=CLAUDE, messages=HELLO)
    assert last_request(upstream).region == "eu-west-1"


# signatures


def test_wrong_secret_is_refused(upstream: BedrockUpstream) -> None:
    wrong = make_client(upstream, aws_secret_access_key="not-the-secret")
    with closing(wrong), pytest.raises(ClientError) as info:
        wrong.converse(modelId=CLAUDE, messages=HELLO)
    error = info.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert error["Error"]["Code"] == "InvalidSignatureException"
    assert error["Error"]["Message"].startswith("The request signature we calculated does not")
    assert last_request(upstream).signature_valid is False


def test_unknown_access_key_is_refused(upstream: BedrockUpstream) -> None:
    stranger = make_client(upstream, aws_access_key_id="AKIASOMEONEELSE00000")
    with closing(stranger), pytest.raises(ClientError) as info:
        stranger.invoke_model(modelId=CLAUDE, body=b"{}")
    assert info.value.response["Error"]["Code"] == "UnrecognizedClientException"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_tampered_body_unsigned_and_wrong_service_are_refused(upstream: BedrockUpstream) -> None:
    path = "/model/amazon.titan-text-express-v1/invoke"
    good = b'{"inputText": "hi"}'
    assert signed_post(upstream, path, good)[0] == 200
    status, headers, body = signed_post(upstream, path, good, tamper=b'{"inputText": "ho"}')
    assert status == 403
    assert headers["x-amzn-ErrorType"].split(":")[0] == "InvalidSignatureException"
    assert json.loads(body)["message"].startswith("The request signature we calculated")
    status, headers, _ = signed_post(upstream, path, good, service="s3")
    assert (status, headers["x-amzn-ErrorType"].split(":")[0]) == (403, "InvalidSignatureException")
    unsigned = urllib.request.Request(upstream.url + path, data=good, method="POST")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(unsigned, timeout=30)
    with info.value as error:
        assert error.code == 403
        assert error.headers["x-amzn-ErrorType"].startswith("MissingAuthenticationTokenException")
        assert json.loads(error.read()) == {"message": "Missing Authentication Token"}


def test_session_token_must_be_signed() -> None:
    with BedrockUpstream(session_token="token-1") as up:
        with closing(make_client(up, aws_session_token="token-1")) as signed:
            assert signed.converse(modelId=CLAUDE, messages=HELLO)["stopReason"] == "end_turn"
        for wrong in ({}, {"aws_session_token": "token-2"}):
            with closing(make_client(up, **wrong)) as unsigned, pytest.raises(ClientError) as info:
                unsigned.converse(modelId=CLAUDE, messages=HELLO)
            assert info.value.response["Error"]["Code"] == "InvalidSignatureException"


def test_bedrock_api_key() -> None:
    with BedrockUpstream(api_key="bedrock-api-key-1") as up:
        for key, status in (("bedrock-api-key-1", 200), ("bedrock-api-key-2", 403)):
            request = urllib.request.Request(
                up.url + "/model/amazon.titan-text-express-v1/invoke",
                data=b'{"inputText": "hi"}',
                headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
                method="POST",
            )
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    assert (response.status, status) == (200, 200)
            except urllib.error.HTTPError as error:
                with error:
                    assert (error.code, status) == (403, 403)


# errors and switches


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (429, "ThrottlingException"),
        (400, "ValidationException"),
        (408, "ModelTimeoutException"),
        (503, "ServiceUnavailableException"),
        (403, "AccessDeniedException"),
        (404, "ResourceNotFoundException"),
        (500, "InternalServerException"),
    ],
)
def test_fail_switch(client: Any, status: int, code: str) -> None:
    calls = [
        lambda: client.converse(modelId=f"fail-{status}", messages=HELLO),
        lambda: client.converse_stream(modelId=f"fail-{status}", messages=HELLO),
        lambda: client.invoke_model(modelId=f"fail-{status}", body=b'{"inputText": "hi"}'),
    ]
    for call in calls:
        with pytest.raises(ClientError) as info:
            call()
        error = info.value.response
        assert error["Error"]["Code"] == code
        assert error["Error"]["Message"]
        assert error["ResponseMetadata"]["HTTPStatusCode"] == status
        header = error["ResponseMetadata"]["HTTPHeaders"]["x-amzn-errortype"]
        assert header == f"{code}:http://internal.amazon.com/coral/com.amazon.bedrock/"
        assert isinstance(info.value, getattr(client.exceptions, code))


def test_validation_errors(client: Any) -> None:
    cases = [
        ("anthropic.claude-3-haiku-20240307-v1:0", {"max_tokens": 5, "messages": []},
         "required key [anthropic_version] not found"),
        ("anthropic.claude-3-haiku-20240307-v1:0",
         {**INVOKE_BODIES["anthropic"][1], "model": "claude"}, "extraneous key [model]"),
        ("meta.llama3-1-8b-instruct-v1:0", {"text": "hi"}, "required key [prompt] not found"),
        ("cohere.command-r-v1:0", {"question": "hi"}, "The provided model identifier is invalid."),
    ]  # fmt: skip
    for model_id, body, message in cases:
        with pytest.raises(client.exceptions.ValidationException) as info:
            client.invoke_model(modelId=model_id, body=json.dumps(body))
        assert message in info.value.response["Error"]["Message"]
    assistant_first = [{"role": "assistant", "content": [{"text": "hi"}]}]
    with pytest.raises(client.exceptions.ValidationException) as info:
        client.converse(modelId=CLAUDE, messages=assistant_first)
    assert "must start with a user message" in info.value.response["Error"]["Message"]
    with pytest.raises(client.exceptions.ValidationException) as info:
        client.invoke_model(modelId=CLAUDE, body=b"{not json")
    assert info.value.response["Error"]["Message"].startswith("Malformed input request")


def test_request_metadata_is_validated_and_logged(client: Any, upstream: BedrockUpstream) -> None:
    metadata = {"team": "search", "tenant_id": "t-42"}
    client.converse(modelId=CLAUDE, messages=HELLO, requestMetadata=metadata)
    assert last_request(upstream).request_metadata == metadata
    client.invoke_model(
        modelId=INVOKE_BODIES["titan"][0],
        body=json.dumps(INVOKE_BODIES["titan"][1]),
        requestMetadata=json.dumps(metadata),
    )
    seen = last_request(upstream)
    assert seen.headers["x-amzn-bedrock-request-metadata"] == json.dumps(metadata)
    assert seen.request_metadata == metadata
    with pytest.raises(client.exceptions.ValidationException) as info:
        client.converse(modelId=CLAUDE, messages=HELLO, requestMetadata={"team!": "x"})
    assert "requestMetadata.team!" in info.value.response["Error"]["Message"]
    for header in ("not json", json.dumps({"n": 1})):
        with pytest.raises(client.exceptions.ValidationException):
            client.invoke_model(
                modelId=INVOKE_BODIES["titan"][0],
                body=json.dumps(INVOKE_BODIES["titan"][1]),
                requestMetadata=header,
            )
    assert last_request(upstream).request_metadata is None


def test_slow_and_stall_still_answer(client: Any) -> None:
    assert client.converse(modelId="slow-50", messages=HELLO)["metrics"]["latencyMs"] >= 50
    events = list(client.converse_stream(modelId="stall-50", messages=HELLO)["stream"])
    text = "".join(
        e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e
    )
    assert text == ECHO
    assert events[-1]["metadata"]["metrics"]["latencyMs"] >= 50


@pytest.mark.parametrize(
    ("status", "member"),
    [
        (429, "throttlingException"),
        (408, "modelTimeoutException"),
        (424, "modelStreamErrorException"),
    ],
)
def test_streamfail_on_invoke_stream(client: Any, status: int, member: str) -> None:
    body = json.dumps(INVOKE_BODIES["titan"][1])
    response = client.invoke_model_with_response_stream(modelId=f"streamfail-{status}", body=body)
    chunks: list[Any] = []
    with closing(response["body"]), pytest.raises(EventStreamError) as info:
        for event in response["body"]:
            chunks.append(json.loads(event["chunk"]["bytes"]))
    assert info.value.response["Error"]["Code"] == member
    assert len(chunks) == 1 and chunks[0]["outputText"]


def test_unknown_operation(upstream: BedrockUpstream) -> None:
    status, headers, _ = signed_post(upstream, "/model/x/translate", b"{}")
    assert status == 404 and headers["x-amzn-ErrorType"].startswith("UnknownOperationException")


def test_cli_serves_until_sigterm() -> None:
    cmd = [sys.executable, "-m", "llmtrail.testing.bedrock_upstream", "--port", "0"]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None
            url = proc.stdout.readline().split()[-1]
            assert url.startswith("http://127.0.0.1:")
            up = BedrockUpstream()  # not started: only for its default credentials
            client = boto3.client(
                "bedrock-runtime",
                endpoint_url=url,
                region_name="us-east-1",
                aws_access_key_id=up.access_key_id,
                aws_secret_access_key=up.secret_access_key,
                config=Config(retries={"total_max_attempts": 1}),
            )
            with closing(client):
                answer = client.converse(modelId=CLAUDE, messages=HELLO)
            assert answer["stopReason"] == "end_turn"
            proc.terminate()
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
