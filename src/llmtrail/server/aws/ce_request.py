"""What every Cost Explorer read shares: the caller's line items for a TimePeriod, the
metrics and how their amounts are written, and page tokens bound to the request.

Metrics: ``UnblendedCost`` is the cost llmtrail stored on each record at capture, in USD.
``BlendedCost``, ``AmortizedCost``, ``NetUnblendedCost`` and ``NetAmortizedCost`` are the
same amount (llmtrail knows no reservations, savings plans, credits or discounts to blend,
amortise or net). ``UsageQuantity`` counts tokens (cache reads and writes apart from input),
with Unit ``Tokens``; a figure that also counts calls with per-image, per-embedding or
per-request charges has Unit ``N/A``, as AWS writes a quantity of mixed units. Amounts are
decimal strings (``0.000034``, ``0``), exact to llmtrail's 1e-9 USD.

A workspace that has recorded nothing yet answers DataUnavailableException, as a new Cost
Explorer does before its data is ingested.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson

from llmtrail.security.retention import RetentionPolicies
from llmtrail.server.aws.ce_filter import refuse
from llmtrail.server.aws.ce_periods import Window, read_window
from llmtrail.server.aws.ce_usage import (
    LineItem,
    UsageScope,
    has_records,
    line_items,
    tag_keys_in,
)
from llmtrail.server.aws.operations import AwsCall, AwsError
from llmtrail.server.aws.tokens import page_token, read_page_token

__all__ = [
    "COST",
    "MAX_TAG_KEYS",
    "USAGE",
    "Figure",
    "amount",
    "check_billing_view",
    "fingerprint",
    "metric_values",
    "page_offset",
    "read_metrics",
    "read_tag_keys",
    "read_usage",
    "resume_token",
]

COST, USAGE = "cost", "usage"
_METRICS = {
    "UnblendedCost": COST,
    "BlendedCost": COST,
    "AmortizedCost": COST,
    "NetUnblendedCost": COST,
    "NetAmortizedCost": COST,
    "UsageQuantity": USAGE,
}
# AWS also takes the metrics in upper snake case (UNBLENDED_COST).
_METRICS.update(
    {"".join("_" + c if c.isupper() else c.upper() for c in k)[1:]: v for k, v in _METRICS.items()}
)
MAX_TAG_KEYS = 20
_NANO = Decimal("0.000000001")


def _utc_now() -> datetime:
    return datetime.now(UTC)


def read_metrics(names: Iterable[str]) -> dict[str, str]:
    """Each requested metric name → `COST` or `USAGE`; a ValidationException names the one
    llmtrail cannot answer."""
    out: dict[str, str] = {}
    for name in names:
        kind = _METRICS.get(name)
        if kind is None:
            known = ", ".join(k for k in _METRICS if not k.isupper())
            raise refuse(f"Metrics: {name!r} is not a metric llmtrail answers; use {known}")
        out[name] = kind
    if not out:
        raise refuse("Metrics must name at least one metric, such as UnblendedCost")
    return out


class Figure:
    """A running sum of line items: cost, quantity and whether it counts only tokens."""

    __slots__ = ("cost", "quantity", "tokens")

    def __init__(self) -> None:
        self.cost = Decimal(0)
        self.quantity = 0
        self.tokens = True

    def add(self, item: LineItem) -> None:
        self.cost += item.cost
        self.quantity += item.quantity
        self.tokens = self.tokens and item.tokens


def amount(value: Decimal) -> str:
    """A decimal string as AWS writes amounts: ``0.000034``, ``12``, ``0``."""
    text = format(value.quantize(_NANO), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def metric_values(metrics: Mapping[str, str], figure: Figure) -> dict[str, dict[str, str]]:
    """The ``Metrics`` map of one figure."""
    out = {}
    for name, kind in metrics.items():
        if kind == COST:
            out[name] = {"Amount": amount(figure.cost), "Unit": "USD"}
        else:
            unit = "Tokens" if figure.tokens and figure.quantity else "N/A"
            out[name] = {"Amount": str(figure.quantity), "Unit": unit}
    return out


def check_billing_view(params: Mapping[str, Any], account: str) -> None:
    """Only the account's primary billing view is known (llmtrail has no others)."""
    arn = params.get("BillingViewArn")
    if arn is not None and arn != f"arn:aws:billing::{account}:billingview/primary":
        raise AwsError("ResourceNotFoundException", f"The billing view {arn} doesn't exist", 400)


