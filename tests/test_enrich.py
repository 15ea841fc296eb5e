"""Records imported or received over OTLP get the cost and character counts they lack, as
derived additions: the Bedrock view of an imported log is still the log as it came."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from llmtrail.pipeline.enrich import Enricher, enriched
from llmtrail.pricing.body_text import input_chars, input_text, output_chars, output_text
from llmtrail.pricing.cost import uncached_cost_of
from llmtrail.record import InvocationRecord

FIXTURES = Path(__file__).parent / "fixtures" / "bedrock-invocation-logs.jsonl"


# A price of the test's own for every Bedrock model: the genai-prices snapshot's prices change
# with each release of that package. USD per million tokens.
FIXTURE_PRICE = {
    "id": "imported",
    "provider": "bedrock",
    "model": "*",
    "prices": {"input_mtok": "1", "output_mtok": "5"},
    "effective_from": "2020-01-01",
}


def test_imported_bedrock_logs_are_priced_and_still_serialise_back() -> None:
    docs = [json.loads(line) for line in FIXTURES.read_text().splitlines() if line.strip()]
    records = [InvocationRecord.from_dict(json.loads(json.dumps(d)), source="ingest") for d in docs]
    out = enriched(records, Enricher(lambda: [FIXTURE_PRICE]))
    assert len(out) == len(docs) >= 4
    for doc, record in zip(docs, out, strict=True):
        cost = record.data["cost"]
        inp = doc["input"].get("inputTokenCount", 0)
        out_tokens = doc["output"].get("outputTokenCount", 0)
        expected = (Decimal(inp) * 1 + Decimal(out_tokens) * 5) / 1_000_000
        assert (Decimal(cost["totalUsd"]), cost["priceVersion"]) == (expected, "override:imported")
        parts = ("inputUsd", "outputUsd", "cacheReadUsd", "cacheWriteUsd", "otherUsd")
        assert Decimal(cost["totalUsd"]) == sum(Decimal(cost.get(k, "0")) for k in parts)
        assert record.to_dict("bedrock") == doc


def test_a_record_that_carries_its_own_cost_keeps_it() -> None:
    doc = {
        "timestamp": "2026-11-01T00:00:00Z",
        "requestId": "own-cost",
        "modelId": "sim/demo",
        "provider": "sim",
        "input": {"inputTokenCount": 1000},
        "output": {"outputTokenCount": 1000},
        "cost": {"totalUsd": "1.5", "priceVersion": "contract"},
    }
    record = InvocationRecord.from_dict(doc, source="ingest")
    (same,) = enriched([record], Enricher())
    assert same.data["cost"] == {"totalUsd": "1.5", "priceVersion": "contract"}


# -- character counts and the cost block, the fast way against the general way --------------

KEYS = sorted(
    {"system", "messages", "content", "text", "choices", "message", "output", "results"}
    | {"outputs", "generations", "completion", "generation", "outputText", "prompt"}
    | {"inputText", "input", "texts", "instructions", "role", "images", "other"}
)
BODY_LEAF = st.one_of(st.none(), st.integers(), st.booleans(), st.text(max_size=12))
BODIES = st.recursive(
    BODY_LEAF,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(KEYS), inner, max_size=5)
    ),
    max_leaves=25,
)


def json_objects(value: Any) -> Iterator[Any]:
    """Every object (dict) within ``value``, itself included."""
    if isinstance(value, dict):
        yield value
        for item in value.values():
            yield from json_objects(item)
    elif isinstance(value, list):
        for item in value:
            yield from json_objects(item)


def fixture_objects() -> list[Any]:
    root = Path(__file__).parent / "fixtures"
    found = [json.loads(line) for line in FIXTURES.read_text().splitlines() if line.strip()]
    found += [json.loads(p.read_text()) for p in sorted(root.glob("*/**/*.json"))]
    return [obj for doc in found for obj in json_objects(doc)]


def test_character_counts_are_the_lengths_of_the_texts() -> None:
    objects = fixture_objects()
    assert len(objects) > 100
    counted = 0
    for body in objects:
        assert input_chars(body) == len(input_text(body)), body
        assert output_chars(body) == len(output_text(body)), body
        counted += bool(input_chars(body)) + bool(output_chars(body))
    assert counted > 20  # the fixtures' bodies do hold text
    for odd in (None, "text", ["a", "b"], 7, {"messages": "not a list"}, {"choices": [None, 1]}):
        assert (input_chars(odd), output_chars(odd)) == (
            len(input_text(odd)),
            len(output_text(odd)),
        )


@settings(max_examples=300, deadline=None)
@given(BODIES)
def test_character_counts_of_any_body(body: Any) -> None:
    assert input_chars(body) == len(input_text(body))
    assert output_chars(body) == len(output_text(body))


def gateway_doc(i: int, provider: str, model: str, operation: str) -> dict[str, Any]:
    """A record as the gateway writes one (`capture.gateway.facts.record_of`)."""
    request = {
        "model": model,
        "messages": [
            {"role": "system", "content": "You are terse. " * (1 + i % 3)},
            {"role": "user", "content": [{"type": "text", "text": "Refund order 4711?"}]},
        ],
    }
    response = {
        "id": f"resp-{i}",
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Yes." * i}}],
    }
    inp: dict[str, Any] = {"inputContentType": "application/json", "inputBodyJson": request}
    out: dict[str, Any] = {"outputContentType": "application/json", "outputBodyJson": response}
    if i % 5:
        inp["inputTokenCount"] = 100 + i
        out["outputTokenCount"] = 7 * i
    if i % 3 == 0:
        inp["cacheReadInputTokenCount"] = 64 + i
    if i % 7 == 0:
        inp["cacheWriteInputTokenCount"] = 32
    return {
        "schemaType": "ModelInvocationLog",
        "schemaVersion": "1.0",
        "timestamp": f"2026-11-{1 + i % 28:02d}T{i % 24:02d}:00:00.{i % 1000:03d}Z",
        "requestId": f"req-{i}",
        "operation": operation,
        "modelId": model,
        "input": inp,
        "output": out,
        "recordId": f"rec-{i}",
        "source": "gateway",
        "status": "SUCCESS",
        "provider": provider,
        "resolvedModelId": model,
    }


def test_the_enricher_adds_what_the_general_way_computes() -> None:
    enrich = Enricher(lambda: [FIXTURE_PRICE], {"corp-openai": "openai"})
    docs = [json.loads(line) for line in FIXTURES.read_text().splitlines() if line.strip()]
    for i in range(200):
        provider, model, operation = [
            ("openai", "gpt-4o-mini", "ChatCompletions"),
            ("corp-openai", "gpt-4o", "ChatCompletions"),
            ("sim", "sim/demo", "ChatCompletions"),
            ("anthropic", "claude-3-5-haiku-20241022", "Messages"),
            ("deepseek", "deepseek-chat", "ChatCompletions"),
            ("corp-openai", "bench-1k", "ChatCompletions"),
            ("bedrock", "us.anthropic.claude-3-5-haiku-20241022-v1:0", "Converse"),
        ][i % 7]
        docs.append(gateway_doc(i, provider, model, operation))
    priced = 0
    for doc in docs:
        enriched_doc = dict(doc)
        enrich(enriched_doc)
        expected = uncached_cost_of(doc, enrich.table).to_dict(money_as_text=True)
        assert list(enriched_doc["cost"].items()) == list(expected.items())
        chars = {}
        if doc["input"].get("inputBodyJson") is not None:
            chars["input"] = len(input_text(doc["input"]["inputBodyJson"]))
        if doc["output"].get("outputBodyJson") is not None:
            chars["output"] = len(output_text(doc["output"]["outputBodyJson"]))
        assert enriched_doc.get("textCharacters") == (chars or None)
        priced += "totalUsd" in expected
    assert priced > 100
