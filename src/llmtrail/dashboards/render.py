"""A dashboard body → `WidgetView` items: the time range, the grid, one renderer per type.

The body's own ``start``/``end`` apply unless the viewer picked a range (the context says
``explicit_range``), as the CloudWatch console opens a dashboard on its saved range. Widgets
without ``x``/``y`` flow left to right, top to bottom, as CloudWatch places them; a missing
``width``/``height`` is 6. A widget that fails is an ``error`` view naming it and why, and
types llmtrail does not draw are a ``placeholder`` naming the type: the other widgets render.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from llmtrail.dashboards.body import (
    DEFAULT_SIZE,
    GRID_COLUMNS,
    MAX_RELATIVE_DAYS,
    relative_seconds,
)
from llmtrail.dashboards.log_widget import log_view
from llmtrail.dashboards.markdown import markdown_view
from llmtrail.dashboards.metric_widget import metric_view
from llmtrail.dashboards.view import DashboardContext, WidgetRange, WidgetView
from llmtrail.errors import LlmtrailError

log = logging.getLogger("llmtrail")


def render_dashboard(body: dict[str, Any], context: DashboardContext) -> list[WidgetView]:
    span = dashboard_range(body, context)
    widgets = body.get("widgets") or []
    places = grid_places(widgets)
    views = []
    for index, (widget, place) in enumerate(zip(widgets, places, strict=True)):
        views.append(_widget_view(index, widget, place, span, context))
    return views


def dashboard_range(body: dict[str, Any], context: DashboardContext) -> WidgetRange:
    """The range the widgets cover: the viewer's, or the body's ``start``/``end``."""
    start, end = context.start, context.end
    if not context.explicit_range and isinstance(body.get("start"), str):
        now = context.now or datetime.now(UTC)
        given = body.get("end")
        end = _instant(given, now) if isinstance(given, str) else now
        start = _instant(body["start"], now)
    override = body.get("periodOverride")
    return WidgetRange(start, end, override if override in ("auto", "inherit") else "auto")


def _instant(value: str, now: datetime) -> datetime:
    seconds = relative_seconds(value)
    if seconds is not None:  # a body stored before the check bounded it must not overflow
        return now - timedelta(seconds=min(seconds, MAX_RELATIVE_DAYS * 86400))
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def grid_places(widgets: list[Any]) -> list[tuple[int, int, int, int]]:
    """(x, y, width, height) of each widget: as given, defaults for what is missing, and the
    next free place in reading order for a widget without ``x``/``y``."""
    places = []
    cursor_x, cursor_y, row_height = 0, 0, 0
    for widget in widgets:
        item = widget if isinstance(widget, dict) else {}
        width = _int(item.get("width"), DEFAULT_SIZE, 1, GRID_COLUMNS)
        height = _int(item.get("height"), DEFAULT_SIZE, 1, 1000)
        if isinstance(item.get("x"), int) and isinstance(item.get("y"), int):
            x = _int(item["x"], 0, 0, GRID_COLUMNS - 1)
            y = max(0, item["y"])
            cursor_y = max(cursor_y, y)
        else:
            if cursor_x + width > GRID_COLUMNS:
                cursor_x, cursor_y, row_height = 0, cursor_y + row_height, 0
            x, y = cursor_x, cursor_y
            cursor_x += width
            row_height = max(row_height, height)
        places.append((x, y, width, height))
    return places


def _int(value: Any, default: int, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        return default
    return min(high, max(low, value))


Renderer = Callable[[dict[str, Any], WidgetView, WidgetRange, DashboardContext], WidgetView]


def _widget_view(
    index: int,
    widget: Any,
    place: tuple[int, int, int, int],
    span: WidgetRange,
    context: DashboardContext,
) -> WidgetView:
    props = widget.get("properties") if isinstance(widget, dict) else None
    props = props if isinstance(props, dict) else {}
    kind = widget.get("type") if isinstance(widget, dict) else None
    given = props.get("title")
    title: str = given if isinstance(given, str) else ""
    view = WidgetView(*place, title=title, kind="placeholder")
    renderer = RENDERERS.get(kind) if isinstance(kind, str) else None
    if renderer is None:
        view.message = f"{kind or 'untyped'} widgets are not supported by llmtrail"
        return view
    try:
        return renderer(props, view, span, context)
    except LlmtrailError as exc:
        reason = str(exc)
    except Exception as exc:  # one broken widget never takes the dashboard down
        log.exception("dashboard widget %d (%s) failed", index, kind)
        reason = f"{type(exc).__name__}: {exc}"
    view.kind = "error"
    view.message = f"widget {index} ({kind}{' ' + repr(title) if title else ''}): {reason}"
    return view


def _alarm_view(
    props: dict[str, Any], view: WidgetView, span: WidgetRange, context: DashboardContext
) -> WidgetView:
    describe = getattr(context.alarms, "describe_alarms", None)
    if describe is None:
        view.kind = "placeholder"
        view.message = "alarms are not available on this server"
        return view
    wanted = {a.rsplit(":", 1)[-1] for a in props.get("alarms", []) if isinstance(a, str)}
    shown = describe(context.workspace)  # the dashboard's workspace's alarms only
    items = [a for a in shown if a.get("AlarmName") in wanted or a.get("AlarmArn") in wanted]
    view.kind = "alarm"
    view.alarms = items
    missing = wanted - {a.get("AlarmName") for a in items}
    if missing:
        view.message = f"no alarm named {', '.join(sorted(missing))}"
    return view


RENDERERS: dict[str, Renderer] = {
    "metric": metric_view,
    "log": log_view,
    "text": markdown_view,
    "alarm": _alarm_view,
}
