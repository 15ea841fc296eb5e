"""AWS Cost Explorer (signing name ``ce``, JSON 1.1) over llmtrail's cost: code that asks
``get_cost_and_usage`` about Bedrock spend asks llmtrail, with only ``endpoint_url`` added,
about every provider's.

``GetCostAndUsage`` answers from the cost llmtrail stores on each record at capture — the
numbers ``/api/cost``, reports and budgets add up — read by `ce_usage` in one GROUP BY and
split into line items per usage type. Its parameters:

- ``TimePeriod`` and ``Granularity`` ``DAILY``, ``MONTHLY`` or ``HOURLY`` (`ce_periods`);
- ``Metrics`` (`ce_request`): costs in USD, ``UsageQuantity`` in tokens;
- ``GroupBy`` up to two of ``DIMENSION`` ``SERVICE``, ``USAGE_TYPE``, ``LINKED_ACCOUNT``,
  ``REGION``, ``OPERATION`` (`ce_names` says what their values are) and ``TAG`` (an
  inference-profile tag, else a ``requestMetadata`` key; keys ``key$value``, ``key$`` for
  costs without it);
- ``Filter`` (`ce_filter`); ``NextPageToken``.

The answer is AWS's: ``ResultsByTime`` with each period's ``Groups`` — or, without GroupBy,
its ``Total`` (with GroupBy, ``Total`` is empty, as AWS leaves it) — and ``Estimated`` for a
period not yet over; ``GroupDefinitions``; ``DimensionValueAttributes`` (the linked account's
description is the workspace). Groups are ordered by their keys. A page holds `PAGE_SIZE`
groups (and the periods without any among them); a period's groups may continue on the next
page, as they do on AWS. Only the caller's workspace is read.

``GetDimensionValues`` and ``GetTags`` (`ce_values`) list the values of those dimensions and
tags over the same line items.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from llmtrail.security.principal import Permission
from llmtrail.server.aws import ce_values
from llmtrail.server.aws.ce_filter import Filter, read_filter, refuse
from llmtrail.server.aws.ce_periods import Window
from llmtrail.server.aws.ce_request import (
    Figure,
    check_billing_view,
    metric_values,
    page_offset,
    read_metrics,
    read_usage,
    resume_token,
)
from llmtrail.server.aws.ce_usage import DIMENSIONS, LineItem
from llmtrail.server.aws.operations import AwsCall, operation

__all__ = ["MAX_GROUP_BY", "PAGE_SIZE", "ce_values", "get_cost_and_usage"]

PAGE_SIZE = 500  # groups per page
MAX_GROUP_BY = 2

Keys = tuple[str, ...]


def _group_by(definitions: Sequence[Mapping[str, str]]) -> list[tuple[str, str]]:
    if len(definitions) > MAX_GROUP_BY:
        raise refuse(
            f"GroupBy holds {len(definitions)} group definitions; at most {MAX_GROUP_BY} "
            "are allowed"
        )
    out: list[tuple[str, str]] = []
    for i, definition in enumerate(definitions):
        kind, key = definition.get("Type"), definition.get("Key")
        where = f"GroupBy[{i}]"
        if kind is None or key is None:
            raise refuse(f"{where} needs both Type and Key")
        if kind not in ("DIMENSION", "TAG"):
            raise refuse(
                f"{where}: llmtrail keeps no {kind} of its costs; group by DIMENSION or TAG"
            )
        if kind == "DIMENSION" and key not in DIMENSIONS:
            raise refuse(
                f"{where}: llmtrail groups costs by the dimensions {', '.join(DIMENSIONS)}, "
                f"not {key}"
            )
        if kind == "TAG" and not key:
            raise refuse(f"{where}.Key must name a tag key")
        if (kind, key) in out:
            raise refuse(f"{where} repeats the group definition {kind} {key}")
        out.append((kind, key))
    return out


def _key(definition: tuple[str, str], item: LineItem) -> str:
    kind, key = definition
    if kind == "DIMENSION":
        return item.dimensions[key]
    return f"{key}${item.tags[key] or ''}"


def _figures(
    window: Window, items: list[LineItem], kept: Filter, groups: list[tuple[str, str]]
) -> list[dict[Keys, Figure]]:
    """Each period's figures by group keys (``()`` without GroupBy)."""
    starts = [start for start, _ in window.periods()]
    figures: list[dict[Keys, Figure]] = [{} for _ in starts]
    for item in items:
        if kept.keeps(item):
            index = max(0, bisect_right(starts, item.bucket) - 1)
            keys = tuple(_key(definition, item) for definition in groups)
            figures[index].setdefault(keys, Figure()).add(item)
    return figures


def _page(
    figures: list[dict[Keys, Figure]], grouped: bool, offset: int
) -> tuple[list[tuple[int, Keys | None]], int | None]:
    """The page of (period, group keys) from ``offset`` — a period without groups is one
    entry of its own — holding `PAGE_SIZE` groups, and the offset of the next page."""
    entries: list[tuple[int, Keys | None]] = []
    for index, found in enumerate(figures):
        entries += [(index, k) for k in (sorted(found) if grouped else [])] or [(index, None)]
    following, held = offset, 0
    while following < len(entries) and held < PAGE_SIZE:
        held += entries[following][1] is not None
        following += 1
    return entries[offset:following], following if following < len(entries) else None


@operation("ce", "GetCostAndUsage", Permission.READ)
async def get_cost_and_usage(call: AwsCall) -> dict[str, Any]:
    params = call.params
    check_billing_view(params, call.account)
    metrics = read_metrics(params["Metrics"])
    groups = _group_by(params.get("GroupBy") or [])
    kept = read_filter(params.get("Filter"))
    offset = page_offset(call)
    tag_keys = [key for kind, key in groups if kind == "TAG"] + list(kept.tag_keys)
    window, items = await read_usage(call, params["Granularity"], tag_keys)
    periods = window.periods()
    figures = _figures(window, items, kept, groups)
    page, following = _page(figures, bool(groups), offset)
    now = datetime.now(UTC)
    results: list[dict[str, Any]] = []
    shown: list[int] = []  # the period of each result
    for index, group in page:
        if not shown or shown[-1] != index:
            start, end = periods[index]
            total = None if groups else figures[index].get((), Figure())
            results.append(
                {
                    "TimePeriod": {"Start": window.text(start), "End": window.text(end)},
                    "Total": {} if total is None else metric_values(metrics, total),
                    "Groups": [],
                    "Estimated": end > now,
                }
            )
            shown.append(index)
        if group is not None:
            values = metric_values(metrics, figures[index][group])
            results[-1]["Groups"].append({"Keys": list(group), "Metrics": values})
    accounts = {
        keys[i]
        for found in figures
        for keys in found
        for i, definition in enumerate(groups)
        if definition == ("DIMENSION", "LINKED_ACCOUNT")
    }
    return {
        "GroupDefinitions": [{"Type": kind, "Key": key} for kind, key in groups],
        "ResultsByTime": results,
        "DimensionValueAttributes": [
            {"Value": account, "Attributes": {"description": call.workspace}}
            for account in sorted(accounts)
        ],
        "NextPageToken": None if following is None else resume_token(call, following),
    }
