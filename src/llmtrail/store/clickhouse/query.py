"""Running compiled queries on ClickHouse, each one tagged so that ``cancel`` can kill it.

ClickHouse stops a query with ``KILL QUERY WHERE …`` sent on another connection. A server
names a query by the ``query_id`` its client sends, but the embedded chdb engine drops that
transport setting and picks its own id, so every query instead carries the setting
``log_comment = 'llmtrail-query:<query id>'`` — an ordinary query setting, quoted by the
client and visible in ``system.processes.Settings`` on both — and ``cancel`` kills by it.

A client of a ClickHouse server speaks stateless HTTP and is safe to share between threads,
so queries and kills go through the database's own client. A chdb client runs one call at a
time on its handle: a query there would hold up the store's writes and any kill behind it.
On chdb the engine therefore opens clients of its own on the same engine (chdb hosts one data
path per process and any number of handles to it): a small pool for queries, so that they run
side by side, and one for kills.

A query cancelled before the engine saw it, or whose kill raced its last block, still ends
as `QueryCancelled`: the engine remembers what it was asked to cancel and drops those results.

Each query carries the bounds of `QueryLimits` as ClickHouse's own query settings
(``max_execution_time``, ``max_memory_usage``, ``max_result_bytes``), and what ClickHouse
raises for the query itself (the error codes in `QUERY_ERROR_CODES`) becomes `QueryFailed`.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError
from clickhouse_connect.driver.summary import QuerySummary

from llmtrail.errors import LlmtrailError
from llmtrail.schema import RecordSchema
from llmtrail.store.clickhouse.database import ClickHouseDatabase, connect
from llmtrail.store.interfaces import QueryCancelled, QueryRows
from llmtrail.store.paging import epoch_us
from llmtrail.store.query_bounds import (
    QueryFailed,
    QueryLimits,
    bounded_rows,
    engine_message,
    out_of_memory,
    result_too_large,
    timed_out,
)

TAG_PREFIX = "llmtrail-query:"
_QUERY_WAS_CANCELLED = 394
_KILL_RETRY_SECONDS = 0.01
_TIMEOUT_EXCEEDED = 159
_MEMORY_LIMIT_EXCEEDED = 241
_TOO_MANY_ROWS_OR_BYTES = 396
# ClickHouse's error codes for a query it cannot run (as opposed to a failure of the server):
# parsing and converting values, arguments out of bound, types, aggregation, overflow, regexes
QUERY_ERROR_CODES = frozenset(
    {6, 26, 27, 36, 38, 41, 42, 43, 44, 46, 47, 48, 53, 62, 69, 70, 72, 117, 128, 131, 153}
    | {184, 190, 215, 307, 321, 407, 427}
    | {_TIMEOUT_EXCEEDED, _MEMORY_LIMIT_EXCEEDED, _TOO_MANY_ROWS_OR_BYTES}
)


class ClickHouseQueryEngine:
    """`llmtrail.store.interfaces.QueryEngine` over one `ClickHouseDatabase`.

    ``database`` is the name the compiler qualifies ``records`` and ``bodies`` with
    (`llmtrail.query.compile_query`'s ``database``). `close` releases the clients the engine
    opened (on chdb); the database's own client stays the database's.
    """

    dialect = "clickhouse"

    def __init__(self, db: ClickHouseDatabase, limits: QueryLimits | None = None) -> None:
        self.db = db
        self.limits = limits or QueryLimits()
        self.database = db.database
        self._embedded = str(getattr(db.client, "uri", "")).startswith("chdb:")
        self._idle: list[Client] = []
        self._opened: list[Client] = []
        self._control: Client | None = None
        self._running: dict[str, int] = {}  # query id → how many executions are under way
        self._cancelled: set[str] = set()
        self._lock = threading.Lock()
        self._closed = False

    @property
    def schema(self) -> RecordSchema:
        """The record schema of the database (promoted keys included)."""
        return self.db.schema

    def execute(self, sql: str, query_id: str) -> QueryRows:
        """Run ``sql``; raises `QueryCancelled` when ``cancel(query_id)`` stopped it."""
        with self._lock:
            if query_id in self._cancelled:
                raise QueryCancelled(query_id)
            self._running[query_id] = self._running.get(query_id, 0) + 1
        try:
            with self._query_client() as client:
                if query_id in self._cancelled:  # while a client was opened for it
                    raise QueryCancelled(query_id)
                result = client.query(sql, settings=self._settings(query_id), tz_mode="aware")
                rows = list(bounded_rows([[tuple(r) for r in result.result_rows]], self.limits))
                columns = list(result.column_names)
        except ClickHouseError as exc:
            if query_id in self._cancelled or _was_cancelled(exc):
                raise QueryCancelled(query_id) from None
            raise self._failure(exc) from None
        finally:
            with self._lock:
                left = self._running.pop(query_id) - 1
                if left:
                    self._running[query_id] = left
                cancelled = query_id in self._cancelled
                if not left:
                    self._cancelled.discard(query_id)
        if cancelled:
            raise QueryCancelled(query_id)
        return QueryRows(columns, rows)

    def _settings(self, query_id: str) -> dict[str, object]:
        limits = self.limits
        return {
            "log_comment": TAG_PREFIX + query_id,
            "max_execution_time": limits.timeout_s,
            "max_memory_usage": limits.memory_bytes,
            "max_result_bytes": limits.result_bytes,
            "result_overflow_mode": "throw",
        }

    def _failure(self, exc: ClickHouseError) -> LlmtrailError:
        """`QueryFailed` for an error of the query itself; otherwise the server's failure."""
        code = _code(exc)
        if code == _TIMEOUT_EXCEEDED:
            return timed_out(self.limits)
        if code == _MEMORY_LIMIT_EXCEEDED:
            return out_of_memory(self.limits, exc)
        if code == _TOO_MANY_ROWS_OR_BYTES:
            return result_too_large(self.limits)
        if code in QUERY_ERROR_CODES:
            return QueryFailed(f"the engine refused the query: {_reason(exc)}")
        return LlmtrailError(f"the query failed in ClickHouse: {exc}")

    def scanned(self, workspace: str, start: datetime, end: datetime) -> tuple[int, int]:
        """Records in ``[start, end)`` of ``workspace``, and an estimate of their stored bytes
        (as DuckDB's engine estimates them: 400 per row plus the unknown keys' JSON)."""
        with self._query_client() as client:
            result = client.query(
                "SELECT count(), sum(length(ifNull(extra, '')) + 400) "
                f"FROM {self.db.table('records')} WHERE workspace = {{w:String}} "
                "AND timestamp >= fromUnixTimestamp64Micro({s:Int64}, 'UTC') "
                "AND timestamp < fromUnixTimestamp64Micro({e:Int64}, 'UTC')",
                parameters={
                    "w": workspace,
                    "s": epoch_us(_aware(start)),
                    "e": epoch_us(_aware(end)),
                },
            )
        rows = result.result_rows
        return (int(rows[0][0]), int(rows[0][1] or 0)) if rows else (0, 0)

    def cancel(self, query_id: str) -> bool:
        """Kill query ``query_id`` if this engine is running it; False when it is not.

        The engine may not have started the query yet (a client is being opened for it), so
        the kill is repeated until it finds the query or the execution has ended."""
        with self._lock:
            if query_id not in self._running:
                return False
            self._cancelled.add(query_id)
        with self._control_client() as client:
            while True:
                killed = client.command(
                    "KILL QUERY WHERE Settings['log_comment'] = {tag:String} ASYNC",
                    parameters={"tag": TAG_PREFIX + query_id},
                )
                if killed and not isinstance(killed, QuerySummary):  # rows: queries killed
                    return True
                with self._lock:
                    if query_id not in self._running:
                        return True
                time.sleep(_KILL_RETRY_SECONDS)

    def close(self) -> None:
        """Close the clients this engine opened."""
        with self._lock:
            self._closed = True
            opened, self._opened, self._idle = self._opened, [], []
            self._control = None
        for client in opened:
            client.close()

    @contextmanager
    def _query_client(self) -> Iterator[Client]:
        """A client to run one query on: the database's own, or an idle one of the pool."""
        if not self._embedded:
            yield self.db.client
            return
        with self._lock:
            if self._closed:
                raise RuntimeError("the query engine is closed")
            client = self._idle.pop() if self._idle else None
        if client is None:
            client = self._open()
        try:
            yield client
        finally:
            with self._lock:
                if not self._closed:
                    self._idle.append(client)

    @contextmanager
    def _control_client(self) -> Iterator[Client]:
        """The client kills go through, never busy with a query."""
        if not self._embedded:
            yield self.db.client
            return
        with self._lock:
            control = self._control
        if control is None:
            control = self._open()
            with self._lock:
                if self._control is None:
                    self._control = control
        yield control

    def _open(self) -> Client:
        client = connect(str(self.db.client.uri))
        with self._lock:
            self._opened.append(client)
        return client


def _code(exc: ClickHouseError) -> int | None:
    code = getattr(exc, "code", None)
    if isinstance(code, int):
        return code
    match = re.search(r"Code: (\d+)\.", str(exc))
    return int(match.group(1)) if match else None


def _reason(exc: ClickHouseError) -> str:
    """ClickHouse's message without its code prefix and the query text it may repeat."""
    text = engine_message(exc)
    text = re.sub(r"^.*?DB::Exception: ", "", text)
    return re.sub(r"\. In scope .*$", ".", text)


def _was_cancelled(exc: ClickHouseError) -> bool:
    code = getattr(exc, "code", None)
    return code == _QUERY_WAS_CANCELLED or "QUERY_WAS_CANCELLED" in str(exc)


def _aware(value: datetime) -> datetime:
    """``value`` with a time zone; a naive value is taken to be UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
