"""`MetricsService`: ``GetMetricData`` over the rollups of a `MetricStore`.

A query names a metric, a statistic, a period and the exact dimension set of a kept series
(`dimensions`). The range is widened to whole periods (start rounded down, end up, as
CloudWatch aligns datapoints) and read at the coarsest rollup width that divides the period:
hourly rollups for hourly periods, minutes for 5-minute ones, 10-second rollups only for 10 and
30 s periods within the last `HIGH_RESOLUTION` (CloudWatch's high-resolution metrics).
Periods with no data are left out, as in CloudWatch. Expressions (`MetricDataQuery.expression`)
are metric math over the other queries' results (`llmtrail.metrics.math`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from llmtrail.errors import ValidationError
from llmtrail.metrics import sketch
from llmtrail.metrics.dimensions import dimension_set, names_of, resolve
from llmtrail.metrics.model import (
    METRIC_NAMES,
    NAMESPACE,
    MetricDataQuery,
    MetricDataResult,
    MetricStat,
)
from llmtrail.record import DEFAULT_WORKSPACE
from llmtrail.store.interfaces import MetricStore, SeriesRead

HIGH_RESOLUTION = timedelta(hours=3)
MAX_DATAPOINTS = 100_800  # GetMetricData's limit per call
MAX_QUERIES = 500
STATS = ("Sum", "Average", "Minimum", "Maximum", "SampleCount")
_PERCENTILE = re.compile(r"p(\d{1,2}(?:\.\d{1,3})?|100)")

# metric → (the measure summed for Sum, the count for SampleCount/Average, min, max, histogram)
_COUNTED: dict[str, str] = {
    "Invocations": "invocations",
    "InputTokenCount": "input_tokens",
    "OutputTokenCount": "output_tokens",
    "CacheReadInputTokenCount": "cache_read_tokens",
    "CacheWriteInputTokenCount": "cache_write_tokens",
    "InvocationClientErrors": "client_errors",
    "InvocationServerErrors": "server_errors",
    "InvocationThrottles": "throttles",
    "CostUsd": "cost_usd",
}
_TIMED: dict[str, str] = {"InvocationLatency": "latency", "TimeToFirstToken": "ttft"}

Search = Callable[[str, str, int], list[MetricDataResult]]


def check_stat(metric: str, stat: str, field: str = "Stat") -> None:
    if metric not in METRIC_NAMES:
        raise ValidationError(
            "MetricName", f"unknown metric {metric!r}; known: " + ", ".join(METRIC_NAMES)
        )
    if stat in STATS:
        if stat in ("Minimum", "Maximum") and metric not in _TIMED:
            raise ValidationError(
                field,
                f"{stat} is kept for InvocationLatency and "
                f"TimeToFirstToken; {metric} has Sum, Average, SampleCount",
            )
        return
    match = _PERCENTILE.fullmatch(stat)
    if match is None or float(match.group(1)) > 100:
        raise ValidationError(
            field,
            f"{stat!r} is not Sum, Average, Minimum, Maximum, "
            "SampleCount or a percentile pNN (p0 to p100)",
        )
    if metric not in _TIMED:
        raise ValidationError(
            field, f"percentiles are kept for InvocationLatency and TimeToFirstToken, not {metric}"
        )


def check_period(period: int, start: datetime, now: datetime, field: str = "Period") -> int:
    """The rollup width a period reads, or a `ValidationError`."""
    if period in (10, 30):
        if start < now - HIGH_RESOLUTION:
            raise ValidationError(
                field,
                f"a period of {period} s is kept for the last 3 hours "
                "only; use a multiple of 60 for older data",
            )
        return 10
    if period <= 0 or period % 60:
        raise ValidationError(field, f"must be 10, 30 or a multiple of 60 seconds, got {period}")
    return next(width for width in (3600, 300, 60) if period % width == 0)


class MetricsService:
    def __init__(
        self, store: MetricStore, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self.store = store
        self.clock = clock

    def get_metric_data(
        self,
        queries: Sequence[MetricDataQuery],
        start: datetime,
        end: datetime,
        *,
        workspace: str = DEFAULT_WORKSPACE,
    ) -> list[MetricDataResult]:
        """The series of ``queries`` over ``[start, end)``, timestamps ascending; only those
        with ``return_data``."""
        if not queries:
            raise ValidationError("MetricDataQueries", "must name at least one query")
        if len(queries) > MAX_QUERIES:
            raise ValidationError("MetricDataQueries", f"at most {MAX_QUERIES} queries")
        if end <= start:
            raise ValidationError("EndTime", "must be after StartTime")
        ids = [q.id for q in queries]
        if len(set(ids)) != len(ids):
            raise ValidationError("MetricDataQueries", "each Id must be unique")
        # by id: a series, or every series of an expression that gave several (a SEARCH),
        # so that a later expression (``SUM(s)``) sees them all
        results: dict[str, MetricDataResult | list[MetricDataResult]] = {}
        for i, query in enumerate(queries):
            where = f"MetricDataQueries[{i}]"
            if (query.stat is None) == (query.expression is None):
                raise ValidationError(where, "must have exactly one of MetricStat and Expression")
            if query.period is not None:  # an expression's own period: FILL's grid, SEARCH's
                check_period(query.period, start, self.clock(), f"{where}.Period")
            if query.stat is not None:
                found = self.metric_stat(query.stat, start, end, workspace, where)
                found.id = query.id
                found.label = query.label or _label(query.stat)
                results[query.id] = found
        out: list[MetricDataResult] = []
        for i, query in enumerate(queries):
            if query.expression is not None:
                from llmtrail.metrics.math import evaluate_expression

                period = query.period or _common_period(queries) or 300

                def search(expression: str, stat: str, p: int) -> list[MetricDataResult]:
                    return self.search(expression, stat, p, start, end, workspace)

                try:
                    series = evaluate_expression(
                        query.expression, results, period=period, search=search
                    )
                except ValidationError as exc:
                    raise ValidationError(
                        f"MetricDataQueries[{i}].Expression", exc.message
                    ) from exc
                for n, result in enumerate(series):
                    result.id = query.id if len(series) == 1 else f"{query.id}_{n}"
                    if query.label:
                        result.label = (
                            query.label if len(series) == 1 else (f"{query.label} {result.label}")
                        )
                if len(series) > 1:
                    results[query.id] = series
                else:
                    results[query.id] = (
                        series[0] if series else MetricDataResult(query.id, query.label or query.id)
                    )
                if query.return_data:
                    out.extend(series)
            elif query.return_data:
                kept = results[query.id]
                out.extend(kept if isinstance(kept, list) else [kept])
        return out

    def metric_stat(
        self,
        stat: MetricStat,
        start: datetime,
        end: datetime,
        workspace: str = DEFAULT_WORKSPACE,
        where: str = "MetricStat",
    ) -> MetricDataResult:
        read = self._read(stat, [n for n, _ in stat.dimensions], start, end, workspace, where)
        result = MetricDataResult("", _label(stat))
        if stat.metric in _TIMED and _PERCENTILE.fullmatch(stat.stat):
            q = float(stat.stat[1:])
            for period, index in self.store.percentile(read, _TIMED[stat.metric], q):
                result.timestamps.append(period)
                result.values.append(round(sketch.bucket_value(index), 3))
            return result
        for period, measures in self.store.measures(read):
            value = _statistic(stat.metric, stat.stat, measures)
            if value is not None:
                result.timestamps.append(period)
                result.values.append(value)
        return result

    def _read(
        self,
        stat: MetricStat,
        names: Sequence[str],
        start: datetime,
        end: datetime,
        workspace: str,
        where: str,
    ) -> SeriesRead:
        """The rollup read of ``stat`` over the dimension set ``names`` (``stat``'s
        dimensions fix some or all of their values), or a `ValidationError` naming the field
        under ``where``."""
        if stat.namespace != NAMESPACE:
            raise ValidationError(
                f"{where}.Metric.Namespace", f"only {NAMESPACE} is kept, got {stat.namespace!r}"
            )
        check_stat(stat.metric, stat.stat, f"{where}.Stat")
        width = check_period(stat.period, start, self.clock(), f"{where}.Period")
        dimset = dimension_set(names, f"{where}.Metric.Dimensions")
        values = tuple((resolve(name).column, value) for name, value in sorted(stat.dimensions))
        try:
            lo, hi = _align(start, stat.period), _align(end, stat.period, up=True)
        except (OverflowError, OSError, ValueError):
            raise ValidationError(
                f"{where}.Period",
                f"a period of {stat.period} s reaches past the years a timestamp holds",
            ) from None
        if (hi - lo).total_seconds() / stat.period > MAX_DATAPOINTS:
            raise ValidationError(
                f"{where}.Period",
                f"the range holds more than {MAX_DATAPOINTS} periods of {stat.period} s",
            )
        needed = _needed(stat.metric)
        return SeriesRead(workspace, dimset, values, width, stat.period, lo, hi, needed)

    def list_metrics(
        self,
        *,
        workspace: str = DEFAULT_WORKSPACE,
        metric: str | None = None,
        dimension_names: tuple[str, ...] | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[tuple[str, tuple[tuple[str, str], ...]]]:
        """``(MetricName, Dimensions)`` of every kept series with data in the range (of one
        dimension set when ``dimension_names`` is given)."""
        from llmtrail.metrics.dimensions import DIMENSION_SETS

        if metric is not None and metric not in METRIC_NAMES:
            raise ValidationError("MetricName", f"unknown metric {metric!r}")
        sets = [dimension_set(dimension_names)] if dimension_names is not None else DIMENSION_SETS
        out = []
        for dimset in sets:
            names = names_of(dimset)
            for values in self.store.series(workspace, dimset, start, end):
                dims = tuple(zip(names, values, strict=True))
                for name in [metric] if metric else METRIC_NAMES:
                    out.append((name, dims))
        return out

    def search(
        self,
        expression: str,
        stat: str,
        period: int,
        start: datetime,
        end: datetime,
        workspace: str = DEFAULT_WORKSPACE,
    ) -> list[MetricDataResult]:
        """CloudWatch's ``SEARCH('{AWS/Bedrock,Dim1,Dim2} MetricName="X" Dim1="v"', …)``:
        one series per kept combination of the schema's dimensions."""
        match = re.fullmatch(r"\s*\{([^}]*)\}\s*(.*)", expression)
        if match is None:
            raise ValidationError(
                "Expression",
                "SEARCH needs a schema like '{AWS/Bedrock,ModelId} MetricName=\"Invocations\"'",
            )
        schema = [p.strip().strip('"') for p in match.group(1).split(",")]
        if not schema or schema[0] != NAMESPACE:
            raise ValidationError("Expression", f"SEARCH's namespace must be {NAMESPACE}")
        terms = dict(re.findall(r'(\w+)\s*=\s*"([^"]*)"', match.group(2)))
        metric = terms.pop("MetricName", None)
        if metric is None:
            raise ValidationError("Expression", 'SEARCH needs MetricName="…"')
        dims = tuple(resolve(n).name for n in schema[1:])
        wanted = tuple((resolve(k).name, v) for k, v in terms.items())
        check_stat(metric, stat)
        if metric in _TIMED and _PERCENTILE.fullmatch(stat):
            return self._search_each(
                metric, dims, dict(wanted), stat, period, start, end, workspace
            )
        asked = MetricStat(metric, stat, period, wanted)
        read = self._read(asked, dims, start, end, workspace, "Expression")
        out = []
        for series in self.store.totals(read):  # every series in one read
            result = MetricDataResult("", " ".join(series.values) or metric)
            for moment, measures in series.periods:
                value = _statistic(metric, stat, measures)
                if value is not None:
                    result.timestamps.append(moment)
                    result.values.append(value)
            out.append(result)
        return out

    def _search_each(
        self,
        metric: str,
        dims: tuple[str, ...],
        wanted: dict[str, str],
        stat: str,
        period: int,
        start: datetime,
        end: datetime,
        workspace: str,
    ) -> list[MetricDataResult]:
        """A percentile SEARCH: one read per series (percentiles do not add up)."""
        found = self.list_metrics(
            workspace=workspace, metric=metric, dimension_names=dims, start=start, end=end
        )
        out = []
        for name, dimensions in found:
            if any(dict(dimensions).get(k) != v for k, v in wanted.items()):
                continue
            series = self.metric_stat(
                MetricStat(name, stat, period, dimensions), start, end, workspace
            )
            series.label = " ".join(v for _, v in dimensions) or name
            out.append(series)
        return out


