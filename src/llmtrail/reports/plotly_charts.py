"""Charts for the HTML report, drawn by plotly.js in the reader's browser.

Each `Chart` becomes a ``<div>`` and a short script calling ``Plotly.newPlot``; the
plotly.js library itself is inlined once per page from the installed ``plotly`` package, so
the report opens offline and fetches nothing.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from llmtrail.reports.report import Chart, ChartKind, Report, chart_series
from llmtrail.reports.values import chart_number

CHART_HEIGHT_PX = 420


def plotly_js() -> str:
    """The plotly.js bundle shipped with the installed plotly package."""
    return get_plotlyjs()


def chart_html(report: Report, chart: Chart) -> str:
    """``chart`` as an HTML fragment (a div with id ``chart-<key>`` and its script); it
    expects plotly.js to be loaded on the page already."""
    figure = chart_figure(report, chart)
    return figure.to_html(
        full_html=False,
        include_plotlyjs=False,
        include_mathjax=False,
        div_id=f"chart-{chart.key}",
        default_height=f"{CHART_HEIGHT_PX}px",
        config={"displaylogo": False, "responsive": True},
    )


def chart_figure(report: Report, chart: Chart) -> go.Figure:
    """The plotly figure of ``chart``."""
    table = report.table(chart.table)
    figure = go.Figure()
    for name, xs, ys in chart_series(table, chart):
        labels = [_label(x) for x in xs]
        values = [chart_number(y) for y in ys]
        if chart.kind is ChartKind.LINE:
            figure.add_trace(go.Scatter(x=labels, y=values, name=name, mode="lines+markers"))
        elif chart.kind is ChartKind.BARH:
            figure.add_trace(go.Bar(x=values, y=labels, name=name, orientation="h"))
        else:
            figure.add_trace(go.Bar(x=labels, y=values, name=name))
    layout: dict[str, Any] = {
        "title": {"text": chart.title},
        "template": "plotly_white",
        "margin": {"l": 60, "r": 20, "t": 50, "b": 50},
        "legend": {"orientation": "h", "y": -0.15},
        "barmode": "stack" if chart.kind is ChartKind.STACKED else "group",
    }
    if chart.kind is ChartKind.BARH:
        layout["xaxis"] = {"title": {"text": chart.y_label}}
        layout["yaxis"] = {"autorange": "reversed", "automargin": True, "type": "category"}
    else:
        layout["yaxis"] = {"title": {"text": chart.y_label}}
        if not isinstance(next(iter(table.rows), {}).get(chart.x), date):
            layout["xaxis"] = {"type": "category"}
    figure.update_layout(**layout)
    return figure


def _label(value: Any) -> str:
    if value is None:
        return "(none)"
    return value.isoformat() if isinstance(value, date) else str(value)
