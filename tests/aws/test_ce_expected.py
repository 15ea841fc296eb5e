"""What GetCostAndUsage should answer, worked out from llmtrail's own records API: each
record's stored ``cost`` block and token counts (made disjoint by `usage_counts`, the function
cost uses), named by the documented rules of `ce_names` — and the naming rules themselves,
which are AWS's facts (billing codes, usage-type suffixes), pinned here.

The helpers are shared by ``test_ce*.py`` and the cost analyzer example's test.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx

from llmtrail.analytics.model_names import normalise_provider
from llmtrail.analytics.usage_counts import TokenCounts, usage_counts
from llmtrail.server.aws.ce_names import billing_code, service_name, usage_type

ZERO = Decimal(0)
PARTS = (
    ("input", "inputUsd"),
    ("output", "outputUsd"),
    ("cache_read", "cacheReadUsd"),
    ("cache_write", "cacheWriteUsd"),
)


@dataclass(frozen=True)
class Item:
    """One record's share of one usage type."""

    at: datetime
    dimensions: dict[str, str]
    tags: dict[str, str | None]
    cost: Decimal
    quantity: int


def records(url: str, start: str, end: str, headers: dict[str, str] | None = None) -> list[Any]:
    """Every record of ``[start, end)`` the caller may read, through ``GET /api/records``."""
    out: list[Any] = []
    cursor = None
    while True:
        params = {"start": start, "end": end, "limit": "1000", "bodies": "0"}
        if cursor:
            params["cursor"] = cursor
        answer = httpx.get(url + "/api/records", params=params, headers=headers, timeout=60)
        assert answer.status_code == 200, answer.text
        page = answer.json()
        out += page["records"]
        cursor = page.get("nextCursor")
        if not cursor:
            return out


def tag_of(record: Any, key: str) -> str | None:
    """A tag as the docs define it: the inference profile's, else ``requestMetadata``'s."""
    profile = (record.get("inferenceProfile") or {}).get("tags") or {}
    value = profile.get(key)
    return value if value is not None else (record.get("requestMetadata") or {}).get(key)


def items(
    docs: Iterable[Any], *, account: str, region: str, tag_keys: Iterable[str] = ()
) -> list[Item]:
    """The usage-type shares of every record."""
    out = []
    for record in docs:
        at = datetime.fromisoformat(record["timestamp"].replace("Z", "+00:00")).astimezone(UTC)
        counts = usage_counts(record, normalise_provider(record.get("provider")))
        counts = counts if isinstance(counts, TokenCounts) else TokenCounts()
        where = record.get("region") or region
        model = record.get("resolvedModelId") or record.get("modelId")
        base = {
            "SERVICE": service_name(record.get("provider")),
            "LINKED_ACCOUNT": account,
            "REGION": where,
            "OPERATION": record.get("operation") or "",
        }
        tags = {key: tag_of(record, key) for key in tag_keys}
        cost = record.get("cost") or {}
        parts = ZERO
        for kind, field in PARTS:
            amount = Decimal(cost.get(field, "0"))
            parts += amount
            quantity = getattr(counts, kind)
            if quantity or amount:
                named = {**base, "USAGE_TYPE": usage_type(where, model, kind)}
                out.append(Item(at, named, tags, amount, quantity))
        other = Decimal(cost.get("totalUsd", "0")) - parts
        if other:
            named = {**base, "USAGE_TYPE": usage_type(where, model, "other")}
            out.append(Item(at, named, tags, other, 1))
    return out


Groups = dict[tuple[str, tuple[str, ...]], tuple[Decimal, int]]


def grouped(found: Iterable[Item], period: Callable[[datetime], str], *keys: str) -> Groups:
    """Cost and quantity by (period start, group keys); a key is a dimension or ``tag:KEY``
    (written ``KEY$value``, as GroupBy TAG writes it)."""
    out: dict[tuple[str, tuple[str, ...]], tuple[Decimal, int]] = defaultdict(lambda: (ZERO, 0))

    def key_of(item: Item, key: str) -> str:
        if key.startswith("tag:"):
            name = key[4:]
            return f"{name}${item.tags[name] or ''}"
        return item.dimensions[key]

    for item in found:
        at = (period(item.at), tuple(key_of(item, k) for k in keys))
        cost, quantity = out[at]
        out[at] = (cost + item.cost, quantity + item.quantity)
    return dict(out)


def answered(pages: Iterable[Any], cost: str = "UnblendedCost") -> Groups:
    """The same from GetCostAndUsage's pages (an ungrouped period's Total under ``()``)."""
    out: dict[tuple[str, tuple[str, ...]], tuple[Decimal, int]] = {}
    for page in pages:
        for result in page["ResultsByTime"]:
            start = result["TimePeriod"]["Start"]
            found = [(tuple(g["Keys"]), g["Metrics"]) for g in result["Groups"]]
            if not page["GroupDefinitions"] and result["Total"]:
                found = [((), result["Total"])]
            for keys, metrics in found:
                assert (start, keys) not in out, "a group answered twice"
                quantity = (
                    int(metrics["UsageQuantity"]["Amount"]) if "UsageQuantity" in metrics else 0
                )
                amount = Decimal(metrics[cost]["Amount"])
                if amount or quantity:
                    out[(start, keys)] = (amount, quantity)
    return out


def day(at: datetime) -> str:
    return at.date().isoformat()


def test_service_names_say_which_provider_served_the_call() -> None:
    assert service_name("bedrock") == "Amazon Bedrock"
    assert service_name("aws") == "Amazon Bedrock"  # normalised as prices are
    assert service_name("openai") == "OpenAI"
    assert service_name("anthropic") == "Anthropic"
    assert service_name("sim") == "llmtrail sim"
    assert service_name("corp-gateway") == "corp-gateway"
    assert service_name(None) == "Unknown"


def test_usage_types_are_named_as_aws_names_bedrock_token_usage() -> None:
    model = "anthropic.claude-3-5-haiku-20241022-v1:0"
    assert usage_type("us-east-1", model, "input") == f"USE1-{model}-input-tokens"
    assert usage_type("us-west-2", model, "output") == f"USW2-{model}-output-tokens"
    assert (
        usage_type("eu-west-1", model, "cache_read") == f"EU-{model}-cache-read-input-token-count"
    )
    assert (
        usage_type("ap-south-2", model, "cache_write")
        == f"APS5-{model}-cache-write-input-token-count"
    )
    assert usage_type("us-east-1", "gpt-image-1", "other") == "USE1-gpt-image-1-other-charges"
    assert billing_code("local-1") == "LOCAL-1"
