"""The tracer: where new spans get their ids, time, parent and session, and where finished
ones go. One tracer is active per process (set by `configure`); with none, decorators and
``span()`` run the code untouched and record nothing.

The clock and the id generator are injected so that tests see fixed times and ids and can
compare whole exported spans (as ``logfire.testing`` does).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from llmtrail.sdk.exporter import SpanExporter
from llmtrail.sdk.ids import INVALID_SPAN_ID, IdGenerator, RandomIds, parse_traceparent
from llmtrail.sdk.spans import FinishedSpan, Span, SpanKind, current_span

Clock = Callable[[], int]


class Tracer:
    """Starts spans and hands finished ones to its exporter."""

    def __init__(
        self,
        exporter: SpanExporter | None,
        *,
        session_id: str | None = None,
        clock: Clock | None = None,
        ids: IdGenerator | None = None,
        max_value_chars: int = 32_768,
        propagate: bool = True,
    ) -> None:
        self.exporter = exporter
        self.session_id = session_id
        self.propagate = propagate
        self._clock: Clock = clock or time.time_ns
        self._ids: IdGenerator = ids or RandomIds()
        self._max_value_chars = max_value_chars

    def now_ns(self) -> int:
        """The current time in nanoseconds since the epoch, from the injected clock."""
        return self._clock()

    def submit(self, span: FinishedSpan) -> None:
        """Queue a finished span for export."""
        if self.exporter is not None:
            self.exporter.submit(span)

    def start_span(
        self,
        name: str,
        kind: SpanKind,
        *,
        session_id: str | None = None,
        traceparent: str | None = None,
    ) -> Span:
        """A new span: the child of ``traceparent`` when given and valid, else of the current
        span, else the root of a new trace. Its session is ``session_id``, else its parent's,
        else the configured one. The caller makes it current and ends it."""
        remote = parse_traceparent(traceparent) if traceparent else None
        parent = current_span()
        if remote is not None:
            trace_id, parent_id = remote.trace_id, remote.span_id
        elif parent is not None and parent.span_id != INVALID_SPAN_ID:
            trace_id, parent_id = parent.trace_id, parent.span_id
            session_id = session_id or parent.session_id
        else:
            trace_id, parent_id = self._ids.trace_id(), None
        return Span(
            self,
            name=name,
            kind=kind,
            trace_id=trace_id,
            span_id=self._ids.span_id(),
            parent_span_id=parent_id,
            start_ns=self._clock(),
            session_id=session_id or self.session_id,
            max_chars=self._max_value_chars,
        )


_ACTIVE: Tracer | None = None


def active_tracer() -> Tracer | None:
    """The tracer `configure` set, or None when the SDK is off."""
    return _ACTIVE


def set_active_tracer(tracer: Tracer | None) -> Tracer | None:
    """Make ``tracer`` the active one; returns the one it replaces."""
    global _ACTIVE
    previous, _ACTIVE = _ACTIVE, tracer
    return previous
