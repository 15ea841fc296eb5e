"""Rendering a dashboard body into widget views (work in progress)."""

from __future__ import annotations

from typing import Any

from llmtrail.dashboards.view import DashboardContext, WidgetView


def render_dashboard(body: dict[str, Any], context: DashboardContext) -> list[WidgetView]:
    views = []
    for widget in body.get("widgets", []):
        views.append(
            WidgetView(
                x=int(widget.get("x", 0)),
                y=int(widget.get("y", 0)),
                width=int(widget.get("width", 6)),
                height=int(widget.get("height", 6)),
                title=str(widget.get("properties", {}).get("title", "")),
                kind="placeholder",
                message="rendering is being built",
            )
        )
    return views
