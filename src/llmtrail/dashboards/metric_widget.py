"""Metric widgets: the ``metrics`` rows read from the metrics service, expressions computed
with metric math, and the result shown as the widget's ``view``.

The period is the widget's (or the row's) ``period``, default 300 s; with ``periodOverride``
``auto`` it grows when the range would give more than `MAX_POINTS` points. With
``setPeriodToTimeRange`` (or for ``singleValue``/``pie``/``bar``/``table`` views, whose one
value per series is otherwise the latest point) the points of each series are combined over
the whole range by the row's statistic: summed for ``Sum``/``SampleCount``, the least or
greatest for ``Minimum``/``Maximum``, and the mean of the points otherwise (an average of
averages, CloudWatch's per-period value over a range longer than the rollups' period). With
``setPeriodToTimeRange`` that is done to each metric row before expressions read it, so that
``m1 + m2`` adds the two totals even where the range spans two aligned periods.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from llmtrail.dashboards.figures import bar_figure, line_figure, pie_figure
from llmtrail.dashboards.rows import MetricRow, expand_rows
from llmtrail.dashboards.search import metric_search
from llmtrail.dashboards.view import DashboardContext, WidgetRange, WidgetView
from llmtrail.errors import ValidationError
from llmtrail.metrics.math import evaluate_expression
from llmtrail.metrics.model import NAMESPACE, MetricDataQuery, MetricDataResult, MetricStat

DEFAULT_PERIOD = 300
DEFAULT_STAT = "Average"
MAX_POINTS = 1440
_NICE = (60, 300, 900, 3600, 21600, 86400)


def metric_view(
    props: dict[str, Any], view: WidgetView, span: WidgetRange, context: DashboardContext
) -> WidgetView:
    if context.metrics is None:
        raise ValidationError("metrics", "metrics are not available on this server yet")
    rows = expand_rows(props.get("metrics") or [])
    given = props.get("stat")
    stat: str = given if isinstance(given, str) else DEFAULT_STAT
    shape = props.get("view", "timeSeries")
    whole_range = bool(props.get("setPeriodToTimeRange"))
    period = _period(props.get("period"), span, whole_range)
    results = _series(rows, stat, period, span, context, whole_range)
    stats = {rid: s for rid, s in _row_stats(rows, stat)}
    if shape == "timeSeries":
        view.kind = "chart"
        lines = [(r.label, [_iso(t) for t in r.timestamps], r.values) for r in results]
        view.figure = line_figure(lines, stacked=bool(props.get("stacked")))
        return view
    totals = [(r.label, _one_value(r, stats.get(r.id, stat), whole_range)) for r in results]
    if shape in ("singleValue", "gauge"):
        view.kind = "value"
        view.values = [(label, format_number(v)) for label, v in totals]
    elif shape == "pie":
        view.kind = "chart"
        kept = [(label, v) for label, v in totals if v is not None]
        view.figure = pie_figure([x for x, _ in kept], [v for _, v in kept])
    elif shape == "bar":
        view.kind = "chart"
        view.figure = bar_figure([(label, [label], [v or 0.0]) for label, v in totals])
    else:  # table
        view.kind = "table"
        view.columns = ["Label", stat]
        view.rows = [[label, format_number(v)] for label, v in totals]
    return view


def _period(value: Any, span: WidgetRange, whole_range: bool) -> int:
    seconds = max(1, int((span.end - span.start).total_seconds()))
    if whole_range:
        return max(60, math.ceil(seconds / 60) * 60)
    period = (
        value
        if isinstance(value, int) and not isinstance(value, bool) and value > 0
        else DEFAULT_PERIOD
    )
    if period < 60:
        period = 10 if period <= 10 else 30
    if span.period_override == "auto" and seconds / period > MAX_POINTS:
        period = next(
            (p for p in _NICE if seconds / p <= MAX_POINTS),
            math.ceil(seconds / MAX_POINTS / 86400) * 86400,
        )
    return period


def _row_stats(rows: list[MetricRow], stat: str) -> list[tuple[str, str]]:
    return [(_row_id(i, r), r.options.get("stat", stat)) for i, r in enumerate(rows)]


def _row_id(index: int, row: MetricRow) -> str:
    given = row.options.get("id")
    if isinstance(given, str):
        return given
    return f"{'e' if row.expression is not None else 'm'}{index + 1}"


def _series(
    rows: list[MetricRow],
    stat: str,
    period: int,
    span: WidgetRange,
    context: DashboardContext,
    whole_range: bool = False,
) -> list[MetricDataResult]:
    """Every visible row's series: metric rows in one read, expressions in row order."""
    assert context.metrics is not None
    queries = []
    for i, row in enumerate(rows):
        if row.expression is not None:
            continue
        if row.namespace != NAMESPACE:
            raise ValidationError(
                f"metrics[{i}]",
                f"namespace {row.namespace} is not held by llmtrail (only {NAMESPACE})",
            )
        row_period = row.options.get("period")
        row_period = row_period if isinstance(row_period, int) and row_period >= 60 else period
        queries.append(
            MetricDataQuery(
                id=_row_id(i, row),
                stat=MetricStat(
                    row.metric or "", row.options.get("stat", stat), row_period, row.dimensions
                ),
                label=row.options.get("label") or _default_label(row),
            )
        )
    found = (
        context.metrics.get_metric_data(queries, span.start, span.end, workspace=context.workspace)
        if queries
        else []
    )
    if whole_range:  # one point each, before any expression reads them
        stats = dict(_row_stats(rows, stat))
        found = [_whole(r, stats[r.id], span.start) for r in found]
    by_id: dict[str, MetricDataResult | list[MetricDataResult]] = {r.id: r for r in found}
    for q in queries:  # a query with no data still has its (empty) series
        by_id.setdefault(q.id, MetricDataResult(q.id, q.label or q.id))
    metric_ids = [q.id for q in queries]
    search = metric_search(
        context.metrics, workspace=context.workspace, start=span.start, end=span.end
    )
    shown: list[MetricDataResult] = []
    for i, row in enumerate(rows):
        rid = _row_id(i, row)
        if row.expression is not None:
            computed = evaluate_expression(
                row.expression,
                dict(by_id),
                period=period,
                search=search,
                metric_ids=metric_ids,
                start=span.start,
                end=span.end,
            )
            label = row.options.get("label")
            for k, series in enumerate(computed):
                series.id = rid if len(computed) == 1 else f"{rid}_{k}"
                if isinstance(label, str) and len(computed) == 1:
                    series.label = label
            by_id[rid] = computed[0] if len(computed) == 1 else computed
            if row.options.get("visible", True) is not False:
                shown.extend(computed)
        elif row.options.get("visible", True) is not False:
            found_series = by_id[rid]
            shown.extend(found_series if isinstance(found_series, list) else [found_series])
    return shown


