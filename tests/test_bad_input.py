"""Odd input on every entry point: a clear 4xx naming the field, never a 5xx, and the
pipeline keeps storing afterwards."""

from __future__ import annotations

import gzip
import hashlib
import json
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from aiohttp import web

from llmtrail.record import INT_MAX
from tests.harness import ServerProcess, free_port


class OddUpstream:
    """An OpenAI-format upstream that answers with values of the wrong types."""

    def __init__(self) -> None:
        import asyncio

        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import asyncio

        asyncio.set_event_loop(self.loop)
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        self.runner = web.AppRunner(app)
        self.loop.run_until_complete(self.runner.setup())
        site = web.TCPSite(self.runner, "127.0.0.1", self.port)
        self.loop.run_until_complete(site.start())
        self.ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(self.runner.cleanup())
        self.loop.close()

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        odd: dict[str, Any] = {
            "odd-ids": {
                "id": 123,
                "choices": [{"message": {"content": "x"}, "finish_reason": {"no": 1}}],
            },
            "odd-usage": {
                "id": "c",
                "choices": ["x", None],
                "usage": {
                    "prompt_tokens": "3",
                    "completion_tokens": 2**70,
                    "prompt_tokens_details": "zz",
                },
            },
            "odd-list": [1, 2, 3],
            "odd-huge": {  # counts no record holds: not believed, counted offline instead
                "id": "h",
                "choices": [{"message": {"content": "x"}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 2**40, "completion_tokens": INT_MAX + 1},
            },
        }[body["model"]]
        if body.get("stream"):
            response = web.StreamResponse(headers={"content-type": "text/event-stream"})
            await response.prepare(request)
            for chunk in (
                {"id": 5, "choices": [{"index": "zz", "delta": {"content": 1}}]},
                {"choices": [{"index": 0, "delta": {"tool_calls": ["x", {"index": -1}]}}]},
                {"choices": "no", "usage": "no"},
            ):
                await response.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
            await response.write(b"data: [DONE]\n\n")
            return response
        return web.json_response(odd)

    def __enter__(self) -> OddUpstream:
        self.thread.start()
        self.ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with OddUpstream() as odd:
        config = (
            f'[providers.odd]\ntype = "openai"\nbase_url = "http://127.0.0.1:{odd.port}/v1"\n'
            '[[routes]]\nmatch = "odd-*"\nprovider = "odd"\n'
            "[limits]\nmax_ingest_bytes = 100000\n"
        )
        with ServerProcess(tmp_path_factory.mktemp("bad") / "data", config=config) as proc:
            yield proc


def chat(server: ServerProcess, body: dict[str, Any], **headers: str) -> httpx.Response:
    return httpx.post(server.url + "/v1/chat/completions", json=body, headers=headers, timeout=30)


@pytest.mark.parametrize("model", ["odd-ids", "odd-usage", "odd-list", "odd-huge"])
@pytest.mark.parametrize("stream", [False, True])
def test_odd_upstream_answers_are_relayed_and_recorded(
    server: ServerProcess, model: str, stream: bool
) -> None:
    response = chat(
        server, {"model": model, "stream": stream, "messages": [{"role": "user", "content": "hi"}]}
    )
    assert response.status_code == 200
    record = server.wait_for_record(response.headers["x-llmtrail-request-id"])
    assert record["status"] == "OK"
    assert 0 <= record["input"]["inputTokenCount"] <= INT_MAX
    assert 0 <= record["output"]["outputTokenCount"] <= INT_MAX
    assert isinstance(record.get("responseId", ""), str)


@pytest.mark.parametrize(
    ("body", "headers", "status", "needle"),
    [
        (
            {"model": "sim/x", "messages": [{"role": "user", "content": "x"}]},
            {"x-llmtrail-sim": "error=99"},
            400,
            "error must be a number from 400 to 599",
        ),
        (
            {"model": "sim/x", "messages": [{"role": "user", "content": "x"}]},
            {"x-llmtrail-sim": "latency_ms=inf"},
            400,
            "latency_ms",
        ),
        (
            {"model": "sim/error-99", "messages": [{"role": "user", "content": "x"}]},
            {},
            400,
            "error",
        ),
    ],
)
def test_bad_sim_options_are_400(
    server: ServerProcess, body: dict[str, Any], headers: dict[str, str], status: int, needle: str
) -> None:
    response = chat(server, body, **headers)
    assert response.status_code == status and needle in response.json()["error"]["message"]


def test_odd_but_harmless_request_fields(server: ServerProcess) -> None:
    response = chat(
        server,
        {
            "model": "sim/x",
            "stream": "false",
            "stream_options": "x",
            "messages": [{"role": "user", "content": "x"}],
        },
    )
    assert response.status_code == 200 and response.json()["object"] == "chat.completion"
    emb = httpx.post(
        server.url + "/v1/embeddings", json={"model": "sim/e", "input": "x", "dimensions": -1}
    )
    assert emb.status_code == 400 and "dimensions" in emb.json()["error"]["message"]


def post(server: ServerProcess, body: bytes, **headers: str) -> httpx.Response:
    return httpx.post(server.url + "/api/records", content=body, headers=headers, timeout=30)


def test_gzip_bomb_and_broken_gzip(server: ServerProcess) -> None:
    bomb = gzip.compress(b"[" + b" " * 5_000_000 + b"]")
    assert len(bomb) < 100_000
    response = post(server, bomb, **{"content-encoding": "gzip"})
    assert response.status_code == 413 and "decompresses" in response.json()["detail"]
    response = post(server, bomb)  # gzip magic without the header
    assert response.status_code == 413
    response = post(server, b"\x1f\x8b" + b"garbage" * 10)
    assert response.status_code == 400 and "gzip" in response.json()["detail"]


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({"requestHeaders": {"a": 1}}, "requestHeaders.a"),
        ({"timestamp": "0001-01-01T00:00:00+01:00"}, "timestamp"),
        ({"timestamp": "9999-12-31T23:59:59-01:00"}, "timestamp"),
        ({"latencyMs": 2**64}, "latencyMs"),
        ({"trace": {"traceId": 5}}, "trace.traceId"),
        ({"requestMetadata": {"a\u3000b": "v"}}, "requestMetadata.a\u3000b"),
    ],
)
def test_unstorable_records_are_rejected_one_by_one(
    server: ServerProcess, doc: dict[str, Any], field: str
) -> None:
    tag = hashlib.sha256(json.dumps(doc).encode()).hexdigest()[:12]
    good = {"requestId": f"good-{tag}", "timestamp": "2026-11-23T10:00:00Z"}
    bad = {"requestId": f"bad-{tag}", "timestamp": "2026-11-23T10:00:00Z", **doc}
    response = post(server, json.dumps([good, bad]).encode())
    assert response.status_code == 200
    results = response.json()["results"]
    assert results[0]["status"] == "stored"
    assert results[1]["status"] == "rejected" and results[1]["field"] == field
    server.wait_for_record(f"good-{tag}")  # the pipeline still stores


def test_a_pretty_printed_single_object(server: ServerProcess) -> None:
    doc = {"requestId": "pretty", "timestamp": "2026-11-23T10:00:00Z"}
    response = post(server, json.dumps(doc, indent=2).encode())
    assert response.status_code == 200 and response.json()["stored"] == 1


@pytest.mark.parametrize(
    "query", ["start=0001-01-01T00:00:00%2B01:00", "order=sideways", "limit=99999999999999999999"]
)
def test_odd_list_queries_are_400(server: ServerProcess, query: str) -> None:
    response = httpx.get(server.url + "/api/records?" + query)
    assert response.status_code == 400


def test_server_is_still_healthy(server: ServerProcess) -> None:
    assert server.get("/readyz") == {"status": "ready"}
    metrics = server.settle()
    assert metrics["thread_failures"] == 0 and metrics["dead_lettered"] == 0
    assert metrics["store_errors"] == 0
