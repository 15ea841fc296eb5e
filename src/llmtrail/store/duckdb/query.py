"""Running compiled queries on the embedded DuckDB file, each on its own cursor so that one
can be interrupted (``cancel``) while the others and the writer go on."""

from __future__ import annotations

import threading
import time
from typing import Any

import duckdb

from llmtrail.errors import LlmtrailError
from llmtrail.store.duckdb.database import Database
from llmtrail.store.interfaces import QueryCancelled, QueryRows


class DuckDBQueryEngine:
    dialect = "duckdb"

    def __init__(self, db: Database) -> None:
        self.db = db
        self._running: dict[str, duckdb.DuckDBPyConnection] = {}
        self._cancelled: set[str] = set()
        self._lock = threading.Lock()

    @property
    def schema(self) -> Any:
        return self.db.schema

    def execute(self, sql: str, query_id: str) -> QueryRows:
        def run(cursor: duckdb.DuckDBPyConnection) -> QueryRows:
            with self._lock:
                if query_id in self._cancelled:
                    raise QueryCancelled(query_id)
                self._running[query_id] = cursor
            try:
                result = cursor.execute(sql)
                columns = [d[0] for d in result.description or []]
                return QueryRows(columns, result.fetchall())
            except duckdb.InterruptException:
                raise QueryCancelled(query_id) from None
            except duckdb.Error as exc:
                raise LlmtrailError(f"the query failed in DuckDB: {exc}") from None
            finally:
                with self._lock:
                    self._running.pop(query_id, None)
                    self._cancelled.discard(query_id)

        return self.db.read(run)

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
        deadline = time.monotonic() + patience_s
        while time.monotonic() < deadline:
            cursor.interrupt()
            time.sleep(0.01)
            with self._lock:
                if self._running.get(query_id) is not cursor:
                    break
        return True
