"""Canary secrets through every way in — gateway bodies and metadata, an upstream whose 401
echoes the caller's key, the ingest API, OTLP spans — are found nowhere in the data directory
(DuckDB file, WAL, spool, objects, dead letters) or the server's log, because redaction runs
before anything reaches a file."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from aiohttp import web

from tests.harness import ServerProcess
from tests.security.test_front_door import call

OPENAI_KEY = "sk-proj-Cn4ryQ7b2VxK9mZpL3tR8wY1nH6jF0dS4gA5eU2iO7cB9vM1xN3kP"
ANTHROPIC_KEY = (
    "sk-ant-api03-Cn4ryW8qE2rT6yU0iO4pA1sD5fG9hJ3kL7zX2cV6bN0mQ4wE8rT2yU6iO0pA4sD8fG2hJ6kL0zX4"
    "cV8bN2m-AbCdEfAA"
)
AWS_ID = "AKIACN4RYQ7B2VXK9MZP"
AWS_SECRET = "Cn4ry9mZpL3tR8wY1nH6jF0dS4gA5eU2iO7cB9vM"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJjYW5hcnktdXNlci0xMjMiLCJpYXQiOjE3OTY1NTIyNTd9"
    ".Cn4ryXq9mZpL3tR8wY1nH6jF0dS4gA5eU2iO7cB9vM1"
)
BEARER = "Cn4ryBearerTokenQ7b2VxK9mZpL3tR8wY1nH6"
CANARIES = (OPENAI_KEY, ANTHROPIC_KEY, AWS_ID, AWS_SECRET, JWT, BEARER)
PROMPT = (
    f"my openai key is {OPENAI_KEY} and anthropic {ANTHROPIC_KEY}; aws_access_key_id={AWS_ID} "
    f"aws_secret_access_key={AWS_SECRET}; token {JWT}; header Authorization: Bearer {BEARER}"
)


class EchoingUpstream:
    """An OpenAI-compatible upstream that refuses every key and echoes it in its 401, as
    some providers and proxies do."""

    def __init__(self) -> None:
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    async def _refuse(self, request: web.Request) -> web.Response:
        key = request.headers.get("authorization", "")
        message = f"Incorrect API key provided: {key}"
        body = {"error": {"message": message, "code": "invalid_api_key",
                          "type": "invalid_request_error", "param": None}}  # fmt: skip
        return web.json_response(body, status=401)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._refuse)
        self._runner = web.AppRunner(app)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/v1"
        self._ready.set()
        self._loop.run_forever()

    def __enter__(self) -> EchoingUpstream:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


@pytest.fixture
def upstream() -> Iterator[EchoingUpstream]:
    with EchoingUpstream() as up:
        yield up


def test_canaries_reach_no_file(tmp_path: Path, upstream: EchoingUpstream) -> None:
    config = f"""
