"""`Database.lower_writer_priority` on a real DuckDB file: the writer thread and the threads
DuckDB starts for the database yield the core (Linux niceness is per thread); the threads
that read, and every other thread of the process, keep their priority. A database opened
again after a fatal error starts new threads, which yield too."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import pytest

from llmtrail.store.duckdb import Database

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="niceness per thread: Linux")


def _tasks() -> set[int]:
    return {int(t) for t in os.listdir("/proc/self/task")}


def _nice(task: int) -> int:
    stat = Path(f"/proc/self/task/{task}/stat").read_text()
    return int(stat[stat.rindex(")") + 2 :].split()[16])


def test_the_writer_and_duckdbs_threads_yield_and_the_rest_keep_their_priority(
    tmp_path: Path,
) -> None:
    before = _tasks()
    niceness = {t: _nice(t) for t in before}  # other tests' libraries may have set their own
    db = Database(tmp_path / "db.duckdb")
    try:
        started = _tasks() - before
        engine = started - {t.native_id for t in threading.enumerate()}
        assert len(engine) >= 1  # DuckDB's own threads
        assert {_nice(t) for t in started} == {_nice(threading.get_native_id())}
        db.lower_writer_priority(7)
        writer = db.write(lambda _: threading.get_native_id())
        assert {_nice(t) for t in engine | {writer}} == {7}
        alive = before & _tasks()
        assert {t: _nice(t) for t in alive} == {t: niceness[t] for t in alive}  # unchanged
        reader = db.read(lambda c: (threading.get_native_id(), c.execute("SELECT 1").fetchone()))
        assert reader == (threading.get_native_id(), (1,))
        assert _nice(reader[0]) == niceness[reader[0]]  # a read keeps its caller's priority

        until_now = _tasks()
        db.lose(RuntimeError("a fatal error, for the test"))  # reopened on the writer thread
        deadline = time.monotonic() + 30
        while not db.available:
            assert time.monotonic() < deadline, "the database was not reopened"
            time.sleep(0.02)
        assert db.read(lambda c: c.execute("SELECT 2").fetchone()) == (2,)
        again = _tasks() - until_now - {t.native_id for t in threading.enumerate()}
        assert again and {_nice(t) for t in again} == {7}
    finally:
        db.close()
