"""Metric math's ``SEARCH('{AWS/Bedrock,ApplicationName} MetricName="X"', 'Sum', 300)`` over a
metrics service: the braces name the namespace and the exact dimension set, the terms
(``Name="value"``, bare words matched against the metric name and dimension values, ``OR``
between groups of terms) choose the series, and each found series is read with the stat
and period given."""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from datetime import datetime

from llmtrail.dashboards.view import MetricsReader
from llmtrail.errors import ValidationError
from llmtrail.metrics.model import NAMESPACE, MetricDataQuery, MetricDataResult, MetricStat

MAX_SERIES = 500  # CloudWatch's limit on what one SEARCH returns
_SCHEMA = re.compile(r"^\s*\{([^}]*)\}\s*")

Series = tuple[str, tuple[tuple[str, str], ...]]


def metric_search(
    metrics: MetricsReader, *, workspace: str, start: datetime, end: datetime
) -> Callable[[str, str, int], list[MetricDataResult]]:
    """The ``search`` callback of `llmtrail.metrics.math.evaluate_expression`."""

    def search(expression: str, stat: str, period: int) -> list[MetricDataResult]:
        dimension_names, groups = parse_search(expression)
        found = metrics.list_metrics(
            workspace=workspace, dimension_names=dimension_names, start=start, end=end
        )
        chosen = [s for s in found if any(_matches(s, g) for g in groups)][:MAX_SERIES]
        if not chosen:
            return []
        names = {metric for metric, _ in chosen}
        queries = [
            MetricDataQuery(
                id=f"search{i}",
                stat=MetricStat(metric, stat, period, dims),
                label=_label(metric, dims, len(names) > 1),
            )
            for i, (metric, dims) in enumerate(chosen)
        ]
        return metrics.get_metric_data(queries, start, end, workspace=workspace)

    return search


def parse_search(
    expression: str,
) -> tuple[tuple[str, ...] | None, list[list[tuple[str | None, str]]]]:
    """(dimension names of the braces or None, OR-groups of (name or None, value) terms)."""
    dimension_names: tuple[str, ...] | None = None
    rest = expression
    schema = _SCHEMA.match(expression)
    if schema:
        parts = [p.strip().strip('"') for p in schema.group(1).split(",")]
        if not parts or parts[0] != NAMESPACE:
            raise ValidationError(
                "expression", f"SEARCH reads the {NAMESPACE} namespace only, not {parts[0]!r}"
            )
        dimension_names = tuple(p for p in parts[1:] if p)
        rest = expression[schema.end() :]
    try:
        words = shlex.split(rest.replace("=", " = "))
    except ValueError as exc:
        raise ValidationError("expression", f"SEARCH {expression!r}: {exc}") from None
    groups: list[list[tuple[str | None, str]]] = [[]]
    i = 0
    while i < len(words):
        word = words[i]
        if word == "OR":
            groups.append([])
        elif word != "AND":
            if i + 2 < len(words) and words[i + 1] == "=":
                groups[-1].append((word, words[i + 2]))
                i += 2
            else:
                groups[-1].append((None, word))
        i += 1
    return dimension_names, groups


def _matches(series: Series, terms: list[tuple[str | None, str]]) -> bool:
    metric, dims = series
    values = dict(dims)
    for name, value in terms:
        if name is None:
            haystack = [metric.lower(), *(v.lower() for v in values.values())]
            if not any(value.lower() in h for h in haystack):
                return False
        elif name == "MetricName":
            if metric != value:
                return False
        elif name == "Namespace":
            if value != NAMESPACE:
                return False
        elif values.get(name) != value:
            return False
    return True


def _label(metric: str, dims: tuple[tuple[str, str], ...], with_metric: bool) -> str:
    values = " ".join(v for _, v in dims)
    if not values:
        return metric
    return f"{metric} {values}" if with_metric else values
