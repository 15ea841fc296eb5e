"""Log widgets: a Logs Insights query (``SOURCE '…' | …``) run through the context's query
runner — the server's bounded path, the one ``POST /api/query`` takes — and shown as the
widget's ``view``: ``table`` (the default), or from ``stats`` results a ``pie``, ``bar`` or
``timeSeries`` (the ``bin()`` group is the time axis, the other groups split the series)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from llmtrail.analytics.insights import as_text
from llmtrail.dashboards.figures import bar_figure, line_figure, pie_figure
from llmtrail.dashboards.view import DashboardContext, WidgetRange, WidgetView
from llmtrail.errors import ValidationError

NUMERIC = ("int", "float", "decimal")


def log_view(
    props: dict[str, Any], view: WidgetView, span: WidgetRange, context: DashboardContext
) -> WidgetView:
    if context.run_query is None:
        raise ValidationError("query", "log queries are not available here")
    query = props.get("query")
    if not isinstance(query, str):
        raise ValidationError("query", "is required (a Logs Insights query)")
    result = context.run_query(query, span.start, span.end)
    if result.status != "Complete":
        raise ValidationError("query", f"the query ended {result.status}")
    shape = props.get("view", "table")
    if shape == "table":
        view.kind = "table"
        view.columns = list(result.fields)
        view.rows = [[as_text(v) for v in row] for row in result.rows]
        return view
    numbers = [i for i, k in enumerate(result.kinds) if k in NUMERIC]
    if not numbers:
        raise ValidationError("view", f"a {shape} needs a numeric stats value in the results")
    stamps = [i for i, k in enumerate(result.kinds) if k == "timestamp"]
    labels = [i for i in range(len(result.fields)) if i not in numbers and i not in stamps]
    view.kind = "chart"
    if shape == "timeSeries":
        if not stamps:
            raise ValidationError("view", "a timeSeries needs a bin() group in the query")
        view.figure = line_figure(_time_series(result, stamps[0], labels, numbers))
        return view
    names = [_label(row, labels) for row in result.rows]
    if shape == "pie":
        values = [_number(row[numbers[0]]) for row in result.rows]
        view.figure = pie_figure(names, values)
    else:  # bar: one bar group per label, one trace per stats value
        traces = [
            (result.fields[i], names, [_number(row[i]) for row in result.rows]) for i in numbers
        ]
        view.figure = bar_figure(traces)
    return view


def _time_series(
    result: Any, stamp: int, labels: list[int], numbers: list[int]
) -> list[tuple[str, list[str], list[float]]]:
    series: dict[str, tuple[list[str], list[float]]] = {}
    for row in sorted(result.rows, key=lambda r: (r[stamp] is None, r[stamp])):
        for i in numbers:
            name = " ".join(filter(None, [_label(row, labels), result.fields[i]]))
            xs, ys = series.setdefault(name, ([], []))
            xs.append(as_text(row[stamp]) or "")
            ys.append(_number(row[i]))
    return [(name, xs, ys) for name, (xs, ys) in series.items()]


def _label(row: Any, labels: list[int]) -> str:
    parts = [as_text(row[i]) for i in labels]
    return ", ".join(p if p is not None else "(none)" for p in parts) or "value"


def _number(value: Any) -> float:
    if value is None:
        return 0.0
    if isinstance(value, Decimal):
        return float(value)
    return float(value)
