"""``span(name, kind=…)``: a block of code recorded as a span, with ``with`` or ``async with``.

The scope makes its span current on entry and restores the previous one on exit, so spans
opened inside (by decorators or other scopes) become its children. When no tracer is active
it hands out an inert span, so code that calls ``s.annotate(…)`` runs unchanged with the SDK
off.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextvars import Token
from types import TracebackType
from typing import Any

from llmtrail.sdk.spans import SPAN_KINDS, UNSET, Span, SpanKind, enter_span, exit_span
from llmtrail.sdk.tracer import active_tracer


def check_kind(kind: str) -> SpanKind:
    """``kind`` when it is one of `SPAN_KINDS`; a ValueError naming them otherwise."""
    if kind not in SPAN_KINDS:
        raise ValueError(f"span kind must be one of {', '.join(SPAN_KINDS)}; got {kind!r}")
    return kind  # type: ignore[return-value]


def start_span(
    name: str,
    kind: SpanKind,
    *,
    session_id: str | None = None,
    traceparent: str | None = None,
) -> Span:
    """A new span from the active tracer, or an inert one when the SDK is off."""
    tracer = active_tracer()
    if tracer is None:
        return Span.inert(name, kind)
    return tracer.start_span(name, kind, session_id=session_id, traceparent=traceparent)


class SpanScope:
    """The context manager `span` returns; enter it once, with ``with`` or ``async with``."""

    def __init__(
        self,
        name: str,
        kind: SpanKind,
        *,
        session_id: str | None,
        traceparent: str | None,
        input: Any,
        metadata: Mapping[str, Any] | None,
        tags: Sequence[str] | None,
    ) -> None:
        self._args = (name, kind, session_id, traceparent)
        self._input = input
        self._metadata = metadata
        self._tags = tags
        self._span: Span | None = None
        self._token: Token[Span | None] | None = None

    def __enter__(self) -> Span:
        if self._span is not None:
            raise RuntimeError("a span() scope can be entered only once")
        name, kind, session_id, traceparent = self._args
        span = start_span(name, kind, session_id=session_id, traceparent=traceparent)
        span.annotate(input=self._input, metadata=self._metadata, tags=self._tags)
        self._span = span
        self._token = enter_span(span)
        return span

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        span, token = self._span, self._token
        if span is None or token is None:
            return
        exit_span(token)
        if exc is not None:
            span.record_exception(exc)
        span.end()

    async def __aenter__(self) -> Span:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)


def span(
    name: str,
    kind: str = "task",
    *,
    session_id: str | None = None,
    traceparent: str | None = None,
    input: Any = UNSET,
    metadata: Mapping[str, Any] | None = None,
    tags: Sequence[str] | None = None,
) -> SpanScope:
    """Record a block as a span of ``kind`` (``workflow``, ``agent``, ``tool``, ``task``,
    ``retrieval``, ``embedding`` or ``llm``), the child of the current span. ``traceparent``
    continues a trace begun elsewhere (an incoming request's header); ``session_id`` sets the
    session of a root span (children inherit theirs). Exceptions are recorded and re-raised.

    >>> with span("plan", kind="agent") as s:
    ...     s.annotate(output="…")
    """
    return SpanScope(
        name,
        check_kind(kind),
        session_id=session_id,
        traceparent=traceparent,
        input=input,
        metadata=metadata,
        tags=tags,
    )
