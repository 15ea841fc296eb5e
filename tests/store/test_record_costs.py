"""Contract suite for `RecordStore.set_costs` (re-pricing history): every backend rewrites
exactly the cost blocks it is given, keeps the rest of each record, and skips unknown ids."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from llmtrail.errors import ValidationError
from llmtrail.record import InvocationRecord
from llmtrail.store.interfaces import RecordQuery, RecordStore

T0 = datetime(2026, 10, 5, 9, 0, tzinfo=UTC)


def priced(total: str, version: str = "v1", other: str = "0.000000000") -> dict[str, Any]:
    """A cost block as `CostResult.to_dict(money_as_text=True)` writes it (nine decimals)."""
    return {
        "inputUsd": "0.000001000",
        "outputUsd": "0.000002000",
        "cacheReadUsd": "0.000000000",
        "cacheWriteUsd": "0.000000000",
        "otherUsd": other,
        "totalUsd": total,
        "priceVersion": version,
    }


def make(i: int, cost: dict[str, Any] | None, workspace: str = "default") -> InvocationRecord:
    doc: dict[str, Any] = {
        "schemaType": "ModelInvocationLog",
        "schemaVersion": "1.0",
        "timestamp": (T0 + timedelta(minutes=i)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "requestId": f"cost-{workspace}-{i}",
        "operation": "Converse",
        "modelId": "sim/costs",
        "provider": "sim",
        "requestMetadata": {"tenant_id": f"t{i % 2}", "feature": "x"},
        "input": {"inputTokenCount": 10 * i, "inputBodyJson": {"messages": [{"content": "q"}]}},
        "output": {"outputTokenCount": i, "outputBodyJson": {"output": {"text": "a"}}},
        "inferenceProfile": {"arn": "arn:p", "name": "p", "tags": {"dept": "claims"}},
        "futureKey": {"kept": True},
    }
    if cost is not None:
        doc["cost"] = cost
    return InvocationRecord.from_dict(doc, workspace=workspace, source="gateway")


def stored(store: RecordStore, request_id: str, workspace: str = "default") -> dict[str, Any]:
    record = store.get(request_id, workspace)
    assert record is not None
    return record.data


def test_set_costs_rewrites_exactly_the_given_records(record_store: RecordStore) -> None:
    records = [
        make(0, priced("0.000003000")),
        make(1, priced("0.000003000", other="0.000000500")),
        make(2, {"reason": "no_price"}),
        make(3, None),
        make(4, priced("0.000003000")),
    ]
    record_store.append(records)
    before = {r.request_id: copy.deepcopy(stored(record_store, r.request_id)) for r in records}
    new_priced = priced("0.000010000", version="override:cheap", other="0.000007000")
    updated = record_store.set_costs(
        {
            records[0].record_id: new_priced,  # priced → repriced, otherUsd now set
            records[1].record_id: {"reason": "no_price"},  # priced → unpriced: otherUsd goes
            records[2].record_id: priced("0.000004000"),  # unpriced → priced
            records[3].record_id: None,  # no cost stays none
            "0190aaaa-0000-7000-8000-000000000000": priced("1.000000000"),  # unknown: skipped
        }
    )
    assert updated == 4
    expected = {
        "cost-default-0": new_priced,
        "cost-default-1": {"reason": "no_price"},
        "cost-default-2": priced("0.000004000"),
    }
    for request_id, old in before.items():
        now = stored(record_store, request_id)
        want = copy.deepcopy(old)
        want.pop("cost", None)
        if request_id in expected:
            want["cost"] = expected[request_id]
        elif request_id == "cost-default-4":
            want["cost"] = old["cost"]  # not named: untouched
        assert now == want, request_id


def test_set_costs_amounts_read_back_exactly(record_store: RecordStore) -> None:
    record = make(0, None)
    record_store.append([record])
    amount = "12345.123456789"
    block = {**priced(amount), "inputUsd": "0.000000001", "outputUsd": "12345.123456788"}
    assert record_store.set_costs({record.record_id: block}) == 1
    cost = stored(record_store, "cost-default-0")["cost"]
    assert cost == block
    assert Decimal(cost["inputUsd"]) + Decimal(cost["outputUsd"]) == Decimal(amount)


def test_set_costs_stays_in_its_workspace(record_store: RecordStore) -> None:
    mine, theirs = make(0, priced("0.000003000")), make(0, priced("0.000003000"), "other")
    record_store.append([mine, theirs])
    assert record_store.set_costs({theirs.record_id: {"reason": "no_price"}}) == 0
    assert record_store.set_costs({theirs.record_id: {"reason": "no_price"}}, "other") == 1
    assert stored(record_store, "cost-default-0")["cost"]["totalUsd"] == "0.000003000"
    assert stored(record_store, "cost-other-0", "other")["cost"] == {"reason": "no_price"}


def test_set_costs_keeps_listing_and_other_columns(record_store: RecordStore) -> None:
    records = [make(i, priced("0.000003000")) for i in range(6)]
    record_store.append(records)
    changes = {r.record_id: priced(f"0.00000{i}000", f"v{i}") for i, r in enumerate(records)}
    assert record_store.set_costs(changes) == 6
    assert record_store.set_costs({}) == 0
    page = record_store.find(RecordQuery(limit=10, metadata=(("tenant_id", "t1"),)))
    assert [r.request_id for r in page.records] == [
        "cost-default-5",
        "cost-default-3",
        "cost-default-1",
    ]
    for record in page.records:
        i = int(record.request_id.rsplit("-", 1)[1])
        assert record.data["cost"]["priceVersion"] == f"v{i}"
        assert record.data["input"]["inputTokenCount"] == 10 * i
        assert record.data["inferenceProfile"]["tags"] == {"dept": "claims"}
        assert record.data["futureKey"] == {"kept": True}


BAD_BLOCKS: list[tuple[dict[str, Any], str]] = [
    ({"totalUsd": "lots"}, "cost.totalUsd"),
    ({"totalUsd": "NaN"}, "cost.totalUsd"),
    ({"inputUsd": "0.0000000001"}, "cost.inputUsd"),  # finer than the columns hold
    ({"outputUsd": "1e30"}, "cost.outputUsd"),
    ({"priceVersion": 3}, "cost.priceVersion"),
]


def test_bad_amounts_are_refused_and_nothing_changes(record_store: RecordStore) -> None:
    record, other = make(0, priced("0.000003000")), make(1, priced("0.000003000"))
    record_store.append([record, other])
    for block, field in BAD_BLOCKS:
        with pytest.raises(ValidationError) as caught:  # the good change fails with the bad
            record_store.set_costs({other.record_id: {"reason": "x"}, record.record_id: block})
        assert caught.value.field == field
        assert stored(record_store, "cost-default-0")["cost"] == priced("0.000003000")
        assert stored(record_store, "cost-default-1")["cost"] == priced("0.000003000")
