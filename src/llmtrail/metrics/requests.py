"""``GetMetricData`` requests as JSON (``MetricDataQueries``) into `MetricDataQuery` values;
every problem names its place in the body (``MetricDataQueries[2].MetricStat.Period``)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from llmtrail.errors import ValidationError
from llmtrail.metrics.dimensions import resolve
from llmtrail.metrics.model import NAMESPACE, MetricDataQuery, MetricStat


def parse_stat(raw: Mapping[str, Any], where: str) -> MetricStat:
    """A ``MetricStat`` of a ``GetMetricData`` body."""
    if not isinstance(raw, Mapping):
        raise ValidationError(where, "must be an object")
    metric = raw.get("Metric")
    if not isinstance(metric, Mapping):
        raise ValidationError(f"{where}.Metric", "is required")
    name = metric.get("MetricName")
    if not isinstance(name, str):
        raise ValidationError(f"{where}.Metric.MetricName", "is required")
    dims_raw = metric.get("Dimensions") or []
    if not isinstance(dims_raw, list) or len(dims_raw) > 30:
        raise ValidationError(f"{where}.Metric.Dimensions", "must be a list of at most 30")
    dims = []
    for j, d in enumerate(dims_raw):
        if not (
            isinstance(d, Mapping)
            and isinstance(d.get("Name"), str)
            and isinstance(d.get("Value"), str)
        ):
            raise ValidationError(f"{where}.Metric.Dimensions[{j}]", "needs Name and Value strings")
        dims.append((resolve(d["Name"], f"{where}.Metric.Dimensions[{j}].Name").name, d["Value"]))
    period = raw.get("Period")
    if not isinstance(period, int) or isinstance(period, bool):
        raise ValidationError(f"{where}.Period", "is required: an integer number of seconds")
    stat = raw.get("Stat")
    if not isinstance(stat, str):
        raise ValidationError(f"{where}.Stat", "is required")
    namespace = metric.get("Namespace", NAMESPACE)
    return MetricStat(name, stat, period, tuple(dims), str(namespace))


def parse_queries(raw: Any) -> list[MetricDataQuery]:
    """The ``MetricDataQueries`` of a ``GetMetricData`` body."""
    if not isinstance(raw, list):
        raise ValidationError("MetricDataQueries", "must be a list")
    out = []
    for i, q in enumerate(raw):
        where = f"MetricDataQueries[{i}]"
        if not isinstance(q, Mapping):
            raise ValidationError(where, "must be an object")
        qid = q.get("Id")
        if not isinstance(qid, str) or not re.fullmatch(r"[a-z][A-Za-z0-9_]{0,254}", qid):
            raise ValidationError(
                f"{where}.Id",
                "must start with a lower-case letter and hold "
                "only letters, digits and _ (at most 255)",
            )
        expression = q.get("Expression")
        if expression is not None and (not isinstance(expression, str) or len(expression) > 2048):
            raise ValidationError(f"{where}.Expression", "must be a string of at most 2048")
        stat = parse_stat(q["MetricStat"], f"{where}.MetricStat") if "MetricStat" in q else None
        period = q.get("Period")
        out.append(
            MetricDataQuery(
                qid,
                stat,
                expression,
                q.get("Label") if isinstance(q.get("Label"), str) else None,
                bool(q.get("ReturnData", True)),
                period if isinstance(period, int) else None,
            )
        )
    return out
