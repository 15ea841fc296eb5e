"""End-to-end tests of the local OpenAI stand-in, driven by the official ``openai`` client."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator

import openai
import pytest
from openai.types.chat import ChatCompletionChunk, ChatCompletionMessageParam

from llmtrail.testing.openai_upstream import OpenAIUpstream


@pytest.fixture(scope="module")
def upstream() -> Iterator[OpenAIUpstream]:
    with OpenAIUpstream(response_bytes=200) as up:
        yield up


@pytest.fixture
def client(upstream: OpenAIUpstream) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=upstream.base_url, api_key="sk-test", max_retries=0) as c:
        yield c


MESSAGES: list[ChatCompletionMessageParam] = [
    {"role": "system", "content": "be brief"},
    {"role": "user", "content": "hello there"},
]


def test_chat_non_stream(client: openai.OpenAI) -> None:
    resp = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert resp.id.startswith("chatcmpl-")
    assert resp.object == "chat.completion"
    assert resp.model == "gpt-4o-mini"
    choice = resp.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    content = choice.message.content
    assert content is not None
    assert content.startswith("echo: hello there echo: hello there")
    assert len(content.encode()) == 200
    assert resp.usage is not None
    assert resp.usage.prompt_tokens > 0
    assert resp.usage.completion_tokens == len(content) // 4 + 1
    assert resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens


def test_chat_is_deterministic_and_ids_differ(client: openai.OpenAI) -> None:
    a = client.chat.completions.create(model="m", messages=MESSAGES)
    b = client.chat.completions.create(model="m", messages=MESSAGES)
    assert a.choices[0].message.content == b.choices[0].message.content
    assert a.id != b.id


def _stream(
    client: openai.OpenAI, model: str, include_usage: bool
) -> tuple[str, list[ChatCompletionChunk]]:
    chunks = list(
        client.chat.completions.create(
            model=model,
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": include_usage},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    return text, chunks


def test_chat_stream_with_usage(client: openai.OpenAI) -> None:
    text, chunks = _stream(client, "gpt-4o-mini", include_usage=True)
    expected = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert text == expected.choices[0].message.content
    assert chunks[0].choices[0].delta.role == "assistant"
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) >= 4
    finals = [c for c in chunks if c.choices and c.choices[0].finish_reason == "stop"]
    assert len(finals) == 1
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert last.usage.completion_tokens == len(text) // 4 + 1
    assert expected.usage is not None
    assert last.usage.model_dump() == expected.usage.model_dump()
    assert all(c.usage is None for c in chunks[:-1])
    assert len({c.id for c in chunks}) == 1


def test_chat_stream_without_usage(client: openai.OpenAI) -> None:
    text, chunks = _stream(client, "gpt-4o-mini", include_usage=False)
    assert text.startswith("echo: hello there")
    assert all(c.choices for c in chunks)
    assert all(c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_raw_stream_wire_format(client: openai.OpenAI, upstream: OpenAIUpstream) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        stream=True,
    )
    assert raw.headers["content-type"].startswith("text/event-stream")
    body = raw.http_response.read().decode()
    events = [e for e in body.split("\n\n") if e]
    assert all(e.startswith("data: ") for e in events)
    assert events[-1] == "data: [DONE]"
    assert json.loads(events[0][6:])["object"] == "chat.completion.chunk"


def test_nousage(client: openai.OpenAI) -> None:
    resp = client.chat.completions.create(model="nousage", messages=MESSAGES)
    assert resp.usage is None
    assert resp.choices[0].message.content
    text, chunks = _stream(client, "nousage", include_usage=True)
    assert text == resp.choices[0].message.content
    assert all(c.usage is None for c in chunks)
    assert all(c.choices for c in chunks)


def test_embeddings(client: openai.OpenAI) -> None:
    one = client.embeddings.create(model="text-embedding-3-small", input="abc")
    assert len(one.data) == 1
    assert len(one.data[0].embedding) == 8
    assert one.usage.prompt_tokens == one.usage.total_tokens > 0
    many = client.embeddings.create(
        model="text-embedding-3-small", input=["abc", "def"], encoding_format="float"
    )
    assert [d.index for d in many.data] == [0, 1]
    assert many.data[0].embedding == pytest.approx(one.data[0].embedding, abs=1e-5)
    assert many.data[0].embedding != many.data[1].embedding
    assert all(-1.0 <= x <= 1.0 for d in many.data for x in d.embedding)


def test_fail_429(client: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="fail-429", messages=MESSAGES)
    assert info.value.status_code == 429
    assert info.value.code == "rate_limit_exceeded"
    assert info.value.type == "rate_limit_exceeded"


@pytest.mark.parametrize(
    ("model", "exc", "kind"),
    [
        ("fail-500", openai.InternalServerError, "server_error"),
        ("fail-400", openai.BadRequestError, "invalid_request_error"),
    ],
)
def test_fail_other(client: openai.OpenAI, model: str, exc: type[Exception], kind: str) -> None:
    with pytest.raises(exc) as info:
        client.chat.completions.create(model=model, messages=MESSAGES, stream=True)
    assert isinstance(info.value, openai.APIStatusError)
    assert info.value.type == kind
    body = info.value.body
    assert isinstance(body, dict)
    assert body["message"]
    assert {k: body[k] for k in ("type", "param", "code")} == {
        "type": kind,
        "param": None,
        "code": kind,
    }


def test_slow_and_stall_still_answer(client: openai.OpenAI) -> None:
    resp = client.chat.completions.create(model="slow-50", messages=MESSAGES)
    assert resp.choices[0].message.content
    text, _ = _stream(client, "stall-50", include_usage=True)
    assert text == resp.choices[0].message.content


def test_models(client: openai.OpenAI) -> None:
    ids = [m.id for m in client.models.list()]
    assert len(ids) >= 2
    assert "gpt-4o-mini" in ids


def test_malformed_json(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.post(
            "/chat/completions",
            cast_to=object,
            content=b"{not json",
            options={"headers": {"Content-Type": "application/json"}},
        )
    assert info.value.type == "invalid_request_error"


def test_received_captures_headers_and_body() -> None:
    with (
        OpenAIUpstream() as up,
        openai.OpenAI(base_url=up.base_url, api_key="sk-secret", max_retries=0) as client,
    ):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        client.models.list()
    assert [(r.method, r.path) for r in up.received] == [
        ("POST", "/v1/chat/completions"),
        ("GET", "/v1/models"),
    ]
    first = up.received[0]
    assert first.headers["authorization"] == "Bearer sk-secret"
    assert all(k == k.lower() for k in first.headers)
    body = json.loads(first.body)
    assert body["model"] == "gpt-4o-mini"
    assert body["messages"] == MESSAGES


def test_lifecycle() -> None:
    up = OpenAIUpstream()
    with pytest.raises(RuntimeError):
        _ = up.base_url
    up.start()
    try:
        assert up.base_url == f"http://127.0.0.1:{up.port}/v1"
        with pytest.raises(RuntimeError):
            up.start()
    finally:
        up.stop()
    up.stop()  # idempotent
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        with pytest.raises(OSError):
            OpenAIUpstream(port=s.getsockname()[1]).start()


def test_restart_and_record_off() -> None:
    up = OpenAIUpstream(record=False)
    for _ in range(2):
        with up, openai.OpenAI(base_url=up.base_url, api_key="k", max_retries=0) as client:
            assert client.models.list().data
    assert up.received == []


def test_stop_with_stream_in_flight() -> None:
    up = OpenAIUpstream().start()
    first_chunk = threading.Event()
    outcome: list[object] = []

    def consume() -> None:
        with openai.OpenAI(base_url=up.base_url, api_key="k", max_retries=0) as client:
            try:
                stream = client.chat.completions.create(
                    model="stall-60000", messages=MESSAGES, stream=True
                )
                for chunk in stream:
                    outcome.append(chunk)
                    first_chunk.set()
            except Exception as exc:  # the server going away mid-stream
                outcome.append(exc)
            finally:
                first_chunk.set()

    thread = threading.Thread(target=consume)
    thread.start()
    assert first_chunk.wait(30)
    up.stop()
    thread.join(30)
    assert not thread.is_alive()
    assert isinstance(outcome[0], ChatCompletionChunk)
    assert isinstance(outcome[-1], Exception)


def test_cli_serves_until_sigterm() -> None:
    cmd = [sys.executable, "-m", "llmtrail.testing.openai_upstream", "--port", "0"]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None
            url = proc.stdout.readline().split()[-1]
            assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
            with openai.OpenAI(base_url=url, api_key="k", max_retries=0) as client:
                resp = client.chat.completions.create(model="m", messages=MESSAGES)
            assert resp.choices[0].message.content
            proc.terminate()
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
