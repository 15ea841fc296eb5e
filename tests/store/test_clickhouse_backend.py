"""What only the ClickHouse backend has to show: its table layout, migrations, and batches
that are stored once although nothing commits them with their spool position atomically."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from llmtrail.record import InvocationRecord
from llmtrail.schema import RecordSchema
from llmtrail.store.clickhouse import ClickHouseDatabase, ClickHouseRecordStore
from llmtrail.store.clickhouse.migrations import CLICKHOUSE_MIGRATIONS
from llmtrail.store.interfaces import RecordQuery


@pytest.fixture
def url_and_name(clickhouse_url: str, clickhouse_database: str) -> tuple[str, str]:
    return clickhouse_url, clickhouse_database


def rec(i: int, *, now: datetime | None = None, **meta: str) -> InvocationRecord:
    return InvocationRecord.from_dict(
        {
            "requestId": f"c-{i}",
            "timestamp": (datetime(2026, 11, 23, tzinfo=UTC) + timedelta(days=5 * i)).isoformat(),
            "modelId": "sim/a",
            "requestMetadata": {"tenant_id": "t", **meta},
            "input": {"inputTokenCount": i, "inputBodyJson": {"q": i}},
        },
        now=now,
    )


def count(db: ClickHouseDatabase, table: str) -> int:
    return int(db.query(f"SELECT count() FROM {db.table(table)}")[0][0])


def test_layout_follows_the_design(url_and_name: tuple[str, str]) -> None:
    db = ClickHouseDatabase.open(*url_and_name)
    (engine,) = db.query(
        "SELECT engine_full FROM system.tables WHERE database = {db:String} AND name = 'records'",
        {"db": db.database},
    )[0]
    assert "PARTITION BY toYYYYMM(timestamp)" in engine
    assert "ORDER BY (workspace, toDate(timestamp), model_id, timestamp)" in engine
    types = {
        str(name): str(type_)
        for name, type_ in db.query(
            "SELECT name, type FROM system.columns WHERE database = {db:String} "
            "AND table = 'records'",
            {"db": db.database},
        )
    }
    assert types["timestamp"] == "Nullable(DateTime64(6, 'UTC'))"
    assert types["model_id"] == "LowCardinality(Nullable(String))"
    assert types["meta_application_name"] == "LowCardinality(Nullable(String))"
    assert types["request_metadata"] == "Map(String, String)"
    assert types["input_token_count"] == "Nullable(Int64)"
    assert types["token_count_estimated"] == "Nullable(Bool)"
    tables = {
        row[0]
        for row in db.query(
            "SELECT name FROM system.tables WHERE database = {db:String}", {"db": db.database}
        )
    }
    assert {"records", "bodies", "spool_position", "state", "_migrations"} <= tables
    db.close()
    with pytest.raises(RuntimeError):
        db.query("SELECT 1")


def test_clickhouse_migrations_compress_json_and_index_traces(
    url_and_name: tuple[str, str],
) -> None:
    db = ClickHouseDatabase.open(*url_and_name)
    ClickHouseRecordStore(db).append([rec(1)])
    db.close()
    db = ClickHouseDatabase.open(*url_and_name)  # a second start applies nothing again
    columns = {
        (str(table), str(name)): (str(type_), str(codec))
        for table, name, type_, codec in db.query(
            "SELECT table, name, type, compression_codec FROM system.columns "
            "WHERE database = {db:String}",
            {"db": db.database},
        )
    }
    compressed = [("bodies", "input_body_json"), ("bodies", "output_body_json")]
    compressed += [("spans", n) for n in ("input", "output", "attributes")]
    for table, name in compressed:
        assert columns[(table, name)] == ("Nullable(String)", "CODEC(ZSTD(3))")
    assert columns[("records", "extra")][1] == "CODEC(ZSTD(3))"
    assert columns[("records", "request_id")] == ("Nullable(String)", "CODEC(ZSTD(3))")
    assert columns[("records", "model_id")][1] == "CODEC(ZSTD(3))"  # LowCardinality too
    assert columns[("records", "timestamp")][1] == "CODEC(Delta(8), ZSTD(3))"
    assert columns[("records", "latency_ms")][1] == "CODEC(T64, ZSTD(3))"
    for name in ("kind", "status", "source", "app"):
        assert columns[("spans", name)][0] == "LowCardinality(Nullable(String))"
    indexes = {
        (str(table), str(name))
        for table, name in db.query(
            "SELECT table, name FROM system.data_skipping_indices WHERE database = {db:String}",
            {"db": db.database},
        )
    }
    assert {("records", "trace_id_bloom"), ("spans", "start_time_minmax")} <= indexes
    names = [str(r[0]) for r in db.query(f"SELECT name FROM {db.table('_migrations')}")]
    assert sorted(n for n in names if n.startswith("clickhouse_")) == sorted(
        name for name, _ in CLICKHOUSE_MIGRATIONS
    )
    got = ClickHouseRecordStore(db).get("c-1")
    assert got is not None and got.data["input"]["inputBodyJson"] == {"q": 1}
    db.close()


def test_promoting_a_key_is_a_recorded_migration_with_backfill(
    url_and_name: tuple[str, str],
) -> None:
    db = ClickHouseDatabase.open(*url_and_name, RecordSchema(("tenant_id",)))
    ClickHouseRecordStore(db).append([rec(1, project="apollo"), rec(2, project="zeus")])
    db.close()

    db = ClickHouseDatabase.open(*url_and_name, RecordSchema(("tenant_id", "project")))
    store = ClickHouseRecordStore(db)
    backfilled = db.query(f"SELECT meta_project FROM {db.table('records')} ORDER BY request_id")
    assert [row[0] for row in backfilled] == ["apollo", "zeus"]
    store.append([rec(3, project="apollo")])
    found = store.find(RecordQuery(metadata=(("project", "apollo"),)))
    assert sorted(r.request_id for r in found.records) == ["c-1", "c-3"]
    names = [row[0] for row in db.query(f"SELECT name FROM {db.table('_migrations')}")]
    assert "promote_metadata_key:project" in names and len(names) == len(set(names))
    db.close()

    db = ClickHouseDatabase.open(*url_and_name, RecordSchema(("tenant_id",)))  # dropped again
    assert "project" in db.schema.promoted_keys
    got = ClickHouseRecordStore(db).get("c-3")
    assert got is not None
    assert got.data["requestMetadata"] == {"tenant_id": "t", "project": "apollo"}
    db.close()


def test_a_replay_after_a_crash_stores_each_record_once(url_and_name: tuple[str, str]) -> None:
    records = [rec(i) for i in range(6)]
    # the crash: part of a batch reached ClickHouse, its position never did
    before = ClickHouseRecordStore(ClickHouseDatabase.open(*url_and_name))
    without_bodies = InvocationRecord(
        {**records[3].data, "input": {"inputTokenCount": 3}}, records[3].derived
    )
    before.append([*records[:3], without_bodies])
    assert before.committed_position() is None
    before.close()

    after = ClickHouseRecordStore(ClickHouseDatabase.open(*url_and_name))  # the restart
    first = after.append(records[:2], position="1:200")  # replayed in other batch sizes
    second = after.append(records[2:], position="1:600")
    assert first.extra == {"already_stored": 2} and second.extra == {"already_stored": 2}
    assert after.committed_position() == "1:600"
    assert count(after.db, "records") == 6 and count(after.db, "bodies") == 6
    got = after.get("c-3")
    assert got is not None and got.data == records[3].data  # its body arrived with the replay
    after.close()


class FailingSecondInsert(ClickHouseDatabase):
    """The database of a process that dies between a batch's two inserts."""

    inserts = 0

    def insert_arrow(self, *args: Any, **kwargs: Any) -> None:
        self.inserts += 1
        if self.inserts == 2:
            raise ConnectionError("gone between the inserts")
        super().insert_arrow(*args, **kwargs)


