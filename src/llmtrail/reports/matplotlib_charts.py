"""Charts drawn with matplotlib, for the PDF and as PNG images.

plotly's own static export needs a browser it downloads at run time, which fails offline, so
pictures that leave the browser are drawn here from the same `Chart` descriptions. Figures
are made with matplotlib's object API (``Figure``, no pyplot): no global state, safe in a
server thread, and the Agg canvas needs no display.
"""

from __future__ import annotations

import io
from datetime import date
from typing import Any

from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from llmtrail.reports.report import Chart, ChartKind, Report, chart_series
from llmtrail.reports.values import chart_number

CHART_SIZE_IN = (11.69, 8.27)  # A4 landscape
MAX_LABEL = 40
MAX_TICKS = 16


def draw_chart(figure: Figure, report: Report, chart: Chart) -> None:
    """Draw ``chart`` on ``figure`` (one axes filling it)."""
    table = report.table(chart.table)
    ax = figure.add_subplot()
    ax.set_title(plain(chart.title), fontsize=14, loc="left")
    traces = chart_series(table, chart)
    if not table.rows:
        ax.text(0.5, 0.5, "No data in this period", ha="center", va="center", fontsize=14)
        ax.set_axis_off()
        return
    xs = traces[0][1]
    values = [[chart_number(y) or 0 for y in ys] for _, _, ys in traces]
    names = [name for name, _, _ in traces]
    if chart.kind is ChartKind.LINE and all(isinstance(x, date) for x in xs):
        for name, ys in zip(names, values, strict=True):
            ax.plot(xs, ys, marker="o", markersize=3, label=plain(name))
        locator = AutoDateLocator()
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
        ax.set_ylabel(plain(chart.y_label))
    elif chart.kind is ChartKind.BARH:
        _bars(ax, [_label(x) for x in xs], names, values, horizontal=True, stacked=False)
        ax.set_xlabel(plain(chart.y_label))
    else:
        labels = [_label(x) for x in xs]
        _bars(ax, labels, names, values, horizontal=False,
              stacked=chart.kind is ChartKind.STACKED)  # fmt: skip
        ax.set_ylabel(plain(chart.y_label))
    value_axis = ax.xaxis if chart.kind is ChartKind.BARH else ax.yaxis
    value_axis.set_major_formatter(FuncFormatter(_tick))
    ax.grid(axis="x" if chart.kind is ChartKind.BARH else "y", alpha=0.3)
    if len(names) > 1:
        ax.legend(loc="best", fontsize=9)
    left = 0.08
    if chart.kind is ChartKind.BARH:
        longest = max((len(_label(x)) for x in xs), default=0)
        left = min(0.4, 0.03 + longest * 0.0055)  # 8 pt labels
    figure.subplots_adjust(left=left, right=0.97, top=0.92, bottom=0.12)


def _bars(
    ax: Any,
    labels: list[str],
    names: list[str],
    values: list[list[float | int]],
    *,
    horizontal: bool,
    stacked: bool,
) -> None:
    positions = list(range(len(labels)))
    width = 0.8 if stacked else 0.8 / len(names)
    base = [0.0] * len(labels)
    for n, (name, ys) in enumerate(zip(names, values, strict=True)):
        where = positions if stacked else [p - 0.4 + width * (n + 0.5) for p in positions]
        if horizontal:
            ax.barh(where, ys, height=width, left=base if stacked else None, label=plain(name))
        else:
            ax.bar(where, ys, width=width, bottom=base if stacked else None, label=plain(name))
        if stacked:
            base = [b + y for b, y in zip(base, ys, strict=True)]
    step = max(1, -(-len(labels) // MAX_TICKS)) if not horizontal else 1
    ticks = positions[::step]
    shown = labels[::step]
    if horizontal:
        ax.set_yticks(ticks, shown, fontsize=8)
        ax.invert_yaxis()  # the first (largest) row on top
    else:
        ax.set_xticks(ticks, shown, fontsize=8, rotation=30 if len(labels) > 6 else 0,
                      ha="right" if len(labels) > 6 else "center")  # fmt: skip


def plain(text: str) -> str:
    """``text`` drawn as it is: matplotlib reads ``$…$`` as mathematics unless escaped."""
    return text.replace("$", r"\$")


def _tick(value: float, _position: int) -> str:
    return f"{value:,.0f}" if abs(value) >= 10 or value == int(value) else f"{value:,.2f}"


def _label(value: Any) -> str:
    if value is None:
        return "(none)"
    text = value.isoformat() if isinstance(value, date) else str(value)
    return plain(text if len(text) <= MAX_LABEL else text[: MAX_LABEL - 1] + "…")


def chart_figure(report: Report, chart: Chart) -> Figure:
    """A new matplotlib figure with ``chart`` drawn on it."""
    figure = Figure(figsize=CHART_SIZE_IN)
    draw_chart(figure, report, chart)
    return figure


def chart_png(report: Report, key: str, *, dpi: int = 100) -> bytes:
    """Chart ``key`` of ``report`` as a PNG image. Raises `KeyError` for an unknown chart."""
    for chart in report.charts:
        if chart.key == key:
            buffer = io.BytesIO()
            chart_figure(report, chart).savefig(buffer, format="png", dpi=dpi)
            return buffer.getvalue()
    raise KeyError(f"{key!r}: this report has {', '.join(c.key for c in report.charts)}")
