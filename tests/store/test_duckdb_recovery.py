"""The DuckDB database after a fatal engine error: it is reopened, nothing committed is lost
and nothing is stored twice; and the connection's defences (no external access).

The fatal errors are DuckDB's own, produced for real: ``debug_checkpoint_abort`` makes a
checkpoint fail the way a full disk would, which invalidates the database instance (with a
small ``checkpoint_threshold`` the automatic checkpoint after a commit fails that way too:
"Transaction COMMIT succeeded and is durable, but the autocheckpoint failed")."""

from __future__ import annotations

import functools
import threading
from pathlib import Path
from typing import Any

import duckdb
import pytest

from llmtrail.record import InvocationRecord
from llmtrail.store.duckdb import Database, DuckDBRecordStore
from llmtrail.store.duckdb.database import DatabaseLost

ABORT = "SET debug_checkpoint_abort = 'before_header'"


def rec(i: int) -> InvocationRecord:
    return InvocationRecord.from_dict(
        {"requestId": f"r-{i}", "timestamp": "2026-11-23T10:00:00Z", "modelId": "m"}
    )


def request_ids(db: Database) -> list[str]:
    rows = db.read(lambda c: c.execute("SELECT request_id FROM records ORDER BY 1").fetchall())
    return [r[0] for r in rows]


def run(sql: str, conn: duckdb.DuckDBPyConnection) -> Any:
    return conn.execute(sql).fetchall()


def failed_checkpoint(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute(ABORT)
    conn.execute("CHECKPOINT")


def arm_autocheckpoint_failure(conn: duckdb.DuckDBPyConnection) -> None:
    """The next commit is durable, and then its automatic checkpoint fails."""
    conn.execute(ABORT)
    conn.execute("SET checkpoint_threshold = '1KB'")


def test_a_fatal_write_reopens_the_database_with_everything_committed(tmp_path: Path) -> None:
    db = Database(tmp_path / "x.duckdb")
    store = DuckDBRecordStore(db)
    store.append([rec(1), rec(2)], "0:10")
    with pytest.raises(DatabaseLost):
        db.write(failed_checkpoint)
    # the writer reopens before it takes the next job
    store.append([rec(3)], "0:20")
    assert db.available and db.reopened == 1
    assert request_ids(db) == ["r-1", "r-2", "r-3"]
    assert store.committed_position() == "0:20"
    db.close()


def test_a_fatal_read_reopens_the_database(tmp_path: Path) -> None:
    db = Database(tmp_path / "x.duckdb")
    DuckDBRecordStore(db).append([rec(1)])
    with pytest.raises(DatabaseLost):
        db.read(failed_checkpoint)
    assert db.write(lambda c: c.execute("SELECT count(*) FROM records").fetchall()) == [(1,)]
    assert db.available and db.reopened == 1
    db.close()


def test_reads_are_refused_until_every_cursor_of_the_lost_database_is_closed(
    tmp_path: Path,
) -> None:
    """DuckDB keeps one instance per file while any connection to it lives, so the reopen
    waits for the readers; meanwhile reads answer `DatabaseLost` at once."""
    db = Database(tmp_path / "x.duckdb")
    DuckDBRecordStore(db).append([rec(1)])
    entered, release = threading.Event(), threading.Event()
    outcome: list[Any] = []

    def slow_reader(cursor: duckdb.DuckDBPyConnection) -> str:
        entered.set()
        release.wait()
        return "finished"

    reader = threading.Thread(target=lambda: outcome.append(db.read(slow_reader)))
    reader.start()
    entered.wait()
    with pytest.raises(DatabaseLost):
        db.write(failed_checkpoint)
    assert not db.available
    with pytest.raises(DatabaseLost, match="being reopened"):
        db.read(lambda c: c.execute("SELECT 1").fetchall())
    release.set()
    reader.join()
    assert outcome == ["finished"]
    assert db.write(lambda c: c.execute("SELECT count(*) FROM records").fetchall()) == [(1,)]
    assert db.available and db.reopened == 1
    db.close()


def test_a_batch_whose_commit_was_durable_is_not_stored_twice(tmp_path: Path) -> None:
    """The commit succeeds and then its automatic checkpoint fails: the append reports
    success (the pipeline would otherwise store the batch again), and the database is
    reopened."""
    db = Database(tmp_path / "x.duckdb")
    store = DuckDBRecordStore(db)
    store.append([rec(1)], "0:10")
    db.write(arm_autocheckpoint_failure)
    store.append([rec(2), rec(3)], "0:20")  # no error: stored
    store.append([rec(4)], "0:30")  # after the reopen
    assert db.reopened == 1
    assert request_ids(db) == ["r-1", "r-2", "r-3", "r-4"]
    assert store.committed_position() == "0:30"
    db.close()


def test_sql_cannot_reach_files_or_extensions(tmp_path: Path) -> None:
    db = Database(tmp_path / "x.duckdb")
    outside = tmp_path / "outside.csv"
    outside.write_text("a\n1\n")
    for sql in (
        f"SELECT * FROM read_csv('{outside}')",
        f"COPY records TO '{tmp_path / 'out.parquet'}'",
        f"ATTACH '{tmp_path / 'other.duckdb'}'",
        "INSTALL httpfs",
        "SET enable_external_access = true",
    ):
        with pytest.raises(duckdb.Error):
            db.read(functools.partial(run, sql))
    assert not (tmp_path / "out.parquet").exists()
    # llmtrail's own path still works: Arrow batches in, rows out
    DuckDBRecordStore(db).append([rec(1)])
    assert request_ids(db) == ["r-1"]
    db.close()
