"""End to end: the official `openai` client against a running llmtrail, upstream `sim` or a
local server that speaks OpenAI's wire format; records checked field by field."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from llmtrail.testing.openai_upstream import OpenAIUpstream
from tests.harness import ServerProcess, free_port

CALLER_KEY = "sk-caller-key-0123456789"
UPSTREAM_KEY = "sk-upstream-key-9876543210"


@pytest.fixture(scope="module")
def upstream() -> Iterator[OpenAIUpstream]:
    with OpenAIUpstream(response_bytes=400) as up:
        yield up


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, upstream: OpenAIUpstream, engine: str
) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("gateway")
    config = f"""
[providers.up]
type = "openai"
base_url = "{upstream.base_url}"

[providers.keyed]
type = "openai"
base_url = "{upstream.base_url}"
api_key_env = "TEST_UPSTREAM_KEY"

[providers.dead]
type = "openai"
base_url = "http://127.0.0.1:{free_port()}/v1"

[providers.slowup]
type = "openai"
base_url = "{upstream.base_url}"
timeouts = {{ first_byte = 0.5 }}

[[routes]]
match = "gpt-*"
provider = "up"

[[routes]]
match = "keyed/*"
provider = "keyed"

[[routes]]
match = "fail-*"
provider = "up"

[[routes]]
match = "nousage"
provider = "up"

[[routes]]
match = "dead-*"
provider = "dead"

[[routes]]
match = "slow-*"
provider = "slowup"

[aliases]
fast = "sim/fast"

