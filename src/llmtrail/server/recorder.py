"""The recorder process: where a served call's facts become a stored record.

The serving process (the one in ``server.json``) relays model calls and serves every read; it
owns the store, because DuckDB and chdb let one process open a file and every read — queries,
the UI, alarms, the CLI's client — is served there. Everything else on the record path runs
in the recorder, a ``spawn``-ed child fed over one pipe (`llmtrail.pipeline.link`):

    serving process                                  recorder process
    gateway: CallFacts ──── post, never waits ────►  read the answer, count, price,
    ingest:  raw body  ──── call, waits ──────────►  validate, price,
    OTLP:    records   ──── call, waits ──────────►  (all three:) logging configuration,
                                                    redaction, spool + fsync ─► answer
    insert Arrow batch + spool position ◄── call ──  batch, offload, convert to Arrow
    budgets, merge index, tokens/min   ◄── post ──  what each gateway record spent

The spool holds finished, redacted records (never raw exchanges), so a kill -9 of either
process loses only what the README says: gateway calls not yet spooled. The recorder holds
an exclusive lock on the spool directory while it runs, so a recorder left over from a
killed server and a new one never write the spool together.

`RecorderProcess` is the serving process's side: it starts the recorder, answers its store
calls, restarts it when it dies (``recorder_restarts`` on ``/metrics``, ``/readyz`` 503
meanwhile) and stops it with the server; the recorder exits on its own when the serving
process is gone (its pipe reads end of file, and it checks its parent's pid twice a second).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import multiprocessing
import os
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from llmtrail.capture.gateway.facts import CallFacts
from llmtrail.config import Settings
from llmtrail.errors import Unavailable
from llmtrail.pipeline.link import Link, from_ipc
from llmtrail.pipeline.loop_pipe import LoopPipe, read_messages
from llmtrail.pipeline.packed import Packed, SpanFrames
from llmtrail.record import InvocationRecord
from llmtrail.server.collector import RECORD_PATH_YOUNG, settle_collector
from llmtrail.server.no_pandas import refuse_pandas
from llmtrail.server.workers import Workers, exit_with_parent
from llmtrail.server.yielding import Yielding, idle_is_reversible
from llmtrail.span import Span

log = logging.getLogger("llmtrail.recorder")
_START_TIMEOUT_S = 120.0
_STOP_TIMEOUT_S = 30.0
_LOCK_WAIT_S = 30.0
_STATS_EVERY_S = 0.25  # also how often what gateway records spent goes back
_SEEN_MAX = 4096  # ... or once this many records' spending waits to go
# the recorder stops yielding the CPU (`Yielding`) once this many calls handed over wait to
# become records, or records to be stored, or it has not reported for this long (its stats
# come every 0.25 s)
_PRESSING_CALLS = 4096
_PRESSING_SILENCE_S = 1.0


@dataclass
class RecorderCounters:
    restarts: int = 0
    handed_over: int = 0
    dropped_handover_full: int = 0  # the recorder fell behind: the call's record is dropped
    dropped_recorder_down: int = 0  # the recorder was restarting
    stats: dict[str, float] = field(default_factory=dict)  # the recorder's own, last reported


class RecorderProcess:
    """Start, feed and supervise the recorder; answer its calls on the store."""

    def __init__(
        self,
        settings: Settings,
        records: Any,  # RecordStore: the serving process's
        state: Any,  # StateStore
        spans: Any,  # SpanStore
        redaction_key: bytes,
        learn: Callable[[list[dict[str, Any]]], None],
        stored: Callable[[Iterable[tuple[str, str]]], None] = lambda keys: None,
    ) -> None:
        self.settings = settings
        self.records = records
        self.state = state
        self.spans = spans
        self.redaction_key = redaction_key
        self.learn = learn  # what gateway records spent: budgets, merge index, tokens/min
        self.stored = stored  # the (workspace, requestId) of each batch once stored
        self.counters = RecorderCounters()
        self.ready = threading.Event()
        self.pid: int | None = None
        self._context = multiprocessing.get_context("spawn")
        self._link: Link | None = None
        self._process: Any = None
        self._stopping = threading.Event()
        self._store_calls = ThreadPoolExecutor(2, thread_name_prefix="llmtrail-recorder-store")
        self._limit = settings.spool.queue_records
        # the serving loop writes the facts itself (`LoopPipe`), once it is known (`use_loop`)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._pipe: LoopPipe | None = None
        self._restart_lock = threading.Lock()
        self.spool_ops = _RemoteSpool(self)
        self._handed_this_run = 0  # to this recorder process (they count from 0 each)
        self._caught_up = 0  # hand-overs the serving process has learned from, at least
        self._stats_at = time.monotonic()  # when the recorder last reported
        self._yielding: Yielding | None = None
        s = settings.server
        if s.recorder_idle and idle_is_reversible(s.recorder_nice):
            self._yielding = Yielding(lambda: self.pid, self._pressed)

    # -- life cycle ---------------------------------------------------------------------------
    def use_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Hand the facts over from ``loop`` (the serving loop, this thread's), writing them
        itself (`LoopPipe`) from the next `start` on, not through the link's sender thread."""
        self._loop, self._loop_thread = loop, threading.get_ident()

    def start(self, warm: bool = True) -> None:
        """Start the recorder and wait until it replayed its spool (blocking); it loads the
        tokenizer and the price table itself (``warm`` is always so there)."""
        conn, child = self._context.Pipe()
        facts_in, facts_out = self._context.Pipe(duplex=False) if self._loop else (None, None)
        process = self._context.Process(
            target=recorder_main,
            args=(child, self.settings, self.redaction_key, os.getpid(), facts_in),
            name="llmtrail-recorder",
            daemon=True,
        )
        process.start()
        child.close()
        old, self._pipe = self._pipe, None
        if old is not None:
            old.close(flush_s=0.0)  # its reader is gone
        if facts_in is not None and facts_out is not None and self._loop is not None:
            facts_in.close()
            self._pipe = LoopPipe(facts_out, self._loop, self._lost)
        self._process, self.pid = process, process.pid
        link = Link(conn, self._handle, self._gone, name="recorder")
        self.counters.stats, self._handed_this_run, self._caught_up = {}, 0, 0
        self._link = link.start()
        try:
            self.counters.stats = link.request("started").result(_START_TIMEOUT_S)
        except BaseException:
            if not self._stopping.is_set():
                raise
            return
        self.ready.set()
        log.info("recorder process %s ready", process.pid)
        if self._yielding is not None and not self._yielding.started:
            self._yielding.start()

    def _pressed(self) -> bool:
        """Whether the record path is behind or waited on: the recorder must not yield."""
        link, stats = self._link, self.counters.stats
        return (
            link is None
            or not self.ready.is_set()
            or link.waiting()  # an ingest or OTLP request, a read of its stats
            or self._handed_this_run - stats.get("calls_taken", 0.0) >= _PRESSING_CALLS
            # records spooled and not yet stored (an ingest's last batches, after its answer)
            or _to_store(stats) >= _PRESSING_CALLS
            or time.monotonic() - self._stats_at > _PRESSING_SILENCE_S  # it gets no core
        )

    def is_ready(self) -> bool:
        """Started, and its pipeline's threads alive (as it last reported)."""
        return self.ready.is_set() and self.counters.stats.get("ready", 1.0) == 1.0

    def begin_stop(self) -> None:
        """Stop taking records (ingest answers 503); `close` flushes what was taken."""
        self.ready.clear()

    def close(self, timeout: float = _STOP_TIMEOUT_S) -> None:
        """Let the recorder flush what it holds into the store, then stop it."""
        self._stopping.set()
        self.ready.clear()
        if self._yielding is not None:
            self._yielding.stop()
        link, process, pipe = self._link, self._process, self._pipe
        if pipe is not None:  # the facts handed over go first; the recorder reads them all
            pipe.close()
        if link is not None and not link.closed.is_set():
            with contextlib.suppress(Exception):
                link.request("stop").result(_STOP_TIMEOUT_S)
            link.close()
        if process is not None:
            process.join(_STOP_TIMEOUT_S)
            if process.is_alive():
                process.kill()
                process.join(_STOP_TIMEOUT_S)
        self._store_calls.shutdown(wait=True, cancel_futures=True)

    def _gone(self) -> None:
        """The pipe broke: the recorder died (or is stopping). Restart it unless stopping."""
        self.ready.clear()
        if self._stopping.is_set():
            return
        self.counters.restarts += 1
        log.error("the recorder process died; restarting it (its spool is replayed)")
        threading.Thread(
            target=self._restart, name="llmtrail-recorder-restart", daemon=True
        ).start()

    def _restart(self) -> None:
        with self._restart_lock:
            process = self._process
            if process is not None:
                process.join(5)
                if process.is_alive():
                    process.kill()
                    process.join(5)
            delay = 0.1
            while not self._stopping.is_set():
                try:
                    self.start()
                    return
                except Exception:
                    log.exception("restarting the recorder failed; trying again")
                    time.sleep(delay)
                    delay = min(delay * 2, 5.0)

    # -- what the serving process hands over -------------------------------------------------
    def hand_over(self, facts: CallFacts) -> bool:
        """Queue a finished call for the recorder; never waits, never raises."""
        link = self._link
        if link is None or not self.ready.is_set():
            self.counters.dropped_recorder_down += 1
            return False
        pipe = self._pipe
        if link.backlog() + (pipe.pending() if pipe is not None else 0) >= self._limit:
            self.counters.dropped_handover_full += 1
            return False
        self._post_in_order("facts", facts)
        self.counters.handed_over += 1
        self._handed_this_run += 1
        return True

    def _post_in_order(self, *message: Any, at_once: bool = False) -> None:
        """Post what must reach the recorder in the order of the calls handed over: through
        the serving loop's pipe, or the link before there is one."""
        pipe = self._pipe
        if pipe is None:
            assert self._link is not None
            self._link.post(*message)
        elif threading.get_ident() == self._loop_thread:
            pipe.post(*message, at_once=at_once)
        else:
            pipe.post_threadsafe(*message, at_once=at_once)

    def _lost(self, count: int) -> None:
        """Facts that never reached the recorder: it died (it is restarted) or is stopping."""
        self.counters.dropped_recorder_down += count

    async def ingest_body(
        self, raw: bytes, gzipped: bool, workspace: str
    ) -> tuple[list[dict[str, Any]], list[int], list[bool]]:
        """Decode, validate, price and spool an ingest body in the recorder; answered after
        the fsync: (per-item results, where the valid ones sit, which were new)."""
        result: tuple[list[dict[str, Any]], list[int], list[bool]] = await self._ask(
            "ingest", raw, gzipped, workspace
        )
        return result

    async def ingest_otlp(
        self,
        records: Sequence[InvocationRecord] | Packed[InvocationRecord],
        spans: Sequence[Span] | Packed[Span] | SpanFrames,
        links: Sequence[Span],
    ) -> list[bool]:
        """Spool what an OTLP export held, decoded here: its model calls as records, its
        other spans (redacted in the recorder) and the spans linking records into traces;
        answered after the fsync. What a worker process packed crosses as it is."""
        records = records if isinstance(records, Packed) else list(records)
        spans = spans if isinstance(spans, Packed | SpanFrames) else list(spans)
        fresh: list[bool] = await self._ask("otlp", records, spans, list(links))
        return fresh

    async def caught_up(self, timeout: float = 2.0) -> None:
        """Wait until the serving process learned what every call handed over so far spent
        (the OTLP receiver merges spans into those calls). At most ``timeout`` seconds: a
        span that arrives sooner than its call's record is built is not merged."""
        link = self._link
        if link is None or not self.ready.is_set() or self._handed_this_run == self._caught_up:
            return
        handed = self._handed_this_run
        rid, answer = link.expect()  # answered on the link, asked after the facts on their way
        if rid:
            self._post_in_order("call", rid, "barrier", (), at_once=True)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.wrap_future(answer), timeout)
            self._caught_up = handed

    def tell_policies_changed(self) -> None:
        """A logging configuration, redaction policy or price changed on this server."""
        if self._link is not None:
            self._post_in_order("invalidate", at_once=True)

    def spool_call(self, method: str, *args: Any, timeout: float = 60.0) -> Any:
        """Run a spool operation of the erasure in the recorder (blocking)."""
        if self._link is None:
            raise Unavailable("the recorder is not running")
        return self._link.call(method, *args, timeout=timeout)

    def stats(self) -> dict[str, float]:
        """The recorder's counters, asked for now (blocking, at most a second; the last
        reported ones when it does not answer), and the hand-over's own."""
        c = self.counters
        link = self._link
        if link is not None and self.ready.is_set():
            with contextlib.suppress(Exception):
                c.stats = link.call("stats", timeout=1.0)
        out = dict(c.stats)
        out.update(
            recorder_restarts=c.restarts,
            recorder_pid=float(self.pid or 0),
            recorder_handed_over=c.handed_over,
            # handed over and not yet a record in the recorder's pipeline (as last reported)
            handover_pending=max(0.0, self._handed_this_run - out.get("calls_taken", 0.0)),
            dropped_handover_full=c.dropped_handover_full,
            dropped_recorder_down=c.dropped_recorder_down,
            ready=1.0 if self.ready.is_set() and out.get("ready", 0.0) else 0.0,
            recorder_idle=1.0 if self._yielding is not None and self._yielding.idle else 0.0,
            recorder_boosts=float(self._yielding.boosts if self._yielding is not None else 0),
        )
        return out

    async def _ask(self, method: str, *args: Any) -> Any:
        link = self._link
        if link is None or not self.ready.is_set():
            raise Unavailable("the recorder is restarting; retry later")
        return await asyncio.wrap_future(link.request(method, *args))

    # -- what the recorder asks ---------------------------------------------------------------
    def _handle(self, kind: str, body: tuple[Any, ...]) -> None:
        if kind == "call":
            rid, method, args = body
            self._store_calls.submit(self._answer, rid, method, args)
        elif kind == "seen":
            self.learn(body[0])
        elif kind == "stats":
            self.counters.stats = body[0]
            self._stats_at = time.monotonic()

    def _answer(self, rid: int, method: str, args: tuple[Any, ...]) -> None:
        link = self._link
        if link is None:
            return
        try:
            value = self._store_call(method, args)
        except BaseException as exc:
            link.answer(rid, error=exc)
        else:
            link.answer(rid, value)

    def _store_call(self, method: str, args: tuple[Any, ...]) -> Any:
        if method == "append":
            records, bodies, position, deltas = args
            table = from_ipc(records)
            staged = None if deltas is None else (from_ipc(deltas[0]), from_ipc(deltas[1]))
            result = self.records.append_tables(table, from_ipc(bodies), position, staged)
            try:
                self.stored(_keys(table))
            except Exception:  # the batch is stored: its append must not fail over this
                log.exception("telling that a batch was stored failed")
            return result
        if method == "append_spans":
            return self.spans.append_table(from_ipc(args[0]))
        if method == "state_get":
            return self.state.get(*args)
        if method == "state_list":
            return self.state.list(*args)
        if method in ("committed_position", "recent_request_ids", "stored_request_ids"):
            return getattr(self.records, method)(*args)
        raise Unavailable(f"the recorder asked for an unknown store call {method!r}")


