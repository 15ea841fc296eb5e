"""A small, real HTTP server speaking OpenAI's wire format.

It stands in for a paid provider in end-to-end tests and benchmarks of the gateway. Responses are
deterministic; the requested model name selects special behaviour:

* ``fail-<code>``: answer HTTP ``<code>`` with OpenAI's error shape;
* ``slow-<ms>``: wait ``<ms>`` milliseconds before sending the response headers;
* ``stall-<ms>`` (streams): send the first chunk, then wait ``<ms>`` before the rest;
* ``nousage``: never report ``usage``;
* anything else: normal behaviour.

Run ``python -m llmtrail.testing.openai_upstream --port 9100`` to serve in the foreground.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import itertools
import re
import signal
import struct
import threading
import time
from dataclasses import dataclass
from types import FrameType, TracebackType
from typing import Any

import orjson
from aiohttp import web
from aiohttp.typedefs import Handler

__all__ = ["OpenAIUpstream", "ReceivedRequest", "main"]

_SWITCH = re.compile(r"^(fail|slow|stall)-(\d+)$")
_ERROR_TYPES = {401: "authentication_error", 403: "permission_error", 429: "rate_limit_exceeded"}
_MODELS = ("gpt-4o-mini", "gpt-4o", "text-embedding-3-small")
_EMBEDDING_DIM = 8


@dataclass
class ReceivedRequest:
    """One request as the upstream saw it."""

    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: bytes


def _tokens(text: str) -> int:
    return len(text) // 4 + 1


def _text_of(content: Any) -> str:
    """Text of a message's ``content``: a string or a list of ``{"type": "text"}`` parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(p.get("text", "")) for p in content if isinstance(p, dict) and "text" in p
        )
    return ""


