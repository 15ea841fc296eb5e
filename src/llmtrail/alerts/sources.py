"""Where an alarm's datapoints come from: the metric rollups, a Logs Insights query, or a
budget's percentage used. Every read names the alarm's workspace: an alarm sees its own
workspace's metrics, records and budgets only (a budget is asked for by its key,
`budget_key(workspace, name)`, which is its bare name in the default workspace).

Metric alarms read the rollups (`MetricsService.get_metric_data`) at their finest period —
a minute, or 10 / 30 s for high-resolution alarms — and add the minutes up into the alarm's
periods, which is exact for ``Sum``, ``SampleCount``, ``Minimum`` and ``Maximum``, and for
``Average`` (asked as ``Sum`` over ``SampleCount``). A percentile cannot be added up, so it
is asked at the alarm's own period. Query alarms run their query once per period, over
exactly that period. A budget alarm has one datapoint: this month's percentage used, now.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from llmtrail.alerts.alarm import STATISTICS, Alarm
from llmtrail.alerts.evaluation import slot
from llmtrail.analytics.budgets import budget_key
from llmtrail.errors import LlmtrailError
from llmtrail.metrics.model import MetricDataQuery, MetricStat

Periods = Sequence[tuple[datetime, datetime]]


class NoMetrics(LlmtrailError):
    """This server has no metrics service to read a metric alarm's value from."""


class AlarmValues:
    """Reads an alarm's values, one per period (None where there is no data).

    ``metrics`` gives the running `MetricsService` (or None before it exists); ``query``
    runs a Logs Insights query over ``[start, end)`` of a workspace and returns its first
    value; ``budget_percent`` gives the percentage used now of the budget of a key
    (`budget_key`; None for no budget)."""

    def __init__(
        self,
        metrics: Callable[[], Any],
        query: Callable[[str, datetime, datetime, str], Any],
        budget_percent: Callable[[str, datetime], float | None],
    ) -> None:
        self.metrics = metrics
        self.query = query
        self.budget_percent = budget_percent

    def values(self, alarm: Alarm, periods: Periods, now: datetime) -> list[float | None]:
        if alarm.source == "query":
            return [
                _number(self.query(str(alarm.query), s, e, alarm.workspace)) for s, e in periods
            ]
        if alarm.source == "budget":
            key = budget_key(alarm.workspace, str(alarm.budget))
            return [None] * (len(periods) - 1) + [self.budget_percent(key, now)]
        return self._metric(alarm, periods)

    def _metric(self, alarm: Alarm, periods: Periods) -> list[float | None]:
        service = self.metrics()
        if service is None:
            raise NoMetrics("metric alarms need the metrics rollups, which this server lacks")
        start, end = periods[0][0], periods[-1][1]
        step = alarm.period if alarm.period < 60 or alarm.statistic not in STATISTICS else 60
        stats = ["Sum", "SampleCount"] if alarm.statistic == "Average" else [str(alarm.statistic)]
        queries = [
            MetricDataQuery(
                id=f"m{i}",
                stat=MetricStat(str(alarm.metric), stat, step, alarm.dimensions, alarm.namespace),
            )
            for i, stat in enumerate(stats)
        ]
        results = service.get_metric_data(queries, start, end, workspace=alarm.workspace)
        series = [list(zip(r.timestamps, r.values, strict=True)) for r in results]
        if alarm.statistic != "Average":
            return slot(alarm, periods, series[0])
        summing = Alarm(**{**_fields(alarm), "statistic": "Sum"})
        sums, counts = slot(summing, periods, series[0]), slot(summing, periods, series[1])
        return [None if s is None or not c else s / c for s, c in zip(sums, counts, strict=True)]


def _fields(alarm: Alarm) -> dict[str, Any]:
    return {name: getattr(alarm, name) for name in alarm.__dataclass_fields__}


def _number(value: Any) -> float | None:
    """A query's value as a number; None for no value (an empty range's sum)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float | Decimal):
        return float(value)
    try:
        return float(str(value))
    except ValueError:
        return None
