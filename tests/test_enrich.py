"""Records imported or received over OTLP get the cost and character counts they lack, as
derived additions: the Bedrock view of an imported log is still the log as it came."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from llmtrail.pipeline.enrich import Enricher, enriched
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
