"""Trace summaries: a read model over spans and invocation records.

A trace is the union of its spans (`llmtrail.span.Span`) and the records whose ``trace`` block
makes them spans; `summarize_trace` summarises one from its elements — the in-memory store's
reference behaviour, which the DuckDB store reproduces in SQL and the contract suite holds
both to.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from llmtrail.errors import ValidationError
from llmtrail.record import DEFAULT_WORKSPACE, format_timestamp
from llmtrail.span import Span

TRACE_PAGE_MAX = 10_000
TRACE_STATUSES = ("OK", "ERROR", "CANCELLED")  # a root that is a record may be CANCELLED


@dataclass(frozen=True)
class TraceQuery:
    """Which traces to list, newest first by trace start (ties by traceId). ``start``/``end``
    bound the trace's start; ``status`` is the root span's; ``has_error`` asks whether any
    span or record of the trace failed."""

    workspace: str = DEFAULT_WORKSPACE
    start: datetime | None = None  # inclusive
    end: datetime | None = None  # exclusive
    app: str | None = None
    session_id: str | None = None
    status: str | None = None
    min_duration_ms: int | None = None
    has_error: bool | None = None
    limit: int = 100
    cursor: str | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= TRACE_PAGE_MAX:
            raise ValidationError("limit", f"must be between 1 and {TRACE_PAGE_MAX}")
        if self.min_duration_ms is not None and self.min_duration_ms < 0:
            raise ValidationError("minDurationMs", "must not be negative")
        if self.status is not None and self.status not in TRACE_STATUSES:
            raise ValidationError("status", f"must be one of {'|'.join(TRACE_STATUSES)}")


@dataclass(frozen=True)
class TraceSummary:
    """One trace at a glance. Its root is the earliest span without a parent (the earliest
    span if none lacks one); ``name`` and ``status`` are the root's, ``app`` and
    ``session_id`` the first ones set in that same order. ``span_count`` counts spans and
    records, ``llm_calls`` the records alone."""

    trace_id: str
    workspace: str
    name: str
    start: datetime
    end: datetime
    status: str
    span_count: int
    llm_calls: int
    error_count: int
    input_tokens: int
    output_tokens: int
    session_id: str | None = None
    app: str | None = None

    @property
    def duration_ms(self) -> int:
        """Whole milliseconds from the first start to the last end."""
        return (self.end - self.start) // timedelta(milliseconds=1)

    @property
    def has_error(self) -> bool:
        """True when any span or record of the trace failed."""
        return self.error_count > 0

    def to_dict(self) -> dict[str, Any]:
        """The summary as JSON (lowerCamelCase keys, RFC 3339 times)."""
        doc: dict[str, Any] = {
            "traceId": self.trace_id,
            "workspace": self.workspace,
            "name": self.name,
            "start": format_timestamp(self.start),
            "end": format_timestamp(self.end),
            "durationMs": self.duration_ms,
            "status": self.status,
            "spanCount": self.span_count,
            "llmCalls": self.llm_calls,
            "errorCount": self.error_count,
            "inputTokens": self.input_tokens,
            "outputTokens": self.output_tokens,
            "sessionId": self.session_id,
            "app": self.app,
        }
        return {k: v for k, v in doc.items() if v is not None}


@dataclass
class TracePage:
    """One page of trace summaries and the cursor of the next page (None on the last)."""

    traces: list[TraceSummary]
    next_cursor: str | None = None


def span_order(span: Span) -> tuple[bool, datetime, str]:
    """The order that picks a trace's root: spans without a parent first, then by start."""
    return (not span.is_root, span.start, span.span_id)


def summarize_trace(elements: Sequence[Span]) -> TraceSummary:
    """The summary of one trace from all its spans, record spans included (not empty)."""
    ordered = sorted(elements, key=span_order)
    root = ordered[0]
    records = [s.record for s in ordered if s.record is not None]

    def tokens(part: str, key: str) -> int:
        total = 0
        for r in records:
            value = (r.data.get(part) or {}).get(key)
            total += value if isinstance(value, int) else 0
        return total

    return TraceSummary(
        trace_id=root.trace_id,
        workspace=root.workspace,
        name=root.name,
        start=min(s.start for s in ordered),
        end=max(s.end for s in ordered),
        status=root.status,
        span_count=len(ordered),
        llm_calls=len(records),
        error_count=sum(1 for s in ordered if s.status == "ERROR"),
        input_tokens=tokens("input", "inputTokenCount"),
        output_tokens=tokens("output", "outputTokenCount"),
        session_id=next((s.session_id for s in ordered if s.session_id), None),
        app=next((s.app for s in ordered if s.app), None),
    )


def trace_matches(summary: TraceSummary, query: TraceQuery) -> bool:
    """Whether a summary passes the query's filters (not the workspace, cursor or limit)."""
    checks = (
        query.start is None or summary.start >= query.start,
        query.end is None or summary.start < query.end,
        query.app is None or summary.app == query.app,
        query.session_id is None or summary.session_id == query.session_id,
        query.status is None or summary.status == query.status,
        query.min_duration_ms is None or summary.duration_ms >= query.min_duration_ms,
        query.has_error is None or summary.has_error == query.has_error,
    )
    return all(checks)
