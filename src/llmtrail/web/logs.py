"""The Logs page: a Logs Insights editor over the records (``/logs?q=…``), the saved
queries, the result table, a histogram of matching records over time, and one record's
detail (``/logs/{requestId}``) with its request and response as a conversation.

Queries run on the query API's path (`PooledQueries`); a query the language or the engine
refuses is shown above the editor with its line and column, never as an error page. A key
without the ``bodies`` permission sees a record's metadata, counts and cost, and a note in
place of its conversation: the bodies are left out of the page altogether (the record JSON
included), not hidden by the browser.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from llmtrail.analytics.insights import QueryResult, as_text
from llmtrail.errors import LlmtrailError, NotFound
from llmtrail.query import parse_query
from llmtrail.query.ast import Dedup, Display, Limit, Sort, Stats
from llmtrail.query.body_access import reads_bodies
from llmtrail.security.principal import Permission
from llmtrail.server.audit_hooks import audit_body_read
from llmtrail.server.params import int_param
from llmtrail.web import charts
from llmtrail.web.conversation import conversation
from llmtrail.web.page_context import PageContext, View
from llmtrail.web.time_range import period_for

DEFAULT_QUERY = (
    "fields @timestamp, requestId, modelId, operation, status, latencyMs, "
    "input.inputTokenCount, output.outputTokenCount\n| sort @timestamp desc\n| limit 100"
)
LINKED_FIELDS = frozenset({"requestId", "@requestId"})
DEFAULT_ROWS = 200
MAX_ROWS = 2000
_STOP = (Stats, Sort, Limit, Dedup, Display)


def histogram_query(text: str, period_s: int) -> str:
    """The records ``text`` matches, counted per period: its commands before the first that
    aggregates, sorts, limits or reshapes, then ``stats count(*) by bin(…)``."""
    parsed = parse_query(text)
    kept = []
    for command in parsed.commands:
        if isinstance(command, _STOP):
            break
        kept.append(text[command.span.start : command.span.end])
    kept.append(f"stats count(*) as records by bin({period_s // 60}m) as t")
    return " | ".join(kept)


async def logs(ctx: PageContext) -> View:
    saved_name = ctx.param("saved", 128)
    text = ctx.param("q")
    limit_text = ctx.param("limit", 20)
    context: dict[str, Any] = {"saved_name": saved_name, "result": None, "error": None}
    status = 200
    try:
        limit = int_param(limit_text, "limit", default=DEFAULT_ROWS, minimum=1, maximum=MAX_ROWS)
        if text is None and saved_name is not None:
            text = (await asyncio.to_thread(ctx.queries.saved.get, saved_name))["queryString"]
        text = text or DEFAULT_QUERY
        context["query"] = text
        result, histogram = await asyncio.gather(
            ctx.queries.run(text, ctx.range.start, ctx.range.end, limit),
            _histogram(ctx, text),
        )
        if ctx.bodies and result.status == "Complete" and reads_bodies(parse_query(text)):
            await audit_body_read(ctx.runtime, ctx.request, "ui", _request_ids(result))
        context.update(
            result=result,
            rows=[[as_text(v) for v in row] for row in result.rows],
            linked=[f in LINKED_FIELDS for f in result.fields],
            histogram=histogram,
        )
    except LlmtrailError as exc:
        context.setdefault("query", text or DEFAULT_QUERY)
        context["error"] = exc
        status = int(getattr(exc, "status", 400))
    context["saved"] = sorted(
        await asyncio.to_thread(ctx.queries.saved.list), key=lambda s: str(s.get("name"))
    )
    keep = {"q": context["query"], "limit": limit_text}
    return View("logs.j2", context, keep, status)


def _request_ids(result: QueryResult) -> list[str]:
    """The request ids a query's rows show (none when it shows none)."""
    at = next((i for i, f in enumerate(result.fields) if f in LINKED_FIELDS), None)
    return [] if at is None else [str(row[at]) for row in result.rows if row[at] is not None]


async def _histogram(ctx: PageContext, text: str) -> dict[str, Any] | None:
    period = period_for(ctx.range.seconds, 90)
    try:
        counting = histogram_query(text, period)
        result: QueryResult = await ctx.queries.run(counting, ctx.range.start, ctx.range.end)
    except LlmtrailError:
        return None  # the query itself says what is wrong
    times: list[datetime] = []
    counts: list[float] = []
    if "t" not in result.fields:
        return None
    at = result.fields.index("t")
    total = result.fields.index("records")
    for row in sorted(result.rows, key=lambda r: r[at]):
        times.append(row[at])
        counts.append(float(row[total] or 0))
    return charts.histogram_figure(times, counts, period)


BODY_KEYS = {"input": "inputBodyJson", "output": "outputBodyJson"}


def without_bodies(doc: dict[str, Any]) -> dict[str, Any]:
    """A copy of record ``doc`` without its request and response bodies."""
    out = dict(doc)
    for block, key in BODY_KEYS.items():
        if isinstance(out.get(block), dict):
            out[block] = {k: v for k, v in out[block].items() if k != key}
    return out


async def record(ctx: PageContext) -> View:
    """One record: summary, conversation (with the ``bodies`` permission), tokens, cost,
    metadata, error, trace link, JSON."""
    request_id = ctx.request.path_params["request_id"]
    found = await asyncio.to_thread(ctx.runtime.records.get, request_id, ctx.workspace)
    if found is None:
        raise NotFound(f"no record with requestId {request_id!r}")
    doc = found.to_dict() if hasattr(found, "to_dict") else dict(found.data)
    data = found.data
    bodies = ctx.bodies
    if not bodies:
        doc, data = without_bodies(doc), without_bodies(data)
    inp, out = data.get("input") or {}, data.get("output") or {}
    messages = conversation(inp.get("inputBodyJson"), out.get("outputBodyJson")) if bodies else []
    context = {
        "doc": doc,
        "data": data,
        "request_id": request_id,
        "bodies_hidden": not bodies,
        "messages": messages,
        "input": inp,
        "output": out,
        "trace": data.get("trace") or {},
        "metadata": sorted((data.get("requestMetadata") or {}).items()),
        "cost": data.get("cost") or {},
        "error_block": data.get("error") or {},
        "viewers": await _viewers(ctx, request_id),
    }
    return View("record.j2", context)


async def _viewers(ctx: PageContext, request_id: str) -> list[dict[str, Any]] | None:
    """Audit this page's read of the record's bodies (when it showed them), then who read
    them, newest first, for a key that may read the audit log (``manage``, as
    ``/api/audit``); None when it may not or the server keeps no audit log."""
    audit = getattr(ctx.runtime, "audit", None)
    if audit is None:
        return None
    if ctx.bodies:
        await audit_body_read(ctx.runtime, ctx.request, "ui", [request_id])
    if not ctx.principal.can(Permission.MANAGE):
        return None
    viewers: list[dict[str, Any]] = await asyncio.to_thread(
        audit.viewers, ctx.workspace, request_id
    )
    return viewers