def _needed(metric: str) -> tuple[str, ...]:
    """The rollup measures `_statistic` reads for ``metric``."""
    if metric in _TIMED:
        return tuple(f"{_TIMED[metric]}_{part}" for part in ("count", "sum", "min", "max"))
    return ("invocations", _COUNTED[metric])


def _statistic(metric: str, stat: str, m: Mapping[str, Any]) -> float | None:
    if metric in _TIMED:
        prefix = _TIMED[metric]
        count = int(m[f"{prefix}_count"] or 0)
        if count == 0:
            return None
        return {
            "Sum": float(m[f"{prefix}_sum"]),
            "Average": float(m[f"{prefix}_sum"]) / count,
            "Minimum": float(m[f"{prefix}_min"]),
            "Maximum": float(m[f"{prefix}_max"]),
            "SampleCount": float(count),
        }[stat]
    total = m[_COUNTED[metric]]
    count = int(m["invocations"] or 0)
    if count == 0:
        return None
    value = float(total)
    if stat == "Sum":
        return value
    if stat == "SampleCount":
        return float(count)
    return value / count  # Average per invocation


def _label(stat: MetricStat) -> str:
    dims = " ".join(v for _, v in stat.dimensions)
    return f"{stat.metric} {dims}".strip() if dims else stat.metric


def _align(moment: datetime, period: int, up: bool = False) -> datetime:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    seconds = moment.timestamp()
    n = math.ceil(seconds / period) if up else math.floor(seconds / period)
    return datetime.fromtimestamp(n * period, UTC)


def _common_period(queries: Sequence[MetricDataQuery]) -> int | None:
    periods = {q.stat.period for q in queries if q.stat is not None}
    return min(periods) if periods else None


__all__ = ["MetricsService", "check_period", "check_stat"]
