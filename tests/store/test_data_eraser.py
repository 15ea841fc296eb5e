"""The `DataEraser` contract on every backend (memory, DuckDB, ClickHouse on chdb): selections
match what they say and nothing of another workspace, pages cover everything once, deletes
take records with their bodies (or only the bodies), spans go by trace, user and age, and a
tenant's rollup rows go while the other tenants' stay."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from llmtrail.metrics.dimensions import dimension_set
from llmtrail.record import InvocationRecord
from llmtrail.span import Span
from llmtrail.store.interfaces import (
    DataEraser,
    MetricStore,
    RecordQuery,
    RecordSelection,
    RecordStore,
    SpanSelection,
)

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
BACKENDS = ["memory", "duckdb", "clickhouse"]


@dataclass
class Backend:
    name: str
    records: RecordStore
    eraser: DataEraser
    add_spans: Any
    metric_store: MetricStore | None


def _docs() -> list[dict[str, Any]]:
    out = []
    for i in range(40):
        ws = "w1" if i % 4 else "w2"
        doc: dict[str, Any] = {
            "timestamp": (NOW - timedelta(days=i)).isoformat().replace("+00:00", "Z"),
            "requestId": f"req-{i}",
            "workspace": ws,
            "modelId": "m-small",
            "operation": "Converse",
            "requestMetadata": {"user_id": f"u{i % 3}", "tenant_id": f"t{i % 2}"},
            "input": {"inputTokenCount": i},
            "output": {"outputTokenCount": 2 * i},
            "status": "OK",
            "latencyMs": 100 + i,
            "trace": {"traceId": f"{i:032x}", "spanId": f"{i:016x}"},
        }
        if i % 5 == 0:
            doc["input"]["inputBodyJson"] = {"messages": [f"hello from u{i % 3}"]}
        if i % 7 == 0:
            doc["output"]["outputBodyS3Path"] = f"s3://llmtrail/x/{i}_output.json.gz"
        out.append(doc)
    return out


def _spans() -> list[Span]:
    spans = []
    for i in range(12):
        spans.append(
            Span(
                trace_id=f"{i:032x}",
                span_id=f"{100 + i:016x}",
                name=f"step {i}",
                start=NOW - timedelta(days=i),
                end=NOW - timedelta(days=i) + timedelta(seconds=1),
                kind="tool",
                attributes={"user.id": f"u{i % 3}"} if i % 2 else {"tenant_id": "t9"},
                workspace="w1" if i % 4 else "w2",
            )
        )
    return spans


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "memory":
        from llmtrail.store.memory import MemoryEraser, MemoryRecordStore, MemorySpanStore

        records = MemoryRecordStore()
        spans = MemorySpanStore(records)
        yield Backend("memory", records, MemoryEraser(records, spans), spans.append, None)
    elif request.param == "duckdb":
        from llmtrail.store.duckdb import Database, DuckDBRecordStore, DuckDBSpanStore
        from llmtrail.store.duckdb.erasure import DuckDBEraser
        from llmtrail.store.duckdb.metric_store import DuckDBMetricStore
        from llmtrail.store.duckdb.metrics import DuckDBRollups

        db = Database(tmp_path / "llmtrail.duckdb")
        rollups = DuckDBRollups(db.schema)
        yield Backend(
            "duckdb",
            DuckDBRecordStore(db, rollups),
            DuckDBEraser(db, rollups),
            DuckDBSpanStore(db).append,
            DuckDBMetricStore(db, rollups),
        )
        db.close()
    else:
        import pyarrow as pa

        from llmtrail.store.arrow import span_table
        from llmtrail.store.clickhouse import ClickHouseDatabase, ClickHouseRecordStore
        from llmtrail.store.clickhouse.erasure import ClickHouseEraser
        from llmtrail.store.clickhouse.metrics import ClickHouseMetricStore

        ch = ClickHouseDatabase.open(
            request.getfixturevalue("clickhouse_url"),
            request.getfixturevalue("clickhouse_database"),
        )

        def add_spans(spans: list[Span]) -> None:  # no ClickHouse SpanStore yet: its table
            table = span_table(spans)
            stamp = pa.array([NOW] * table.num_rows, pa.timestamp("us", tz="UTC"))
            ch.insert_arrow("spans", table.append_column("ingested_at", stamp))

        yield Backend(
            "clickhouse",
            ClickHouseRecordStore(ch),
            ClickHouseEraser(ch),
            add_spans,
            ClickHouseMetricStore(ch, clock=lambda: NOW),
        )
        ch.close()


def _stored(b: Backend, workspace: str) -> dict[str, InvocationRecord]:
    page = b.records.find(RecordQuery(workspace=workspace, limit=1000))
    return {r.request_id: r for r in page.records}


def _load(b: Backend) -> list[InvocationRecord]:
    records = [
        InvocationRecord.from_dict(d, workspace=d.pop("workspace"), now=NOW) for d in _docs()
    ]
    b.records.append(records)
    b.add_spans(_spans())
    return records


def test_selection_pages_cover_what_matches_once(backend: Backend) -> None:
    records = _load(backend)
    cutoff = NOW - timedelta(days=10, hours=12)
    wanted = {r.record_id for r in records if r.workspace == "w1" and r.timestamp < cutoff}
    seen: list[str] = []
    after = None
    while True:
        page = backend.eraser.select(RecordSelection("w1", before=cutoff, after=after), 4)
        seen += page.record_ids
        if page.after is None:
            break
        after = page.after
    assert sorted(seen) == sorted(wanted) and len(seen) == len(set(seen))

    by_user = backend.eraser.select(RecordSelection("w1", user="u1"), 100, full=True)
    expected = [
        r for r in records if r.workspace == "w1" and r.data["requestMetadata"]["user_id"] == "u1"
    ]
    assert sorted(by_user.record_ids) == sorted(r.record_id for r in expected)
    assert {r.request_id for r in by_user.records} == {r.request_id for r in expected}
    with_body = [r for r in expected if "inputBodyJson" in r.data["input"]]
    assert by_user.bodies == len(with_body)
    assert sorted(by_user.objects) == sorted(
        r.data["output"]["outputBodyS3Path"]
        for r in expected
        if "outputBodyS3Path" in r.data["output"]
    )
    assert by_user.trace_ids == {r.data["trace"]["traceId"] for r in expected}
    assert by_user.first == min(r.timestamp for r in expected)
    full = {r.request_id: r for r in by_user.records}
    for r in with_body:
        assert full[r.request_id].data["input"]["inputBodyJson"] == r.data["input"]["inputBodyJson"]


def test_delete_records_and_bodies_only(backend: Backend) -> None:
    _load(backend)
    before_w2 = _stored(backend, "w2")
    page = backend.eraser.select(RecordSelection("w1", tenant="t1"), 1000)
    assert page.record_ids
    # ids of another workspace are never deleted through w1
    other = [r.record_id for r in before_w2.values()]
    assert backend.eraser.delete_records("w1", page.record_ids + other) == len(page.record_ids)
    left = _stored(backend, "w1")
    assert all(r.data["requestMetadata"]["tenant_id"] != "t1" for r in left.values())
    assert _stored(backend, "w2").keys() == before_w2.keys()

    bodied = backend.eraser.select(RecordSelection("w1", with_body=True), 1000)
    assert bodied.record_ids
    touched = backend.eraser.delete_records("w1", bodied.record_ids, bodies_only=True)
    assert touched == len(bodied.record_ids)
    after = _stored(backend, "w1")
    assert after.keys() == left.keys()  # the records stay …
    for r in after.values():  # … without bodies or object paths, counts kept
        assert "inputBodyJson" not in r.data.get("input", {})
        assert "outputBodyS3Path" not in r.data.get("output", {})
        assert (
            r.data["input"]["inputTokenCount"]
            == left[r.request_id].data["input"]["inputTokenCount"]
        )
    assert not backend.eraser.select(RecordSelection("w1", with_body=True), 1000).record_ids


def test_delete_spans_by_trace_user_and_age(backend: Backend) -> None:
    _load(backend)
    spans = _spans()
    w1 = [s for s in spans if s.workspace == "w1"]
    by_user = SpanSelection("w1", user="u1")
    n_user = sum(1 for s in w1 if s.attributes.get("user.id") == "u1")
    assert backend.eraser.delete_spans(by_user, 100, dry_run=True) == n_user
    kept: list[Span] = []
    assert backend.eraser.delete_spans(by_user, 100, keep=kept.extend) == n_user
    assert sorted(s.span_id for s in kept) == sorted(
        s.span_id for s in w1 if s.attributes.get("user.id") == "u1"
    )
    assert backend.eraser.delete_spans(by_user, 100, dry_run=True) == 0

    trace = next(s.trace_id for s in w1 if s.attributes.get("user.id") != "u1")
    assert backend.eraser.delete_spans(SpanSelection("w1", trace_ids=(trace,)), 100) == 1
    old = SpanSelection("w1", before=NOW - timedelta(days=5, hours=12))
    remaining_old = backend.eraser.delete_spans(old, 100, dry_run=True)
    deleted = 0
    while backend.eraser.delete_spans(old, 1) == 1:
        deleted += 1
    assert deleted == remaining_old
    assert backend.eraser.delete_spans(SpanSelection("w2"), 100, dry_run=True) == sum(
        1 for s in spans if s.workspace == "w2"
    )


def test_tenant_rollups_go_and_the_others_stay(backend: Backend) -> None:
    if backend.metric_store is None:
        pytest.skip("no rollups in memory")
    _load(backend)
    backend.metric_store.maintain({})  # fold what the appends staged
    tenant_set = dimension_set(["TenantId"])
    start, end = NOW - timedelta(days=60), NOW + timedelta(days=1)
    assert backend.metric_store.series("w1", tenant_set, start, end) == [("t0",), ("t1",)]
    count = backend.eraser.delete_rollups("w1", tenant="t1", dry_run=True)
    assert count > 0
    assert backend.eraser.delete_rollups("w1", tenant="t1") == count
    assert backend.metric_store.series("w1", tenant_set, start, end) == [("t0",)]
    assert backend.metric_store.series("w2", tenant_set, start, end) == [("t0",)]
    old = backend.eraser.delete_rollups("w1", before=NOW - timedelta(days=20), dry_run=True)
    assert old > 0 and backend.eraser.delete_rollups("w1", before=NOW - timedelta(days=20)) == old
    assert backend.eraser.delete_rollups("w1", before=NOW - timedelta(days=20), dry_run=True) == 0
    backend.eraser.reclaim()


def test_selection_is_frozen() -> None:
    sel = RecordSelection("w1", user="u")
    assert replace(sel, after=(NOW, "x")).user == "u"