class _RemoteSpool:
    """The erasure's spool operations, run by the recorder that owns the spool."""

    def __init__(self, recorder: RecorderProcess) -> None:
        self.recorder = recorder

    def flush(self) -> None:
        self.recorder.spool_call("flush")

    def release_stored(self) -> int:
        value: int = self.recorder.spool_call("release_stored")
        return value

    def pending_in_spool(
        self, workspace: str, request_ids: frozenset[str], user: str | None, tenant: str | None
    ) -> int:
        value: int = self.recorder.spool_call(
            "pending_in_spool", workspace, request_ids, user, tenant
        )
        return value


# -- the recorder process -----------------------------------------------------------------------


def _to_store(stats: dict[str, float]) -> float:
    """Records the recorder's pipeline spooled (or replayed) and has not stored yet."""
    done = stats.get("stored", 0.0) + stats.get("dead_lettered", 0.0)
    return stats.get("spooled", 0.0) + stats.get("replayed", 0.0) - done


def recorder_main(
    conn: Connection,
    settings: Settings,
    redaction_key: bytes,
    parent_pid: int,
    facts: Connection | None = None,
) -> None:
    """The recorder process: build the record path and serve the link (and the serving
    loop's ``facts`` pipe) until told to stop or the serving process is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the group: the server stops us
    # where the recorder and the serving process compete for a core, the relay goes first:
    # records are built in the gaps (a backlog waits in the bounded queue). Before any thread
    # starts: on Linux a thread's niceness is its own, inherited by the threads it starts.
    with contextlib.suppress(OSError):
        os.nice(settings.server.recorder_nice)
    refuse_pandas()
    threading.Thread(target=exit_with_parent, args=(parent_pid,), daemon=True).start()
    # multiprocessing lets no daemonic process start children, lest they outlive it; the
    # recorder's ingest workers leave as soon as it is gone (`exit_with_parent`), as it
    # leaves with the serving process
    multiprocessing.current_process().daemon = False
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s[recorder]: %(message)s",
    )
    settle_collector(RECORD_PATH_YOUNG)
    done = threading.Event()
    recorder = _Recorder(settings, redaction_key, done)
    link = Link(conn, recorder.handle, done.set, name="recorder")
    recorder.link = link
    link.start()
    if facts is not None:
        threading.Thread(
            target=recorder.read_facts, args=(facts,), name="llmtrail-facts", daemon=True
        ).start()
    else:
        recorder.facts_read.set()
    done.wait()
    recorder.stop_quickly()
    link.close(flush_s=5.0)  # the answer to "stop" goes out first
    os._exit(0)


class _Recorder:
    """The recorder's record path, built once the link is up (it reads through the link)."""

    def __init__(self, settings: Settings, redaction_key: bytes, done: threading.Event) -> None:
        self.settings = settings
        self.redaction_key = redaction_key
        self.done = done
        self.link: Link | None = None
        self.path: Any = None  # `RecordPath`, once started
        # facts to build, barriers (the id of the call to answer), None to stop
        self._facts: queue.SimpleQueue[CallFacts | int | None] = queue.SimpleQueue()
        # requests: an ingest body waits on one while a worker process prepares it
        self._work = ThreadPoolExecutor(
            2 + settings.server.ingest_workers, thread_name_prefix="llmtrail-recorder-ingest"
        )
        self._lock_file: Any = None
        self.calls_taken = 0  # facts made into records (or given up on) and handed on
        # what the records built spent, sent back before the batch holding them is stored,
        # with the stats, or at once for a barrier: a few messages a second, not one per run
        # of records (each woke a thread in the serving process, beside its event loop)
        self._seen: list[dict[str, Any]] = []
        self._seen_lock = threading.Lock()
        self._builder: threading.Thread | None = None
        self.facts_read = threading.Event()  # the serving loop's pipe read to its end

    def read_facts(self, conn: Connection) -> None:
        """The serving loop's pipe: facts, barriers and policy changes, in order."""
        try:
            read_messages(conn, self.handle)
        finally:
            self.facts_read.set()

    def handle(self, kind: str, body: tuple[Any, ...]) -> None:
        if kind == "facts":
            self._facts.put(body[0])
        elif kind == "invalidate":
            if self.path is not None:
                # forgotten here, in the pipe's order: a call handed over after the change is
                # prepared under it; the prices are read again on another thread (reading
                # them calls the serving process, whose answers this thread receives)
                self.path.forget_policies()
                self._work.submit(self.path.enricher.reload)
        elif kind == "call":
            rid, method, args = body
            if method == "started":
                threading.Thread(target=self._start, args=(rid,), daemon=True).start()
            elif method == "stop":
                threading.Thread(target=self._stop, args=(rid,), daemon=True).start()
            elif method == "barrier":
                self._facts.put(rid)
            elif method == "stats" and self.path is not None and self.link is not None:
                self.link.answer(rid, self._stats())  # cheap: here
            else:
                self._work.submit(self._serve_call, rid, method, args)

    def _start(self, rid: int) -> None:
        assert self.link is not None
        try:
            self._lock_spool()
            self.path = _record_path(self.settings, self.redaction_key, self.link, self._flush_seen)
            self.path.start()
            if self.settings.server.ingest_workers:  # started with the first large body
                self.path.workers = Workers(self.settings.server.ingest_workers)
        except BaseException as exc:
            log.exception("the recorder did not start")
            self.link.answer(rid, error=exc)
            return
        self._builder = threading.Thread(
            target=self._build_loop, name="llmtrail-records", daemon=True
        )
        self._builder.start()
        threading.Thread(target=self._stats_loop, name="llmtrail-stats", daemon=True).start()
        self.link.answer(rid, {**self.path.stats(), "calls_taken": 0})

    def _lock_spool(self) -> None:
        """Wait (a bounded time) for a recorder left over from a killed server to exit."""
        directory = self.settings.data_dir / "spool"
        directory.mkdir(parents=True, exist_ok=True)
        self._lock_file = open(directory / ".recorder.lock", "w")  # noqa: SIM115 (held open)
        deadline = time.monotonic() + _LOCK_WAIT_S
        while True:
            try:
                fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise Unavailable("another recorder holds the spool") from None
                time.sleep(0.05)

    def _build_loop(self) -> None:
        """Facts become records, a run of them at a time; what they spent goes back. A
        barrier (an int: the call to answer) is answered once every fact before it is."""
        assert self.link is not None and self.path is not None
        while True:
            first = self._facts.get()
            if first is None:
                return
            items: list[CallFacts | int] = [first]
            while len(items) < 512:
                try:
                    more = self._facts.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._facts.put(None)
                    break
                items.append(more)
            facts = [f for f in items if isinstance(f, CallFacts)]
            if facts:
                self.path.record_calls(facts, before_submit=self._note_seen)
            self.calls_taken += len(facts)
            barriers = [b for b in items if isinstance(b, int)]
            with self._seen_lock:
                if barriers or len(self._seen) >= _SEEN_MAX:
                    self._post_seen()
                for barrier in barriers:
                    self.link.answer(barrier, True)  # after the "seen" above, on the same pipe

    def _note_seen(self, seen: list[dict[str, Any]]) -> None:
        """Keep what records spent until the next "seen" message; before the records can
        be spooled, so that no batch holding them is stored before it (`_flush_seen`)."""
        with self._seen_lock:
            self._seen += seen

    def _flush_seen(self) -> None:
        """Before a batch crosses to be stored: the serving process learns what its records
        spent first, on the same pipe (a budget refuses once its status says it does)."""
        with self._seen_lock:
            self._post_seen()

    def _post_seen(self) -> None:
        """Send what the records built since the last time spent (under ``_seen_lock``, so
        that a barrier's answer or a batch never overtakes them)."""
        assert self.link is not None
        if self._seen:
            self.link.post("seen", self._seen)
            self._seen = []

    def _stats(self) -> dict[str, float]:
        """The record path's counters and the facts taken. Those are read first: a call is
        counted taken only after its record was accepted, so the counters then include every
        call taken (the other way round, a call taken in between was counted taken but not
        accepted, and the serving process saw nothing pending and nothing to store)."""
        assert self.path is not None
        taken = self.calls_taken
        return {**self.path.stats(), "calls_taken": taken}

    def _stats_loop(self) -> None:
        assert self.link is not None and self.path is not None
        while not self.done.wait(_STATS_EVERY_S):
            with contextlib.suppress(Exception):
                with self._seen_lock:
                    self._post_seen()
                self.link.post("stats", self._stats())

    def _serve_call(self, rid: int, method: str, args: tuple[Any, ...]) -> None:
        assert self.link is not None
        link = self.link
        if self.path is None:
            link.answer(rid, error=Unavailable("the recorder is starting"))
            return
        try:
            if method == "ingest":
                future: Future[Any] = self.path.ingest_body(*args)
            elif method == "otlp":
                future = self.path.ingest_otlp(*args)
            elif method in ("flush", "release_stored", "pending_in_spool"):
                link.answer(rid, getattr(self.path, method)(*args))
                return
            elif method == "stats":
                link.answer(rid, self._stats())
                return
            else:
                raise Unavailable(f"unknown recorder call {method!r}")
        except BaseException as exc:
            link.answer(rid, error=exc)
            return

        def answered(f: Future[Any]) -> None:
            error = f.exception()
            if error is not None:
                link.answer(rid, error=error)
            else:
                link.answer(rid, f.result())

        future.add_done_callback(answered)

    def _stop(self, rid: int) -> None:
        assert self.link is not None
        # the serving process closed its loop's pipe before asking: its last facts first
        self.facts_read.wait(self.settings.drain_timeout_s)
        self._finish_building(self.settings.drain_timeout_s)
        if self.path is not None:
            self.path.stop(self.settings.drain_timeout_s)
            if self.path.workers is not None:
                self.path.workers.close()
            self.path = None
        self.link.answer(rid, True)
        self.done.set()

    def stop_quickly(self) -> None:
        """The serving process is gone: spool what was taken (it is replayed into the store
        by the next server), and leave."""
        if self.path is not None:
            with contextlib.suppress(Exception):
                self._finish_building(2.0)
                self.path.stop(2.0)
                if self.path.workers is not None:
                    self.path.workers.close()

    def _finish_building(self, timeout: float) -> None:
        """Let the builder make records of every fact taken so far (waiting at most
        ``timeout``), so that the pipeline, stopped next, spools them: the first records of
        a server still warming up (the tokenizer, the price table) take seconds to build."""
        self._facts.put(None)
        if self._builder is not None:
            self._builder.join(timeout)


def _keys(table: Any) -> Iterator[tuple[str, str]]:
    """The ``(workspace, requestId)`` of a stored record table's rows, read only when iterated
    (`BudgetGuard.stored` does not, when it waits for no record)."""
    yield from zip(table["workspace"].to_pylist(), table["request_id"].to_pylist(), strict=True)


def _record_path(
    settings: Settings, redaction_key: bytes, link: Link, before_append: Callable[[], None]
) -> Any:
    from llmtrail.server.record_path import recorder_record_path

    return recorder_record_path(settings, redaction_key, link, before_append)
