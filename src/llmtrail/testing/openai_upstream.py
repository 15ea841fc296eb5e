"""A small, real HTTP server speaking OpenAI's wire format.

It stands in for a paid provider in end-to-end tests and benchmarks of the gateway. Responses are
deterministic (see `llmtrail.testing.scripted_reply`), with tool calls when tools are given;
the requested model name selects special behaviour:

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
import struct
import time
from typing import Any

import orjson
from aiohttp import web

from llmtrail.capture.gateway.providers.sim import openai_wire
from llmtrail.capture.gateway.providers.sim.plan import Voice
from llmtrail.testing.local_server import LocalServer, ReceivedRequest, serve_until_interrupted
from llmtrail.testing.scripted_reply import EchoVoice, count_tokens, pieces, reply_to

__all__ = ["OpenAIUpstream", "ReceivedRequest", "main"]

_SWITCH = re.compile(r"^(fail|slow|stall)-(\d+)$")
_ERROR_TYPES = {401: "authentication_error", 403: "permission_error", 429: "rate_limit_exceeded"}
_MODELS = ("gpt-4o-mini", "gpt-4o", "text-embedding-3-small")
_EMBEDDING_DIM = 8


def _embedding(text: str) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    return [round(b / 127.5 - 1.0, 6) for b in digest[:_EMBEDDING_DIM]]


def _error(status: int, message: str) -> web.Response:
    kind = _ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    body = {"error": {"message": message, "type": kind, "param": None, "code": kind}}
    return _json(body, status=status)


def _json(obj: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(obj), status=status, content_type="application/json")


class OpenAIUpstream(LocalServer):
    """The fake OpenAI API; its ``base_url`` is what ``openai.OpenAI(base_url=…)`` takes."""

    name = "openai-upstream"
    client_max_size = 1024**2  # aiohttp's default, as this fake always had

    def __init__(
        self,
        *,
        port: int = 0,
        response_bytes: int = 1000,
        record: bool = True,
        voice: Voice | None = None,
    ) -> None:
        super().__init__(port=port, record=record)
        self.response_bytes = response_bytes
        self.voice = voice or EchoVoice(response_bytes)  # words and counts the answers
        self._ids = itertools.count(1)

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/embeddings", self._embeddings)
        app.router.add_get("/v1/models", self._models)

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
        if not (isinstance(raw, list) and any(isinstance(m, dict) for m in raw)):
            return _error(400, "'messages' is a required property and must be a non-empty array.")
        n = next(self._ids)
        model = str(payload.get("model", ""))
        conversation = openai_wire.conversation(payload)
        reply = reply_to(conversation, self.voice, model=model, call_id=f"call_Fake{n:014d}")
        usage: dict[str, int] | None = None
        if model != "nousage":
            usage = openai_wire.usage(reply)
        head = {"id": f"chatcmpl-up{n:010d}", "created": int(time.time()), "model": model}
        finish = openai_wire.FINISH[reply.stop_reason]
        if not payload.get("stream"):
            choice = {"index": 0, "message": openai_wire.message(reply), "logprobs": None}
            choice["finish_reason"] = finish
            body: dict[str, Any] = {**head, "object": "chat.completion", "choices": [choice]}
            return _json(body if usage is None else {**body, "usage": usage})
        options = payload.get("stream_options")
        if not (isinstance(options, dict) and options.get("include_usage")):
            usage = None
        head["object"] = "chat.completion.chunk"
        extra: dict[str, Any] = {} if usage is None else {"usage": None}

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            return {**head, "choices": [choice], **extra}

        chunks = [chunk({"role": "assistant", "content": ""})]
        chunks += [chunk({"content": piece}) for piece in pieces(reply.text)]
        if reply.tool_call is not None:
            call = openai_wire.tool_call(reply)
            opening = {**call, "index": 0, "function": {**call["function"], "arguments": ""}}
            chunks.append(chunk({"tool_calls": [opening]}))
            for piece in pieces(call["function"]["arguments"], 4):
                chunks.append(
                    chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
                )
        chunks.append(chunk({}, finish))
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
            tokens = sum(count_tokens(t) for t in texts)
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
    parser.add_argument("--response-bytes", type=int, default=1000, help="size of each answer")
    serve_until_interrupted(
        lambda a: OpenAIUpstream(port=a.port, response_bytes=a.response_bytes, record=False),
        parser,
        argv,
        lambda s: f"OpenAI upstream serving at {s.base_url}",  # type: ignore[attr-defined]
        default_port=9100,
    )


if __name__ == "__main__":
    main()
