"""Who uses what and what it costs: Applications (one row per ``application_name``),
Errors (grouped by type and message), Cost (by any dimension, with budgets) and Profiles
(application inference profiles with their usage)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from llmtrail.analytics.attribution import CostQuery, Usage, cost_and_usage, profile_usage
from llmtrail.analytics.budgets import budget_status
from llmtrail.analytics.errors import error_groups
from llmtrail.analytics.insights import QueryResult
from llmtrail.analytics.profiles import APPLICATION
from llmtrail.web import charts
from llmtrail.web.page_context import PageContext, View
from llmtrail.web.time_range import period_for

APP_FIELD = "requestMetadata.application_name"
APPLICATIONS_QUERY = (
    "stats count(*) as calls, sum(input.inputTokenCount) as inputTokens, "
    "sum(output.outputTokenCount) as outputTokens, sum(cost.totalUsd) as cost, "
    f"pct(latencyMs, 95) as p95 by {APP_FIELD}"
)
APPLICATION_ERRORS_QUERY = f'filter status = "ERROR" | stats count(*) as errors by {APP_FIELD}'
MAX_APPLICATIONS = 1000
COST_CHART_GROUPS = 20


@dataclass
class ApplicationRow:
    name: str | None
    calls: int
    input_tokens: int
    output_tokens: int
    errors: int
    cost: Any
    p95_ms: Any


def _column(result: QueryResult, name: str) -> int:
    return result.fields.index(name)


def application_rows(totals: QueryResult, failures: QueryResult) -> list[ApplicationRow]:
    """Both queries' rows joined by application, most calls first."""
    app = _column(failures, APP_FIELD) if failures.fields else -1
    errors = {row[app]: int(row[_column(failures, "errors")] or 0) for row in failures.rows}
    index = {name: _column(totals, name) for name in totals.fields}
    rows = [
        ApplicationRow(
            name=row[index[APP_FIELD]],
            calls=int(row[index["calls"]] or 0),
            input_tokens=int(row[index["inputTokens"]] or 0),
            output_tokens=int(row[index["outputTokens"]] or 0),
            errors=errors.get(row[index[APP_FIELD]], 0),
            cost=row[index["cost"]],
            p95_ms=row[index["p95"]],
        )
        for row in totals.rows
    ]
    return sorted(rows, key=lambda r: (-r.calls, str(r.name)))


async def applications(ctx: PageContext) -> View:
    tr = ctx.range
    totals, failures = await asyncio.gather(
        ctx.queries.run(APPLICATIONS_QUERY, tr.start, tr.end, MAX_APPLICATIONS),
        ctx.queries.run(APPLICATION_ERRORS_QUERY, tr.start, tr.end, MAX_APPLICATIONS),
    )
    rows = application_rows(totals, failures)
    names = [r.name or "(none)" for r in rows[:COST_CHART_GROUPS]]
    figure = charts.bar_figure(names, [r.calls for r in rows[:COST_CHART_GROUPS]], "Calls")
    return View("applications.j2", {"rows": rows, "figure": figure if rows else None})


async def errors(ctx: PageContext) -> View:
    tr = ctx.range
    period = period_for(tr.seconds, 90)
    over_time = f'filter status = "ERROR" | stats count(*) as errors by bin({period // 60}m) as t'
    groups, series = await asyncio.gather(
        asyncio.to_thread(
            error_groups,
            ctx.runtime.query_engine,
            workspace=ctx.workspace,
            start=tr.start,
            end=tr.end,
        ),
        ctx.queries.run(over_time, tr.start, tr.end, 10_000),
    )
    points = sorted(series.rows, key=lambda r: r[series.fields.index("t")])
    figure = charts.histogram_figure(
        [r[series.fields.index("t")] for r in points],
        [float(r[series.fields.index("errors")]) for r in points],
        period,
    )
    return View("errors.j2", {"groups": groups, "figure": figure if points else None})


@dataclass
class CostRow:
    keys: tuple[str | None, ...]
    usage: Usage


def cost_rows(groups: Sequence[Any]) -> list[CostRow]:
    """Each combination of dimension values summed over the periods, costliest first."""
    totals: dict[tuple[str | None, ...], Usage] = {}
    for group in groups:
        totals[group.keys] = totals.get(group.keys, Usage()) + group.usage
    rows = [CostRow(k, u) for k, u in totals.items()]
    return sorted(rows, key=lambda r: (-r.usage.total_usd, -r.usage.calls, str(r.keys)))


async def cost(ctx: PageContext) -> View:
    by = tuple(v[:256] for v in ctx.request.query_params.getlist("by") if v)
    granularity = (ctx.param("granularity", 16) or "DAILY").upper()
    tz = ctx.param("tz", 64) or "UTC"
    tr = ctx.range
    query = CostQuery(tr.start, tr.end, by, granularity, tz, ctx.workspace)
    answer = await asyncio.to_thread(cost_and_usage, ctx.runtime.query_engine, query)
    rows = cost_rows(answer.groups)
    periods: dict[Any, Decimal] = {}
    for group in answer.groups:
        periods[group.period] = periods.get(group.period, Decimal(0)) + group.usage.total_usd
    top = rows[:COST_CHART_GROUPS]
    by_key = charts.bar_figure(
        [" / ".join(k or "(none)" for k in r.keys) or "all" for r in top],
        [float(r.usage.total_usd) for r in top],
        "Cost (USD) by " + (", ".join(by) or "everything"),
    )
    over_time = charts.bar_figure(
        [p.isoformat() for p in sorted(periods)],
        [float(periods[p]) for p in sorted(periods)],
        f"Cost (USD) per {'day' if granularity == 'DAILY' else 'month'}",
    )
    budgets = await asyncio.to_thread(_budget_statuses, ctx)
    context = {
        "by": by,
        "granularity": granularity,
        "tz": tz,
        "rows": rows,
        "total": answer.total(),
        "figures": [by_key, over_time] if rows else [],
        "budgets": budgets,
    }
    keep: dict[str, str | list[str] | None] = {"granularity": granularity, "tz": tz, "by": list(by)}
    return View("cost.j2", context, keep)


def _budget_statuses(ctx: PageContext) -> list[Any]:
    """The budgets of the caller's workspace, with what each spent this month."""
    budgets = ctx.runtime.budgets.all(ctx.workspace)
    spent = ctx.runtime.month_spend(budgets) if budgets else {}
    now = datetime.now(UTC)
    return [budget_status(b, spent.get(b.key, Decimal(0)), now) for b in budgets]


async def profiles(ctx: PageContext) -> View:
    tr = ctx.range

    def read() -> list[tuple[Any, Any]]:
        ws = ctx.workspace
        page = ctx.runtime.profiles.list(type_equals=APPLICATION, max_results=1000, workspace=ws)
        engine = ctx.runtime.query_engine
        return [(p, profile_usage(engine, p.arn, tr.start, tr.end, ws)) for p in page.profiles]

    rows = await asyncio.to_thread(read)
    return View("profiles.j2", {"rows": rows})
