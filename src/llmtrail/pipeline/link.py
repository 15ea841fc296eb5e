"""The link between the serving process and the recorder process: one duplex pipe, two threads.

Each side sends pickled tuples through one sender thread (so no caller ever blocks on the
pipe: `Link.post` only queues) and reads them in one receiver thread, which answers calls
itself or hands them to the side's handler. A call (`Link.call`) waits for its answer; an
exception raised on the other side comes back as itself (every llmtrail error pickles) or,
when it cannot cross, as `Unavailable` naming it. When the pipe breaks — the other process
died — every waiting call fails with `Unavailable` and `closed` is set.

On the recorder's side `RemoteRecordStore` and `RemoteStateStore` are the serving process's
stores as the pipeline and the policies see them: a batch crosses as two Arrow IPC streams
(records and bodies) built from the records here, so the serving process only inserts them.
They cross out of band (`ipc_buffer`): a batch of messages is one frame of pickle, then one
frame for each such stream, which the receiver's unpickling takes as it is instead of copying
a second's gateway batch (~3.5 MB) while it holds the serving process's GIL.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import pickle
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from llmtrail.errors import Unavailable
from llmtrail.record import InvocationRecord
from llmtrail.schema import RecordSchema
from llmtrail.store.interfaces import AppendResult, RecentCall

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger("llmtrail.pipeline")
_STOP = object()
_BATCH_MESSAGES = 256  # queued messages a sender writes in one go
# a message nobody waits for (a gateway call's facts, what it spent) lingers this long, so one
# write, and one wake-up of each thread on the way, carry many (calls and answers go at once).
# The recorder spools what arrives at once (it used to linger 5 ms more), so a kill -9 loses
# the last ~10 ms of records, as before. Measured at 1 call in flight, against 5 + 5 ms: ~90 µs
# less CPU a record in all (15 ms saved ~130 µs, but would widen that window)
_LINGER_S = 0.010
_NOBODY_WAITS = frozenset({"facts", "seen"})


class Link:
    """One end of the pipe. ``handle(kind, body)`` gets every message that is not an answer
    (on the receiver thread, so it must not `call` the other side itself: the answer would
    wait behind it); ``on_close()`` runs once when the pipe breaks or is closed."""

    def __init__(
        self,
        conn: Connection,
        handle: Callable[[str, tuple[Any, ...]], None],
        on_close: Callable[[], None] | None = None,
        name: str = "link",
    ) -> None:
        self.conn = conn
        self.handle = handle
        self.on_close = on_close
        self.closed = threading.Event()
        self._out: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._ids = itertools.count(1)
        self._waiting: dict[int, Future[Any]] = {}
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._send_loop, name=f"llmtrail-{name}-send", daemon=True),
            threading.Thread(target=self._receive_loop, name=f"llmtrail-{name}-recv", daemon=True),
        ]

    def start(self) -> Link:
        for thread in self._threads:
            thread.start()
        return self

    def post(self, kind: str, *body: Any) -> None:
        """Queue one message; never blocks. Dropped silently once the link is closed."""
        if not self.closed.is_set():
            self._out.put((kind, *body))

    def backlog(self) -> int:
        """Messages queued and not yet written to the pipe (approximate)."""
        return self._out.qsize()

    def waiting(self) -> bool:
        """Whether a call of this side waits for the other's answer."""
        return bool(self._waiting)

    def call(self, method: str, *args: Any, timeout: float | None = None) -> Any:
        """Ask the other side to run ``method(*args)`` and wait for the answer."""
        return self.request(method, *args).result(timeout)

    def request(self, method: str, *args: Any) -> Future[Any]:
        """`call` without waiting: a future of the answer."""
        rid, future = self.expect()
        if rid:
            self._out.put(("call", rid, method, args))
        return future

    def expect(self) -> tuple[int, Future[Any]]:
        """A call's id and the future of its answer, for a call sent another way than this
        link (`LoopPipe`); the id is 0, the future failed, once the link is closed."""
        future: Future[Any] = Future()
        with self._lock:
            if self.closed.is_set():
                future.set_exception(Unavailable("the recorder link is closed"))
                return 0, future
            rid = next(self._ids)
            self._waiting[rid] = future
        return rid, future

    def answer(self, rid: int, value: Any = None, error: BaseException | None = None) -> None:
        """Answer the other side's call ``rid``."""
        if error is not None:
            self.post("answer", rid, False, _crossable(error))
        else:
            self.post("answer", rid, True, value)

    def close(self, flush_s: float = 0.0) -> None:
        """Fail every waiting call and stop sending, after what is queued (waiting up to
        ``flush_s`` for it to be written); then close the pipe, so the other side reads its
        end."""
        self._out.put(_STOP)
        self._closed()
        if flush_s > 0 and self._threads[0].is_alive():
            self._threads[0].join(flush_s)
        with contextlib.suppress(OSError):
            self.conn.close()

    def _closed(self) -> None:
        with self._lock:
            if self.closed.is_set():
                return
            self.closed.set()
            waiting, self._waiting = self._waiting, {}
        for future in waiting.values():
            if not future.done():
                future.set_exception(Unavailable("the recorder process went away"))
        if self.on_close is not None:
            self.on_close()

    def _send_loop(self) -> None:
        while True:
            first = self._out.get()
            if first is _STOP:
                return
            if isinstance(first, tuple) and first[0] in _NOBODY_WAITS:
                time.sleep(_LINGER_S)
            batch = [first]
            while len(batch) < _BATCH_MESSAGES:
                try:
                    more = self._out.get_nowait()
                except queue.Empty:
                    break
                if more is _STOP:
                    self._send(batch)
                    return
                batch.append(more)
            if not self._send(batch):
                return

    def _send(self, batch: list[object]) -> bool:
        try:
            self._write(batch)
        except (OSError, ValueError, EOFError):
            self._closed()
            return False
        except Exception as exc:  # a value that does not pickle: send them one by one
            log.error("a message to the recorder link did not pickle: %r", exc)
            for message in batch:
                try:
                    self._write([message])
                except (OSError, ValueError, EOFError):
                    self._closed()
                    return False
                except Exception:
                    self._unsendable(message)
        return True

    def _write(self, batch: list[object]) -> None:
        """One frame of the batch's pickle, then one frame for each buffer it holds out of
        band (`ipc_buffer`), which the other side unpickles without copying."""
        buffers: list[pickle.PickleBuffer] = []
        head = pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL, buffer_callback=buffers.append)
        self.conn.send_bytes(head)
        for buffer in buffers:
            self.conn.send_bytes(buffer.raw())

    def _frames(self) -> Iterator[bytes]:
        """The frames after a batch's pickle, read as its unpickling asks for each."""
        while True:
            yield self.conn.recv_bytes()

    def _unsendable(self, message: object) -> None:
        """A call or an answer that did not pickle still gets its answer: an error."""
        if isinstance(message, tuple) and message[:1] == ("call",):
            with self._lock:
                future = self._waiting.pop(message[1], None)
            if future is not None:
                future.set_exception(Unavailable("the call's arguments did not pickle"))
        elif isinstance(message, tuple) and message[:1] == ("answer",):
            error = Unavailable("the answer did not pickle")
            self._out.put(("answer", message[1], False, error))

    def _receive_loop(self) -> None:
        try:
            while True:
                try:
                    batch = pickle.loads(self.conn.recv_bytes(), buffers=self._frames())
                except (EOFError, OSError, TypeError, ValueError):  # closed, here or there
                    return
                for message in batch:
                    kind, body = message[0], message[1:]
                    if kind == "answer":
                        rid, ok, value = body
                        with self._lock:
                            future = self._waiting.pop(rid, None)
                        if future is not None:
                            if ok:
                                future.set_result(value)
                            else:
                                future.set_exception(value)
                        continue
                    try:
                        self.handle(kind, body)
                    except Exception:
                        log.exception("handling a %r message failed", kind)
        finally:
            self._closed()


