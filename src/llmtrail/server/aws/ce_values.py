"""``GetDimensionValues`` and ``GetTags``: which values of a dimension, which tag keys and
which values of a tag the caller's costs of a TimePeriod have, over the same line items
``GetCostAndUsage`` sums (`ce_usage`), so every value listed is one it can group or filter by.

- ``GetDimensionValues`` takes the dimensions ``GetCostAndUsage`` does (``SERVICE``,
  ``USAGE_TYPE``, ``LINKED_ACCOUNT``, ``REGION``, ``OPERATION``) in the ``COST_AND_USAGE``
  context (llmtrail has no reservations or savings plans); a ``LINKED_ACCOUNT`` value carries
  the workspace as its ``description``.
- ``GetTags`` lists tag keys (inference-profile tags and ``requestMetadata`` keys) or, with
  ``TagKey``, that key's values.

Both take ``Filter`` (`ce_filter`), ``SearchString`` (a case-insensitive substring),
``SortBy`` a metric (then ``MaxResults``, at most 1000; with SortBy, AWS takes neither
``SearchString`` nor ``NextPageToken``) and answer `PAGE_SIZE` values a page, in name order
without SortBy.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from llmtrail.security.principal import Permission
from llmtrail.server.aws.ce_filter import read_filter, refuse
from llmtrail.server.aws.ce_request import (
    COST,
    MAX_TAG_KEYS,
    Figure,
    check_billing_view,
    page_offset,
    read_metrics,
    read_tag_keys,
    read_usage,
    resume_token,
)
from llmtrail.server.aws.ce_usage import DIMENSIONS, LineItem
from llmtrail.server.aws.operations import AwsCall, operation

__all__ = ["MAX_RESULTS", "PAGE_SIZE", "get_dimension_values", "get_tags"]

PAGE_SIZE = 1000
MAX_RESULTS = 1000
BUCKETS = "MONTHLY"  # the coarsest periods: the fewest grouped rows to read


def _check_listing(params: Mapping[str, Any], account: str, *, max_needs_sort: bool) -> None:
    check_billing_view(params, account)
    if params.get("SortBy"):
        for name in ("SearchString", "NextPageToken"):
            if name in params:
                raise refuse(f"{name} is not supported together with SortBy")
    elif params.get("MaxResults") and max_needs_sort:
        raise refuse("MaxResults is taken only together with SortBy")
    if params.get("MaxResults", 0) > MAX_RESULTS:
        raise refuse(f"MaxResults is at most {MAX_RESULTS}")


Valued = Iterable[tuple[LineItem, Iterable[str]]]


def _present(value: str | None) -> list[str]:
    return [value] if value else []


def _listing(call: AwsCall, valued: Valued) -> tuple[list[str], int, str | None]:
    """The values the line items have, searched, sorted and paged: (page, total, token)."""
    params = call.params
    figures: dict[str, Figure] = {}
    for item, values in valued:
        for value in values:
            figures.setdefault(value, Figure()).add(item)
    search = (params.get("SearchString") or "").lower()
    names = sorted(v for v in figures if search in v.lower())
    sort = params.get("SortBy") or []
    if sort:
        for definition in reversed(sort):  # the first definition decides, the next ties
            kind = read_metrics([definition["Key"]])[definition["Key"]]
            descending = definition.get("SortOrder", "ASCENDING") == "DESCENDING"

            def measure(value: str, kind: str = kind) -> Decimal:
                figure = figures[value]
                return figure.cost if kind == COST else Decimal(figure.quantity)

            names.sort(key=measure, reverse=descending)
        names = names[: params.get("MaxResults") or MAX_RESULTS]
        return names, len(names), None
    offset = page_offset(call)
    following = offset + PAGE_SIZE
    token = resume_token(call, following) if following < len(names) else None
    return names[offset:following], len(names), token


@operation("ce", "GetDimensionValues", Permission.READ)
async def get_dimension_values(call: AwsCall) -> dict[str, Any]:
    params = call.params
    _check_listing(params, call.account, max_needs_sort=False)
    context = params.get("Context", "COST_AND_USAGE")
    if context != "COST_AND_USAGE":
        raise refuse(f"Context {context}: llmtrail has no reservations or savings plans")
    dimension = params["Dimension"]
    if dimension not in DIMENSIONS:
        raise refuse(
            f"Dimension {dimension} is not a dimension of llmtrail's costs; use one of "
            f"{', '.join(DIMENSIONS)}"
        )
    kept = read_filter(params.get("Filter"))
    _, items = await read_usage(call, BUCKETS, kept.tag_keys)
    valued = [(i, _present(i.dimensions[dimension])) for i in items if kept.keeps(i)]
    page, total, token = _listing(call, valued)
    described = {"description": call.workspace} if dimension == "LINKED_ACCOUNT" else {}
    return {
        "DimensionValues": [{"Value": v, "Attributes": dict(described)} for v in page],
        "ReturnSize": len(page),
        "TotalSize": total,
        "NextPageToken": token,
    }


@operation("ce", "GetTags", Permission.READ)
async def get_tags(call: AwsCall) -> dict[str, Any]:
    params = call.params
    _check_listing(params, call.account, max_needs_sort=True)
    kept = read_filter(params.get("Filter"))
    tag_key = params.get("TagKey")
    valued: list[tuple[LineItem, list[str]]] = []
    if tag_key:  # the key's values
        _, items = await read_usage(call, BUCKETS, [tag_key, *kept.tag_keys])
        valued = [(i, _present(i.tags[tag_key])) for i in items if kept.keeps(i)]
    else:  # the keys, read a few at a time beside the filter's own
        keys = await read_tag_keys(call, BUCKETS)
        room = max(1, MAX_TAG_KEYS - len(kept.tag_keys))
        for chunk in (keys[i : i + room] for i in range(0, len(keys), room)):
            _, items = await read_usage(call, BUCKETS, [*kept.tag_keys, *chunk])
            valued += [
                (i, [k for k in chunk if i.tags[k] is not None]) for i in items if kept.keeps(i)
            ]
    page, total, token = _listing(call, valued)
    return {"Tags": page, "ReturnSize": len(page), "TotalSize": total, "NextPageToken": token}
