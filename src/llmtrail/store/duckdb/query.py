"""Running compiled queries on the embedded DuckDB file, each on its own cursor so that one
can be interrupted (``cancel``) while the others and the writer go on.

Each query is bounded by `QueryLimits`: a watchdog interrupts it after ``timeout_s`` (the
same interrupt ``cancel`` uses, so it works on every DuckDB release); its cursor's working
memory is ``memory_bytes`` (``operator_memory_limit``, where the DuckDB release has it:
beyond it sorts and hash tables spill to disk); and its rows are fetched a batch at a time
until they add up to ``result_bytes``. What DuckDB raises for the query itself — a binder
error, a conversion or range error, a limit reached — becomes `QueryFailed`; a fatal error
is left to `Database`, which reopens the file.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import duckdb

from llmtrail.store.duckdb.database import Database, is_fatal
from llmtrail.store.interfaces import QueryCancelled, QueryRows
from llmtrail.store.query_bounds import (
    QueryFailed,
    QueryLimits,
    bounded_rows,
    engine_message,
    out_of_memory,
    timed_out,
)

_FETCH_ROWS = 1024
# what DuckDB raises for a query it cannot run, as opposed to a failure of the engine
_QUERY_ERRORS = (duckdb.ProgrammingError, duckdb.DataError, duckdb.NotSupportedError)


class DuckDBQueryEngine:
    dialect = "duckdb"

    def __init__(self, db: Database, limits: QueryLimits | None = None) -> None:
        self.db = db
        self.limits = limits or db.limits
        self._running: dict[str, duckdb.DuckDBPyConnection] = {}
        self._cancelled: set[str] = set()
        self._timed_out: set[str] = set()
        self._lock = threading.Lock()
        self._operator_memory: bool | None = None  # whether this DuckDB has the setting

    @property
    def schema(self) -> Any:
        return self.db.schema

    def execute(self, sql: str, query_id: str) -> QueryRows:
        """Run ``sql``; raises `QueryCancelled` when ``cancel(query_id)`` stops it and
        `QueryFailed` when DuckDB refuses it or it reaches a limit."""

        def run(cursor: duckdb.DuckDBPyConnection) -> QueryRows:
            with self._lock:
                if query_id in self._cancelled:
                    raise QueryCancelled(query_id)
                self._running[query_id] = cursor
            watchdog = threading.Timer(self.limits.timeout_s, self._time_out, (query_id, cursor))
            watchdog.daemon = True
            try:
                self._bound_memory(cursor)
                watchdog.start()
                result = cursor.execute(sql)
                columns = [d[0] for d in result.description or []]
                return QueryRows(columns, list(bounded_rows(_batches(result), self.limits)))
            except duckdb.InterruptException:
                if query_id in self._timed_out:
                    raise timed_out(self.limits) from None
                raise QueryCancelled(query_id) from None
            except duckdb.OutOfMemoryException as exc:
                raise out_of_memory(self.limits, exc) from None
            except _QUERY_ERRORS as exc:
                if is_fatal(exc):
                    raise
                raise QueryFailed(f"the engine refused the query: {engine_message(exc)}") from None
            finally:
                watchdog.cancel()
                with self._lock:
                    self._running.pop(query_id, None)
                    self._cancelled.discard(query_id)
                    self._timed_out.discard(query_id)

        try:
            return self.db.read(run)
        except duckdb.InternalException as exc:  # one that left the database valid
            raise QueryFailed(f"the engine failed on the query: {engine_message(exc)}") from None

    def scanned(self, workspace: str, start: Any, end: Any) -> tuple[int, int]:
        """Records in the range, and an estimate of their stored bytes."""
        row = self.db.read(
            lambda c: c.execute(
                "SELECT count(*), coalesce(sum(coalesce(length(extra), 0) + 400), 0) "
                "FROM records WHERE workspace = ? AND timestamp >= ? AND timestamp < ?",
                [workspace, start, end],
            ).fetchone()
        )
        return (int(row[0]), int(row[1])) if row else (0, 0)

    def cancel(self, query_id: str, patience_s: float = 10.0) -> bool:
        """Interrupt the query, again and again until it has stopped: an interrupt that lands
        before DuckDB has started the statement would otherwise be lost."""
        with self._lock:
            cursor = self._running.get(query_id)
            if cursor is None:
                return False
            self._cancelled.add(query_id)
        self._interrupt(query_id, cursor, patience_s)
        return True

    def _time_out(self, query_id: str, cursor: duckdb.DuckDBPyConnection) -> None:
        with self._lock:
            if self._running.get(query_id) is not cursor:
                return  # finished meanwhile
            self._timed_out.add(query_id)
        self._interrupt(query_id, cursor, 10.0)

    def _interrupt(
        self, query_id: str, cursor: duckdb.DuckDBPyConnection, patience_s: float
    ) -> None:
        deadline = time.monotonic() + patience_s
        while time.monotonic() < deadline:
            try:
                cursor.interrupt()
            except duckdb.Error:  # the cursor is closed: the query has ended
                break
            time.sleep(0.01)
            with self._lock:
                if self._running.get(query_id) is not cursor:
                    break

    def _bound_memory(self, cursor: duckdb.DuckDBPyConnection) -> None:
        """Give this cursor's query at most ``memory_bytes`` of working memory."""
        if self._operator_memory is None:
            known = cursor.execute(
                "SELECT count(*) FROM duckdb_settings() WHERE name = 'operator_memory_limit'"
            ).fetchone()
            self._operator_memory = bool(known and known[0])
        if self._operator_memory:
            cursor.execute(f"SET operator_memory_limit = '{int(self.limits.memory_bytes)}B'")


def _batches(result: duckdb.DuckDBPyConnection) -> Iterator[list[tuple[Any, ...]]]:
    while True:
        batch = result.fetchmany(_FETCH_ROWS)
        if not batch:
            return
        yield batch
