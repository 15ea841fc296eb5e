"""What a rendered dashboard is: one `WidgetView` per widget, in CloudWatch's 24-column grid.

This is the contract between the dashboards package (which reads a CloudWatch dashboard body
and computes each widget's numbers) and the web UI (which draws them): the UI never reads a
body, and the dashboards package never writes HTML other than a text widget's markdown.
A widget that fails becomes an ``error`` view naming the widget and the reason, so one bad
widget never takes the dashboard down.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from llmtrail.metrics.model import MetricDataQuery, MetricDataResult

GRID_COLUMNS = 24


@dataclass
class WidgetView:
    """One widget, ready to draw. ``kind`` says which of the optional fields are set:

    - ``chart``: ``figure``, a plotly figure ``{"data": [...], "layout": {...}}``
    - ``value``: ``values``, (label, formatted number) pairs
    - ``table``: ``columns`` and ``rows``
    - ``text``: ``html``, markdown rendered to safe HTML (raw HTML disabled)
    - ``alarm``: ``alarms``, ``DescribeAlarms`` ``MetricAlarms`` items
    - ``placeholder`` / ``error``: ``message``, what is not supported / what went wrong
    """

    x: int
    y: int
    width: int
    height: int
    title: str
    kind: str  # "chart" | "value" | "table" | "text" | "alarm" | "placeholder" | "error"
    figure: dict[str, Any] | None = None
    values: list[tuple[str, str]] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    rows: list[list[Any]] = field(default_factory=list)
    html: str | None = None
    message: str | None = None
    alarms: list[dict[str, Any]] = field(default_factory=list)


class MetricsReader(Protocol):
    """The part of `MetricsService` dashboards read."""

    def get_metric_data(
        self,
        queries: Sequence[MetricDataQuery],
        start: datetime,
        end: datetime,
        *,
        workspace: str = "default",
    ) -> list[MetricDataResult]:
        """One series per query that returns data, ascending timestamps."""
        ...

    def list_metrics(
        self,
        *,
        workspace: str = "default",
        metric: str | None = None,
        dimension_names: tuple[str, ...] | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[tuple[str, tuple[tuple[str, str], ...]]]:
        """(MetricName, Dimensions) of the series that exist."""
        ...


# (query string, start, end) -> a `llmtrail.analytics.insights.QueryResult`; the server
# passes one that runs on its bounded query pool, as POST /api/query does, over the
# context's workspace and with the viewer's permission to read bodies.
QueryRunnerFn = Callable[[str, datetime, datetime], Any]


@dataclass
class DashboardContext:
    """Everything `view_dashboard` reads: where metrics and log queries come from, the
    alarms (an `AlarmService` or None while there is none), the workspace and the time
    range the viewer picked. A body's own ``start``/``end``/``periodOverride`` are applied
    on top (see `llmtrail.dashboards.render`)."""

    metrics: MetricsReader | None
    run_query: QueryRunnerFn | None
    start: datetime
    end: datetime
    workspace: str = "default"
    alarms: Any = None
    now: datetime | None = None  # the clock, for relative ``start`` like ``-PT3H``; None: now
    explicit_range: bool = False  # the viewer picked start/end: the body's start/end yield


@dataclass
class WidgetRange:
    """What a widget is computed over: the range and the body's ``periodOverride``."""

    start: datetime
    end: datetime
    period_override: str = "auto"


def view_dashboard(body: dict[str, Any], context: DashboardContext) -> list[WidgetView]:
    """The widgets of dashboard ``body`` (a CloudWatch dashboard body), computed over the
    context's time range, in the body's order."""
    from llmtrail.dashboards.render import render_dashboard

    return render_dashboard(body, context)