def _whole(series: MetricDataResult, stat: str, start: datetime) -> MetricDataResult:
    """``series`` as the one point of a period as long as the range: the range's periods
    are aligned to whole periods, so a day's range can hold two, and arithmetic between
    series keeps only the timestamps both have (a point where one app had no calls would be
    lost from ``m1 + m2``)."""
    value = _one_value(series, stat, whole_range=True)
    if value is None:
        return series
    series.timestamps, series.values = [start], [value]
    return series


def _default_label(row: MetricRow) -> str:
    values = " ".join(v for _, v in row.dimensions)
    return f"{row.metric} {values}" if values else row.metric or ""


def _one_value(series: MetricDataResult, stat: str, whole_range: bool) -> float | None:
    if not series.values:
        return None
    if not whole_range:
        return series.values[-1]
    if stat in ("Sum", "SampleCount"):
        return math.fsum(series.values)
    if stat == "Minimum":
        return min(series.values)
    if stat == "Maximum":
        return max(series.values)
    return math.fsum(series.values) / len(series.values)


def format_number(value: float | None) -> str:
    """A value as a dashboard shows it: thousands separated, at most 4 decimals."""
    if value is None or not math.isfinite(value):
        return "No data"
    if value == int(value) and abs(value) < 1e15:
        return f"{int(value):,}"
    if abs(value) >= 1000:
        return f"{value:,.2f}"
    return f"{value:,.4f}".rstrip("0").rstrip(".")


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")
