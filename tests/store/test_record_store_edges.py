"""Contract suite, edge cases that differ most between engines: empty maps (ClickHouse has no
NULL map), map look-ups of missing keys, ids that need quoting, far-away timestamps."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import pytest

from llmtrail.record import InvocationRecord
from llmtrail.store.interfaces import RecordQuery, RecordStore


def make(request_id: str, **extra: object) -> InvocationRecord:
    doc = {"requestId": request_id, "timestamp": "2026-11-23T10:00:00.000Z", **extra}
    return InvocationRecord.from_dict(doc, source="gateway")


def test_empty_maps_and_absent_maps_stay_apart(record_store: RecordStore) -> None:
    records = [
        make("empty-meta", requestMetadata={}),
        make("empty-headers", requestHeaders={}),
        make("no-maps"),
        make("only-promoted", requestMetadata={"tenant_id": "t1"}),
        make("mixed", requestMetadata={"tenant_id": "t1", "feature": "f"}),
    ]
    expected = {r.request_id: copy.deepcopy(r.data) for r in records}
    record_store.append(records)
    for request_id, doc in expected.items():
        got = record_store.get(request_id)
        assert got is not None and got.data == doc, request_id
    page = record_store.find(RecordQuery(with_bodies=False))
    assert {r.request_id: r.data for r in page.records} == expected


def test_a_metadata_filter_never_matches_a_missing_key(record_store: RecordStore) -> None:
    record_store.append(
        [
            make("has-empty", requestMetadata={"feature": ""}),
            make("lacks", requestMetadata={"other": "x"}),
            make("none"),
        ]
    )
    found = record_store.find(RecordQuery(metadata=(("feature", ""),)))
    assert [r.request_id for r in found.records] == ["has-empty"]
    promoted = record_store.find(RecordQuery(metadata=(("tenant_id", ""),)))
    assert promoted.records == []


@pytest.mark.parametrize("request_id", ["it's", 'back\\slash "quoted"', "ünïcødé-{x:String}"])
def test_ids_that_need_quoting(record_store: RecordStore, request_id: str) -> None:
    record = make(request_id, modelId="m'1")
    record_store.append([record])
    got = record_store.get(request_id)
    assert got is not None and got.data == record.data
    assert [r.request_id for r in record_store.find(RecordQuery(model_id="m'1")).records] == [
        request_id
    ]


def test_far_timestamps_round_trip_and_order(record_store: RecordStore) -> None:
    stamps = ["0002-01-01T00:00:00.000Z", "1899-12-31T23:59:59.999999Z", "9998-12-31T00:00:00Z"]
    record_store.append([make(f"far-{i}", timestamp=ts) for i, ts in enumerate(stamps)])
    for i, ts in enumerate(stamps):
        got = record_store.get(f"far-{i}")
        assert got is not None and got.data["timestamp"] == ts
    newest = record_store.find(RecordQuery())
    assert [r.request_id for r in newest.records] == ["far-2", "far-1", "far-0"]
    old = record_store.find(RecordQuery(end=datetime(1900, 1, 1, tzinfo=UTC)))
    assert [r.request_id for r in old.records] == ["far-1", "far-0"]