[limits]
max_request_bytes = 300000
max_json_depth = 32
"""
    with ServerProcess(
        root / "data", config=config, env={"TEST_UPSTREAM_KEY": UPSTREAM_KEY}, engine=engine
    ) as proc:
        yield proc


@pytest.fixture
def client(server: ServerProcess) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server.url + "/v1", api_key=CALLER_KEY, max_retries=0) as c:
        yield c


META = {"x-llmtrail-metadata": json.dumps({"tenant_id": "acme", "feature": "search"})}


def test_chat_through_sim_is_recorded_field_by_field(
    client: openai.OpenAI, server: ServerProcess
) -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is the capital of Japan?"},
    ]
    raw = client.chat.completions.with_raw_response.create(
        model="sim/demo",
        messages=messages,
        extra_headers=META,  # type: ignore[arg-type]
        user="end-user-7",
        metadata={"ticket": "T-1"},
    )
    reply = raw.parse()
    request_id = raw.headers["x-llmtrail-request-id"]
    record = server.wait_for_record(request_id)
    assert record["schemaType"] == "ModelInvocationLog" and record["schemaVersion"] == "1.0"
    assert record["requestId"] == request_id
    assert record["operation"] == "ChatCompletions"
    assert record["modelId"] == "sim/demo"
    assert record["provider"] == "sim" and record["resolvedModelId"] == "demo"
    assert record["source"] == "gateway" and record["status"] == "OK"
    assert record["responseId"] == reply.id
    assert record["stopReason"] == reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None
    assert record["input"]["inputTokenCount"] == reply.usage.prompt_tokens > 0
    assert record["output"]["outputTokenCount"] == reply.usage.completion_tokens > 0
    assert record["input"]["inputBodyJson"]["messages"] == messages
    assert record["output"]["outputBodyJson"]["choices"][0]["message"]["content"] == (
        reply.choices[0].message.content
    )
    assert record["requestMetadata"] == {
        "tenant_id": "acme",
        "feature": "search",
        "user_id": "end-user-7",
        "ticket": "T-1",
    }
    assert record["identity"]["arn"].startswith("llmtrail:apikey/hmac:")
    assert CALLER_KEY not in json.dumps(record)
    assert isinstance(record["latencyMs"], int) and record["latencyMs"] >= 0
    assert "tokenCountEstimated" not in record
    assert record["requestHeaders"]["user-agent"].startswith("OpenAI/Python")
    assert "authorization" not in record["requestHeaders"]


def test_async_client_and_alias(server: ServerProcess) -> None:
    async def call() -> tuple[str, str]:
        async with openai.AsyncOpenAI(
            base_url=server.url + "/v1", api_key=CALLER_KEY, max_retries=0
        ) as c:
            raw = await c.chat.completions.with_raw_response.create(
                model="fast", messages=[{"role": "user", "content": "hello async"}]
            )
            return raw.headers["x-llmtrail-request-id"], raw.parse().choices[
                0
            ].message.content or ""

    request_id, text = asyncio.run(call())
    record = server.wait_for_record(request_id)
    assert record["modelId"] == "fast" and record["resolvedModelId"] == "fast"
    assert record["provider"] == "sim"
    assert record["output"]["outputBodyJson"]["choices"][0]["message"]["content"] == text


@pytest.mark.parametrize("include_usage", [True, False])
def test_streaming_passes_chunks_and_records_the_assembled_response(
    client: openai.OpenAI, server: ServerProcess, include_usage: bool
) -> None:
    options = {"stream_options": {"include_usage": True}} if include_usage else {}
    raw = client.chat.completions.with_raw_response.create(
        model="sim/stream",
        stream=True,
        messages=[{"role": "user", "content": "stream please"}],
        **options,  # type: ignore[arg-type]
    )
    request_id = raw.headers["x-llmtrail-request-id"]
    pieces, usage, chunks = [], None, 0
    for chunk in raw.parse():
        chunks += 1
        if chunk.usage:
            usage = chunk.usage
        for choice in chunk.choices:
            pieces.append(choice.delta.content or "")
    text = "".join(pieces)
    assert chunks > 3 and text
    record = server.wait_for_record(request_id)
    body = record["output"]["outputBodyJson"]
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["content"] == text
    assert record["stopReason"] == "stop" and record["status"] == "OK"
    assert isinstance(record["timeToFirstTokenMs"], int)
    assert record["timeToFirstTokenMs"] <= record["latencyMs"]
    if include_usage:
        assert usage is not None
        assert record["output"]["outputTokenCount"] == usage.completion_tokens
        assert record["input"]["inputTokenCount"] == usage.prompt_tokens
        assert "tokenCountEstimated" not in record
    else:
        assert usage is None
        assert record["tokenCountEstimated"] is True
        assert record["output"]["outputTokenCount"] > 0


def test_embeddings_through_sim_and_upstream(client: openai.OpenAI, server: ServerProcess) -> None:
    for model, provider in (("sim/embed", "sim"), ("gpt-embed", "up")):
        raw = client.embeddings.with_raw_response.create(model=model, input=["one", "two words"])
        result = raw.parse()
        assert len(result.data) == 2 and len(result.data[0].embedding) > 0
        record = server.wait_for_record(raw.headers["x-llmtrail-request-id"])
        assert record["operation"] == "Embeddings" and record["provider"] == provider
        assert record["input"]["inputTokenCount"] == result.usage.prompt_tokens
        stored = record["output"]["outputBodyJson"]["data"]
        assert len(stored) == 2 and all("embedding" not in d for d in stored)


def test_openai_provider_forwards_and_passes_caller_key_through(
    client: openai.OpenAI, server: ServerProcess, upstream: OpenAIUpstream
) -> None:
    before = len(upstream.received)
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "via upstream"}]
    )
    reply = raw.parse()
    sent = upstream.received[before]
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {CALLER_KEY}"  # no key of its own
    assert json.loads(sent.body)["model"] == "gpt-4o-mini"
    record = server.wait_for_record(raw.headers["x-llmtrail-request-id"])
    assert record["provider"] == "up" and record["responseId"] == reply.id
    assert reply.usage is not None
    assert record["input"]["inputTokenCount"] == reply.usage.prompt_tokens


def test_provider_with_its_own_key_uses_it(
    client: openai.OpenAI, server: ServerProcess, upstream: OpenAIUpstream
) -> None:
    before = len(upstream.received)
    raw = client.chat.completions.with_raw_response.create(
        model="keyed/gpt-4o", messages=[{"role": "user", "content": "keyed"}]
    )
    raw.parse()
    sent = upstream.received[before]
    assert sent.headers["authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert json.loads(sent.body)["model"] == "gpt-4o"  # the provider prefix is stripped
    record = server.wait_for_record(raw.headers["x-llmtrail-request-id"])
    assert record["resolvedModelId"] == "gpt-4o"
    assert record["identity"]["arn"].startswith("llmtrail:apikey/hmac:")


def test_upstream_without_usage_is_estimated(client: openai.OpenAI, server: ServerProcess) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="nousage", messages=[{"role": "user", "content": "count me offline please"}]
    )
    assert raw.parse().usage is None
    record = server.wait_for_record(raw.headers["x-llmtrail-request-id"])
    assert record["tokenCountEstimated"] is True
    assert record["input"]["inputTokenCount"] > 5 and record["output"]["outputTokenCount"] > 5


@pytest.mark.parametrize(
    ("model", "exc", "status", "code"),
    [
        ("fail-429", openai.RateLimitError, 429, "ThrottlingException"),
        ("fail-500", openai.InternalServerError, 500, "InternalServerException"),
        ("sim/error-429", openai.RateLimitError, 429, "ThrottlingException"),
        ("sim/error-503", openai.InternalServerError, 503, "ServiceUnavailableException"),
        ("dead-model", openai.InternalServerError, 502, "ServiceUnavailableException"),
        ("slow-3000", openai.InternalServerError, 504, "ModelTimeoutException"),
    ],
)
def test_upstream_failures_reach_the_client_and_are_recorded(
    client: openai.OpenAI,
    server: ServerProcess,
    model: str,
    exc: type[Exception],
    status: int,
    code: str,
) -> None:
    with pytest.raises(exc) as info:
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": "x"}])
    error = info.value
    assert isinstance(error, openai.APIStatusError) and error.status_code == status
    body = error.response.json()
    assert set(body["error"]) >= {"message", "type", "param", "code"}
    record = server.wait_for_record(error.response.headers["x-llmtrail-request-id"])
    assert record["status"] == "ERROR" and record["errorCode"] == code
    assert record["error"]["httpStatus"] == status and record["error"]["message"]


def test_unknown_model_is_a_404_in_openai_shape(
    client: openai.OpenAI, server: ServerProcess
) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(
            model="no-such-model", messages=[{"role": "user", "content": "x"}]
        )
    body = info.value.response.json()
    assert body["error"]["code"] == "model_not_found" and body["error"]["param"] == "model"
    record = server.wait_for_record(info.value.response.headers["x-llmtrail-request-id"])
    assert record["errorCode"] == "ResourceNotFoundException"


def test_models_lists_aliases_and_routes(client: openai.OpenAI) -> None:
    ids = [m.id for m in client.models.list()]
    assert "fast" in ids and "sim/*" in ids and "gpt-*" in ids


@pytest.mark.parametrize(
    ("header", "needle"),
    [
        ('{"k": 1}', "values must be strings"),
        ('{"bad key!": "v"}', "character outside"),
        (json.dumps({"k": "v" * 257}), "at most 256"),
        (json.dumps({"k" * 257: "v"}), "1–256"),
        (json.dumps({f"k{i}": "v" for i in range(17)}), "at most 16"),
        ("not json", "JSON object"),
    ],
)
def test_strict_metadata_header_violations_are_400(
    client: openai.OpenAI, header: str, needle: str
) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="sim/x",
            messages=[{"role": "user", "content": "x"}],
            extra_headers={"x-llmtrail-metadata": header},
        )
    error = info.value.response.json()["error"]
    assert needle in error["message"] and error["param"].startswith("x-llmtrail-metadata")


def test_lenient_body_metadata_is_truncated_and_flagged(
    client: openai.OpenAI, server: ServerProcess
) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="sim/x",
        messages=[{"role": "user", "content": "x"}],
        metadata={"long": "v" * 300, "odd key!": "ok"},
    )
    record = server.wait_for_record(raw.headers["x-llmtrail-request-id"])
    assert record["requestMetadata"]["long"] == "v" * 256
    assert record["requestMetadata"]["odd key_"] == "ok"
    assert record["requestMetadataTruncated"] is True
    assert record["input"]["inputBodyJson"]["metadata"]["long"] == "v" * 300


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b"[1, 2]", 400, "JSON object"),
        (b'{"messages": []}', 400, "model"),
        (b'{"model": "sim/x", "messages": "hi"}', 400, "messages"),
        (b'{"model": "sim/x", "messages": [' + b"[" * 40 + b"]" * 40 + b"]}", 400, "32 levels"),
        (
            b'{"model": "sim/x", "messages": [{"content": "' + b"a" * 400_000 + b'"}]}',
            413,
            "300000 bytes",
        ),
    ],
)
def test_bad_gateway_input_is_a_clear_4xx(
    server: ServerProcess, body: bytes, status: int, needle: str
) -> None:
    response = httpx.post(
        server.url + "/v1/chat/completions",
        content=body,
        headers={"content-type": "application/json"},
    )
    assert response.status_code == status
    assert needle in response.json()["error"]["message"]
    assert response.headers["x-llmtrail-request-id"]


def test_large_bodies_go_to_the_object_store(client: openai.OpenAI, server: ServerProcess) -> None:
    big = "lorem ipsum " * 12_000  # ~144 KB
    raw = client.chat.completions.with_raw_response.create(
        model="sim/big", messages=[{"role": "user", "content": big}]
    )
    raw.parse()
    record = server.wait_for_record(raw.headers["x-llmtrail-request-id"])
    path = record["input"]["inputBodyS3Path"]
    assert path.startswith("s3://llmtrail/AWSLogs/") and path.endswith("_input.json.gz")
    assert "inputBodyJson" not in record["input"]
    assert "outputBodyJson" in record["output"]  # the small reply stays inline
    local = Path(server.data_dir) / "objects" / path.removeprefix("s3://llmtrail/")
    import gzip

    assert json.loads(gzip.decompress(local.read_bytes()))["messages"][0]["content"] == big


def test_health_ready_and_metrics(server: ServerProcess) -> None:
    assert server.get("/healthz") == {"status": "ok"}
    assert server.get("/readyz") == {"status": "ready"}
    metrics = server.metrics()
    assert metrics["ready"] == 1 and metrics["stored"] >= 1 and "queue_depth" in metrics


def test_an_agent_loop_with_tools_runs_against_sim(client: openai.OpenAI) -> None:
    tools: list[Any] = [
        {
            "type": "function",
            "function": {
                "name": "search_docs",
                "parameters": {
                    "type": "object",
                    "properties": {"query": {"type": "string"}},
                    "required": ["query"],
                },
            },
        }
    ]
    messages: list[Any] = [{"role": "user", "content": "Call search_docs about retention"}]
    first = client.chat.completions.create(model="sim/agent", messages=messages, tools=tools)
    call = first.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert first.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "search_docs"  # type: ignore[union-attr]
    assert json.loads(call.function.arguments) == {"query": messages[0]["content"]}  # type: ignore[union-attr]
    messages += [
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "30 days"},
    ]
    stream = client.chat.completions.create(
        model="sim/agent", messages=messages, tools=tools, stream=True
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert "search_docs" in text and "30 days" in text