[providers.echo]
type = "openai"
base_url = "{upstream.url}"
[[routes]]
match = "echo/*"
provider = "echo"
"""
    data = tmp_path / "data"
    server = ServerProcess(data, config=config, env={"LLMTRAIL_LOG_LEVEL": "debug"})
    with server:
        u = server.url
        # 1. an upstream 401 that echoes the caller's key (no key of its own: passed through)
        with openai.OpenAI(base_url=u + "/v1", api_key=OPENAI_KEY, max_retries=0) as client:
            with pytest.raises(openai.AuthenticationError) as refused:
                client.chat.completions.create(
                    model="echo/gpt-4o", messages=[{"role": "user", "content": "hi"}]
                )
            assert OPENAI_KEY in str(refused.value)  # the caller sees its own answer as sent
            # 2. bodies and metadata through the gateway
            client.chat.completions.create(
                model="sim/echo",
                messages=[{"role": "user", "content": PROMPT}],
                extra_headers={"x-llmtrail-metadata": json.dumps({"session": JWT})},
            )
        # 3. the ingest API: bodies, metadata and an error message
        record = {
            "schemaType": "ModelInvocationLog", "schemaVersion": "1.0",
            "timestamp": "2026-12-06T10:00:00Z", "requestId": "canary-ingest-1",
            "modelId": "m", "operation": "Converse",
            "requestMetadata": {"note": f"Bearer {BEARER}"},
            "input": {"inputBodyJson": {"prompt": PROMPT}, "inputTokenCount": 3},
            "output": {"outputBodyJson": {"text": PROMPT}, "outputTokenCount": 3},
            "errorCode": "ValidationException",
            "error": {"type": "x", "message": f"bad key {ANTHROPIC_KEY}", "httpStatus": 400},
        }  # fmt: skip
        status, _, body = call(u + "/api/records", "POST", json.dumps(record).encode(),
                               {"content-type": "application/x-ndjson"})  # fmt: skip
        assert status == 200, body
        # 4. OTLP spans: attributes, input and output, an exception
        now = time.time_ns()
        denied = f"the secret key {AWS_SECRET} was denied"
        span = {
            "traceId": "c" * 32, "spanId": "d" * 16, "name": "tool",
            "startTimeUnixNano": str(now), "endTimeUnixNano": str(now + 5_000_000),
            "attributes": [
                {"key": "llmtrail.span.kind", "value": {"stringValue": "tool"}},
                {"key": "input.value", "value": {"stringValue": PROMPT}},
                {"key": "exception.message", "value": {"stringValue": denied}},
            ],
        }  # fmt: skip
        otlp = {"resourceSpans": [{"scopeSpans": [{"scope": {"name": "t"}, "spans": [span]}]}]}
        status, _, body = call(u + "/v1/traces", "POST", json.dumps(otlp).encode(),
                               {"content-type": "application/json"})  # fmt: skip
        assert status == 200, body
        # 5. an OTLP model-call span merged into the gateway call it describes: the link it
        # leaves in the trace keeps the span's error
        trace_id, parent = "e" * 32, "f" * 16
        with openai.OpenAI(base_url=u + "/v1", api_key="sk-test", max_retries=0) as client:
            client.chat.completions.create(
                model="sim/canary-merge",
                messages=[{"role": "user", "content": "hi"}],
                extra_headers={"traceparent": f"00-{trace_id}-{parent}-01"},
            )
        deadline = time.monotonic() + 30
        while b"sim/canary-merge" not in call(u + "/api/records?model=sim/canary-merge")[2]:
            assert time.monotonic() < deadline, "the gateway's record was never stored"
            time.sleep(0.05)
        failed = {
            "traceId": trace_id, "spanId": parent, "name": "chat",
            "startTimeUnixNano": str(now), "endTimeUnixNano": str(now + 5_000_000),
            "status": {"code": 2, "message": f"key {OPENAI_KEY} was refused"},
            "attributes": [
                {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
                {"key": "gen_ai.request.model", "value": {"stringValue": "sim/canary-merge"}},
            ],
        }  # fmt: skip
        otlp = {"resourceSpans": [{"scopeSpans": [{"scope": {"name": "t"}, "spans": [failed]}]}]}
        status, headers, body = call(u + "/v1/traces", "POST", json.dumps(otlp).encode(),
                                     {"content-type": "application/json"})  # fmt: skip
        assert status == 200, body
        assert headers["x-llmtrail-merged"] == "1"
        metrics = server.settle()
        assert metrics["stored"] >= 4
        # everything arrived, redacted: read back whole (DuckDB compresses strings on disk)
        stored = call(u + "/api/records?limit=100")[2] + call(u + f"/api/traces/{'c' * 32}")[2]
        errors = call(u + "/api/errors")[2]
        assert b"was refused" in errors  # the link's error, as the errors page groups it
        stored += errors
        assert b"REDACTED" in stored and b"Incorrect API key provided" in stored
        for secret in CANARIES:
            assert secret.encode() not in stored, secret
    files = [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix != ".toml"]
    assert any(p.suffix == ".duckdb" for p in files) and any(p.suffix == ".log" for p in files)
    for path in files:
        content = path.read_bytes()
        for secret in CANARIES:
            assert secret.encode() not in content, f"{secret[:12]}… found in {path}"
