"""Plotly figures as plain data (``{"data": [...], "layout": {...}}``), drawn in the page by
plotly.js. Pure: numbers in, figures out; the templates embed them as JSON."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from llmtrail.analytics.timeline import RequestRow
from llmtrail.metrics.model import MetricDataResult

Figure = dict[str, Any]
_OK, _ERROR, _REQUEST = "#1c4587", "#cc0000", "#c9daf8"


def _layout(title: str | None = None, height: int = 260, **extra: Any) -> dict[str, Any]:
    layout: dict[str, Any] = {
        "height": height,
        "margin": {"l": 50, "r": 16, "t": 36 if title else 12, "b": 36},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "showlegend": True,
        "legend": {"orientation": "h", "y": -0.2},
        "font": {"size": 11},
    }
    if title:
        layout["title"] = {"text": title, "font": {"size": 13}, "x": 0.01}
    layout.update(extra)
    return layout


def series_figure(
    results: Sequence[MetricDataResult], title: str, start: datetime, end: datetime
) -> Figure:
    """One line per metric series over ``[start, end]``."""
    data = [
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": r.label,
            "x": [t.isoformat() for t in r.timestamps],
            "y": list(r.values),
            "marker": {"size": 4},
        }
        for r in results
    ]
    xaxis = {"type": "date", "range": [start.isoformat(), end.isoformat()]}
    return {"data": data, "layout": _layout(title, xaxis=xaxis, yaxis={"rangemode": "tozero"})}


def histogram_figure(times: Sequence[datetime], counts: Sequence[float], period_s: int) -> Figure:
    """Matching records per period, as Logs Insights draws above its results."""
    data = [
        {
            "type": "bar",
            "name": "records",
            "x": [t.isoformat() for t in times],
            "y": list(counts),
            "width": period_s * 1000 * 0.9,  # one period wide, in the date axis' milliseconds
            "marker": {"color": _OK},
        }
    ]
    layout = _layout(None, height=160, showlegend=False, bargap=0.05)
    layout["xaxis"] = {"type": "date"}
    layout["yaxis"] = {"title": {"text": f"per {period_s // 60} min"}, "rangemode": "tozero"}
    return {"data": data, "layout": layout}


def bar_figure(labels: Sequence[str], values: Sequence[float], title: str) -> Figure:
    data = [{"type": "bar", "x": list(labels), "y": list(values), "marker": {"color": _OK}}]
    return {"data": data, "layout": _layout(title, showlegend=False)}


def timeline_figure(rows: Sequence[RequestRow]) -> Figure:
    """The per-request timeline: a light bar per request, a dark one per model call (red when
    it failed); clicking a call opens its record (``customdata`` is the link)."""
    labels = [f"{r.name[:32]} · {r.key[:8]}" if r.name else r.key[:40] for r in rows]
    whole = {
        "type": "bar",
        "orientation": "h",
        "name": "request",
        "y": labels,
        "x": [r.total_s for r in rows],
        "base": [0] * len(rows),
        "marker": {"color": _REQUEST},
        "hovertemplate": "%{x:.3f} s<extra>request</extra>",
        "width": 0.7,
    }
    data: list[dict[str, Any]] = [whole]
    for status, color in (("OK", _OK), ("ERROR", _ERROR)):
        ys, xs, bases, links, text = [], [], [], [], []
        for label, row in zip(labels, rows, strict=True):
            for call in row.invocations:
                if (call.status == "OK") != (status == "OK"):
                    continue
                ys.append(label)
                xs.append(max(call.duration_s, 0.001))
                bases.append(call.offset_s)
                links.append(f"/logs/{call.request_id}")
                text.append(call.model_id)
        if ys:
            data.append(
                {
                    "type": "bar",
                    "orientation": "h",
                    "name": "model call" if status == "OK" else "failed call",
                    "y": ys,
                    "x": xs,
                    "base": bases,
                    "customdata": links,
                    "text": text,
                    "textposition": "none",
                    "marker": {"color": color},
                    "hovertemplate": "%{text}: %{x:.3f} s<extra></extra>",
                    "width": 0.4,
                }
            )
    layout = _layout(
        f"{len(rows)} requests → {sum(len(r.invocations) for r in rows)} model calls",
        height=max(200, 28 * len(rows) + 90),
        barmode="overlay",
    )
    layout["xaxis"] = {"title": {"text": "seconds since the request started"}}
    layout["yaxis"] = {"autorange": "reversed", "automargin": True}
    return {"data": data, "layout": layout}
