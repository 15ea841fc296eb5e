"""Traces (``/traces``, the list with the API's filters and the per-request timeline), one
trace (``/traces/{traceId}``, a waterfall of its spans, each opening to its input and
output), and sessions (``/sessions``: requests grouped by ``x-llmtrail-session-id``, calls
that carry only a session id included).

Every page reads the caller's workspace only; another workspace's trace is "not found". A
key without the ``bodies`` permission sees the waterfall, timings, tokens and errors, but no
span's input or output and no model call's conversation."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from llmtrail.analytics.timeline import timeline
from llmtrail.capture.merge import fuse_links
from llmtrail.errors import NotFound, ValidationError
from llmtrail.server.audit_hooks import audit_body_read
from llmtrail.server.params import int_param, optional_int_param
from llmtrail.server.traces_api import MAX_DURATION_MS, PAGE_MAX
from llmtrail.span import Span, check_trace_id
from llmtrail.store.interfaces import SpanStore
from llmtrail.store.spans import TracePage, TraceQuery
from llmtrail.web import charts
from llmtrail.web.conversation import Message, conversation
from llmtrail.web.page_context import PageContext, View

TIMELINE_ROWS = 30
NARROW_WINDOWS = (timedelta(hours=1), timedelta(days=1), timedelta(days=7))
FILTERS = ("app", "sessionId", "status", "minDurationMs", "hasError", "limit", "cursor")


def _bool(value: str | None, field: str) -> bool | None:
    if value is None:
        return None
    if value.lower() not in ("true", "false"):
        raise ValidationError(field, "must be true or false")
    return value.lower() == "true"


async def traces(ctx: PageContext) -> View:
    keep = {name: ctx.param(name, 256) for name in FILTERS}
    tr = ctx.range
    query = TraceQuery(
        workspace=ctx.workspace,
        start=tr.start,
        end=tr.end,
        app=keep["app"],
        session_id=keep["sessionId"],
        status=keep["status"],
        min_duration_ms=optional_int_param(
            keep["minDurationMs"], "minDurationMs", minimum=0, maximum=MAX_DURATION_MS
        ),
        has_error=_bool(keep["hasError"], "hasError"),
        limit=int_param(keep["limit"], "limit", default=50, minimum=1, maximum=PAGE_MAX),
        cursor=keep["cursor"],
    )
    page = await asyncio.to_thread(latest_traces, ctx.runtime.spans, query)
    # the timeline of the latest requests: only the window the listed traces span, since
    # `timeline` reads every traced call of its range
    since = min((t.start for t in page.traces[:TIMELINE_ROWS]), default=tr.start)
    rows = await asyncio.to_thread(
        timeline,
        ctx.runtime.query_engine,
        workspace=ctx.workspace,
        start=max(since, tr.start),
        end=tr.end,
        by="trace",
        limit=TIMELINE_ROWS,
    )
    context = {
        "traces": page.traces,
        "next_cursor": page.next_cursor,
        "filters": keep,
        "timeline": charts.timeline_figure(rows) if rows else None,
    }
    return View("traces.j2", context, {k: v for k, v in keep.items() if k != "cursor"})


def latest_traces(spans: SpanStore, query: TraceQuery) -> TracePage:
    """`find_traces`, first over the last hour, day or week of the range when the first page
    is asked for: the newest traces of a long range are found without summarising every
    trace in it. A narrow window answers only when it holds more traces than the page (it
    then has a next cursor), so its page is the whole range's first page; the cursor is a
    position (start, traceId), valid over the whole range for the next page."""
    if query.cursor is None and query.start is not None and query.end is not None:
        for width in NARROW_WINDOWS:
            if query.end - width <= query.start:
                break
            page = spans.find_traces(replace(query, start=query.end - width))
            if page.next_cursor is not None:
                return page
    return spans.find_traces(query)


@dataclass
class WaterfallRow:
    """A span placed in its trace: depth under the root, offset and width in percent."""

    span: Span
    depth: int
    offset_pct: float
    width_pct: float
    messages: list[Message]
    input_text: str | None
    output_text: str | None


def waterfall(spans: list[Span], bodies: bool = True) -> list[WaterfallRow]:
    """Spans in tree order (children after their parent, by start), placed on one scale;
    their inputs and outputs only with ``bodies``."""
    if not spans:
        return []
    start = min(s.start for s in spans)
    total = max((max(s.end for s in spans) - start).total_seconds(), 1e-6)
    ids = {s.span_id for s in spans}
    children: dict[str | None, list[Span]] = {}
    for span in spans:
        parent = span.parent_span_id if span.parent_span_id in ids else None
        children.setdefault(parent, []).append(span)
    out: list[WaterfallRow] = []
    stack = [(s, 0) for s in sorted(children.get(None, []), key=_order, reverse=True)]
    while stack:
        span, depth = stack.pop()
        offset = (span.start - start).total_seconds() / total * 100
        width = max((span.end - span.start).total_seconds() / total * 100, 0.4)
        out.append(_row(span, depth, offset, min(width, 100 - offset), bodies))
        kids = sorted(children.get(span.span_id, []), key=_order, reverse=True)
        stack.extend((k, depth + 1) for k in kids)
    return out


def _order(span: Span) -> tuple[Any, str]:
    return (span.start, span.span_id)


def _row(span: Span, depth: int, offset: float, width: float, bodies: bool) -> WaterfallRow:
    if not bodies:
        return WaterfallRow(span, depth, offset, width, [], None, None)
    if span.record is not None:
        messages = conversation(span.input, span.output)
        return WaterfallRow(span, depth, offset, width, messages, None, None)
    return WaterfallRow(span, depth, offset, width, [], _shown(span.input), _shown(span.output))


def _shown(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, default=str, ensure_ascii=False)


async def trace(ctx: PageContext) -> View:
    trace_id = check_trace_id(ctx.request.path_params["trace_id"])
    workspace = ctx.workspace
    runtime = ctx.runtime

    def read() -> list[Span]:
        spans = runtime.spans.get_trace(trace_id, workspace)
        return fuse_links(spans, lambda rid: runtime.records.get(rid, workspace))

    spans = await asyncio.to_thread(read)
    if not spans:
        raise NotFound(f"no trace {trace_id}")
    rows = waterfall(spans, ctx.bodies)
    records = [s.record for s in spans if s.record is not None]
    if ctx.bodies and records:
        await audit_body_read(ctx.runtime, ctx.request, "ui", [r.request_id for r in records])
    context = {
        "trace_id": trace_id,
        "bodies_hidden": not ctx.bodies,
        "rows": rows,
        "start": min(s.start for s in spans),
        "duration_ms": (max(s.end for s in spans) - min(s.start for s in spans)).total_seconds()
        * 1000,
        "calls": len(records),
        "errors": sum(1 for s in spans if s.status == "ERROR"),
        "input_tokens": sum(
            (r.data.get("input") or {}).get("inputTokenCount") or 0 for r in records
        ),
        "output_tokens": sum(
            (r.data.get("output") or {}).get("outputTokenCount") or 0 for r in records
        ),
    }
    return View("trace.j2", context)


async def sessions(ctx: PageContext) -> View:
    limit = int_param(ctx.param("limit", 20), "limit", default=50, minimum=1, maximum=PAGE_MAX)
    rows = await asyncio.to_thread(
        timeline,
        ctx.runtime.query_engine,
        workspace=ctx.workspace,
        start=ctx.range.start,
        end=ctx.range.end,
        by="session",
        limit=limit,
    )
    context = {
        "sessions": list(reversed(rows)),  # newest first
        "timeline": charts.timeline_figure(rows[-TIMELINE_ROWS:]) if rows else None,
    }
    return View("sessions.j2", context, {"limit": ctx.param("limit", 20)})
