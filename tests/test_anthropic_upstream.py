"""End-to-end tests of the local Anthropic Messages stand-in, driven by the official
``anthropic`` client (and by raw HTTP where the wire itself is the point)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import anthropic
import pytest
from anthropic.types import MessageParam, ToolParam

from llmtrail.testing.anthropic_upstream import AnthropicUpstream

KEY = "sk-ant-test-key"
HELLO: list[MessageParam] = [{"role": "user", "content": "hello"}]
ECHO = ("echo: hello " * 20)[:200]
WEATHER: ToolParam = {
    "name": "get_weather",
    "description": "Current weather in a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"enum": ["celsius", "fahrenheit"]}},
        "required": ["city", "unit"],
    },
}


@pytest.fixture(scope="module")
def upstream() -> Iterator[AnthropicUpstream]:
    with AnthropicUpstream(api_key=KEY) as up:
        yield up


@pytest.fixture
def client(upstream: AnthropicUpstream) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=upstream.base_url, api_key=KEY, max_retries=0) as c:
        yield c


def raw_post(
    upstream: AnthropicUpstream, body: dict[str, Any], headers: dict[str, str]
) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(
        upstream.url + "/v1/messages",
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json", **headers},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers), error.read()


def sse_events(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for block in raw.decode().split("\n\n"):
        if block:
            name, data = block.split("\n")
            assert name.startswith("event: ") and data.startswith("data: ")
            out.append((name[7:], json.loads(data[6:])))
    return out


def test_plain_message(client: anthropic.Anthropic, upstream: AnthropicUpstream) -> None:
    raw = client.messages.with_raw_response.create(
        model="claude-test-model", max_tokens=500, messages=HELLO, system="be brief"
    )
    message = raw.parse()
    assert raw.headers["request-id"].startswith("req_")
    assert message.id.startswith("msg_")
    assert (message.type, message.role, message.model) == (
        "message",
        "assistant",
        "claude-test-model",
    )
    assert [b.type for b in message.content] == ["text"]
    assert message.content[0].type == "text" and message.content[0].text == ECHO
    assert (message.stop_reason, message.stop_sequence) == ("end_turn", None)
    assert message.usage.input_tokens == len("be briefhello") // 4 + 1
    assert message.usage.output_tokens == len(ECHO) // 4 + 1
    assert message.usage.cache_creation_input_tokens == 0
    assert message.usage.cache_read_input_tokens == 0
    sent = upstream.received[-1]
    assert (sent.method, sent.path) == ("POST", "/v1/messages")
    # the SDK sends its key one way or the other, by release: the fake accepts both
    assert sent.headers.get("x-api-key") == KEY or (
        sent.headers.get("authorization") == f"Bearer {KEY}"
    )
    assert sent.headers["anthropic-version"]
    assert json.loads(sent.body)["messages"] == HELLO


def test_streaming(client: anthropic.Anthropic) -> None:
    plain = client.messages.create(model="claude-x", max_tokens=500, messages=HELLO)
    with client.messages.stream(model="claude-x", max_tokens=500, messages=HELLO) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == ECHO
    assert final.content[0].type == "text" and final.content[0].text == ECHO
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == plain.usage.output_tokens
    assert final.usage.input_tokens == plain.usage.input_tokens


def test_stream_wire_sequence(upstream: AnthropicUpstream) -> None:
    body = {"model": "claude-x", "max_tokens": 500, "stream": True, "messages": HELLO}
    status, headers, raw = raw_post(upstream, body, {"x-api-key": KEY, "anthropic-version": "v"})
    assert status == 200 and headers["Content-Type"].startswith("text/event-stream")
    events = sse_events(raw)
    names = [name for name, _ in events]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[-4:] == [
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert set(names[3:-3]) == {"content_block_delta"} and len(names[3:-3]) >= 4
    assert all(data["type"] == name for name, data in events)
    start = events[0][1]["message"]
    assert (start["content"], start["stop_reason"], start["usage"]["output_tokens"]) == (
        [],
        None,
        1,
    )
    assert start["usage"]["input_tokens"] == 2
    assert events[1][1] == {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "text", "text": ""},
    }
    deltas = [data["delta"] for name, data in events if name == "content_block_delta"]
    assert {d["type"] for d in deltas} == {"text_delta"}
    assert "".join(d["text"] for d in deltas) == ECHO
    assert events[-2][1] == {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": {"output_tokens": len(ECHO) // 4 + 1},
    }


def test_tool_use_round_trip(client: anthropic.Anthropic) -> None:
    ask: list[MessageParam] = [{"role": "user", "content": "what does get_weather say for Rome?"}]
    first = client.messages.create(model="claude-x", max_tokens=500, messages=ask, tools=[WEATHER])
    assert first.stop_reason == "tool_use"
    text, use = first.content
    assert text.type == "text" and text.text == "Calling get_weather."
    assert use.type == "tool_use" and use.name == "get_weather" and use.id.startswith("toolu_")
    assert use.input == {"city": "what does get_weather say for Rome?", "unit": "celsius"}
    follow: list[MessageParam] = [
        *ask,
        {"role": "assistant", "content": first.content},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "sunny, 24C"}],
        },
    ]
    second = client.messages.create(
        model="claude-x", max_tokens=500, messages=follow, tools=[WEATHER]
    )
    assert second.stop_reason == "end_turn"
    assert second.content[0].type == "text"
    assert second.content[0].text.startswith("echo: tool result sunny, 24C ")


def test_streamed_tool_use(client: anthropic.Anthropic) -> None:
    ask: list[MessageParam] = [{"role": "user", "content": "weather in Lima"}]
    with client.messages.stream(
        model="claude-x", max_tokens=500, messages=ask, tools=[WEATHER]
    ) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    assert "input_json" in kinds
    assert final.stop_reason == "tool_use"
    use = final.content[1]
    assert use.type == "tool_use"
    assert use.input == {"city": "weather in Lima", "unit": "celsius"}


def test_prompt_cache(client: anthropic.Anthropic) -> None:
    system: Any = [
        {"type": "text", "text": "Long shared instructions. " * 10},
        {"type": "text", "text": "x", "cache_control": {"type": "ephemeral"}},
    ]
    first = client.messages.create(model="c", max_tokens=500, messages=HELLO, system=system)
    second = client.messages.create(model="c", max_tokens=500, messages=HELLO, system=system)
    cached = len("Long shared instructions. " * 10 + "x") // 4 + 1
    assert (first.usage.cache_creation_input_tokens, first.usage.cache_read_input_tokens) == (
        cached,
        0,
    )
    assert (second.usage.cache_creation_input_tokens, second.usage.cache_read_input_tokens) == (
        0,
        cached,
    )
    assert second.usage.input_tokens == first.usage.input_tokens


@pytest.mark.parametrize(
    ("status", "exc", "kind"),
    [
        (429, anthropic.RateLimitError, "rate_limit_error"),
        (529, anthropic.OverloadedError, "overloaded_error"),
        (400, anthropic.BadRequestError, "invalid_request_error"),
        (401, anthropic.AuthenticationError, "authentication_error"),
        (500, anthropic.InternalServerError, "api_error"),
    ],
)
def test_fail_switch(
    client: anthropic.Anthropic, status: int, exc: type[anthropic.APIStatusError], kind: str
) -> None:
    for stream in (False, True):
        with pytest.raises(exc) as info:
            client.messages.create(
                model=f"fail-{status}", max_tokens=10, messages=HELLO, stream=stream
            )
        error = info.value
        assert error.status_code == status
        assert error.type == kind
        assert error.request_id is not None and error.request_id.startswith("req_")
        assert isinstance(error.body, dict)
        assert error.body["type"] == "error" and error.body["error"]["message"]


def test_error_mid_stream(client: anthropic.Anthropic) -> None:
    seen: list[str] = []
    with (
        pytest.raises(anthropic.APIStatusError) as info,
        client.messages.stream(model="streamfail-529", max_tokens=500, messages=HELLO) as stream,
    ):
        for text in stream.text_stream:
            seen.append(text)
    assert len(seen) == 1 and ECHO.startswith(seen[0])
    assert isinstance(info.value.body, dict)
    assert info.value.body["error"]["type"] == "overloaded_error"


def test_wrong_key_is_refused(upstream: AnthropicUpstream) -> None:
    with (
        anthropic.Anthropic(base_url=upstream.base_url, api_key="sk-wrong", max_retries=0) as c,
        pytest.raises(anthropic.AuthenticationError) as info,
    ):
        c.messages.create(model="claude-x", max_tokens=10, messages=HELLO)
    assert info.value.type == "authentication_error"


def test_headers_are_checked(upstream: AnthropicUpstream) -> None:
    body = {"model": "claude-x", "max_tokens": 10, "messages": HELLO}
    status, _, raw = raw_post(upstream, body, {"x-api-key": KEY, "anthropic-version": "2023-06-01"})
    assert status == 200 and json.loads(raw)["type"] == "message"
    status, _, raw = raw_post(upstream, body, {"x-api-key": KEY})
    assert status == 400
    assert json.loads(raw)["error"] == {
        "type": "invalid_request_error",
        "message": "anthropic-version: header is required",
    }
    status, headers, raw = raw_post(upstream, body, {"anthropic-version": "2023-06-01"})
    assert status == 401 and json.loads(raw)["error"]["type"] == "authentication_error"
    assert json.loads(raw)["request_id"] == headers["request-id"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"model": "c", "messages": HELLO}, "max_tokens: Field required"),
        ({"model": "c", "max_tokens": 5}, "messages: Field required"),
        ({"max_tokens": 5, "messages": HELLO}, "model: Field required"),
        ({"model": "c", "max_tokens": 5, "messages": []}, "at least one message"),
        ({"model": "c", "max_tokens": 5, "messages": [{"role": "bot", "content": "x"}]}, "role"),
    ],
)
def test_bad_bodies(upstream: AnthropicUpstream, body: dict[str, Any], message: str) -> None:
    status, _, raw = raw_post(upstream, body, {"x-api-key": KEY, "anthropic-version": "v"})
    assert status == 400
    error = json.loads(raw)["error"]
    assert error["type"] == "invalid_request_error" and message in error["message"]


def test_slow_and_stall_still_answer(client: anthropic.Anthropic) -> None:
    plain = client.messages.create(model="slow-50", max_tokens=500, messages=HELLO)
    with client.messages.stream(model="stall-50", max_tokens=500, messages=HELLO) as stream:
        assert "".join(stream.text_stream) == ECHO
    assert plain.content[0].type == "text" and plain.content[0].text == ECHO


def test_any_key_when_none_is_configured() -> None:
    with (
        AnthropicUpstream(record=False) as up,
        anthropic.Anthropic(base_url=up.base_url, api_key="whatever", max_retries=0) as c,
    ):
        assert c.messages.create(model="m", max_tokens=10, messages=HELLO).content
    assert up.received == []


def test_cli_serves_until_sigterm() -> None:
    cmd = [sys.executable, "-m", "llmtrail.testing.anthropic_upstream", "--port", "0"]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None
            url = proc.stdout.readline().split()[-1]
            assert url.startswith("http://127.0.0.1:")
            with anthropic.Anthropic(base_url=url, api_key="k", max_retries=0) as c:
                message = c.messages.create(model="m", max_tokens=100, messages=HELLO)
            assert message.stop_reason == "end_turn"
            proc.terminate()
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_lifecycle_of_the_local_server() -> None:
    up = AnthropicUpstream()
    with pytest.raises(RuntimeError):
        _ = up.url
    for _ in range(2):  # restartable
        up.start()
        try:
            assert up.base_url == f"http://127.0.0.1:{up.port}"
            with pytest.raises(RuntimeError):
                up.start()
        finally:
            up.stop()
    up.stop()  # idempotent
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        with pytest.raises(OSError):
            AnthropicUpstream(port=s.getsockname()[1]).start()


def test_stop_with_a_stream_in_flight() -> None:
    up = AnthropicUpstream().start()
    started = threading.Event()
    outcome: list[object] = []

    def consume() -> None:
        with anthropic.Anthropic(base_url=up.base_url, api_key="k", max_retries=0) as c:
            try:
                with c.messages.stream(
                    model="stall-60000", max_tokens=500, messages=HELLO
                ) as stream:
                    for event in stream:
                        outcome.append(event.type)
                        started.set()
            except Exception as exc:  # the server going away mid-stream
                outcome.append(exc)
            finally:
                started.set()

    thread = threading.Thread(target=consume)
    thread.start()
    assert started.wait(30)
    up.stop()
    thread.join(30)
    assert not thread.is_alive()
    assert outcome[0] == "message_start"
    assert isinstance(outcome[-1], Exception)
