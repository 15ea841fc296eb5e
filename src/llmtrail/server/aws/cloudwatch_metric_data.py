"""CloudWatch's ``GetMetricData`` over llmtrail's metric rollups.

The queries go, as they came, through the same parser and `MetricsService.get_metric_data`
that ``POST /api/metrics`` uses, so both answer alike on the same data; this module adds
what only the AWS shape has:

- **Pages.** CloudWatch pages by data point, not by series: ``MaxDatapoints`` points per
  answer, newest first (``ScanBy`` ``TimestampDescending``, the default) or oldest first.
  The points of all series are put in one order — by time, then by the series' place in the
  answer — and a ``NextToken`` carries the last point given (its time and series), not an
  offset, so a late record never shifts a page. Each page answers every series; a series
  with points still to come says ``PartialData``. The token is bound to the request's
  parameters (``InvalidNextToken`` when they change).
- **Units.** llmtrail converts no unit, as CloudWatch does not: a ``MetricStat`` asking for a
  unit other than its metric's answers no points (with a message saying the metric's unit).
- **What is refused** (``ValidationError``, as CloudWatch's GetMetricData does): Metrics
  Insights queries (``SELECT …``), another account's metrics, and whatever the metrics
  library refuses — unknown metrics, statistics it does not keep, periods, dimension sets
  it does not keep, metric math it does not support — with the field in CloudWatch's
  spelling (``MetricDataQueries.member.2.MetricStat.Stat``).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from llmtrail.errors import ValidationError
from llmtrail.metrics.model import METRIC_NAMES, MetricDataResult
from llmtrail.metrics.requests import parse_queries
from llmtrail.metrics.service import MAX_DATAPOINTS
from llmtrail.security.principal import Permission
from llmtrail.server.aws.cloudwatch_metric_params import (
    fingerprint,
    member_path,
    refusal,
    unit_of,
)
from llmtrail.server.aws.operations import AwsCall, AwsError, operation
from llmtrail.server.aws.tokens import page_token, read_page_token

__all__ = ["get_metric_data", "page_of"]

_INSIGHTS = re.compile(r"\s*SELECT\b", re.IGNORECASE)
_ERROR = "ValidationError"
_STAT_MEMBER = re.compile(r"MetricDataQueries\[(\d+)\]\.((?:Stat|Period|Unit|Metric)\b.*)")

Cursor = tuple[float, int]  # (the point's sort time, the series' place in the answer)


@operation("monitoring", "GetMetricData", Permission.READ)
async def get_metric_data(call: AwsCall) -> dict[str, Any]:
    params = call.params
    raw = params["MetricDataQueries"]
    mismatched = _check_queries(call, raw)
    limit = params.get("MaxDatapoints", MAX_DATAPOINTS)
    if limit < 1:
        raise refusal(_ERROR, "MaxDatapoints", "must be at least 1")
    descending = params.get("ScanBy", "TimestampDescending") == "TimestampDescending"
    digest = fingerprint(params)
    after: Cursor | None = None
    if "NextToken" in params:
        after = _cursor(read_page_token(call, params["NextToken"], "InvalidNextToken"), digest)
    try:
        queries = parse_queries(raw)
        results = await asyncio.to_thread(
            call.runtime.metrics.get_metric_data,
            queries,
            params["StartTime"],
            params["EndTime"],
            workspace=call.workspace,
        )
    except ValidationError as exc:
        raise refusal(_ERROR, _parameter(exc.field, raw), exc.message) from None
    for result in results:
        if result.id in mismatched:
            result.timestamps, result.values = [], []
            result.messages = [{"Code": "UnitMismatch", "Value": mismatched[result.id]}]
    page, last = page_of(results, descending, limit, after)
    answer: dict[str, Any] = {"MetricDataResults": page, "Messages": []}
    if last is not None:
        answer["NextToken"] = page_token(call, {"h": digest, "t": last[0], "i": last[1]})
    return answer


def _check_queries(call: AwsCall, raw: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """What the metrics library cannot see: Metrics Insights, accounts, metric names by their
    place, units. Returns the ids whose ``Unit`` is not their metric's, with the reason."""
    mismatched: dict[str, str] = {}
    for i, query in enumerate(raw):
        where = f"MetricDataQueries.member.{i + 1}"
        account = query.get("AccountId")
        if account is not None and account != call.account:
            raise refusal(
                _ERROR,
                f"{where}.AccountId",
                f"llmtrail reads this account's metrics only ({call.account}), not {account!r}",
            )
        expression = query.get("Expression")
        if expression is not None and _INSIGHTS.match(expression):
            raise refusal(
                _ERROR,
                f"{where}.Expression",
                "Metrics Insights queries (SELECT …) are not supported by llmtrail; "
                "use metric math or SEARCH('{AWS/Bedrock,ModelId} MetricName=\"…\"', 'Sum')",
            )
        stat = query.get("MetricStat")
        if stat is None:
            continue
        name = stat["Metric"].get("MetricName")
        if name is not None and name not in METRIC_NAMES:
            raise refusal(
                _ERROR,
                f"{where}.MetricStat.Metric.MetricName",
                f"unknown metric {name!r}; llmtrail keeps " + ", ".join(METRIC_NAMES),
            )
        unit = stat.get("Unit")
        if unit is not None and name is not None and unit != unit_of(name):
            mismatched[query["Id"]] = f"{name} is kept in {unit_of(name)}, not {unit}"
    if mismatched and any("Expression" in q for q in raw):
        raise refusal(
            _ERROR,
            "MetricDataQueries",
            "a MetricStat with another unit than its metric's answers no data, and llmtrail "
            "evaluates no metric math over such a query (it converts no unit): "
            + "; ".join(mismatched.values()),
        )
    return mismatched