def test_a_record_is_never_read_without_its_bodies(url_and_name: tuple[str, str]) -> None:
    """The bodies are inserted before the records: a record a reader can see has its bodies,
    even when the append stops between the two (a server answering GET /api/records while
    its pipeline appends read records without bodies when the records went first)."""
    record = rec(1)
    cut = ClickHouseRecordStore(FailingSecondInsert.open(*url_and_name))
    with pytest.raises(ConnectionError):
        cut.append([record], position="1:100")
    seen = cut.get("c-1")
    assert seen is None or seen.data == record.data
    cut.close()
    after = ClickHouseRecordStore(ClickHouseDatabase.open(*url_and_name))
    after.append([record], position="1:100")
    got = after.get("c-1")
    assert got is not None and got.data == record.data
    assert count(after.db, "records") == 1 and count(after.db, "bodies") == 1
    after.close()


def test_a_retried_batch_is_dropped_by_its_token(url_and_name: tuple[str, str]) -> None:
    store = ClickHouseRecordStore(ClickHouseDatabase.open(*url_and_name))
    later = datetime.now(UTC) + timedelta(minutes=5)  # captured while the store is open
    batch = [rec(i, now=later) for i in range(3)]
    assert store.append(batch, position="1:300").extra == {}
    assert store.append(batch, position="1:300").extra == {}  # not looked up: the token
    assert count(store.db, "records") == 3 and count(store.db, "bodies") == 3
    other = [rec(i, now=later) for i in range(3, 5)]
    store.append(other, position="1:300")  # a fresh spool reusing a position
    assert count(store.db, "records") == 5
    store.append(batch)  # no position: no promise, and nothing dropped either
    assert count(store.db, "records") == 8 and count(store.db, "bodies") == 8
    store.close()


def test_spools_commit_their_own_positions(url_and_name: tuple[str, str]) -> None:
    db = ClickHouseDatabase.open(*url_and_name)
    a, b = ClickHouseRecordStore(db, spool="replica-a"), ClickHouseRecordStore(db, spool="b")
    a.append([rec(1)], position="1:100")
    b.append([rec(2)], position="7:70")
    a.append([rec(3)], position="1:200")
    assert (a.committed_position(), b.committed_position()) == ("1:200", "7:70")
    db.close()
