"""The overview (``/``): the default dashboard's widgets (the seed's five) and, from the
metric rollups, invocations, errors, p95 latency, tokens and cost over the picked range."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from llmtrail.dashboards import DashboardContext, WidgetView, view_dashboard
from llmtrail.metrics.model import MetricDataQuery, MetricDataResult, MetricStat
from llmtrail.web import charts
from llmtrail.web.dashboard_source import overview_body
from llmtrail.web.page_context import PageContext, View
from llmtrail.web.time_range import period_for

# tile label, metric, stat: each summed over the range
TOTALS = (
    ("Invocations", "Invocations"),
    ("Input tokens", "InputTokenCount"),
    ("Output tokens", "OutputTokenCount"),
    ("Client errors", "InvocationClientErrors"),
    ("Server errors", "InvocationServerErrors"),
    ("Cost (USD)", "CostUsd"),
)


@dataclass
class Totals:
    label: str
    metric: str
    value: float


def metric_queries(period: int) -> list[MetricDataQuery]:
    """Every series the overview draws, at ``period`` seconds."""
    sums = [
        MetricDataQuery(f"m{i}", MetricStat(metric, "Sum", period), label=label)
        for i, (label, metric) in enumerate(TOTALS)
    ]
    p95 = MetricDataQuery("p95", MetricStat("InvocationLatency", "p95", period), label="p95 (ms)")
    return [*sums, p95]


async def overview(ctx: PageContext) -> View:
    tr = ctx.range
    metrics = getattr(ctx.runtime, "metrics", None)
    seed = await asyncio.to_thread(overview_body, ctx.runtime, ctx.workspace)
    loop = asyncio.get_running_loop()
    dashboard = DashboardContext(
        metrics=metrics,
        run_query=ctx.queries.blocking(loop),
        start=tr.start,
        end=tr.end,
        workspace=ctx.workspace,
        alarms=getattr(ctx.runtime, "alarms", None),
        explicit_range=True,  # the overview's widgets follow its range picker
    )
    widgets: list[WidgetView] = await asyncio.to_thread(view_dashboard, seed, dashboard)
    context: dict[str, Any] = {"widgets": widgets}
    if metrics is None:
        context.update(totals=[], figures=[], metrics_missing=True)
        return View("overview.j2", context)
    period = period_for(tr.seconds)
    results: list[MetricDataResult] = await asyncio.to_thread(
        metrics.get_metric_data, metric_queries(period), tr.start, tr.end, workspace=ctx.workspace
    )
    by_id = {r.id: r for r in results}

    def series(*ids: str) -> list[MetricDataResult]:
        return [by_id[i] for i in ids if i in by_id]

    totals = [
        Totals(label, metric, sum(by_id[f"m{i}"].values) if f"m{i}" in by_id else 0.0)
        for i, (label, metric) in enumerate(TOTALS)
    ]
    figures = [
        charts.series_figure(series("m0"), "Invocations", tr.start, tr.end),
        charts.series_figure(series("m3", "m4"), "Errors", tr.start, tr.end),
        charts.series_figure(series("p95"), "Latency p95 (ms)", tr.start, tr.end),
        charts.series_figure(series("m5"), "Cost (USD)", tr.start, tr.end),
    ]
    context.update(totals=totals, figures=figures, metrics_missing=False, period=period)
    return View("overview.j2", context)
