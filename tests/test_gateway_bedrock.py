"""End to end: boto3 ``bedrock-runtime`` pointed at a running llmtrail by ``endpoint_url``
(upstream `sim`): Converse, ConverseStream, InvokeModel, InvokeModelWithResponseStream, with
``requestMetadata``; records checked field by field against Bedrock's log shape."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import closing
from typing import Any

import boto3
import botocore.exceptions
import httpx
import pytest
from botocore.config import Config

from tests.harness import ServerProcess

CALLER_KEY_ID = "AKIACALLEREXAMPLE001"
CALLER_SECRET = "caller/secret/never/stored/anywhere/0001"
BEDROCK_KEYS = {
    "schemaType",
    "schemaVersion",
    "timestamp",
    "accountId",
    "identity",
    "region",
    "requestId",
    "operation",
    "modelId",
    "input",
    "output",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, engine: str) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("bedrock")
    with ServerProcess(root / "data", engine=engine) as proc:
        yield proc


@pytest.fixture
def client(server: ServerProcess) -> Iterator[Any]:
    client = boto3.client(
        "bedrock-runtime",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id=CALLER_KEY_ID,
        aws_secret_access_key=CALLER_SECRET,
        config=Config(retries={"max_attempts": 1}),
    )
    with closing(client):
        yield client


def _check_bedrock_shape(record: dict[str, Any], operation: str, model: str) -> None:
    assert set(record) >= BEDROCK_KEYS
    assert record["schemaType"] == "ModelInvocationLog" and record["schemaVersion"] == "1.0"
    assert record["operation"] == operation and record["modelId"] == model
    assert record["input"]["inputContentType"] == "application/json"
    assert record["output"]["outputContentType"] == "application/json"
    assert record["identity"] == {"arn": f"llmtrail:aws-access-key/{CALLER_KEY_ID}"}
    assert record["identityType"] == "sigv4_claimed"
    text = json.dumps(record)
    assert CALLER_SECRET not in text and "Signature=" not in text


def test_converse_is_recorded_field_by_field(client: Any, server: ServerProcess) -> None:
    messages = [{"role": "user", "content": [{"text": "What is the capital of Japan?"}]}]
    response = client.converse(
        modelId="sim/nova-lite",
        messages=messages,
        system=[{"text": "Be brief."}],
        inferenceConfig={"maxTokens": 200},
        requestMetadata={"application_name": "search", "tenant_id": "acme"},
    )
    request_id = response["ResponseMetadata"]["RequestId"]
    record = server.wait_for_record(request_id)
    _check_bedrock_shape(record, "Converse", "sim/nova-lite")
    assert record["requestId"] == request_id
    assert record["requestMetadata"] == {"application_name": "search", "tenant_id": "acme"}
    assert record["input"]["inputTokenCount"] == response["usage"]["inputTokens"] > 0
    assert record["output"]["outputTokenCount"] == response["usage"]["outputTokens"] > 0
    assert record["input"]["inputBodyJson"]["messages"] == messages
    assert record["input"]["inputBodyJson"]["requestMetadata"]["tenant_id"] == "acme"
    out = record["output"]["outputBodyJson"]
    assert out["output"] == response["output"] and out["usage"] == response["usage"]
    assert out["stopReason"] == response["stopReason"] == record["stopReason"] == "end_turn"
    assert record["status"] == "OK" and record["provider"] == "sim"


def test_converse_stream_record_is_the_assembled_converse_response(
    client: Any, server: ServerProcess
) -> None:
    response = client.converse_stream(
        modelId="sim/nova-lite",
        messages=[{"role": "user", "content": [{"text": "Tell me about logs."}]}],
        requestMetadata={"tenant_id": "acme"},
    )
    request_id = response["ResponseMetadata"]["RequestId"]
    deltas, usage, stop = [], None, None
    for event in response["stream"]:
        if "contentBlockDelta" in event:
            deltas.append(event["contentBlockDelta"]["delta"]["text"])
        if "metadata" in event:
            usage = event["metadata"]["usage"]
        if "messageStop" in event:
            stop = event["messageStop"]["stopReason"]
    assert len(deltas) > 1 and usage is not None
    record = server.wait_for_record(request_id)
    _check_bedrock_shape(record, "ConverseStream", "sim/nova-lite")
    out = record["output"]["outputBodyJson"]
    assert out["output"]["message"]["content"][0]["text"] == "".join(deltas)
    assert out["stopReason"] == stop == "end_turn"
    assert record["input"]["inputTokenCount"] == usage["inputTokens"]
    assert record["output"]["outputTokenCount"] == usage["outputTokens"]
    assert record["requestMetadata"] == {"tenant_id": "acme"}
    assert record["timeToFirstTokenMs"] <= record["latencyMs"]


ANTHROPIC_BODY = {
    "anthropic_version": "bedrock-2023-05-31",
    "max_tokens": 200,
    "messages": [{"role": "user", "content": "Say hello"}],
}


def test_invoke_model_with_metadata_header(client: Any, server: ServerProcess) -> None:
    def add_header(request: Any, **kwargs: Any) -> None:
        request.headers["X-Amzn-Bedrock-Request-Metadata"] = json.dumps({"team": "claims"})

    client.meta.events.register("before-sign.bedrock-runtime.InvokeModel", add_header)
    response = client.invoke_model(modelId="sim/claude-haiku", body=json.dumps(ANTHROPIC_BODY))
    body = json.loads(response["body"].read())
    request_id = response["ResponseMetadata"]["RequestId"]
    headers = response["ResponseMetadata"]["HTTPHeaders"]
    record = server.wait_for_record(request_id)
    _check_bedrock_shape(record, "InvokeModel", "sim/claude-haiku")
    assert record["requestMetadata"] == {"team": "claims"}
    assert record["input"]["inputBodyJson"] == ANTHROPIC_BODY
    assert record["output"]["outputBodyJson"] == body
    assert record["input"]["inputTokenCount"] == body["usage"]["input_tokens"]
    assert record["output"]["outputTokenCount"] == body["usage"]["output_tokens"]
    assert int(headers["x-amzn-bedrock-output-token-count"]) == body["usage"]["output_tokens"]
    assert record["stopReason"] == "end_turn"


NOVA_BODY = {
    "schemaVersion": "messages-v1",
    "messages": [{"role": "user", "content": [{"text": "Hi"}]}],
    "inferenceConfig": {"maxTokens": 100},
}
TITAN_BODY = {"inputText": "Hi there", "textGenerationConfig": {"maxTokenCount": 100}}


@pytest.mark.parametrize(
    ("body", "text_of"),
    [
        (ANTHROPIC_BODY, lambda b: b["content"][0]["text"]),
        (NOVA_BODY, lambda b: b["output"]["message"]["content"][0]["text"]),
        (TITAN_BODY, lambda b: b["results"][0]["outputText"]),
        ({"prompt": "Hi there", "max_gen_len": 100}, lambda b: b["generation"]),
    ],
    ids=["anthropic", "nova", "titan", "llama"],
)  # fmt: skip
def test_invoke_stream_record_is_the_assembled_family_body(
    client: Any, server: ServerProcess, body: dict[str, Any], text_of: Any
) -> None:
    response = client.invoke_model_with_response_stream(modelId="sim/model", body=json.dumps(body))
    request_id = response["ResponseMetadata"]["RequestId"]
    chunks = [json.loads(e["chunk"]["bytes"]) for e in response["body"] if "chunk" in e]
    metrics = chunks[-1]["amazon-bedrock-invocationMetrics"]
    streamed = "".join(
        c.get("delta", {}).get("text", "")
        or c.get("contentBlockDelta", {}).get("delta", {}).get("text", "")
        or c.get("outputText", "")
        or c.get("generation", "")
        for c in chunks
    )
    record = server.wait_for_record(request_id)
    _check_bedrock_shape(record, "InvokeModelWithResponseStream", "sim/model")
    assert text_of(record["output"]["outputBodyJson"]) == streamed != ""
    assert record["input"]["inputTokenCount"] == metrics["inputTokenCount"]
    assert record["output"]["outputTokenCount"] == metrics["outputTokenCount"]


def test_an_agent_loop_with_tools_runs_on_converse(client: Any, server: ServerProcess) -> None:
    tools = {
        "tools": [
            {
                "toolSpec": {
                    "name": "lookup_order",
                    "description": "Find an order",
                    "inputSchema": {
                        "json": {
                            "type": "object",
                            "properties": {"order_id": {"type": "integer"}},
                            "required": ["order_id"],
                        }
                    },
                }
            }
        ]
    }
    messages: list[Any] = [
        {"role": "user", "content": [{"text": "Please lookup order 4411 with lookup_order"}]}
    ]
    first = client.converse(modelId="sim/agent", messages=messages, toolConfig=tools)
    assert first["stopReason"] == "tool_use"
    use = first["output"]["message"]["content"][-1]["toolUse"]
    assert use["name"] == "lookup_order" and use["input"] == {"order_id": 4411}
    messages += [
        first["output"]["message"],
        {
            "role": "user",
            "content": [
                {"toolResult": {"toolUseId": use["toolUseId"], "content": [{"text": "shipped"}]}}
            ],
        },
    ]
    stream = client.converse_stream(modelId="sim/agent", messages=messages, toolConfig=tools)
    text = "".join(
        e["contentBlockDelta"]["delta"].get("text", "")
        for e in stream["stream"]
        if "contentBlockDelta" in e
    )
    assert "lookup_order" in text and "shipped" in text
    record = server.wait_for_record(first["ResponseMetadata"]["RequestId"])
    assert record["stopReason"] == "tool_use"
    assert record["output"]["outputBodyJson"]["output"]["message"]["content"][-1] == {
        "toolUse": use
    }


@pytest.mark.parametrize(
    "model_id",
    [
        "us.anthropic.claude-3-5-haiku-20241022-v1:0",
        "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc123",
    ],
)
def test_model_ids_arrive_decoded_from_the_path(
    client: Any, server: ServerProcess, model_id: str
) -> None:
    with pytest.raises(botocore.exceptions.ClientError) as info:
        client.converse(modelId=model_id, messages=[{"role": "user", "content": [{"text": "x"}]}])
    error = info.value.response
    assert error["Error"]["Code"] == "ResourceNotFoundException"
    assert model_id in error["Error"]["Message"]
    record = server.wait_for_record(error["ResponseMetadata"]["RequestId"])
    assert record["modelId"] == model_id and record["errorCode"] == "ResourceNotFoundException"


@pytest.mark.parametrize(
    ("metadata", "needle"),
    [
        ({"bad key!": "x"}, "character outside"),
        ({"k": "v" * 257}, "256"),
        ({f"k{i}": "v" for i in range(17)}, "16"),
    ],
)
def test_bad_request_metadata_is_a_validation_exception(
    client: Any, server: ServerProcess, metadata: dict[str, str], needle: str
) -> None:
    with pytest.raises(botocore.exceptions.ClientError) as info:
        client.converse(
            modelId="sim/nova",
            messages=[{"role": "user", "content": [{"text": "x"}]}],
            requestMetadata=metadata,
        )
    error = info.value.response
    assert error["Error"]["Code"] == "ValidationException"
    assert "requestMetadata" in error["Error"]["Message"] and needle in error["Error"]["Message"]
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    record = server.wait_for_record(error["ResponseMetadata"]["RequestId"])
    assert record["status"] == "ERROR" and record["errorCode"] == "ValidationException"


BAD_META = {"X-Amzn-Bedrock-Request-Metadata": "{bad"}


@pytest.mark.parametrize(
    ("path", "body", "headers", "status", "error_type"),
    [
        ("/model/sim%2Fx/converse", b"{oops", {}, 400, "ValidationException"),
        ("/model/sim%2Fx/converse", b'{"messages": "no"}', {}, 400, "ValidationException"),
        ("/model/sim%2Fx/invoke", b'{"unknown": 1}', {}, 400, "ValidationException"),
        ("/model/sim%2Fx/invoke", b'{"prompt": "a"}', BAD_META, 400, "ValidationException"),
        ("/model/nope/invoke", b'{"prompt": "a"}', {}, 404, "ResourceNotFoundException"),
        ("/model/sim%2Fx/explode", b"{}", {}, 404, "UnknownOperationException"),
        ("/model/sim%2Ferror-429/converse", b"{}", {}, 429, "ThrottlingException"),
    ],
)  # fmt: skip
def test_bad_input_answers_in_bedrock_error_shape(
    server: ServerProcess,
    path: str,
    body: bytes,
    headers: dict[str, str],
    status: int,
    error_type: str,
) -> None:
    response = httpx.post(server.url + path, content=body, headers=headers)
    assert response.status_code == status
    assert response.headers["x-amzn-ErrorType"] == error_type
    assert isinstance(response.json()["message"], str) and response.json()["message"]
    assert response.headers["x-amzn-RequestId"]


def test_oversize_body_is_a_validation_exception(server: ServerProcess) -> None:
    body = json.dumps({"prompt": "x" * (33 * 2**20)}).encode()
    response = httpx.post(server.url + "/model/sim%2Fx/invoke", content=body)
    assert response.status_code == 413
    assert response.headers["x-amzn-ErrorType"] == "ValidationException"
    assert "limit" in response.json()["message"]


def test_traceparent_and_session_group_an_agents_calls(client: Any, server: ServerProcess) -> None:
    trace_id, parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"

    def add_headers(request: Any, **kwargs: Any) -> None:
        request.headers["traceparent"] = f"00-{trace_id}-{parent}-01"
        request.headers["x-llmtrail-session-id"] = "session-42"

    client.meta.events.register("before-sign.bedrock-runtime.*", add_headers)
    ids = []
    for text in ("first step", "second step"):
        response = client.converse(
            modelId="sim/agent", messages=[{"role": "user", "content": [{"text": text}]}]
        )
        ids.append(response["ResponseMetadata"]["RequestId"])
    traces = [server.wait_for_record(i)["trace"] for i in ids]
    for trace in traces:
        assert trace["traceId"] == trace_id and trace["parentSpanId"] == parent
        assert trace["sessionId"] == "session-42" and trace["spanKind"] == "llm"
    assert traces[0]["spanId"] != traces[1]["spanId"]
