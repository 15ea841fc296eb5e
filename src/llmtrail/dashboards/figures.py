"""Plotly figures as plain JSON dicts (``{"data": [...], "layout": {...}}``), built by hand so
that they serialise with orjson and the web UI hands them to plotly.js as they are."""

from __future__ import annotations

from typing import Any

_LAYOUT: dict[str, Any] = {
    "margin": {"l": 48, "r": 16, "t": 8, "b": 36},
    "showlegend": True,
    "legend": {"orientation": "h"},
}


def _layout(**extra: Any) -> dict[str, Any]:
    return {**_LAYOUT, **extra}


def line_figure(
    series: list[tuple[str, list[str], list[float]]], *, stacked: bool = False
) -> dict[str, Any]:
    """One line per (name, x timestamps, y values)."""
    data = []
    for name, xs, ys in series:
        trace: dict[str, Any] = {"type": "scatter", "mode": "lines", "name": name, "x": xs, "y": ys}
        if stacked:
            trace["stackgroup"] = "one"
        data.append(trace)
    return {"data": data, "layout": _layout(xaxis={"type": "date"})}


def pie_figure(labels: list[str], values: list[float]) -> dict[str, Any]:
    return {
        "data": [{"type": "pie", "labels": labels, "values": values, "hole": 0.3}],
        "layout": _layout(),
    }


def bar_figure(traces: list[tuple[str, list[str], list[float]]]) -> dict[str, Any]:
    """One bar trace per (name, categories, values)."""
    data = [{"type": "bar", "name": name, "x": xs, "y": ys} for name, xs, ys in traces]
    return {"data": data, "layout": _layout(barmode="group")}
