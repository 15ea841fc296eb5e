"""What only the DuckDB backend has to show: migrations and reads while writing."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from llmtrail.record import InvocationRecord
from llmtrail.schema import RecordSchema
from llmtrail.store.duckdb import Database, DuckDBRecordStore
from llmtrail.store.interfaces import RecordQuery


def rec(i: int, **meta: str) -> InvocationRecord:
    return InvocationRecord.from_dict(
        {
            "requestId": f"d-{i}",
            "timestamp": "2026-11-23T10:00:00Z",
            "requestMetadata": {"tenant_id": "t", **meta},
        }
    )


def columns(db: Database) -> set[str]:
    return {r[0] for r in db.read(lambda c: c.execute("DESCRIBE records").fetchall())}


def test_promoting_a_key_is_a_recorded_migration_with_backfill(tmp_path: Path) -> None:
    path = tmp_path / "x.duckdb"
    db = Database(path, RecordSchema(("tenant_id",)))
    DuckDBRecordStore(db).append([rec(1, project="apollo"), rec(2, project="zeus")])
    assert "meta_project" not in columns(db)
    db.close()

    db = Database(path, RecordSchema(("tenant_id", "project")))
    assert "meta_project" in columns(db)
    store = DuckDBRecordStore(db)
    store.append([rec(3, project="apollo")])
    found = store.find(RecordQuery(metadata=(("project", "apollo"),)))
    assert sorted(r.request_id for r in found.records) == ["d-1", "d-3"]
    names = [
        r[0]
        for r in db.read(
            lambda c: c.execute("SELECT name FROM _migrations ORDER BY applied_at, name").fetchall()
        )
    ]
    assert names[0] == "0001_records_bodies_state"
    assert "promote_metadata_key:project" in names
    db.close()

    db = Database(path, RecordSchema(("tenant_id",)))  # dropped from the configuration
    store = DuckDBRecordStore(db)
    got = store.get("d-3")
    assert got is not None and got.data["requestMetadata"] == {
        "tenant_id": "t",
        "project": "apollo",
    }
    db.close()


def test_reads_see_committed_batches_while_the_writer_works(tmp_path: Path) -> None:
    db = Database(tmp_path / "x.duckdb")
    store = DuckDBRecordStore(db)
    done = threading.Event()
    errors: list[BaseException] = []

    def write() -> None:
        try:
            for b in range(20):
                store.append([rec(b * 100 + i) for i in range(100)])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=write)
    thread.start()
    counts = []
    while not done.is_set():
        counts.append(db.read(lambda c: c.execute("SELECT count(*) FROM records").fetchone()[0]))
    thread.join()
    assert not errors
    assert counts == sorted(counts) and all(c % 100 == 0 for c in counts)  # whole batches only
    assert db.read(lambda c: c.execute("SELECT count(*) FROM records").fetchone()[0]) == 2000
    db.close()


def test_duckdb_threads_follow_the_configuration(tmp_path: Path) -> None:
    """``[query] threads``: 0 (the default) is one per core; a number is taken as it is."""
    from llmtrail.store.query_bounds import QueryLimits, engine_threads

    def threads(db: Database) -> int:
        return int(db.read(lambda c: c.execute("SELECT current_setting('threads')").fetchone()[0]))

    cores = os.cpu_count() or 1
    assert engine_threads(QueryLimits()) == cores
    for name, limits, expected in (("a", QueryLimits(), cores), ("b", QueryLimits(threads=3), 3)):
        db = Database(tmp_path / f"{name}.duckdb", limits=limits)
        try:
            assert threads(db) == expected
        finally:
            db.close()
