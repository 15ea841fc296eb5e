"""Records imported or received over OTLP get the cost and character counts they lack, as
derived additions: the Bedrock view of an imported log is still the log as it came."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from llmtrail.capture.enrich import Enricher, enriched
from llmtrail.record import InvocationRecord

FIXTURES = Path(__file__).parent / "fixtures" / "bedrock-invocation-logs.jsonl"


def test_imported_bedrock_logs_are_priced_and_still_serialise_back() -> None:
    docs = [json.loads(line) for line in FIXTURES.read_text().splitlines() if line.strip()]
    records = [InvocationRecord.from_dict(json.loads(json.dumps(d)), source="ingest") for d in docs]
    out = enriched(records, Enricher())
    priced = 0
    for doc, record in zip(docs, out, strict=True):
        cost = record.data["cost"]
        assert "totalUsd" in cost or cost["reason"]
        if "totalUsd" in cost:
            priced += 1
            parts = ("inputUsd", "outputUsd", "cacheReadUsd", "cacheWriteUsd", "otherUsd")
            assert Decimal(cost["totalUsd"]) == sum(Decimal(cost.get(k, "0")) for k in parts)
            assert cost["priceVersion"]
        assert record.to_dict("bedrock") == doc
    assert priced >= 1


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