def _crossable(error: BaseException) -> BaseException:
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:
        return Unavailable(f"{type(error).__name__}: {error}")
    return error


# -- the serving process's stores, as the recorder sees them ------------------------------------


class RemoteRecordStore:
    """The `RecordStore` calls the pipeline makes, answered by the serving process."""

    def __init__(
        self,
        link: Link,
        schema: RecordSchema,
        to_tables: Callable[..., Any],
        before_append: Callable[[], None] | None = None,
    ) -> None:
        self.link = link
        self.schema = schema
        self._to_tables = to_tables  # (records, schema, ingested_at) -> (records, bodies)
        self._before_append = before_append  # posts what must reach the other side first

    def append(
        self, records: Sequence[InvocationRecord], position: str | None = None
    ) -> AppendResult:
        """Convert the batch to Arrow here; the serving process inserts the tables."""
        record_table, body_table = self._to_tables(records, self.schema, datetime.now(UTC))
        return self._append(record_table, body_table, position)

    def append_framed(
        self,
        records: Sequence[InvocationRecord],
        framed: Sequence[Any],
        position: str | None = None,
    ) -> AppendResult:
        """`append` for a batch of which some records came framed (`RecordFrames`): their
        tables, made in a worker process, join those converted here."""
        import pyarrow as pa

        tables = [f.tables() for f in framed]
        if records:
            tables.insert(0, self._to_tables(records, self.schema, datetime.now(UTC)))
        record_table = pa.concat_tables([t[0] for t in tables])
        body_table = pa.concat_tables([t[1] for t in tables])
        return self._append(record_table, body_table, position)

    def _append(
        self, record_table: pa.Table, body_table: pa.Table, position: str | None
    ) -> AppendResult:
        """The tables cross with the batch's metric staging rows, computed here too: the
        serving process inserts them as they are (`batch_deltas`; None: it stages by SQL)."""
        from llmtrail.store.duckdb.metric_deltas import batch_deltas

        deltas = batch_deltas(record_table, self.schema)
        staged = None if deltas is None else (ipc_buffer(deltas[0]), ipc_buffer(deltas[1]))
        if self._before_append is not None:
            self._before_append()
        result: AppendResult = self.link.call(
            "append", ipc_buffer(record_table), ipc_buffer(body_table), position, staged
        )
        return result

    def committed_position(self) -> str | None:
        value: str | None = self.link.call("committed_position")
        return value

    def recent_request_ids(self, since: datetime, limit: int) -> list[tuple[str, str]]:
        value: list[tuple[str, str]] = self.link.call("recent_request_ids", since, limit)
        return value

    def stored_request_ids(self, keys: list[tuple[str, str]], since: datetime) -> set[Any]:
        value: set[Any] = self.link.call("stored_request_ids", keys, since)
        return value

    def recent_calls(self, since: datetime, limit: int) -> list[RecentCall]:
        value: list[RecentCall] = self.link.call("recent_calls", since, limit)
        return value


