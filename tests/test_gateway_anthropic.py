"""End to end: the official `anthropic` client against a running llmtrail (upstream `sim`):
plain, streamed, an agent loop with tools, prompt caching, errors; records field by field."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import pytest

from tests.harness import ServerProcess

CALLER_KEY = "sk-ant-caller-0123456789"
TOOLS: list[Any] = [
    {
        "name": "get_weather",
        "description": "Current weather for a city",
        "input_schema": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city"],
        },
    }
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, engine: str) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("anthropic")
    with ServerProcess(root / "data", engine=engine) as proc:
        yield proc


@pytest.fixture
def client(server: ServerProcess) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=server.url, api_key=CALLER_KEY, max_retries=0) as c:
        yield c


def test_message_is_recorded_field_by_field(
    client: anthropic.Anthropic, server: ServerProcess
) -> None:
    messages: list[Any] = [{"role": "user", "content": "What is the capital of Japan?"}]
    raw = client.messages.with_raw_response.create(
        model="sim/claude",
        max_tokens=200,
        system="Be brief.",
        messages=messages,
        metadata={"user_id": "end-user-3"},
        extra_headers={"x-llmtrail-metadata": json.dumps({"tenant_id": "acme"})},
    )
    reply = raw.parse()
    record = server.wait_for_record(raw.headers["x-llmtrail-request-id"])
    assert record["operation"] == "Messages" and record["modelId"] == "sim/claude"
    assert record["provider"] == "sim" and record["resolvedModelId"] == "claude"
    assert record["status"] == "OK" and record["source"] == "gateway"
    assert record["responseId"] == reply.id
    assert record["stopReason"] == reply.stop_reason == "end_turn"
    assert record["input"]["inputTokenCount"] == reply.usage.input_tokens > 0
    assert record["output"]["outputTokenCount"] == reply.usage.output_tokens > 0
    assert record["input"]["cacheReadInputTokenCount"] == 0
    assert record["input"]["cacheWriteInputTokenCount"] == 0
    assert record["input"]["inputBodyJson"]["messages"] == messages
    assert record["input"]["inputBodyJson"]["system"] == "Be brief."
    assert record["output"]["outputBodyJson"] == raw.http_response.json()
    assert record["requestMetadata"] == {"tenant_id": "acme", "user_id": "end-user-3"}
    assert record["identity"]["arn"].startswith("llmtrail:apikey/hmac:")
    assert record["identityType"] == "api_key_hmac"
    assert CALLER_KEY not in json.dumps(record)
    assert record["requestHeaders"]["anthropic-version"]
    assert "tokenCountEstimated" not in record


def test_stream_record_is_the_assembled_message(
    client: anthropic.Anthropic, server: ServerProcess
) -> None:
    with client.messages.stream(
        model="sim/claude",
        max_tokens=300,
        messages=[{"role": "user", "content": "Tell me about logging."}],
    ) as stream:
        deltas = list(stream.text_stream)
        final = stream.get_final_message()
        request_id = stream.response.headers["x-llmtrail-request-id"]
    record = server.wait_for_record(request_id)
    out = record["output"]["outputBodyJson"]
    assert len(deltas) > 1
    assert out["content"][0]["text"] == "".join(deltas) == final.content[0].text  # type: ignore[union-attr]
    assert record["output"]["outputTokenCount"] == final.usage.output_tokens
    assert record["input"]["inputTokenCount"] == final.usage.input_tokens
    assert record["stopReason"] == "end_turn" and record["responseId"] == final.id
    assert record["timeToFirstTokenMs"] <= record["latencyMs"]


def test_an_agent_loop_with_tools_runs_against_sim(
    client: anthropic.Anthropic, server: ServerProcess
) -> None:
    messages: list[Any] = [{"role": "user", "content": "Use get_weather for Paris, please."}]
    first = client.messages.create(
        model="sim/claude", max_tokens=300, tools=TOOLS, messages=messages
    )
    assert first.stop_reason == "tool_use"
    use = next(b for b in first.content if b.type == "tool_use")
    assert use.name == "get_weather" and isinstance(use.input, dict)
    assert set(use.input) == {"city"}
    messages += [
        {"role": "assistant", "content": first.content},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "18C, sunny"}],
        },
    ]
    with client.messages.stream(
        model="sim/claude", max_tokens=300, tools=TOOLS, messages=messages
    ) as stream:
        second = stream.get_final_message()
    assert second.stop_reason == "end_turn"
    text = second.content[0].text  # type: ignore[union-attr]
    assert "get_weather" in text and "18C, sunny" in text
    server.settle()
    records = server.get("/api/records?operation=Messages&limit=5")["records"]
    tool_record = next(r for r in records if r.get("responseId") == first.id)
    assert tool_record["stopReason"] == "tool_use"
    block = tool_record["output"]["outputBodyJson"]["content"][-1]
    assert block == {"type": "tool_use", "id": use.id, "name": "get_weather", "input": use.input}


def test_streamed_tool_call_is_assembled_with_parsed_input(
    client: anthropic.Anthropic, server: ServerProcess
) -> None:
    with client.messages.stream(
        model="sim/claude",
        max_tokens=300,
        tools=TOOLS,
        tool_choice={"type": "tool", "name": "get_weather"},
        messages=[{"role": "user", "content": "Weather for 3 days in Oslo"}],
    ) as stream:
        final = stream.get_final_message()
        request_id = stream.response.headers["x-llmtrail-request-id"]
    use = final.content[-1]
    assert use.type == "tool_use" and use.input == {"city": "Weather for 3 days in Oslo"}
    record = server.wait_for_record(request_id)
    assert record["output"]["outputBodyJson"]["content"][-1]["input"] == use.input
    assert record["stopReason"] == "tool_use"


def test_prompt_cache_tokens_become_cache_write_then_read(
    client: anthropic.Anthropic, server: ServerProcess
) -> None:
    system: list[Any] = [
        {
            "type": "text",
            "text": "You are a careful assistant. " * 40,
            "cache_control": {"type": "ephemeral"},
        }
    ]
    ids, usages = [], []
    for question in ("First question?", "Second question?"):
        raw = client.messages.with_raw_response.create(
            model="sim/cache-demo",
            max_tokens=50,
            system=system,
            messages=[{"role": "user", "content": question}],
        )
        ids.append(raw.headers["x-llmtrail-request-id"])
        usages.append(raw.parse().usage)
    assert usages[0].cache_creation_input_tokens and usages[0].cache_creation_input_tokens > 0
    assert usages[1].cache_read_input_tokens == usages[0].cache_creation_input_tokens
    first, second = (server.wait_for_record(i)["input"] for i in ids)
    assert first["cacheWriteInputTokenCount"] == usages[0].cache_creation_input_tokens
    assert first["cacheReadInputTokenCount"] == 0
    assert second["cacheReadInputTokenCount"] == usages[1].cache_read_input_tokens
    assert second["cacheWriteInputTokenCount"] == 0


def test_x_api_key_header_is_accepted_and_hashed_the_same(server: ServerProcess) -> None:
    body = {
        "model": "sim/claude",
        "max_tokens": 20,
        "messages": [{"role": "user", "content": "hi"}],
    }
    arns = []
    for headers in ({"x-api-key": CALLER_KEY}, {"authorization": f"Bearer {CALLER_KEY}"}):
        response = httpx.post(server.url + "/v1/messages", json=body, headers=headers)
        assert response.status_code == 200
        record = server.wait_for_record(response.headers["x-llmtrail-request-id"])
        arns.append(record["identity"]["arn"])
    assert arns[0] == arns[1]


HI = [{"role": "user", "content": "a"}]


def _body(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


@pytest.mark.parametrize(
    ("body", "status", "kind", "needle"),
    [
        (b"{not json", 400, "invalid_request_error", "not valid JSON"),
        (b"[]", 400, "invalid_request_error", "JSON object"),
        (_body(max_tokens=5, messages=HI), 400, "invalid_request_error", "model"),
        (_body(model="sim/x", max_tokens=5, messages=[]), 400, "invalid_request_error", "messages"),
        (_body(model="sim/x", messages=HI), 400, "invalid_request_error", "max_tokens"),
        (_body(model="nope", max_tokens=5, messages=HI), 404, "not_found_error", "nope"),
        (_body(model="sim/error-429", max_tokens=5, messages=HI), 429, "rate_limit_error", "429"),
        (_body(model="sim/error-529", max_tokens=5, messages=HI), 529, "overloaded_error", "529"),
    ],
)
def test_bad_input_answers_in_anthropic_error_shape(
    server: ServerProcess, body: bytes, status: int, kind: str, needle: str
) -> None:
    response = httpx.post(
        server.url + "/v1/messages", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == status
    error = response.json()
    assert error["type"] == "error" and error["error"]["type"] == kind
    assert needle in error["error"]["message"]


def test_the_official_client_raises_its_own_error_types(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.RateLimitError):
        client.messages.create(
            model="sim/error-429", max_tokens=5, messages=[{"role": "user", "content": "a"}]
        )
    with pytest.raises(anthropic.NotFoundError):
        client.messages.create(
            model="gpt-unrouted", max_tokens=5, messages=[{"role": "user", "content": "a"}]
        )


def test_client_disconnect_mid_stream_is_cancelled_with_tokens_so_far(
    server: ServerProcess,
) -> None:
    body = {
        "model": "sim/claude",
        "max_tokens": 500,
        "stream": True,
        "messages": [{"role": "user", "content": "a long answer please"}],
    }
    payload = json.dumps(body).encode()
    request = (
        b"POST /v1/messages HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
        b"x-llmtrail-sim: words=400,chunk_delay_ms=20\r\n"
        + f"content-length: {len(payload)}\r\n\r\n".encode()
        + payload
    )
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(request)
        seen = b""
        while seen.count(b"text_delta") < 3:
            seen += sock.recv(65536)
    head = seen.split(b"\r\n\r\n", 1)[0].decode()
    request_id = next(
        line.split(":", 1)[1].strip()
        for line in head.split("\r\n")
        if line.lower().startswith("x-llmtrail-request-id")
    )
    record = server.wait_for_record(request_id)
    assert record["status"] == "CANCELLED"
    assert record["error"]["type"] == "client_disconnected"
    text = record["output"]["outputBodyJson"]["content"][0]["text"]
    assert 0 < len(text.split()) < 400
    assert 0 < record["output"]["outputTokenCount"] < 400
