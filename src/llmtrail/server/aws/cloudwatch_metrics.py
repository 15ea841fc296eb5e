"""CloudWatch's metric reads for namespace ``AWS/Bedrock``: ``GetMetricData``,
``GetMetricStatistics`` (their own modules, imported here so the router finds all three
under ``cloudwatch_metrics``) and ``ListMetrics``.

Every answer comes from llmtrail's metric rollups through `MetricsService`, the object
``/api/metrics`` reads, and only from the caller's workspace. Metric names are CloudWatch's
``AWS/Bedrock`` ones plus llmtrail's (`llmtrail.metrics.model.METRIC_NAMES`); dimensions are
``ModelId`` and llmtrail's own (`llmtrail.metrics.dimensions`), in the combinations the
rollups keep.

``ListMetrics`` lists, as CloudWatch does, every (metric, dimension combination) with data
in the last two weeks (the last three hours with ``RecentlyActive=PT3H``). A dimension filter
names dimensions a metric must have, with or without a value, so it reads every kept
combination that holds them. Filters that match nothing here (another namespace, another
account, a metric or dimension llmtrail does not keep) answer an empty list, not an error.
Records without a dimension's value (no ``application_name``, say) are counted in the rollups
under an empty value; CloudWatch has no such metric (a dimension value is never empty), so
those series are not listed.
Pages hold 500 metrics in a fixed order; a ``NextToken`` carries the last one given, so a
series that appears meanwhile shifts nothing.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from llmtrail.metrics.dimensions import BY_NAME, DIMENSION_SETS, names_of
from llmtrail.metrics.model import METRIC_NAMES, NAMESPACE
from llmtrail.security.principal import Permission
from llmtrail.server.aws import cloudwatch_metric_data, cloudwatch_metric_statistics
from llmtrail.server.aws.cloudwatch_metric_params import fingerprint
from llmtrail.server.aws.operations import AwsCall, AwsError, operation
from llmtrail.server.aws.tokens import page_token, read_page_token

__all__ = [
    "PAGE_SIZE",
    "cloudwatch_metric_data",
    "cloudwatch_metric_statistics",
    "list_metrics",
]

PAGE_SIZE = 500  # ListMetrics' page
LISTED = timedelta(days=14)  # metrics without data for two weeks are not listed
RECENT = timedelta(hours=3)  # RecentlyActive=PT3H

Found = tuple[str, tuple[tuple[str, str], ...]]  # (MetricName, ((Name, Value), ...))
Key = tuple[tuple[str, ...], tuple[str, ...], int]


@operation("monitoring", "ListMetrics", Permission.READ)
async def list_metrics(call: AwsCall) -> dict[str, Any]:
    params = call.params
    digest = fingerprint(params)
    after: Key | None = None
    if "NextToken" in params:
        after = _key_of(read_page_token(call, params["NextToken"], "InvalidParameterValue"), digest)
    found = await asyncio.to_thread(_find, call, params)
    ordered = sorted((_sort_key(item), item) for item in found)
    if after is not None:
        ordered = [entry for entry in ordered if entry[0] > after]
    page = ordered[:PAGE_SIZE]
    answer: dict[str, Any] = {
        "Metrics": [
            {
                "Namespace": NAMESPACE,
                "MetricName": name,
                "Dimensions": [{"Name": n, "Value": v} for n, v in dims],
            }
            for _, (name, dims) in page
        ]
    }
    if params.get("IncludeLinkedAccounts"):
        answer["OwningAccounts"] = [call.account] * len(page)
    if len(ordered) > PAGE_SIZE:
        names, values, index = page[-1][0]
        answer["NextToken"] = page_token(call, {"h": digest, "k": [names, values, index]})
    return answer


def _find(call: AwsCall, params: dict[str, Any]) -> list[Found]:
    """Every listed (metric, dimensions) matching the filters, unordered."""
    metric = params.get("MetricName")
    filters = [(d["Name"], d.get("Value")) for d in params.get("Dimensions", [])]
    if (
        params.get("Namespace", NAMESPACE) != NAMESPACE
        or params.get("OwningAccount", call.account) != call.account
        or (metric is not None and metric not in METRIC_NAMES)
        or any(name not in BY_NAME for name, _ in filters)
    ):
        return []
    now = datetime.now(UTC)
    start = now - (RECENT if params.get("RecentlyActive") == "PT3H" else LISTED)
    wanted = {name for name, _ in filters}
    sets: list[tuple[str, ...] | None] = [None]  # every kept set, in one call
    if wanted:
        sets = [names_of(m) for m in DIMENSION_SETS if wanted <= set(names_of(m))]
    out: list[Found] = []
    for names in sets:
        out += call.runtime.metrics.list_metrics(
            workspace=call.workspace, metric=metric, dimension_names=names, start=start
        )
    return [
        (name, dims)
        for name, dims in out
        if all(v for _, v in dims)  # a record without the dimension: no CloudWatch metric
        and all(value is None or dict(dims).get(n) == value for n, value in filters)
    ]


def _sort_key(item: Found) -> Key:
    name, dims = item
    return (
        tuple(n for n, _ in dims),
        tuple(v for _, v in dims),
        METRIC_NAMES.index(name),
    )


def _key_of(state: Any, digest: str) -> Key:
    key = state.get("k") if isinstance(state, dict) and state.get("h") == digest else None
    if (
        not isinstance(key, list)
        or len(key) != 3
        or not all(isinstance(part, list) for part in key[:2])
        or not isinstance(key[2], int)
    ):
        raise AwsError(
            "InvalidParameterValue",
            "The NextToken was made for a ListMetrics request with other parameters",
            400,
        )
    return (tuple(map(str, key[0])), tuple(map(str, key[1])), key[2])
