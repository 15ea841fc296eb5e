"""Contract suite for RecordStore: every backend passes the same tests."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta

import pytest

from llmtrail.errors import ValidationError
from llmtrail.record import InvocationRecord
from llmtrail.store.interfaces import RecordQuery, RecordStore
from tests.conftest import bedrock_fixture_lines

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def make(i: int, **extra: object) -> InvocationRecord:
    doc = {
        "schemaType": "ModelInvocationLog",
        "schemaVersion": "1.0",
        "timestamp": (T0 + timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "requestId": f"req-{i}",
        "operation": "ChatCompletions",
        "modelId": "sim/a" if i % 2 else "sim/b",
        "requestMetadata": {"tenant_id": f"t{i % 3}", "feature": f"f{i % 2}"},
        "input": {"inputTokenCount": i, "inputBodyJson": {"messages": [{"content": f"hi {i}"}]}},
        "output": {"outputTokenCount": 2 * i},
        "latencyMs": 10 + i,
        **extra,
    }
    return InvocationRecord.from_dict(doc, source="gateway")


def test_bedrock_fixtures_round_trip(record_store: RecordStore) -> None:
    docs = [json.loads(line) for line in bedrock_fixture_lines()]
    records = [InvocationRecord.from_dict(copy.deepcopy(d)) for d in docs]
    record_store.append(records)
    for doc in docs:
        got = record_store.get(doc["requestId"])
        assert got is not None
        assert got.to_dict("bedrock") == doc
        assert got.data["provider"] == "bedrock"
        assert got.data["status"] == ("ERROR" if "errorCode" in doc else "OK")


def test_unknown_keys_at_any_depth_survive(record_store: RecordStore) -> None:
    record = make(1, futureKey={"a": [1, 2]}, identity={"arn": "x", "principalType": "user"})
    record.data["input"]["newInputKey"] = "kept"
    record.data["output"]["outputVideoS3Path"] = "s3://b/v.mp4"
    expected = copy.deepcopy(record.data)
    record_store.append([record])
    got = record_store.get("req-1")
    assert got is not None and got.data == expected


def test_timestamp_precision_is_kept(record_store: RecordStore) -> None:
    for i, ts in enumerate(
        ["2026-11-23T10:00:00Z", "2026-11-23T10:00:00.123456Z", "2026-11-23T11:00:00+01:00"]
    ):
        r = make(100 + i)
        r.data["timestamp"] = ts
        record_store.append([r])
        got = record_store.get(f"req-{100 + i}")
        assert got is not None and got.data["timestamp"] == ts
        assert got.timestamp == datetime.fromisoformat(ts.replace("Z", "+00:00"))


def test_find_filters_and_orders_newest_first(record_store: RecordStore) -> None:
    record_store.append([make(i) for i in range(10)])
    page = record_store.find(RecordQuery(limit=100))
    assert [r.request_id for r in page.records] == [f"req-{i}" for i in reversed(range(10))]
    assert page.next_cursor is None
    only_a = record_store.find(RecordQuery(model_id="sim/a"))
    assert {r.data["modelId"] for r in only_a.records} == {"sim/a"} and len(only_a.records) == 5
    t1 = record_store.find(RecordQuery(metadata=(("tenant_id", "t1"),)))
    assert sorted(r.request_id for r in t1.records) == ["req-1", "req-4", "req-7"]
    f0 = record_store.find(RecordQuery(metadata=(("feature", "f0"), ("tenant_id", "t0"))))
    assert sorted(r.request_id for r in f0.records) == ["req-0", "req-6"]
    window = record_store.find(
        RecordQuery(start=T0 + timedelta(seconds=2), end=T0 + timedelta(seconds=5))
    )
    assert sorted(r.request_id for r in window.records) == ["req-2", "req-3", "req-4"]
    assert record_store.find(RecordQuery(workspace="other")).records == []


def test_cursor_paging_visits_each_record_once(record_store: RecordStore) -> None:
    records = [make(i) for i in range(25)]
    records[5].data["timestamp"] = records[6].data["timestamp"]  # a tie broken by recordId
    record_store.append(records)
    seen: list[str] = []
    cursor = None
    while True:
        page = record_store.find(RecordQuery(limit=7, cursor=cursor))
        seen += [r.request_id for r in page.records]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert sorted(seen) == sorted(r.request_id for r in records)
    assert len(seen) == len(set(seen)) == 25


def test_bad_cursor_is_a_validation_error(record_store: RecordStore) -> None:
    with pytest.raises(ValidationError) as err:
        record_store.find(RecordQuery(cursor="!!not-a-cursor"))
    assert err.value.field == "cursor"


def test_position_commits_with_batch(record_store: RecordStore) -> None:
    assert record_store.committed_position() is None
    record_store.append([make(1)], position="1:100")
    assert record_store.committed_position() == "1:100"
    record_store.append([make(2)], position="1:200")
    assert record_store.committed_position() == "1:200"
    record_store.append([make(3)])
    assert record_store.committed_position() == "1:200"


def test_without_bodies(record_store: RecordStore) -> None:
    record_store.append([make(1)])
    page = record_store.find(RecordQuery(with_bodies=False))
    assert "inputBodyJson" not in page.records[0].data["input"]
    assert page.records[0].data["input"]["inputTokenCount"] == 1
    full = record_store.get("req-1")
    assert full is not None
    assert full.data["input"]["inputBodyJson"] == {"messages": [{"content": "hi 1"}]}


def test_recent_request_ids_and_ingestion_order(record_store: RecordStore) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    record_store.append([make(3), make(1)])
    record_store.append([make(2)])
    assert sorted(record_store.recent_request_ids(before, 100)) == [
        ("default", "req-1"),
        ("default", "req-2"),
        ("default", "req-3"),
    ]
    assert record_store.recent_request_ids(datetime.now(UTC) + timedelta(hours=1), 100) == []
    assert record_store.recent_request_ids(before, 1) == [("default", "req-2")]
    followed = record_store.find(RecordQuery(ingested_after=before, order="ingested"))
    assert [r.request_id for r in followed.records][-1] == "req-2"


def test_following_in_ingestion_order_with_a_cursor(record_store: RecordStore) -> None:
    record_store.append([make(i) for i in range(5)])  # one batch: one ingestion time
    first = record_store.find(RecordQuery(order="ingested", limit=3))
    assert len(first.records) == 3 and first.next_cursor
    rest = record_store.find(RecordQuery(order="ingested", limit=3, cursor=first.next_cursor))
    assert len(rest.records) == 2
    ids = [r.request_id for r in first.records + rest.records]
    assert sorted(ids) == [f"req-{i}" for i in range(5)]
    idle = record_store.find(RecordQuery(order="ingested", cursor=rest.next_cursor))
    assert idle.records == [] and idle.next_cursor == rest.next_cursor
    record_store.append([make(7)])
    more = record_store.find(RecordQuery(order="ingested", cursor=idle.next_cursor))
    assert [r.request_id for r in more.records] == ["req-7"]


def test_explicit_nulls_survive(record_store: RecordStore) -> None:
    record = make(1, errorCode=None)
    record.data["output"] = {"outputTokenCount": None}
    expected = copy.deepcopy(record.data)
    record_store.append([record])
    got = record_store.get("req-1")
    assert got is not None and got.data == expected


def test_get_missing_is_none(record_store: RecordStore) -> None:
    assert record_store.get("nope") is None


def test_recent_calls_and_stored_request_ids_for_servers_sharing_a_store(
    record_store: RecordStore,
) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    traced = make(
        2,
        source="gateway",
        responseId="chatcmpl-2",
        trace={"traceId": "a" * 32, "spanId": "b" * 16, "parentSpanId": "c" * 16},
    )
    record_store.append([make(1), traced])
    record_store.append([InvocationRecord.from_dict(make(3).data, workspace="other")])
    calls = record_store.recent_calls(before, 100)
    assert [(c.workspace, c.request_id) for c in calls][-1] == ("other", "req-3")
    gateway = next(c for c in calls if c.request_id == "req-2")
    assert (gateway.source, gateway.trace_id, gateway.parent_span_id, gateway.response_id) == (
        "gateway",
        "a" * 32,
        "c" * 16,
        "chatcmpl-2",
    )
    assert gateway.ingested_at is not None and gateway.ingested_at >= before
    assert record_store.recent_calls(datetime.now(UTC) + timedelta(hours=1), 100) == []
    asked = [("default", "req-1"), ("other", "req-1"), ("other", "req-3"), ("default", "no")]
    assert record_store.stored_request_ids(asked, before) == {
        ("default", "req-1"),
        ("other", "req-3"),
    }
    assert record_store.stored_request_ids(asked, datetime.now(UTC) + timedelta(hours=1)) == set()
    assert record_store.stored_request_ids([], before) == set()