def _parameter(field: str, raw: Sequence[Mapping[str, Any]]) -> str:
    """The metrics library's field in CloudWatch's spelling; it names a MetricStat's members
    (``MetricDataQueries[0].Stat``) one level up, where an expression's ``Period`` also is."""
    found = _STAT_MEMBER.fullmatch(field)
    if found is not None and "MetricStat" in raw[int(found.group(1))]:
        field = f"MetricDataQueries[{found.group(1)}].MetricStat.{found.group(2)}"
    return member_path(field)


def _cursor(state: Any, digest: str) -> Cursor:
    if (
        not isinstance(state, dict)
        or state.get("h") != digest
        or not isinstance(state.get("t"), int | float)
        or not isinstance(state.get("i"), int)
    ):
        raise AwsError(
            "InvalidNextToken",
            "The NextToken was made for a request with other parameters",
            400,
        )
    return float(state["t"]), int(state["i"])


def page_of(
    results: Sequence[MetricDataResult], descending: bool, limit: int, after: Cursor | None
) -> tuple[list[dict[str, Any]], Cursor | None]:
    """The page of at most ``limit`` points after ``after``, every series in it, and the
    cursor of its last point when points remain."""
    sign = -1.0 if descending else 1.0
    points = sorted(
        (sign * t.timestamp(), i, j)
        for i, result in enumerate(results)
        for j, t in enumerate(result.timestamps)
    )
    if after is not None:
        points = [p for p in points if (p[0], p[1]) > after]
    taken, rest = points[:limit], points[limit:]
    remaining = {i for _, i, _ in rest}
    chosen: dict[int, list[int]] = {}
    for _, i, j in taken:
        chosen.setdefault(i, []).append(j)
    page = []
    for i, result in enumerate(results):
        indexes = chosen.get(i, [])
        page.append(
            {
                "Id": result.id,
                "Label": result.label,
                "Timestamps": [_utc(result.timestamps[j]) for j in indexes],
                "Values": [result.values[j] for j in indexes],
                "StatusCode": "PartialData" if i in remaining else "Complete",
                "Messages": [
                    {"Code": m.get("Code", ""), "Value": m.get("Value", "")}
                    for m in result.messages
                ]
                or None,
            }
        )
    last = (taken[-1][0], taken[-1][1]) if rest and taken else None
    return page, last


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
