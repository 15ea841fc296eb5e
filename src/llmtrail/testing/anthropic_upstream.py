"""A small, real HTTP server speaking Anthropic's Messages API (``POST /v1/messages``).

It stands in for Anthropic in end-to-end tests and benchmarks of the gateway. It checks what
Anthropic checks first — a key in ``x-api-key`` or ``authorization: Bearer`` (the official
client sends the latter to a custom base URL), and an ``anthropic-version`` header — and
answers deterministically (see `llmtrail.testing.scripted_reply`), plain or as the exact SSE
event sequence, with tool use when tools are given. The requested model name selects special
behaviour:

* ``fail-<code>``: answer HTTP ``<code>`` in Anthropic's error shape (429 ``rate_limit_error``,
  529 ``overloaded_error``, …);
* ``slow-<ms>``: wait ``<ms>`` milliseconds before answering;
* ``stall-<ms>`` (streams): send ``message_start``, then wait ``<ms>`` before the rest;
* ``streamfail-<code>`` (streams): after the first text delta, send an ``error`` event of the
  type for ``<code>`` and end the stream;
* anything else: normal behaviour.

Run ``python -m llmtrail.testing.anthropic_upstream --port 9200`` to serve in the foreground.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import re
from typing import Any

import orjson
from aiohttp import web

from llmtrail.capture.gateway.providers.sim.plan import Voice
from llmtrail.capture.gateway.providers.sim.prompt_cache import PromptCache
from llmtrail.testing.anthropic_messages import (
    message_body,
    read_messages_request,
    stream_events,
)
from llmtrail.testing.local_server import LocalServer, json_response, serve_until_interrupted
from llmtrail.testing.scripted_reply import EchoVoice, InvalidRequest, reply_to

__all__ = ["ERROR_TYPES", "AnthropicUpstream", "main"]

_SWITCH = re.compile(r"^(fail|slow|stall|streamfail)-(\d+)$")

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
"""Anthropic's error ``type`` per HTTP status (other 4xx: invalid_request_error, 5xx: api_error)."""

_MESSAGES = {
    "rate_limit_error": "Number of requests has exceeded your rate limit.",
    "overloaded_error": "Overloaded",
    "api_error": "Internal server error",
}


def _error_type(status: int) -> str:
    return ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")


class AnthropicUpstream(LocalServer):
    """The fake Anthropic API. ``api_key=None`` accepts any non-empty key; ``voice`` (default:
    an echo of ``response_bytes`` bytes) words and counts the answers."""

    name = "anthropic-upstream"

    def __init__(
        self,
        *,
        port: int = 0,
        response_bytes: int = 200,
        api_key: str | None = None,
        record: bool = True,
        voice: Voice | None = None,
    ) -> None:
        super().__init__(port=port, record=record)
        self.response_bytes = response_bytes
        self.api_key = api_key
        self.voice = voice or EchoVoice(response_bytes)
        self.cache = PromptCache()
        self._ids = itertools.count(1)

    @property
    def base_url(self) -> str:
        """What ``anthropic.Anthropic(base_url=…)`` takes (the client adds ``/v1/messages``)."""
        return self.url

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/messages", self._messages)

    def _error(self, status: int, message: str, request_id: str) -> web.Response:
        error = {"type": _error_type(status), "message": message}
        body = {"type": "error", "error": error, "request_id": request_id}
        return json_response(body, status, headers={"request-id": request_id})

    def _refusal(self, request: web.Request, request_id: str) -> web.Response | None:
        key = request.headers.get("x-api-key")
        bearer = request.headers.get("authorization", "")
        if key is None and bearer.lower().startswith("bearer "):
            key = bearer[7:].strip()
        if not key:
            return self._error(401, "x-api-key header is required", request_id)
        if self.api_key is not None and key != self.api_key:
            return self._error(401, "invalid x-api-key", request_id)
        if not request.headers.get("anthropic-version"):
            return self._error(400, "anthropic-version: header is required", request_id)
        return None

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        n = next(self._ids)
        request_id = f"req_011Fake{n:016d}"
        refusal = self._refusal(request, request_id)
        if refusal is not None:
            return refusal
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError as exc:
            return self._error(400, f"There was an issue with your request body: {exc}", request_id)
        if not isinstance(body, dict):
            return self._error(400, "The request body must be a JSON object.", request_id)
        model = str(body.get("model", ""))
        switch = _SWITCH.match(model)
        if switch and switch[1] == "fail" and 400 <= int(switch[2]) <= 599:
            kind = _error_type(int(switch[2]))
            message = _MESSAGES.get(kind, f"Simulated failure for model {model!r}.")
            return self._error(int(switch[2]), message, request_id)
        if switch and switch[1] == "slow":
            await asyncio.sleep(int(switch[2]) / 1000)
        try:
            conversation = read_messages_request(body, require_model=True)
        except InvalidRequest as exc:
            return self._error(400, str(exc), request_id)
        reply = reply_to(
            conversation,
            self.voice,
            model=model,
            call_id=f"toolu_01Fake{n:014d}",
            cache=self.cache,
        )
        message_id = f"msg_01Fake{n:016d}"
        if body.get("stream") is not True:
            answer = message_body(reply, model=model, message_id=message_id)
            return json_response(answer, headers={"request-id": request_id})
        events = stream_events(reply, model=model, message_id=message_id, ping=True)
        return await self._stream(request, request_id, events, switch)

    async def _stream(
        self,
        request: web.Request,
        request_id: str,
        events: list[tuple[str, dict[str, Any]]],
        switch: re.Match[str] | None,
    ) -> web.StreamResponse:
        stall = int(switch[2]) / 1000 if switch and switch[1] == "stall" else 0.0
        fail = int(switch[2]) if switch and switch[1] == "streamfail" else None
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
                "request-id": request_id,
            }
        )
        try:
            await response.prepare(request)
            for n, (name, data) in enumerate(events):
                await response.write(_sse(name, data))
                if n == 0 and stall:
                    await asyncio.sleep(stall)
                if fail is not None and data.get("type") == "content_block_delta":
                    kind = _error_type(fail)
                    error = {"type": kind, "message": _MESSAGES.get(kind, "Simulated failure")}
                    await response.write(_sse("error", {"type": "error", "error": error}))
                    break
            await response.write_eof()
        except ConnectionResetError:  # the client went away mid-stream
            pass
        return response


def _sse(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def main(argv: list[str] | None = None) -> None:
    """Serve in the foreground until interrupted (SIGINT or SIGTERM)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--response-bytes", type=int, default=200, help="size of each answer")
    parser.add_argument("--api-key", default=None, help="the only key accepted (default: any)")
    serve_until_interrupted(
        lambda a: AnthropicUpstream(
            port=a.port, response_bytes=a.response_bytes, api_key=a.api_key, record=False
        ),
        parser,
        argv,
        lambda s: f"Anthropic upstream serving at {s.url}",
    )


if __name__ == "__main__":
    main()
