"""CloudWatch's ``GetMetricStatistics`` over llmtrail's metric rollups.

One metric, several statistics: each statistic becomes one ``MetricStat`` query of the same
`MetricsService.get_metric_data` call ``POST /api/metrics`` makes, and the series are merged
into one ``Datapoint`` per period (percentiles under ``ExtendedStatistics``). CloudWatch's own
rules come first, with its error codes: ``Statistics`` or ``ExtendedStatistics`` but not both
(``InvalidParameterCombination``), at most 1,440 data points (the same), ``StartTime`` before
``EndTime`` and percentiles from p0 to p100 (``InvalidParameterValue``); whatever the metrics
library refuses is ``InvalidParameterValue`` naming the parameter. A ``Unit`` other than the
metric's answers no data points, as CloudWatch does (it converts no unit).
"""

from __future__ import annotations

import asyncio
import math
import re
from datetime import UTC, datetime
from typing import Any

from llmtrail.errors import ValidationError
from llmtrail.metrics.model import MetricDataResult
from llmtrail.metrics.requests import parse_queries
from llmtrail.security.principal import Permission
from llmtrail.server.aws.cloudwatch_metric_params import member_path, refusal, unit_of
from llmtrail.server.aws.operations import AwsCall, AwsError, operation

__all__ = ["MAX_DATAPOINTS", "get_metric_statistics"]

MAX_DATAPOINTS = 1440  # GetMetricStatistics' limit per call
_PERCENTILE = re.compile(r"p(\d{1,3}(?:\.\d{1,2})?)")
_QUERY_FIELD = re.compile(r"MetricDataQueries\[(\d+)\]\.(?:MetricStat\.)?(?:Metric\.)?(.*)")


@operation("monitoring", "GetMetricStatistics", Permission.READ)
async def get_metric_statistics(call: AwsCall) -> dict[str, Any]:
    params = call.params
    stats = _statistics(params)
    start, end, period = params["StartTime"], params["EndTime"], params["Period"]
    if start >= end:
        raise AwsError(
            "InvalidParameterValue",
            "The parameter StartTime must be less than the parameter EndTime.",
            400,
        )
    requested = _datapoints(start, end, period)
    if requested > MAX_DATAPOINTS:
        raise AwsError(
            "InvalidParameterCombination",
            f"You have requested up to {requested} datapoints, which exceeds the limit of "
            f"{MAX_DATAPOINTS}. You may reduce the datapoints requested by increasing Period, "
            "or decreasing the time range.",
            400,
        )
    metric = params["MetricName"]
    raw = [
        {
            "Id": f"s{i}",
            "MetricStat": {
                "Metric": {
                    "Namespace": params["Namespace"],
                    "MetricName": metric,
                    "Dimensions": params.get("Dimensions", []),
                },
                "Period": period,
                "Stat": _library_stat(stat),
            },
        }
        for i, (_, _, stat) in enumerate(stats)
    ]
    try:
        queries = parse_queries(raw)
        results = await asyncio.to_thread(
            call.runtime.metrics.get_metric_data, queries, start, end, workspace=call.workspace
        )
    except ValidationError as exc:
        raise refusal("InvalidParameterValue", _parameter(exc.field, stats), exc.message) from None
    unit = unit_of(metric)
    asked = params.get("Unit")
    datapoints = [] if asked not in (None, unit) else _merge(results, stats, unit)
    return {"Label": metric, "Datapoints": datapoints}


def _statistics(params: dict[str, Any]) -> list[tuple[str, int, str]]:
    """``(parameter, position, stat)`` of each statistic asked for, duplicates dropped."""
    plain = params.get("Statistics") or []
    extended = params.get("ExtendedStatistics") or []
    if bool(plain) == bool(extended):
        raise AwsError(
            "InvalidParameterCombination",
            "Must specify either Statistics or ExtendedStatistics, but not both.",
            400,
        )
    out: list[tuple[str, int, str]] = []
    seen: set[str] = set()
    for i, stat in enumerate(plain):
        if stat not in seen:
            seen.add(stat)
            out.append(("Statistics", i, stat))
    for i, stat in enumerate(extended):
        found = _PERCENTILE.fullmatch(stat)
        if found is None or float(found.group(1)) > 100:
            raise AwsError(
                "InvalidParameterValue",
                f"The value {stat} for parameter ExtendedStatistics.member.{i + 1} is not "
                "supported: a percentile from p0.0 to p100.",
                400,
            )
        if stat not in seen:
            seen.add(stat)
            out.append(("ExtendedStatistics", i, stat))
    return out


def _library_stat(stat: str) -> str:
    """``p95.50`` as the metrics library spells it (``p95.5``); others as they are."""
    found = _PERCENTILE.fullmatch(stat)
    if found is None:
        return stat
    value = float(found.group(1))
    return f"p{int(value)}" if value == int(value) else f"p{value:g}"


def _datapoints(start: datetime, end: datetime, period: int) -> int:
    """How many periods ``[start, end)`` spans once aligned to whole periods."""
    first = math.floor(start.timestamp() / period)
    last = math.ceil(end.timestamp() / period)
    return max(0, last - first)


def _parameter(field: str, stats: list[tuple[str, int, str]]) -> str:
    """The GetMetricStatistics parameter a field of the queries built from it stands for."""
    found = _QUERY_FIELD.fullmatch(field)
    if found is None:
        return member_path(field)
    rest = found.group(2)
    if rest == "Stat":
        parameter, position, _ = stats[int(found.group(1))]
        return f"{parameter}.member.{position + 1}"
    return member_path(rest)


def _merge(
    results: list[MetricDataResult], stats: list[tuple[str, int, str]], unit: str
) -> list[dict[str, Any]]:
    """One ``Datapoint`` per period with data, oldest first."""
    points: dict[datetime, dict[str, Any]] = {}
    for result, (parameter, _, stat) in zip(results, stats, strict=True):
        for moment, value in zip(result.timestamps, result.values, strict=True):
            point = points.setdefault(moment, {"Timestamp": _utc(moment), "Unit": unit})
            if parameter == "Statistics":
                point[stat] = value
            else:
                point.setdefault("ExtendedStatistics", {})[stat] = value
    return [points[moment] for moment in sorted(points)]


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
