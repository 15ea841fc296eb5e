"""The DuckDB file, the single thread that writes to it, and its recovery.

DuckDB invalidates a database instance after a fatal error (a failed checkpoint, an internal
error while a query runs): from then on every statement on every connection fails with
"database has been invalidated", until the instance is closed and the file opened again. A
server that went on using it would answer 500 to every read while looking healthy. So every
read and write here watches for that state (`is_fatal`); the first to meet it marks the
database unavailable (`available` is False, ``/readyz`` answers 503, reads are refused with
`Unavailable`), and the writer thread reopens the file: it interrupts the readers, waits
until every cursor is closed (DuckDB keeps one instance per file while any connection to it
lives), closes the connection and opens the file again, which replays DuckDB's own
write-ahead log. Writes wait in the writer's queue meanwhile; what they could not commit
stays in llmtrail's spool and is stored when they are retried.

The connection is configured before any request is served: UTC, the memory and spill bounds
of `QueryLimits`, no extension downloads, and — last, once migrations have run — no access
to files or the network from SQL (``enable_external_access = false``). llmtrail's own SQL
reads and writes only its tables, and batches arrive as registered Arrow tables, which that
setting does not affect.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

import duckdb

from llmtrail.errors import LlmtrailError, Unavailable
from llmtrail.schema import RecordSchema
from llmtrail.store.duckdb.migrations import apply_migrations, promoted_keys
from llmtrail.store.query_bounds import QueryLimits, engine_threads
from llmtrail.threads import thread_ids

T = TypeVar("T")
log = logging.getLogger("llmtrail.store")
_STOP = object()
_REOPEN = object()
_INVALIDATED = "database has been invalidated"
_RETRY_S = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0)  # between attempts to open the file again


class DatabaseLost(Unavailable):
    """The database was invalidated by a fatal engine error and is being reopened (→ 503)."""


def is_fatal(exc: BaseException) -> bool:
    """Whether ``exc`` says that DuckDB invalidated the database instance."""
    return isinstance(exc, duckdb.FatalException) or (
        isinstance(exc, duckdb.Error) and _INVALIDATED in str(exc)
    )


def committed_durably(exc: BaseException) -> bool:
    """Whether ``exc`` came from a COMMIT that DuckDB made durable before it failed (in its
    automatic checkpoint, say): the transaction is stored, yet the database is lost."""
    return is_fatal(exc) and "COMMIT succeeded" in str(exc)


def _renice(tasks: set[int], nice: int) -> None:
    if nice <= 0:
        return
    for task in tasks:
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            os.setpriority(os.PRIO_PROCESS, task, nice)


def execute_all(
    conn: duckdb.DuckDBPyConnection, statements: Sequence[tuple[str, Mapping[str, Any] | None]]
) -> None:
    """Run ``statements`` in order, in as few calls as DuckDB allows: one call runs several
    statements and binds the parameters of its last one only. Each call gives the GIL back
    and takes it again, which can cost the event loop beside the writer a switch."""
    run: list[str] = []
    for sql, params in statements:
        run.append(sql)
        if params:
            conn.execute("; ".join(run), dict(params))
            run = []
    if run:
        conn.execute("; ".join(run))


class Database:
    """Owns one DuckDB file. ``write`` runs a function on the writer thread (the only one that
    writes); ``read`` runs one on a short-lived cursor in the caller's thread."""

    def __init__(
        self,
        path: Path | str,
        schema: RecordSchema | None = None,
        limits: QueryLimits | None = None,
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.schema = schema or RecordSchema()
        self.limits = limits or QueryLimits()
        self.reopened = 0  # times the file was opened again after a fatal error
        self.lost_reason: str | None = None  # the fatal error while unavailable
        self._jobs: queue.Queue[Any] = queue.Queue()
        self._closing = False  # close() has begun: a reopen gives up
        self._closed = False
        self._lock = threading.Lock()
        self._readers = threading.Condition()  # guards the fields below
        self._cursors: set[duckdb.DuckDBPyConnection] = set()
        self._available = True
        self._generation = 0  # bumped when the database is lost
        self._nice = 0  # of the writer and DuckDB's own threads (`lower_writer_priority`)
        self._engine_tasks: set[int] = set()
        self._conn = self._open()
        self.schema = RecordSchema(
            self.schema.promoted_keys
            + tuple(k for k in promoted_keys(self._conn) if k not in self.schema.promoted_keys)
        )  # a key promoted once stays a column, even when the configuration drops it
        self._thread = threading.Thread(target=self._run, name="duckdb-writer", daemon=True)
        self._thread.start()

    @property
    def available(self) -> bool:
        """False from the moment a fatal error is seen until the file is open again."""
        return self._available and not self._closed

    def write(self, fn: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """Run ``fn(connection)`` on the writer thread and return its result (or raise)."""
        future: Future[T] = Future()
        with self._lock:  # never queue behind the stop marker
            if self._closed:
                raise RuntimeError("database is closed")
            self._jobs.put((fn, future))
        return future.result()

    def lower_writer_priority(self, nice: int) -> None:
        """Run the writer thread, and the threads DuckDB starts for the database, at niceness
        ``nice`` (Linux, where it is per thread): where its batch inserts and a server's
        relay want the same core, the relay goes first. A read runs on its caller's thread
        at the caller's priority; what DuckDB spreads over its own threads yields too."""
        if sys.platform != "linux" or nice <= 0:
            return
        self._nice = nice
        _renice(self._engine_tasks, nice)

        def renice(_: duckdb.DuckDBPyConnection) -> None:
            _renice({threading.get_native_id()}, nice)

        self.write(renice)

    def read(self, fn: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """Run ``fn(cursor)`` on a fresh cursor that sees every committed write. Raises
        `DatabaseLost` while the database is being reopened, or when it was lost under
        this read."""
        if self._closed:
            raise RuntimeError("database is closed")
        with self._readers:
            if not self._available:
                raise self._unavailable()
            generation = self._generation
            try:
                cursor = self._conn.cursor()
            except duckdb.Error as exc:
                if is_fatal(exc):
                    self._lose(exc, generation)
                    raise self._unavailable() from exc
                raise
            self._cursors.add(cursor)
        try:
            cursor.execute("SET TimeZone = 'UTC'")
            return fn(cursor)
        except Exception as exc:
            if isinstance(exc, duckdb.Error) and self._is_lost(exc, cursor):
                self._lose(exc, generation)
            if self._generation != generation:  # interrupted or failed by the loss
                raise self._unavailable() from exc
            raise
        finally:
            with self._readers:  # never while the reopen interrupts it
                self._cursors.discard(cursor)
                cursor.close()
                self._readers.notify_all()

    def lose(self, exc: BaseException) -> None:
        """Take the database as invalidated by ``exc``, an error handled where it was raised
        (a durable commit whose checkpoint failed): the writer reopens it next."""
        self._lose(exc, self._generation)

    def checkpoint(self) -> None:
        self.write(lambda conn: conn.execute("CHECKPOINT"))

    def close(self) -> None:
        if self._closed:
            return
        self._closing = True
        if self.available:
            try:
                self.checkpoint()
            except Exception:  # the file stays consistent: DuckDB replays its log on open
                log.exception("the checkpoint before closing the database failed")
        with self._lock:
            self._closed = True
            self._jobs.put(_STOP)
        self._thread.join()
        try:
            self._conn.close()
        except duckdb.Error:
            log.debug("closing an invalidated connection failed", exc_info=True)

    # -- the connection ---------------------------------------------------------------------
    def _open(self) -> duckdb.DuckDBPyConnection:
        before = thread_ids()
        try:
            conn = duckdb.connect(str(self.path))
        except duckdb.IOException as exc:  # another process owns the file
            raise LlmtrailError(
                f"cannot open {self.path}: {exc}. Is another llmtrail running on this data "
                "directory? Its CLI commands reach it with --url."
            ) from None
        try:
            conn.execute("SET TimeZone = 'UTC'")
            for name, value in self._settings(conn):
                conn.execute(f"SET {name} = '{value}'")
            apply_migrations(conn, self.schema)
            conn.execute("SET enable_external_access = false")  # last: it cannot be undone
        except BaseException:
            conn.close()
            raise
        # the threads DuckDB started for this database (nine, with two threads a query);
        # threads Python started meanwhile are not DuckDB's
        python = {t.native_id for t in threading.enumerate()}
        self._engine_tasks = thread_ids() - before - python
        _renice(self._engine_tasks, self._nice)
        return conn

    def _settings(self, conn: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
        """The engine-wide settings this DuckDB knows (older releases lack some)."""
        known = {row[0] for row in conn.execute("SELECT name FROM duckdb_settings()").fetchall()}
        limits = self.limits
        wanted = [
            ("autoinstall_known_extensions", "false"),
            ("autoload_known_extensions", "false"),
            ("max_temp_directory_size", f"{limits.temp_bytes}B"),
            ("threads", str(engine_threads(limits))),
        ]
        if limits.database_memory_bytes:
            wanted.append(("memory_limit", f"{limits.database_memory_bytes}B"))
        return [(name, value) for name, value in wanted if name in known]

    def _is_lost(self, exc: duckdb.Error, conn: duckdb.DuckDBPyConnection) -> bool:
        """Whether ``exc`` left the database invalidated. An internal error invalidates it
        only when it struck while the statement ran, so that one is confirmed by a probe."""
        if is_fatal(exc):
            return True
        if not isinstance(exc, duckdb.InternalException):
            return False
        try:
            conn.execute("SELECT 1").fetchall()
        except duckdb.Error as probe:
            return is_fatal(probe)
        return False

    def _lose(self, exc: BaseException, generation: int) -> None:
        """Mark the database unavailable (once per loss) and have the writer reopen it."""
        with self._readers:
            if self._generation != generation or not self._available:
                return
            self._available = False
            self._generation += 1
            self.lost_reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            self._interrupt_readers()  # stop the queries still running on the dead instance
        log.critical("the database was invalidated (%s); reopening %s", self.lost_reason, self.path)
        self._jobs.put(_REOPEN)

    def _interrupt_readers(self) -> None:
        """Interrupt every open cursor (caller holds ``_readers``, so none closes meanwhile)."""
        for cursor in self._cursors:
            try:
                cursor.interrupt()
            except duckdb.Error:  # closed already
                log.debug("interrupting a cursor failed", exc_info=True)

    def _unavailable(self) -> DatabaseLost:
        return DatabaseLost(
            f"the database is being reopened after a fatal error ({self.lost_reason}); "
            "retry shortly"
        )

    def _reopen(self) -> None:
        """On the writer thread: wait for every cursor to close, then open the file again,
        retrying until it opens (or the database is closed)."""
        with self._readers:
            if self._available:
                return
            while self._cursors and not self._closing:
                self._interrupt_readers()
                self._readers.wait(0.1)
        if self._closing:
            return
        try:
            self._conn.close()
        except duckdb.Error:
            log.debug("closing the invalidated connection failed", exc_info=True)
        attempt = 0
        while True:
            try:
                conn = self._open()
                conn.execute("SELECT count(*) FROM records").fetchall()
                break
            except Exception:
                if self._closing:
                    return
                log.exception("reopening %s failed (attempt %d)", self.path, attempt + 1)
                time.sleep(_RETRY_S[min(attempt, len(_RETRY_S) - 1)])
                attempt += 1
        with self._readers:
            self._conn = conn
            self.reopened += 1
            self.lost_reason = None
            self._available = True
        log.warning("the database is open again (%s)", self.path)

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is _STOP:
                return
            if job is _REOPEN:
                self._reopen_or_retry()
                continue
            fn, future = job
            if not future.set_running_or_notify_cancel():
                continue
            generation = self._generation
            try:
                future.set_result(fn(self._conn))
            except BaseException as exc:  # handed to the caller, never lost in this thread
                if isinstance(exc, duckdb.Error) and self._is_lost(exc, self._conn):
                    self._lose(exc, generation)
                    future.set_exception(self._unavailable())
                    self._reopen_or_retry()
                else:
                    future.set_exception(exc)

    def _reopen_or_retry(self) -> None:
        """`_reopen`, and if it fails in a way it does not handle itself, try again later:
        the writer thread must outlive anything the reopen meets."""
        try:
            self._reopen()
        except Exception:
            log.exception("reopening %s failed; trying again", self.path)
            time.sleep(_RETRY_S[-1])
            self._jobs.put(_REOPEN)
