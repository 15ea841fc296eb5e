"""Cost of records: hand-computed amounts, token semantics per wire format, effective dates,
overrides, empty costs with their reasons, odd records, and re-pricing history.

Hand-computed amounts use prices written here (`PINNED_FILES`, `ACME`): genai-prices' data
changes with every release of the package, and what they test is llmtrail's arithmetic and its
reading of each wire format's token counts. Costs priced from the genai-prices snapshot are
compared with genai-prices' own calculation for the same model, usage and time.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmtrail.pricing.cost import (
    MONEY_QUANTUM,
    CostResult,
    _fast,
    cost_dict,
    cost_of,
    recompute,
    uncached_cost_of,
)
from llmtrail.pricing.price_data import PriceFile, parse_price_file
from llmtrail.pricing.table import PriceTable
from tests.analytics.genai_reference import genai_answer, genai_cost
from tests.conftest import bedrock_fixture_lines

D = Decimal
HAIKU = "us.anthropic.claude-3-5-haiku-20241022-v1:0"


@pytest.fixture(scope="module")
def table() -> PriceTable:
    return PriceTable()


def data_file(models: list[dict[str, Any]], provider: str = "acme") -> PriceFile:
    doc = {"schema": "llmtrail.prices/1", "provider": provider, "models": models}
    return parse_price_file(json.dumps(doc), f"{provider}.json")


ACME = data_file(
    [
        {
            "model": "widget-1",
            "prices": [
                {"effective_from": "2025-01-01", "input_mtok": "2", "output_mtok": "8"},
                {
                    "effective_from": "2025-06-01",
                    "input_mtok": "1",
                    "output_mtok": "4",
                    "cache_read_mtok": "0.1",
                    "cache_write_mtok": "1.25",
                },
            ],
        },
        {
            "model": "long-context",
            "prices": [
                {
                    "effective_from": "2025-01-01",
                    "input_mtok": {"base": "3", "tiers": [{"start": 200000, "price": "6"}]},
                    "output_mtok": {"base": "15", "tiers": [{"start": 200000, "price": "22.5"}]},
                    "cache_read_mtok": "0.3",
                }
            ],
        },
        {"model": "input-only", "prices": [{"effective_from": "2025-01-01", "input_mtok": "0.5"}]},
        {"model": "painter", "prices": [{"effective_from": "2025-01-01", "per_image": "0.04"}]},
        {
            "model": "embedder",
            "prices": [
                {"effective_from": "2025-01-01", "per_embedding": "0.0001", "per_request": "0.001"}
            ],
        },
        {"model": "tiny", "prices": [{"effective_from": "2025-01-01", "input_mtok": "0.0015"}]},
    ]
)


@pytest.fixture(scope="module")
def acme() -> PriceTable:
    return PriceTable(files=[ACME], genai=False)


def one_model(provider: str, model: str, **prices: str) -> PriceFile:
    return data_file(
        [{"model": model, "prices": [{"effective_from": "2024-01-01", **prices}]}], provider
    )


# Real model names with prices of the test's own: $0.8 input, $4 output, $0.08 cache read, $1
# cache write per million for Claude 3.5 Haiku; $0.15, $0.6 and $0.075 cached for gpt-4o-mini.
HAIKU_RATES = {
    "input_mtok": "0.8",
    "output_mtok": "4",
    "cache_read_mtok": "0.08",
    "cache_write_mtok": "1",
}
PINNED_FILES = [
    one_model("bedrock", "anthropic.claude-3-5-haiku-20241022-v1:0", **HAIKU_RATES),
    one_model("anthropic", "claude-3-5-haiku-20241022", **HAIKU_RATES),
    one_model(
        "openai", "gpt-4o-mini", input_mtok="0.15", output_mtok="0.6", cache_read_mtok="0.075"
    ),
]
HAIKU_VERSION = "llmtrail:bedrock:anthropic.claude-3-5-haiku-20241022-v1:0@2024-01-01"


@pytest.fixture(scope="module")
def pinned() -> PriceTable:
    return PriceTable(files=PINNED_FILES, genai=False)


def record(
    model: str = "widget-1",
    provider: str | None = "acme",
    timestamp: Any = "2025-07-01T12:00:00Z",
    operation: str = "Converse",
    inp: Any = None,
    out: Any = None,
    read: int | None = None,
    write: int | None = None,
    **extra: Any,
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schemaType": "ModelInvocationLog",
        "timestamp": timestamp,
        "requestId": f"req-{model}-{timestamp}",
        "recordId": f"rec-{model}-{timestamp}",
        "operation": operation,
        "modelId": model,
        "input": {},
        "output": {},
    }
    if provider is not None:
        doc["provider"] = provider
    for section, key, value in (
        ("input", "inputTokenCount", inp),
        ("input", "cacheReadInputTokenCount", read),
        ("input", "cacheWriteInputTokenCount", write),
        ("output", "outputTokenCount", out),
    ):
        if value is not None:
            doc[section][key] = value
    doc.update(extra)
    return doc


def amounts(cost: CostResult) -> tuple[Decimal | None, ...]:
    return (
        cost.input_usd,
        cost.output_usd,
        cost.cache_read_usd,
        cost.cache_write_usd,
        cost.other_usd,
        cost.total_usd,
    )


# -- hand-computed costs ---------------------------------------------------------------------


def test_bedrock_claude_with_cache_tokens(pinned: PriceTable) -> None:
    # Bedrock: inputTokenCount excludes cache reads and writes.
    # $0.8, $4, $0.08, $1 per million: 1000 in, 300 out, 2000 read, 500 written.
    cost = cost_of(record(HAIKU, "bedrock", inp=1000, out=300, read=2000, write=500), pinned)
    assert amounts(cost) == (
        D("0.0008"),
        D("0.0012"),
        D("0.00016"),
        D("0.0005"),
        D(0),
        D("0.00266"),
    )
    assert cost.price_version == HAIKU_VERSION
    assert cost.reason is None and cost.priced


def test_openai_cached_tokens_are_a_subset_billed_once(pinned: PriceTable) -> None:
    # OpenAI: prompt_tokens (1000) includes cached_tokens (400). gpt-4o-mini: $0.15 input,
    # $0.075 cached, $0.6 output per million: 600 × 0.15 + 400 × 0.075 + 300 × 0.6.
    doc = record("gpt-4o-mini", "openai", operation="ChatCompletions", inp=1000, out=300, read=400)
    cost = cost_of(doc, pinned)
    assert amounts(cost) == (D("0.00009"), D("0.00018"), D("0.00003"), D(0), D(0), D("0.0003"))
    # The same counts from a Bedrock-format call mean 1000 uncached + 400 cached.
    doc["operation"] = "Converse"
    assert cost_of(doc, pinned).input_usd == D("0.00015")


def test_openai_semantics_follow_the_provider_when_the_operation_says_nothing(
    pinned: PriceTable,
) -> None:
    # An OTLP span from the OpenAI SDK: operation "Chat", provider "openai".
    doc = record("gpt-4o-mini", "openai", operation="Chat", inp=1000, out=0, read=400)
    assert cost_of(doc, pinned).input_usd == D("0.00009")
    doc = record("claude-3-5-haiku-20241022", "anthropic", operation="Chat", inp=1000, read=400)
    assert cost_of(doc, pinned).input_usd == D("0.0008")  # Anthropic's input excludes the cache


def test_inconsistent_openai_counts_are_refused(pinned: PriceTable) -> None:
    doc = record("gpt-4o-mini", "openai", operation="ChatCompletions", inp=100, out=5, read=400)
    assert cost_of(doc, pinned) == CostResult.empty("inconsistent_token_counts")


def test_sim_records_cost_like_a_small_model(table: PriceTable) -> None:
    doc = record("sim/demo", "sim", operation="Messages", inp=2000, out=1000, read=4000, write=800)
    doc["resolvedModelId"] = "demo"
    cost = cost_of(doc, table)
    # $0.25, $1.25, $0.025, $0.3125 per million
    assert amounts(cost) == (
        D("0.0005"),
        D("0.00125"),
        D("0.0001"),
        D("0.00025"),
        D(0),
        D("0.0021"),
    )
    assert cost.price_version == "llmtrail:sim:default@2024-01-01"


def test_application_profile_is_priced_by_its_resolved_model(pinned: PriceTable) -> None:
    arn = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3"
    doc = record(arn, "bedrock", inp=1000, out=300, resolvedModelId=HAIKU)
    assert cost_of(doc, pinned).total_usd == D("0.002")
    del doc["resolvedModelId"]
    assert cost_of(doc, pinned) == CostResult.empty("no_price")


def test_effective_dates_give_different_versions(acme: PriceTable) -> None:
    before = cost_of(record(timestamp="2025-05-31T23:59:59.999Z", inp=1000, out=1000), acme)
    after = cost_of(record(timestamp="2025-06-01T00:00:00Z", inp=1000, out=1000), acme)
    assert (before.total_usd, before.price_version) == (
        D("0.01"),
        "llmtrail:acme:widget-1@2025-01-01",
    )
    assert (after.total_usd, after.price_version) == (
        D("0.005"),
        "llmtrail:acme:widget-1@2025-06-01",
    )
    too_early = cost_of(record(timestamp="2024-12-31T23:59:59Z", inp=1000, out=1000), acme)
    assert too_early == CostResult.empty("no_price")
    # a timestamp stored as a datetime (a store row) works the same
    dated = cost_of(record(timestamp=datetime(2025, 6, 1, tzinfo=UTC), inp=1000, out=1000), acme)
    assert dated == after


def test_cache_without_its_own_price_is_billed_at_the_input_price(acme: PriceTable) -> None:
    cost = cost_of(record(timestamp="2025-02-01T00:00:00Z", inp=1000, read=3000, write=1000), acme)
    assert amounts(cost) == (D("0.002"), D(0), D("0.006"), D("0.002"), D(0), D("0.01"))


def test_tiers_apply_past_their_start_on_total_input(acme: PriceTable) -> None:
    under = cost_of(record("long-context", inp=50_000, read=150_000, out=1000), acme)
    over = cost_of(record("long-context", inp=50_001, read=150_000, out=1000), acme)
    assert amounts(under) == (D("0.15"), D("0.015"), D("0.045"), D(0), D(0), D("0.21"))
    assert amounts(over) == (D("0.300006"), D("0.0225"), D("0.045"), D(0), D(0), D("0.367506"))


def test_per_image_and_per_embedding_prices(acme: PriceTable) -> None:
    images = record("painter", operation="InvokeModel")
    images["output"]["outputBodyJson"] = {"images": ["aGk=", "aGk="], "seeds": [1, 2]}
    assert cost_of(images, acme).other_usd == D("0.08")
    images["output"] = {"outputImageCount": 3}
    assert cost_of(images, acme).total_usd == D("0.12")
    images["output"] = {}
    assert cost_of(images, acme) == CostResult.empty("no_image_count")

    embeds = record("embedder", operation="Embeddings", inp=42)
    embeds["output"]["outputBodyJson"] = {"data": [{"index": i} for i in range(3)]}
    assert cost_of(embeds, acme).total_usd == D("0.0013")  # 3 × 0.0001 + one request
    embeds["output"] = {}
    assert cost_of(embeds, acme) == CostResult.empty("no_embedding_count")


def test_money_is_rounded_half_even_to_a_nanodollar(acme: PriceTable) -> None:
    # 1 token at $0.0015 per million is $1.5e-9: half-even gives 2e-9; 3 tokens 4.5e-9 → 4e-9.
    assert cost_of(record("tiny", inp=1), acme).total_usd == D("2E-9")
    assert cost_of(record("tiny", inp=3), acme).total_usd == D("4E-9")
    assert (
        cost_of(record("tiny", inp=1), acme).to_dict(money_as_text=True)["totalUsd"]
        == "0.000000002"
    )


def test_overrides_win_and_carry_their_version(table: PriceTable) -> None:
    layered = table.with_overrides(
        [
            {
                "id": "acme-haiku",
                "provider": "bedrock",
                "model": "anthropic.claude-3-5-haiku-*",
                "prices": {"input_mtok": "0.5", "output_mtok": "2.5"},
                "effective_from": "2025-01-01",
            }
        ]
    )
    cost = cost_of(record(HAIKU, "bedrock", inp=1000, out=1000, read=1000), layered)
    # no cache price in the override: cache reads at the input price
    assert amounts(cost) == (D("0.0005"), D("0.0025"), D("0.0005"), D(0), D(0), D("0.0035"))
    assert cost.price_version == "override:acme-haiku"


# -- empty costs and their reasons -----------------------------------------------------------


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        (record("acme.house-model-v1:0", "bedrock", inp=10, out=10), "no_price"),
        (record("widget-1", inp=None, out=None), "no_token_counts"),
        (record("nobody-knows", inp=None), "no_token_counts"),
        (record("widget-1", timestamp=None, inp=1), "no_timestamp"),
        (record("widget-1", timestamp="yesterday", inp=1), "no_timestamp"),
        (record("", inp=1), "no_model"),
        (record("widget-1", inp=-1), "bad_token_counts"),
        (record("widget-1", inp=1.5), "bad_token_counts"),
        (record("widget-1", out=True), "bad_token_counts"),
        (record("widget-1", inp="12"), "bad_token_counts"),
        (record("input-only", inp=10, out=5), "incomplete_price"),
    ],
)
def test_empty_cost_with_its_reason(acme: PriceTable, doc: dict[str, Any], reason: str) -> None:
    cost = cost_of(doc, acme)
    assert cost == CostResult.empty(reason)
    assert cost.to_dict() == {"reason": reason}
    assert not cost.priced and cost.total_usd is None


def test_counts_read_from_json_floats_are_accepted(acme: PriceTable) -> None:
    assert cost_of(record(inp=1000.0, out=0.0), acme).total_usd == D("0.001")


# -- costs from the genai-prices snapshot ----------------------------------------------------

# A cost differs from genai-prices' unrounded one by at most half a nanodollar in each of the
# five parts llmtrail rounds.
ROUNDING = 5 * MONEY_QUANTUM / 2


def assert_cost_is_genai_prices_own(cost: CostResult, expected: Any) -> None:
    """``cost`` is what genai-prices computes (``expected``, a `PriceCalculation` or None when
    it knows no such model): input (cache included) and output apart, and the total."""
    if expected is None:
        assert cost == CostResult.empty("no_price")
        return
    assert cost.priced, cost.reason
    ours_input = sum((cost.input_usd, cost.cache_read_usd, cost.cache_write_usd), D(0))
    assert abs(ours_input - expected.input_price) <= ROUNDING
    assert cost.output_usd is not None and abs(cost.output_usd - expected.output_price) <= ROUNDING
    assert cost.total_usd is not None and abs(cost.total_usd - expected.total_price) <= ROUNDING


@pytest.mark.parametrize(
    ("provider", "model", "operation", "timestamp", "tokens", "genai_input"),
    [
        # Bedrock and Anthropic count input without the cache; genai-prices' input is all of it
        ("bedrock", HAIKU, "Converse", "2025-07-01T12:00:00Z", (1000, 300, 2000, 500), 3500),
        (
            "anthropic",
            "claude-3-5-haiku-20241022",
            "Messages",
            "2025-07-01T12:00:00Z",
            (1000, 300, 2000, 500),
            3500,
        ),
        # OpenAI's prompt_tokens already holds the cached tokens
        (
            "openai",
            "gpt-4o-mini",
            "ChatCompletions",
            "2025-07-01T12:00:00Z",
            (1000, 300, 400, 0),
            1000,
        ),
        # a long context: past the context tier of a model priced with one
        (
            "anthropic",
            "claude-sonnet-4-5",
            "Messages",
            "2025-10-01T12:00:00Z",
            (150_000, 2000, 60_000, 10_000),
            220_000,
        ),
        # either side of a dated price change (o3's price cut)
        ("openai", "o3", "ChatCompletions", "2025-06-09T23:59:59Z", (5000, 2000, 1000, 0), 5000),
        ("openai", "o3", "ChatCompletions", "2025-06-10T00:00:00Z", (5000, 2000, 1000, 0), 5000),
    ],
)
def test_genai_priced_costs_are_genai_prices_own(
    table: PriceTable,
    provider: str,
    model: str,
    operation: str,
    timestamp: str,
    tokens: tuple[int, int, int, int],
    genai_input: int,
) -> None:
    inp, out, read, write = tokens
    doc = record(model, provider, timestamp, operation, inp=inp, out=out, read=read, write=write)
    cost = cost_of(doc, table)
    at = datetime.fromisoformat(timestamp)
    genai_provider = "aws" if provider == "bedrock" else provider
    names = table.query(provider, model).names  # a cross-region id, then its base model
    expected = genai_cost(
        names,
        genai_provider,
        at,
        input_tokens=genai_input,
        output_tokens=out,
        cache_read_tokens=read,
        cache_write_tokens=write,
    )
    assert_cost_is_genai_prices_own(cost, expected)
    answer = genai_answer(names, genai_provider, at)
    assert cost.price_version == (answer.version if answer is not None else None)


def test_every_fixture_bedrock_log_costs_what_genai_prices_says(table: PriceTable) -> None:
    for line in bedrock_fixture_lines():
        doc = json.loads(line)
        inp = doc["input"]
        read = inp.get("cacheReadInputTokenCount", 0)
        write = inp.get("cacheWriteInputTokenCount", 0)
        at = datetime.fromisoformat(doc["timestamp"])
        names = table.query(None, doc["modelId"]).names
        expected = genai_cost(
            names,
            "aws",
            at,
            input_tokens=inp.get("inputTokenCount", 0) + read + write,
            output_tokens=doc["output"].get("outputTokenCount", 0),
            cache_read_tokens=read,
            cache_write_tokens=write,
        )
        cost = cost_of(doc, table)
        assert_cost_is_genai_prices_own(cost, expected)
        answer = genai_answer(names, "aws", at)
        assert cost.price_version == (answer.version if answer is not None else None)


# -- odd records never raise -----------------------------------------------------------------

JSON_LEAF = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["sim/x", HAIKU, "gpt-4o-mini", "arn:aws:bedrock:::", "2025-07-01T00:00:00Z"]),
)
JSON = st.recursive(
    JSON_LEAF,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
ODD_RECORDS = st.fixed_dictionaries(
    {},
    optional={
        "timestamp": st.one_of(JSON, st.just("2025-07-01T00:00:00Z")),
        "provider": st.one_of(
            JSON, st.sampled_from(["sim", "bedrock", "openai", "anthropic", "acme"])
        ),
        "modelId": st.one_of(
            JSON, st.sampled_from(["sim/x", HAIKU, "gpt-4o-mini", "widget-1", "painter"])
        ),
        "resolvedModelId": JSON,
        "operation": st.one_of(
            JSON, st.sampled_from(["ChatCompletions", "Converse", "Embeddings"])
        ),
        "input": st.one_of(
            JSON,
            st.fixed_dictionaries(
                {},
                optional={
                    "inputTokenCount": JSON,
                    "cacheReadInputTokenCount": JSON,
                    "cacheWriteInputTokenCount": JSON,
                },
            ),
        ),
        "output": st.one_of(
            JSON,
            st.fixed_dictionaries(
                {},
                optional={
                    "outputTokenCount": JSON,
                    "outputBodyJson": JSON,
                    "outputImageCount": JSON,
                },
            ),
        ),
    },
)
BOTH = PriceTable(files=[ACME], genai=True)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ODD_RECORDS)
def test_odd_records_never_raise(doc: dict[str, Any]) -> None:
    cost = cost_of(doc, BOTH)
    assert cost.reason != "internal_error"
    if cost.priced:
        parts = [
            cost.input_usd,
            cost.output_usd,
            cost.cache_read_usd,
            cost.cache_write_usd,
            cost.other_usd,
        ]
        assert all(p is not None and p >= 0 and p == p.quantize(MONEY_QUANTUM) for p in parts)
        assert cost.total_usd == sum((p for p in parts if p is not None), D(0))
        assert cost.price_version
    else:
        assert cost.to_dict() == {"reason": cost.reason}


def test_not_a_mapping_is_an_empty_cost(table: PriceTable) -> None:
    not_a_record: Any = []
    assert cost_of(not_a_record, table) == CostResult.empty("no_model")


@settings(max_examples=200, deadline=None)
@given(
    inp=st.integers(0, 10**9),
    out=st.integers(0, 10**9),
    read=st.integers(0, 10**9),
    write=st.integers(0, 10**9),
)
def test_costs_equal_the_formula(inp: int, out: int, read: int, write: int) -> None:
    cost = cost_of(record(inp=inp, out=out, read=read, write=write), BOTH)
    q = MONEY_QUANTUM
    expected = [
        (D(inp) * 1 / 10**6).quantize(q),
        (D(out) * 4 / 10**6).quantize(q),
        (D(read) * D("0.1") / 10**6).quantize(q),
        (D(write) * D("1.25") / 10**6).quantize(q),
    ]
    assert list(amounts(cost)[:4]) == expected
    assert cost.total_usd == sum(expected, D(0))


# -- the stored form -------------------------------------------------------------------------


def test_to_dict_and_back(pinned: PriceTable) -> None:
    cost = cost_of(record(HAIKU, "bedrock", inp=1000, out=300, read=2000, write=500), pinned)
    stored = cost.to_dict(money_as_text=True)
    assert stored["totalUsd"] == "0.002660000" and stored["otherUsd"] == "0.000000000"
    assert set(stored) == {
        "inputUsd",
        "outputUsd",
        "cacheReadUsd",
        "cacheWriteUsd",
        "otherUsd",
        "totalUsd",
        "priceVersion",
    }
    assert CostResult.from_dict(json.loads(json.dumps(stored))) == cost
    assert CostResult.from_dict(cost.to_dict()) == cost
    as_floats = {k: float(v) if k.endswith("Usd") else v for k, v in stored.items()}
    assert CostResult.from_dict(as_floats) == cost
    assert CostResult.from_dict(None) == CostResult.empty("not_computed")
    assert CostResult.from_dict({"totalUsd": "lots"}) == CostResult.empty("not_computed")
    assert CostResult.from_dict({"reason": "no_price"}) == CostResult.empty("no_price")


# -- re-pricing history ----------------------------------------------------------------------


def history() -> list[dict[str, Any]]:
    days = ["2025-05-30", "2025-05-31", "2025-06-01", "2025-06-02", "2025-07-01"]
    docs = [record(timestamp=f"{day}T10:00:00Z", inp=1000, out=1000) for day in days]
    docs.append(record("mystery-model", timestamp="2025-06-15T00:00:00Z", inp=10, out=10))
    return docs


OLD_ACME = data_file(
    [
        {
            "model": "widget-1",
            "prices": [{"effective_from": "2025-01-01", "input_mtok": "2", "output_mtok": "8"}],
        }
    ]
)


def test_recompute_changes_exactly_the_records_after_a_price_change(acme: PriceTable) -> None:
    old = PriceTable(files=[OLD_ACME], genai=False)
    docs = history()
    for doc in docs:  # as captured under the old table
        doc["cost"] = cost_of(doc, old).to_dict(money_as_text=True)
    report = recompute(docs, None, acme)
    assert report.records == 6 and report.unchanged == 3
    assert [c.request_id for c in report.changes] == [docs[i]["requestId"] for i in (2, 3, 4)]
    assert {c.kind for c in report.changes} == {"repriced"}
    assert all(c.new.price_version == "llmtrail:acme:widget-1@2025-06-01" for c in report.changes)
    assert all(c.delta_usd == D("-0.005") for c in report.changes)
    assert report.old_total_usd == D("0.05") and report.new_total_usd == D("0.035")
    assert report.delta_usd == D("-0.015")
    assert report.by_model() == {
        "widget-1": {"records": 3, "oldUsd": D("0.03"), "newUsd": D("0.015")}
    }
    summary = report.to_dict(max_changes=1)
    assert summary["changed"] == 3 and len(summary["changes"]) == 1
    assert summary["deltaUsd"] == "-0.015000000"
    assert summary["changes"][0]["new"]["priceVersion"] == "llmtrail:acme:widget-1@2025-06-01"
    # against the old table instead of the stored costs: the same answer
    assert recompute(docs, old, acme).changes == report.changes


def test_recompute_kinds(acme: PriceTable) -> None:
    docs = history()
    relabelled = PriceTable(
        [
            {
                "id": "same-price",
                "provider": "acme",
                "model": "widget-1",
                "prices": {"input_mtok": "1", "output_mtok": "4", "cache_read_mtok": "0.1"},
                "effective_from": "2025-07-01",
            },
            {
                "id": "mystery",
                "provider": "acme",
                "model": "mystery-model",
                "prices": {"input_mtok": "1", "output_mtok": "1"},
                "effective_from": "2025-01-01",
            },
        ],
        files=[ACME],
        genai=False,
    )
    report = recompute(docs, acme, relabelled)
    assert report.counts() == {"version_only": 1, "newly_priced": 1}
    newly = next(c for c in report.changes if c.kind == "newly_priced")
    assert newly.old == CostResult.empty("no_price") and newly.new.total_usd == D("0.00002")
    back = recompute(docs, relabelled, acme)
    assert back.counts() == {"version_only": 1, "unpriced": 1}
    both = report.merge(back)
    assert both.records == 12 and len(both.changes) == 4 and both.delta_usd == D(0)
    unstored = recompute([record(inp=1, out=1)], None, acme)
    assert unstored.changes[0].kind == "newly_priced"
    assert unstored.changes[0].old == CostResult.empty("not_computed")


# -- the fast way equals the general way -----------------------------------------------------

# Prices that take each branch of the fast way, or send a record to the general way.
EDGE = data_file(
    [
        {
            "model": "cheap",
            "prices": [
                {"effective_from": "2025-01-01", "input_mtok": "0.0015", "output_mtok": "-0"},
                {
                    "effective_from": "2025-06-01",
                    "input_mtok": "1000000",
                    "output_mtok": "0.000000000000000000001",
                    "cache_write_mtok": "3.75",
                },
            ],
        },
        {
            "model": "tiered",
            "prices": [
                {
                    "effective_from": "2025-01-01",
                    "input_mtok": {
                        "base": "3",
                        "tiers": [{"start": 1000, "price": "6"}, {"start": 5000, "price": "9"}],
                    },
                    "output_mtok": "15",
                    "cache_read_mtok": {"base": "0.3", "tiers": [{"start": 1000, "price": "0.6"}]},
                }
            ],
        },
        {  # more digits than the fast way takes: the general way prices it
            "model": "precise",
            "prices": [
                {
                    "effective_from": "2025-01-01",
                    "input_mtok": "0." + "3" * 59,
                    "output_mtok": "1." + "7" * 50,
                }
            ],
        },
        {
            "model": "fee",
            "prices": [
                {
                    "effective_from": "2025-01-01",
                    "input_mtok": "0.5",
                    "output_mtok": "2",
                    "per_request": "0.0125",
                }
            ],
        },
        {"model": "fee-only", "prices": [{"effective_from": "2025-01-01", "per_request": "0.5"}]},
        {"model": "output-only", "prices": [{"effective_from": "2025-01-01", "output_mtok": "4"}]},
        {
            "model": "images",
            "prices": [{"effective_from": "2025-06-01", "per_image": "0.04", "input_mtok": "1"}],
        },
    ],
    provider="edge",
)
OVERRIDES = [
    {
        "id": "widget-cut",
        "provider": "acme",
        "model": "widget-1",
        "prices": {"input_mtok": "0.7", "output_mtok": "2.8"},
        "effective_from": "2025-06-15",
    },
    {
        "id": "edge-all",
        "provider": "edge",
        "model": "*",
        "prices": {"input_mtok": "0.1", "cache_read_mtok": "0.01"},
        "effective_from": "2026-01-01",
    },
    {
        "id": "sim-demo",
        "provider": "sim",
        "model": "sim/demo",
        "prices": {"input_mtok": "0.5", "output_mtok": "2.5", "per_request": "0.001"},
        "effective_from": "2025-06-01",
    },
    {
        "id": "any-embedder",
        "provider": "*",
        "model": "*embed*",
        "prices": {"per_embedding": "0.0001"},
        "effective_from": "2025-01-01",
    },
]
PROVIDERS: list[Any] = [
    None,
    "acme",
    "edge",
    "bedrock",
    "AWS",
    "openai",
    " OpenAI ",
    "anthropic",
    "deepseek",
    "sim",
    "up",
    "",
    42,
]
MODELS: list[Any] = [
    "widget-1",
    "long-context",
    "input-only",
    "painter",
    "embedder",
    "tiny",
    "cheap",
    "tiered",
    "precise",
    "fee",
    "fee-only",
    "images",
    "mystery-model",
    HAIKU,
    "anthropic.claude-3-5-haiku-20241022-v1:0",
    "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3",
    "amazon.nova-lite-v1:0",
    "amazon.titan-embed-text-v2:0",
    "gpt-4o-mini",
    "openai/gpt-4o-mini",
    "o3",
    "claude-sonnet-4-5",
    "deepseek-chat",
    "sim/demo",
    "demo",
    "text-embedding-3-small",
    "bench-1k",
    "",
    "   ",
    None,
    ["not", "a", "name"],
]
STAMPS: list[Any] = [
    # either side of the data files' and overrides' dates, and of o3's price cut
    "2024-12-31T23:59:59.999Z",
    "2025-01-01T00:00:00Z",
    "2025-05-31T23:59:59.999999Z",
    "2025-06-01T00:00:00.000Z",
    "2025-06-09T23:59:59Z",
    "2025-06-10T00:00:00Z",
    "2025-06-14T23:59:59.5Z",
    "2025-06-15T00:00:00Z",
    "2025-12-31T23:59:59Z",
    "2026-01-01T00:00:00.000001Z",
    # either side of DeepSeek's off-peak hours, on one day
    "2025-07-01T00:29:59Z",
    "2025-07-01T00:30:00Z",
    "2025-07-01T16:29:59.999Z",
    "2025-07-01T16:30:00Z",
    "2025-07-01T23:00:00Z",
    # offsets, whose UTC day is another one, and other spellings
    "2025-06-01T01:00:00+02:00",
    "2025-05-31T23:30:00-01:00",
    "2025-06-01T00:00:00+00:00",
    "2025-06-01T00:00:00",
    "2025-06-01 00:00:00Z",
    "2025-06-01T00:00:00.1234567Z",
    "2025-06-01T00:00:00,5Z",
    " 2025-06-01T00:00:00Z",
    "2025-06-01T00:00:00Z ",
    "20250601T000000Z",
    "2025-06-01",
    # not timestamps at all, or out of range
    "2025-06-01T00:00:60Z",
    "2025-02-30T00:00:00Z",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "yesterday",
    "",
    None,
    1_750_000_000,
    datetime(2025, 6, 1, tzinfo=UTC),
    datetime(2025, 5, 31, 23, 59, 59),
    datetime(2025, 6, 1, 1, tzinfo=timezone(timedelta(hours=2))),
    datetime(2025, 7, 1, 16, 30, tzinfo=UTC),
    datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1))),  # no UTC for it: internal_error
]
COUNTS: list[Any] = [
    "absent",
    None,
    0,
    7,
    1000,
    150_000,
    2**62,
    2**63 - 1,
    2**63,
    -1,
    1.5,
    1000.0,
    True,
    "12",
]
# (provider, model) as records of a known model name them
PRICED = [
    ("acme", "widget-1"),
    ("acme", "long-context"),
    ("acme", "tiny"),
    ("edge", "cheap"),
    ("edge", "tiered"),
    ("edge", "fee"),
    ("edge", "fee-only"),
    ("edge", "output-only"),
    ("edge", "images"),
    ("edge", "precise"),
    ("bedrock", HAIKU),
    (None, "amazon.nova-lite-v1:0"),
    ("openai", "gpt-4o-mini"),
    ("openai", "o3"),
    ("anthropic", "claude-sonnet-4-5"),
    ("deepseek", "deepseek-chat"),
    ("sim", "sim/demo"),
    ("up", "bench-1k"),
]
OPERATIONS: list[Any] = [
    "ChatCompletions",
    "Converse",
    "ConverseStream",
    "Messages",
    "Embeddings",
    "InvokeModel",
    "Chat",
    None,
    ["not", "hashable"],
]


def varied_record(rng: random.Random) -> Any:
    """A record of any provider, model, time, counts and sections the two ways must agree on."""
    doc: dict[str, Any] = {"schemaType": "ModelInvocationLog", "requestId": "varied"}
    for key, choices in (
        ("provider", PROVIDERS),
        ("modelId", MODELS),
        ("timestamp", STAMPS),
        ("operation", OPERATIONS),
    ):
        if rng.random() < 0.95:
            doc[key] = rng.choice(choices)
    if rng.random() < 0.5:
        doc["provider"], doc["modelId"] = rng.choice(PRICED)
        doc["timestamp"] = rng.choice(STAMPS[:15])
    if rng.random() < 0.3:
        doc["resolvedModelId"] = rng.choice(MODELS)
    inp: dict[str, Any] = {}
    out: dict[str, Any] = {}
    common = rng.random() < 0.6  # mostly the plain counts a gateway or Bedrock writes
    for section, key in (
        (inp, "inputTokenCount"),
        (out, "outputTokenCount"),
        (inp, "cacheReadInputTokenCount"),
        (inp, "cacheWriteInputTokenCount"),
    ):
        value = rng.choice(COUNTS[:7] if common else COUNTS)
        if value != "absent":
            section[key] = value
    if rng.random() < 0.15:
        out["outputBodyJson"] = rng.choice(
            [{"images": ["aGk="] * 3}, {"data": [{}, {}]}, {"embedding": [0.1]}, {"text": "hi"}]
        )
    if rng.random() < 0.05:
        out["outputImageCount"] = rng.choice([2, -1, 1.0])
    for key, section in (("input", inp), ("output", out)):
        roll = rng.random()
        if roll < 0.9:
            doc[key] = section
        elif roll < 0.95:
            doc[key] = rng.choice([None, [], "text", 3])
    return doc


def assert_same_cost(doc: Any, table: PriceTable) -> CostResult:
    general = uncached_cost_of(doc, table)
    fast = cost_of(doc, table)
    # repr, not ==: Decimal('0E-9') and Decimal('0') are equal but are stored differently
    assert repr(fast) == repr(general), doc
    stored = general.to_dict(money_as_text=True)
    assert list(cost_dict(doc, table).items()) == list(stored.items()), doc
    assert list(fast.to_dict(money_as_text=True).items()) == list(stored.items()), doc
    return general


def test_the_fast_way_prices_every_record_as_the_general_way_does() -> None:
    tables = [
        PriceTable(files=[ACME, EDGE, *PINNED_FILES]),
        PriceTable(OVERRIDES, files=[ACME, EDGE], provider_aliases={"up": "openai"}),
        PriceTable(provider_aliases={"up": "openai", "acme": "openai"}),
    ]
    rng = random.Random(20261120)
    docs = [varied_record(rng) for _ in range(3000)]
    fast_priced: dict[str, int] = {}
    reasons: set[str | None] = set()
    for table in tables:
        for _ in range(2):  # the second time every lookup comes from the table's memo
            for doc in docs:
                cost = assert_same_cost(doc, table)
                reasons.add(cost.reason)
                if cost.priced and _fast(doc, table) is not None:
                    version = cost.price_version or ""
                    fast_priced[version] = fast_priced.get(version, 0) + 1
            rng.shuffle(docs)
    assert reasons >= {
        None,
        "no_model",
        "no_timestamp",
        "no_token_counts",
        "bad_token_counts",
        "inconsistent_token_counts",
        "no_price",
        "incomplete_price",
        "no_image_count",
        "internal_error",
    }
    # the fast way did price most kinds of price, not only hand records on
    assert any(v.startswith("override:") for v in fast_priced)
    assert any(v.startswith("llmtrail:edge:tiered") for v in fast_priced)
    assert any(v.startswith("llmtrail:edge:fee@") for v in fast_priced)
    assert sum(1 for v in fast_priced if "deepseek" in v) == 2  # peak and off-peak
    assert sum(fast_priced.values()) > len(docs) // 2


def test_a_price_version_boundary_within_the_memo() -> None:
    table = PriceTable(OVERRIDES, files=[ACME, EDGE], genai=True)
    days = [datetime(2025, 1, 1, tzinfo=UTC) + timedelta(hours=7 * i) for i in range(6000)]
    for at in days:  # more days than the memo holds: it empties and refills
        for model, provider in (("widget-1", "acme"), ("deepseek-chat", "deepseek")):
            stamp = at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            assert_same_cost(record(model, provider, stamp, inp=1000, out=10), table)
    assert len(table._by_day) <= 4096


def test_the_day_memo_answers_as_lookup_any() -> None:
    table = PriceTable(OVERRIDES, files=[ACME, EDGE])
    rng = random.Random(7)
    for _ in range(2000):
        provider = rng.choice([p for p in PROVIDERS if not isinstance(p, int)])
        names = (rng.choice(MODELS[:-1]), rng.choice(MODELS[:-1]))
        at = datetime(2025, 5, 30, tzinfo=UTC) + timedelta(minutes=rng.randrange(0, 60 * 24 * 40))
        assert table.lookup_on_day(provider, names, at) == table.lookup_any(provider, names, at)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ODD_RECORDS)
def test_odd_records_cost_the_same_both_ways(doc: dict[str, Any]) -> None:
    assert_same_cost(doc, BOTH)
