"""What Cost Explorer should answer, worked out from llmtrail's own records API: each
record's stored ``cost`` block and token counts (made disjoint by `usage_counts`, the function
cost uses), named by the documented rules of `ce_names` — and the naming rules themselves,
which are AWS's facts (billing codes, usage-type suffixes), pinned here.

Shared by ``test_ce*.py`` and the cost analyzer example's test: the helpers, and `served`, a
server holding gateway calls from the three wire formats and one through an application
inference profile with cost tags (today), and records ingested on earlier days: Bedrock with
cache reads and writes in us-west-2, OpenAI with cached tokens, Anthropic, a model without a
price, a model with a per-request price, and 300 tenants on one day (for pages).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from llmtrail.pricing.model_names import normalise_provider
from llmtrail.pricing.usage_counts import TokenCounts, usage_counts
from llmtrail.server.aws.ce_names import billing_code, service_name, usage_type
from tests.aws.conftest import ACCOUNT, CONFIG, REGION, aws_client, send_traffic
from tests.harness import ServerProcess, call

ZERO = Decimal(0)
TENANTS = 300
TAG_KEYS = ("dept", "team", "cost-center", "tenant_id")
TRAFFIC = (("openai", "sim/fast", 2), ("anthropic", "sim/smart", 2), ("bedrock", "sim/tiny", 2))
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


# -- the records every Cost Explorer test module serves ------------------------------------------
def _at(today: date, days_ago: int, hour: int = 10) -> str:
    moment = datetime(today.year, today.month, today.day, hour, tzinfo=UTC)
    return (moment - timedelta(days=days_ago)).isoformat().replace("+00:00", "Z")


def ingested(today: date) -> list[dict[str, Any]]:
    haiku = "anthropic.claude-3-5-haiku-20241022-v1:0"
    profile = f"arn:aws:bedrock:us-west-2:{ACCOUNT}:application-inference-profile/claims1"
    docs: list[dict[str, Any]] = [
        {
            "timestamp": _at(today, 3),
            "requestId": "ce-bedrock-cached",
            "provider": "bedrock",
            "modelId": haiku,
            "operation": "Converse",
            "region": "us-west-2",
            "input": {
                "inputTokenCount": 100,
                "cacheReadInputTokenCount": 1000,
                "cacheWriteInputTokenCount": 50,
            },
            "output": {"outputTokenCount": 20},
            "inferenceProfile": {
                "arn": profile,
                "name": "claims",
                "tags": {"dept": "claims", "team": "claims-ml"},
            },
            "requestMetadata": {"team": "search"},
        },
        {
            "timestamp": _at(today, 10),
            "requestId": "ce-openai-cached",
            "provider": "openai",
            "modelId": "gpt-4o-mini",
            "operation": "ChatCompletions",
            "input": {"inputTokenCount": 1000, "cacheReadInputTokenCount": 400},
            "output": {"outputTokenCount": 20},
            "requestMetadata": {"team": "web"},
        },
        {
            "timestamp": _at(today, 10, 14),
            "requestId": "ce-anthropic",
            "provider": "anthropic",
            "modelId": "claude-3-5-haiku-20241022",
            "operation": "Messages",
            "input": {"inputTokenCount": 300, "cacheWriteInputTokenCount": 200},
            "output": {"outputTokenCount": 80},
            "requestMetadata": {"dept": "research"},
        },
        {
            "timestamp": _at(today, 3, 12),
            "requestId": "ce-unpriced",
            "provider": "corp-gateway",
            "modelId": "house-model-7",
            "operation": "ChatCompletions",
            "input": {"inputTokenCount": 10},
            "output": {"outputTokenCount": 5},
        },
        {
            "timestamp": _at(today, 2),
            "requestId": "ce-per-request",
            "provider": "corp-media",
            "modelId": "render-1",
            "operation": "ChatCompletions",
            "input": {"inputTokenCount": 40},
            "output": {"outputTokenCount": 8},
        },
        {
            "timestamp": _at(today, 40),
            "requestId": "ce-nova",
            "provider": "bedrock",
            "modelId": "amazon.nova-lite-v1:0",
            "operation": "Converse",
            "input": {"inputTokenCount": 5000},
            "output": {"outputTokenCount": 700},
        },
    ]
    docs += [
        {
            "timestamp": _at(today, 5),
            "requestId": f"ce-tenant-{i}",
            "provider": "sim",
            "modelId": "sim/fast",
            "resolvedModelId": "fast",
            "operation": "Converse",
            "input": {"inputTokenCount": 10 + i},
            "output": {"outputTokenCount": 3 + i % 7},
            "requestMetadata": {"tenant_id": f"tenant-{i:03d}"},
        }
        for i in range(TENANTS)
    ]
    return docs


@dataclass
class World:
    url: str
    ce: Any
    today: date
    start: str  # of the window every test reads
    end: str
    docs: list[Any]  # the records of the window, from /api/records
    profile_arn: str

    def period(self, start: date | str | None = None, end: date | str | None = None) -> Any:
        return {"Start": str(start or self.start), "End": str(end or self.end)}

    def items(self, *tag_keys: str) -> list[Item]:
        return items(self.docs, account=ACCOUNT, region=REGION, tag_keys=tag_keys or TAG_KEYS)

    def pages(self, **request: Any) -> list[Any]:
        """Every page of one GetCostAndUsage request."""
        pages = []
        while True:
            page = self.ce.get_cost_and_usage(**request)
            pages.append(page)
            if "NextPageToken" not in page:
                return pages
            request = {**request, "NextPageToken": page["NextPageToken"]}


def served(root: Path) -> Iterator[World]:
    """A server of its own under ``root`` holding the records above (a module fixture's
    body: ``yield from served(...)``). ``today`` is the day of its last gateway call (the
    server stamps the calls: a day computed before them would miss those made after
    midnight), the records of earlier days ingested after the calls."""
    with ServerProcess(root / "data", config=CONFIG) as proc:
        status, body = call(
            proc.url,
            "PUT",
            "/api/prices",
            {
                "provider": "corp-media",
                "model": "render-1",
                "prices": {"input_mtok": "1", "output_mtok": "2", "per_request": "0.01"},
                "effective_from": "2020-01-01",
            },
        )
        assert status in (200, 201), body
        send_traffic(proc.url, TRAFFIC)
        status, profile = call(
            proc.url,
            "POST",
            "/api/profiles",
            {
                "inferenceProfileName": "claims",
                "modelSource": {"copyFrom": "sim/tiny"},
                "tags": [
                    {"key": "dept", "value": "claims"},
                    {"key": "cost-center", "value": "cc-42"},
                ],
            },
        )
        assert status == 201, profile
        runtime = aws_client(proc.url, "bedrock-runtime")
        last = runtime.converse(
            modelId=profile["inferenceProfileArn"],
            messages=[{"role": "user", "content": [{"text": "a claim"}]}],
            requestMetadata={"team": "search"},
        )
        runtime.close()
        stamped = proc.wait_for_record(last["ResponseMetadata"]["RequestId"])["timestamp"]
        today = date.fromisoformat(stamped[:10])
        sent = httpx.post(
            proc.url + "/api/records",
            content="\n".join(json.dumps(d) for d in ingested(today)),
            timeout=60,
        )
        assert sent.status_code == 200 and sent.json()["stored"] == TENANTS + 6, sent.text
        proc.settle()
        start, end = today - timedelta(days=45), today + timedelta(days=1)
        docs = records(proc.url, start.isoformat(), end.isoformat())
        ce = aws_client(proc.url, "ce")
        yield World(
            proc.url,
            ce,
            today,
            start.isoformat(),
            end.isoformat(),
            docs,
            profile["inferenceProfileArn"],
        )
        ce.close()


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