def _make_content(prompt: str, size: int) -> str:
    if size <= 0:
        return ""
    unit = f"echo: {prompt} ".encode()
    return (unit * (size // len(unit) + 1))[:size].decode("utf-8", errors="ignore")


def _embedding(text: str) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    return [round(b / 127.5 - 1.0, 6) for b in digest[:_EMBEDDING_DIM]]


def _error(status: int, message: str) -> web.Response:
    kind = _ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    body = {"error": {"message": message, "type": kind, "param": None, "code": kind}}
    return _json(body, status=status)


def _json(obj: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(obj), status=status, content_type="application/json")


class OpenAIUpstream:
    """Runs an aiohttp server on 127.0.0.1 in a background thread with its own event loop."""

    def __init__(self, *, port: int = 0, response_bytes: int = 1000, record: bool = True) -> None:
        self.response_bytes = response_bytes
        self.record = record  # False: keep ``received`` empty (long benchmark runs)
        self.received: list[ReceivedRequest] = []
        self._requested_port = port
        self._port: int | None = None
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None

    def start(self) -> OpenAIUpstream:
        """Bind 127.0.0.1:port (0 picks a free port) and serve in a background thread."""
        if self._thread is not None:
            raise RuntimeError("OpenAIUpstream already started")
        self._ready, self._startup_error = threading.Event(), None
        self._thread = threading.Thread(target=self._run, name="openai-upstream", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._startup_error is not None:
            self._thread.join()
            self._thread = None
            raise self._startup_error
        return self

    def stop(self) -> None:
        """Stop serving and join the background thread; safe to call more than once."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stopping.set)
        thread.join()
        self._port = None

    def __enter__(self) -> OpenAIUpstream:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("OpenAIUpstream is not running")
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:
            if self._ready.is_set():
                raise
            self._startup_error = exc  # raised by start(), e.g. the port is taken
        finally:
            self._ready.set()
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.run_until_complete(loop.shutdown_default_executor())
            finally:
                loop.close()

    async def _serve(self) -> None:
        self._stopping = asyncio.Event()
        app = web.Application(middlewares=[self._record])
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/embeddings", self._embeddings)
        app.router.add_get("/v1/models", self._models)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        try:
            await web.TCPSite(runner, "127.0.0.1", self._requested_port).start()
            self._port = int(runner.addresses[0][1])
            self._ready.set()
            await self._stopping.wait()
        finally:
            await runner.cleanup()

    @web.middleware
    async def _record(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self.record:
            body = await request.read()
            headers = {k.lower(): v for k, v in request.headers.items()}
            with self._lock:
                self.received.append(ReceivedRequest(request.method, request.path, headers, body))
        return await handler(request)

    async def _parse(self, request: web.Request) -> dict[str, Any] | web.Response:
        """The JSON body, or an error response (malformed body, ``fail-``, after ``slow-``)."""
        try:
            payload = orjson.loads(await request.read())
        except orjson.JSONDecodeError as exc:
            return _error(400, f"We could not parse the JSON body of your request: {exc}")
        if not isinstance(payload, dict):
            return _error(400, "The request body must be a JSON object.")
        match = _SWITCH.match(str(payload.get("model", "")))
        if match and match[1] == "fail" and 400 <= int(match[2]) <= 599:
            return _error(int(match[2]), f"Simulated failure for model {payload['model']!r}.")
        if match and match[1] == "slow":
            await asyncio.sleep(int(match[2]) / 1000)
        return payload

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        payload = await self._parse(request)
        if isinstance(payload, web.Response):
            return payload
        raw = payload.get("messages")
        messages = [m for m in raw if isinstance(m, dict)] if isinstance(raw, list) else []
        if not messages:
            return _error(400, "'messages' is a required property and must be a non-empty array.")
        user = [_text_of(m.get("content")) for m in messages if m.get("role") == "user"]
        content = _make_content(user[-1] if user else "", self.response_bytes)
        p_tok = _tokens("".join(_text_of(m.get("content")) for m in messages))
        c_tok = _tokens(content)
        model = str(payload.get("model", ""))
        usage: dict[str, int] | None = None
        if model != "nousage":
            usage = {"prompt_tokens": p_tok, "completion_tokens": c_tok}
            usage["total_tokens"] = p_tok + c_tok
        head = {"id": f"chatcmpl-up{next(self._ids):010d}", "created": int(time.time())}
        head["model"] = model
        if not payload.get("stream"):
            message = {"role": "assistant", "content": content}
            choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}
            body: dict[str, Any] = {**head, "object": "chat.completion", "choices": [choice]}
            return _json(body if usage is None else {**body, "usage": usage})
        options = payload.get("stream_options")
        if not (isinstance(options, dict) and options.get("include_usage")):
            usage = None
        head["object"] = "chat.completion.chunk"
        extra: dict[str, Any] = {} if usage is None else {"usage": None}

        def chunk(delta: dict[str, str], finish: str | None = None) -> dict[str, Any]:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            return {**head, "choices": [choice], **extra}

        step = max(1, -(-len(content) // 8))  # about 8 content deltas
        chunks = [chunk({"role": "assistant", "content": ""})]
        chunks += [chunk({"content": content[i : i + step]}) for i in range(0, len(content), step)]
        chunks.append(chunk({}, "stop"))
        if usage is not None:
            chunks.append({**head, "choices": [], "usage": usage})
        match = _SWITCH.match(model)
        stall = int(match[2]) / 1000 if match and match[1] == "stall" else 0.0
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        try:
            await response.prepare(request)
            for n, item in enumerate(chunks):
                await response.write(b"data: " + orjson.dumps(item) + b"\n\n")
                if n == 0 and stall:
                    await asyncio.sleep(stall)
            await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
        except ConnectionResetError:  # the client went away mid-stream
            pass
        return response

    async def _embeddings(self, request: web.Request) -> web.StreamResponse:
        payload = await self._parse(request)
        if isinstance(payload, web.Response):
            return payload
        raw = payload.get("input")
        if raw is None:
            return _error(400, "'input' is a required property.")
        inputs = [raw] if isinstance(raw, str) else list(raw) if isinstance(raw, list) else [raw]
        texts = [i if isinstance(i, str) else orjson.dumps(i).decode() for i in inputs]
        as_base64 = payload.get("encoding_format") == "base64"
        data = []
        for index, text in enumerate(texts):
            vector: list[float] | str = _embedding(text)
            if as_base64:  # little-endian float32, as OpenAI sends it
                vector = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
            data.append({"object": "embedding", "index": index, "embedding": vector})
        body: dict[str, Any] = {"object": "list", "data": data, "model": payload.get("model")}
        if payload.get("model") != "nousage":
            tokens = sum(_tokens(t) for t in texts)
            body["usage"] = {"prompt_tokens": tokens, "total_tokens": tokens}
        return _json(body)

    async def _models(self, request: web.Request) -> web.StreamResponse:
        data = [
            {"id": m, "object": "model", "created": 1700000000, "owned_by": "llmtrail-upstream"}
            for m in _MODELS
        ]
        return _json({"object": "list", "data": data})


def main(argv: list[str] | None = None) -> None:
    """Serve in the foreground until interrupted (SIGINT or SIGTERM)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=9100, help="port on 127.0.0.1 (0 = any free)")
    parser.add_argument("--response-bytes", type=int, default=1000, help="size of each answer")
    args = parser.parse_args(argv)

    def _interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _interrupt)
    upstream = OpenAIUpstream(port=args.port, response_bytes=args.response_bytes, record=False)
    with upstream:
        print(f"OpenAI upstream serving at {upstream.base_url}", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
