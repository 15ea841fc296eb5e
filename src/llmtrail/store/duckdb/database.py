"""The DuckDB file and the single thread that writes to it."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

import duckdb

from llmtrail.errors import LlmtrailError
from llmtrail.store.duckdb.migrations import apply_migrations, promoted_keys
from llmtrail.store.schema import RecordSchema

T = TypeVar("T")
_STOP = object()


class Database:
    """Owns one DuckDB file. ``write`` runs a function on the writer thread (the only one that
    writes); ``read`` runs one on a short-lived cursor in the caller's thread."""

    def __init__(self, path: Path | str, schema: RecordSchema | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.schema = schema or RecordSchema()
        try:
            self._conn = duckdb.connect(str(self.path))
        except duckdb.IOException as exc:  # another process owns the file
            raise LlmtrailError(
                f"cannot open {self.path}: {exc}. Is another llmtrail running on this data "
                "directory? Its CLI commands reach it with --url."
            ) from None
        self._conn.execute("SET TimeZone = 'UTC'")
        self._jobs: queue.Queue[Any] = queue.Queue()
        self._closed = False
        self._lock = threading.Lock()
        apply_migrations(self._conn, self.schema)
        self.schema = RecordSchema(
            self.schema.promoted_keys
            + tuple(k for k in promoted_keys(self._conn) if k not in self.schema.promoted_keys)
        )  # a key promoted once stays a column, even when the configuration drops it
        self._thread = threading.Thread(target=self._run, name="duckdb-writer", daemon=True)
        self._thread.start()

    def write(self, fn: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """Run ``fn(connection)`` on the writer thread and return its result (or raise)."""
        future: Future[T] = Future()
        with self._lock:  # never queue behind the stop marker
            if self._closed:
                raise RuntimeError("database is closed")
            self._jobs.put((fn, future))
        return future.result()

    def read(self, fn: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """Run ``fn(cursor)`` on a fresh cursor that sees every committed write."""
        if self._closed:
            raise RuntimeError("database is closed")
        cursor = self._conn.cursor()
        try:
            cursor.execute("SET TimeZone = 'UTC'")
            return fn(cursor)
        finally:
            cursor.close()

    def checkpoint(self) -> None:
        self.write(lambda conn: conn.execute("CHECKPOINT"))

    def close(self) -> None:
        if self._closed:
            return
        self.checkpoint()
        with self._lock:
            self._closed = True
            self._jobs.put(_STOP)
        self._thread.join()
        self._conn.close()

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is _STOP:
                return
            fn, future = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn(self._conn))
            except BaseException as exc:  # handed to the caller, never lost in this thread
                future.set_exception(exc)
