"""Metric widgets over the whole range: a range cut in two by the period boundaries still
gives each series one value, and expressions read those values."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from llmtrail.dashboards.view import DashboardContext, view_dashboard
from llmtrail.metrics.model import MetricDataQuery, MetricDataResult

END = datetime(2026, 12, 7, 5, 42, tzinfo=UTC)
MIDNIGHT = datetime(2026, 12, 7, tzinfo=UTC)


class Series:
    """A metrics reader holding fixed series: per application, its daily points (a day's
    range spans two days' periods)."""

    def __init__(self, points: dict[str, list[tuple[datetime, float]]]) -> None:
        self.points = points
        self.asked: list[int] = []

    def get_metric_data(
        self,
        queries: Sequence[MetricDataQuery],
        start: datetime,
        end: datetime,
        *,
        workspace: str = "default",
    ) -> list[MetricDataResult]:
        out = []
        for q in queries:
            assert q.stat is not None
            self.asked.append(q.stat.period)
            (app,) = [v for _, v in q.stat.dimensions]
            kept = self.points.get(app, [])
            out.append(
                MetricDataResult(q.id, q.label or q.id, [t for t, _ in kept], [v for _, v in kept])
            )
        return out

    def list_metrics(self, **_: Any) -> list[tuple[str, tuple[tuple[str, str], ...]]]:
        return []


def _table(props: dict[str, Any], reader: Series) -> dict[str, str]:
    context = DashboardContext(reader, None, END - timedelta(days=1), END, now=END)
    body = {"widgets": [{"type": "metric", "properties": {"view": "table", **props}}]}
    (widget,) = view_dashboard(body, context)
    assert widget.kind == "table", widget.message
    return {label: value for label, value in widget.rows}


ROWS = [
    ["AWS/Bedrock", "InputTokenCount", "ApplicationName", "search", {"id": "m1"}],
    ["...", "chat", {"id": "m2"}],
    [{"expression": "m1 + m2", "label": "search+chat", "id": "e1"}],
]


def test_an_expression_over_the_whole_range_adds_points_of_different_periods() -> None:
    reader = Series(
        {  # chat's last call came before midnight: its only point is yesterday's period
            "search": [(MIDNIGHT, 300.0)],
            "chat": [(MIDNIGHT - timedelta(days=1), 149.0), (MIDNIGHT, 50.0)],
        }
    )
    got = _table({"stat": "Sum", "setPeriodToTimeRange": True, "metrics": ROWS}, reader)
    assert set(reader.asked) == {86400}
    assert got == {
        "InputTokenCount search": "300",
        "InputTokenCount chat": "199",
        "search+chat": "499",
    }


def test_whole_range_minimum_and_average_are_the_series_own() -> None:
    reader = Series(
        {
            "search": [(MIDNIGHT - timedelta(days=1), 4.0), (MIDNIGHT, 8.0)],
            "chat": [(MIDNIGHT, 1.0)],
        }
    )
    lowest = _table({"stat": "Minimum", "setPeriodToTimeRange": True, "metrics": ROWS}, reader)
    assert lowest == {
        "InputTokenCount search": "4",
        "InputTokenCount chat": "1",
        "search+chat": "5",
    }
    mean = _table({"stat": "Average", "setPeriodToTimeRange": True, "metrics": ROWS}, reader)
    assert mean == {"InputTokenCount search": "6", "InputTokenCount chat": "1", "search+chat": "7"}


def test_without_the_whole_range_a_table_shows_each_series_last_point() -> None:
    reader = Series(
        {
            "search": [(MIDNIGHT - timedelta(days=1), 4.0), (MIDNIGHT, 8.0)],
            "chat": [(MIDNIGHT - timedelta(days=1), 1.0), (MIDNIGHT, 2.0)],
        }
    )
    got = _table({"stat": "Sum", "period": 86400, "metrics": ROWS}, reader)
    assert got == {"InputTokenCount search": "8", "InputTokenCount chat": "2", "search+chat": "10"}