class RemoteSpanStore:
    """The span store's `append`, answered by the serving process (spooled spans): the
    batch is converted to Arrow here, as records are, and crosses as an IPC stream."""

    def __init__(self, link: Link, to_table: Callable[[Sequence[Any]], Any]) -> None:
        self.link = link
        self._to_table = to_table  # spans -> the table inserted (the last copy of each)

    def append(self, spans: Sequence[Any]) -> int:
        if spans:
            self.link.call("append_spans", ipc_buffer(self._to_table(spans)))
        return len(spans)


class RemoteStateStore:
    """The reads of the `StateStore` that capture's policies make (logging configurations,
    redaction policies, price overrides), answered by the serving process."""

    def __init__(self, link: Link) -> None:
        self.link = link

    def get(self, namespace: str, key: str) -> Any | None:
        return self.link.call("state_get", namespace, key)

    def list(self, namespace: str) -> dict[str, Any]:
        value: dict[str, Any] = self.link.call("state_list", namespace)
        return value


def ipc(table: pa.Table) -> bytes:
    """One Arrow table as an IPC stream (its buffers copied once, into the message)."""
    return _ipc_stream(table).to_pybytes()


def ipc_buffer(table: pa.Table) -> pickle.PickleBuffer:
    """`ipc`, to cross the link out of band: the message's pickle holds none of its bytes,
    and the receiver gets them as the frame it read, with no copy made while it unpickles
    (holding the GIL: ~1–3 ms a second's gateway batch, the relay's tail)."""
    return pickle.PickleBuffer(_ipc_stream(table))


def _ipc_stream(table: pa.Table) -> pa.Buffer:
    import pyarrow as pa  # loaded with the first batch (the serving process at rest has none)

    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def from_ipc(data: bytes) -> pa.Table:
    import pyarrow as pa

    return pa.ipc.open_stream(pa.py_buffer(data)).read_all()