# -- pages ----------------------------------------------------------------------------------
def fingerprint(params: Mapping[str, Any]) -> str:
    """A digest of the request, its page token and page size left out."""
    kept = {k: v for k, v in params.items() if k != "NextPageToken"}
    return hashlib.sha256(orjson.dumps(kept, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]


def page_offset(call: AwsCall) -> int:
    """Where the page the request's NextPageToken asks for starts (0 without one)."""
    token = call.params.get("NextPageToken")
    if token is None:
        return 0
    state = read_page_token(call, token, "InvalidNextTokenException")
    if not isinstance(state, dict) or not isinstance(state.get("o"), int) or state["o"] < 0:
        raise AwsError("InvalidNextTokenException", "The specified NextPageToken is not valid")
    if state.get("h") != fingerprint(call.params):
        raise AwsError(
            "RequestChangedException",
            "Your request parameters changed between pages. Try again with the old parameters "
            "or without a pagination token.",
        )
    return int(state["o"])


def resume_token(call: AwsCall, offset: int) -> str:
    """The NextPageToken of the page starting at ``offset``."""
    return page_token(call, {"o": offset, "h": fingerprint(call.params)})


# -- usage ----------------------------------------------------------------------------------
def _window(call: AwsCall, granularity: str, now: datetime) -> Window:
    """The request's TimePeriod, checked; DataUnavailableException for a workspace that has
    recorded nothing."""
    runtime = call.runtime
    policy = RetentionPolicies(runtime.state).get(call.workspace)
    kept_since = policy.cutoff(policy.records_days, now)
    window = read_window(call.params["TimePeriod"], granularity, now, kept_since)
    if not has_records(runtime.query_engine, call.workspace):
        raise AwsError(
            "DataUnavailableException",
            "Data is not available. Please try to adjust the time period. If just enabled "
            "Cost Explorer, data might not be ingested yet (this workspace has recorded no "
            "model call yet)",
        )
    return window


def _scope(call: AwsCall, window: Window, tag_keys: tuple[str, ...]) -> UsageScope:
    return UsageScope(
        workspace=call.workspace,
        start=window.start,
        end=window.end,
        unit=window.unit,
        tag_keys=tag_keys,
        account=call.account,
        region=call.region,
    )


def _usage(
    call: AwsCall, granularity: str, tag_keys: tuple[str, ...], now: datetime
) -> tuple[Window, list[LineItem]]:
    window = _window(call, granularity, now)
    return window, line_items(call.runtime.query_engine, _scope(call, window, tag_keys))


async def read_usage(
    call: AwsCall, granularity: str, tag_keys: Iterable[str]
) -> tuple[Window, list[LineItem]]:
    """The checked range of the request's TimePeriod and the caller's line items in it, with
    the values of ``tag_keys`` (read off the event loop)."""
    keys = tuple(dict.fromkeys(tag_keys))
    if len(keys) > MAX_TAG_KEYS:
        raise refuse(f"a request may name at most {MAX_TAG_KEYS} tag keys, got {len(keys)}")
    return await asyncio.to_thread(_usage, call, granularity, keys, _utc_now())


def _tag_keys(call: AwsCall, granularity: str, now: datetime) -> list[str]:
    window = _window(call, granularity, now)
    return tag_keys_in(call.runtime.query_engine, _scope(call, window, ()))


async def read_tag_keys(call: AwsCall, granularity: str) -> list[str]:
    """Every tag key the caller's records in the request's TimePeriod have."""
    return await asyncio.to_thread(_tag_keys, call, granularity, _utc_now())
