"""The Provider interface: one upstream a route can forward to.

A provider answers with the upstream's own bytes (JSON, or an SSE byte stream), so a route
handles a real upstream and the built-in ``sim`` the same way: pass the bytes through to the
client and accumulate them into the record.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from llmtrail.errors import Picklable


@dataclass
class UpstreamRequest:
    wire_format: str  # "openai" | "anthropic" | "bedrock"
    path: str  # e.g. "/chat/completions" or "/model/{id}/converse", relative to the base URL
    body: dict[str, Any]  # the request body, model already rewritten for the upstream
    stream: bool = False
    headers: dict[str, str] = field(default_factory=dict)  # caller's auth when passed through
    model: str = ""  # the upstream model (Bedrock has it in the path, not the body)


@dataclass
class UpstreamResponse:
    status: int
    headers: dict[str, str]
    body: bytes | None = None  # whole body (non-stream, or any error)
    chunks: AsyncIterator[bytes] | None = None  # stream body, when status is 2xx and streaming


class UpstreamError(Picklable):
    """The upstream could not be reached or did not answer in time."""

    def __init__(self, kind: str, status: int, message: str) -> None:
        super().__init__(message)
        self.kind = kind  # upstream_unreachable | upstream_timeout | upstream_stream_idle
        self.status = status  # 502 | 504
        self.message = message


class Provider(Protocol):
    name: str
    wire_formats: frozenset[str]
    has_own_key: bool  # True when the gateway holds this provider's key (caller's is identity)

    async def send(self, request: UpstreamRequest) -> UpstreamResponse:
        """Send ``request`` upstream; raises `UpstreamError` when there is no answer."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
