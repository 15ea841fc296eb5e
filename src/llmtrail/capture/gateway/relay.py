"""Relay an upstream stream to the client, byte for byte, and keep a copy for the record.

Each chunk is sent to the client the moment it arrives, unchanged and unbuffered; a copy goes
into a bounded buffer (the tee). Nothing is parsed while the stream runs: the route parses the
tee after the last byte is sent, so the record costs the caller no latency. A tee that reaches
its limit stops copying and says so (the record is then flagged, never wrong silently).

A client that goes away mid-stream ends the relay: the upstream is closed (cancelled, not
drained), and the record is ``CANCELLED`` with ``error.type`` ``client_disconnected`` and the
tokens of what was relayed so far.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from llmtrail.capture.gateway.asgi import Receive, Send
from llmtrail.capture.gateway.call import Call
from llmtrail.capture.gateway.providers import UpstreamError


@dataclass
class Relayed:
    """What went through: the tee and how the stream ended."""

    chunks: list[bytes] = field(default_factory=list)
    size: int = 0
    truncated: bool = False
    status: str = "OK"  # OK | ERROR | CANCELLED
    error: dict[str, Any] | None = None
    error_status: int | None = None

    @property
    def raw(self) -> bytes:
        return b"".join(self.chunks)


async def relay(
    call: Call,
    chunks: AsyncIterator[bytes],
    send: Send,
    receive: Receive,
    *,
    status: int,
    headers: list[tuple[bytes, bytes]],
    limit: int,
    error_frame: Callable[[UpstreamError], bytes],
    finish: Callable[[Relayed], None],
) -> None:
    """Stream ``chunks`` to the client and call ``finish`` with the tee exactly once — also
    when the server cancels the relay (shutdown), before the cancellation propagates.

    ``finish`` parses the tee and builds the record: it runs on a worker thread, so the event
    loop keeps relaying other streams' chunks while it works (the GIL is handed over every
    switch interval instead of the loop stopping for the whole parse)."""
    await send({"type": "http.response.start", "status": status, "headers": headers})
    out = Relayed()
    disconnected = asyncio.ensure_future(_wait_disconnect(receive))
    try:
        async for chunk in chunks:
            if call.first_token_at is None:
                call.first_token_at = time.perf_counter()
            if disconnected.done():
                _cancelled(out, "client_disconnected", "the client went away before the end")
                break
            try:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            except OSError:
                _cancelled(out, "client_disconnected", "the client went away before the end")
                break
            if out.size + len(chunk) <= limit:
                out.chunks.append(chunk)
                out.size += len(chunk)
            else:
                out.truncated = True
    except asyncio.CancelledError:
        _cancelled(out, "server_shutdown", "the server stopped during the stream")
        finish(out)
        raise
    except UpstreamError as exc:
        out.status, out.error_status = "ERROR", exc.status
        out.error = {"type": exc.kind, "message": exc.message, "httpStatus": exc.status}
        frame = error_frame(exc)
        if frame and not disconnected.done():
            await _send_quietly(send, frame, more=True)
    finally:
        disconnected.cancel()
        closer = getattr(chunks, "aclose", None)
        if closer is not None:
            await closer()
    if out.status != "CANCELLED":
        await _send_quietly(send, b"", more=False)
    await asyncio.get_running_loop().run_in_executor(None, finish, out)


def _cancelled(out: Relayed, kind: str, message: str) -> None:
    out.status = "CANCELLED"
    out.error = {"type": kind, "message": message}


async def _send_quietly(send: Send, body: bytes, more: bool) -> None:
    with contextlib.suppress(OSError):
        await send({"type": "http.response.body", "body": body, "more_body": more})


async def _wait_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
