"""Small ASGI helpers for the hot routes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from llmtrail.errors import PayloadTooLarge, ValidationError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


async def read_body(receive: Receive, limit: int, field: str = "body") -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionResetError("client disconnected before sending its body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(field, f"is larger than the limit of {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


INLINE_PARSE_BYTES = 256 * 1024  # a body this large is parsed in a thread, not the loop


async def read_json(body: bytes, max_depth: int, field: str = "body") -> Any:
    """`parse_json`, off the event loop for a large body: parsing and walking a body of tens
    of megabytes takes seconds, and every other call would wait for it."""
    if len(body) < INLINE_PARSE_BYTES:
        return parse_json(body, max_depth, field)
    return await asyncio.to_thread(parse_json, body, max_depth, field)


def parse_json(body: bytes, max_depth: int, field: str = "body") -> Any:
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ValidationError(field, f"is not valid JSON: {exc}") from None
    if json_depth(value) > max_depth:
        raise ValidationError(field, f"is nested deeper than the limit of {max_depth} levels")
    return value


def json_depth(value: Any) -> int:
    depth = 0
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            depth = max(depth, level)
            stack.extend((v, level + 1) for v in item.values())
        elif isinstance(item, list):
            depth = max(depth, level)
            stack.extend((v, level + 1) for v in item)
    return depth


def headers_of(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


async def respond(
    send: Send,
    status: int,
    body: bytes,
    headers: list[tuple[bytes, bytes]] | None = None,
    content_type: bytes = b"application/json",
) -> None:
    raw = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": raw + (headers or [])})
    await send({"type": "http.response.body", "body": body})


async def respond_json(
    send: Send, status: int, value: Any, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    await respond(send, status, orjson.dumps(value), headers)
