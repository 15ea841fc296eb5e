"""Capture → bounded queue → spool (group-committed fsync) → batch writer → store → release.

Two threads, so that neither the event loop nor the disk waits on the other:

* the **spool thread** drains the queue, appends everything it took as one group commit
  (one write, one fsync), acknowledges ingest callers, and hands the batch on;
* the **writer thread** gathers spooled batches for up to ``batch_wait_ms`` (less when the
  spool goes quiet), offloads large
  bodies, and stores them with the spool position in the same transaction, then releases
  spool segments that are wholly stored.

The gateway calls `Pipeline.submit`, which never blocks and never raises: a full queue drops
the record and counts it (fail-open; a kill -9 loses what is in the queue, at most
``queue_records`` records, typically the last few milliseconds). The ingest API calls
`Pipeline.ingest`, whose future resolves only after the fsync. A full spool refuses new
records: ingest callers get `Unavailable` (503, retry later, nothing acknowledged), gateway
records are dropped and counted in ``dropped_spool_full``. On start the spool is replayed
from the position the store committed, so nothing acknowledged is lost and nothing doubled.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, InvalidStateError
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import orjson

from llmtrail.config import SpoolSettings
from llmtrail.errors import Picklable, Unavailable, ValidationError
from llmtrail.pipeline.dedup import RecentRequestIds
from llmtrail.pipeline.frames import decode_payload, encode_payload, encode_span_payload
from llmtrail.pipeline.offload import offload_bodies
from llmtrail.pipeline.packed import RecordFrames, SpanFrames, span_count
from llmtrail.pipeline.spool import Spool, SpoolFullError, SpoolPosition
from llmtrail.record import InvocationRecord, check_types
from llmtrail.span import Span
from llmtrail.store.interfaces import RecordStore
from llmtrail.store.objects import ObjectStore

log = logging.getLogger("llmtrail.pipeline")
_STOP = object()
_GATEWAY_LINGER_S = 0.005
_ISOLATE_AFTER = 3  # failed attempts (about 0.3 s) before a batch is split to find what fails


class _GaveUp(Picklable):
    """The writer stops without committing: what it held is replayed at the next start."""


@dataclass
class Counters:
    accepted: int = 0  # records handed to the pipeline
    spooled: int = 0
    stored: int = 0
    duplicates: int = 0
    duplicates_elsewhere: int = 0  # already stored by another server sharing the store
    replayed: int = 0
    spans_spooled: int = 0  # OTLP spans that are not model calls: spooled, then stored
    spans_stored: int = 0
    replay_undecodable: int = 0
    dropped_queue_full: int = 0
    dropped_spool_full: int = 0
    dropped_stopped: int = 0
    ingest_refused_spool_full: int = 0
    store_errors: int = 0
    offload_errors: int = 0
    dead_lettered: int = 0
    dropped_spool_error: int = 0
    thread_failures: int = 0
    offloaded_bodies: int = 0
    batches: int = 0
    writer_lag_ms: float = 0.0


@dataclass
class _Item:
    records: list[InvocationRecord]
    future: Future[SpoolPosition] | None = None
    keys: list[tuple[str, str]] = field(default_factory=list)
    spans: list[Span | SpanFrames] = field(default_factory=list)
    # an ingest body's records as a worker process made them ready (`RecordFrames`)
    framed: list[RecordFrames] = field(default_factory=list)


class Pipeline:
    def __init__(
        self,
        spool: Spool,
        store: RecordStore,
        *,
        objects: ObjectStore | None = None,
        settings: SpoolSettings | None = None,
        offload_bytes: int = 100 * 1024,
        dedup: RecentRequestIds | None = None,
        dead_letter_dir: Path | None = None,
        policy: Any = None,
        object_prefix: Callable[[str], str] | None = None,
        shared_store: bool = False,
        span_store: Any = None,
        gateway_linger_s: float = _GATEWAY_LINGER_S,
        stored: Callable[[list[InvocationRecord]], None] | None = None,
    ) -> None:
        self.spool = spool
        self.stored = stored  # told of the records of each batch once the store holds them
        # how long gateway records wait for company before their fsync: none in the
        # recorder, whose records arrive in runs the link already gathered
        self.gateway_linger_s = gateway_linger_s
        self.span_store = span_store  # `SpanStore`: where spooled spans are stored
        # `RecordPolicy`: what every record goes through before it reaches a file (the spool
        # first), the workspace's logging configuration and redaction
        self.policy = policy
        self.object_prefix = object_prefix  # workspace -> where its large bodies go
        # a store other servers write too (ClickHouse): every batch is checked against it
        # before it is stored (`llmtrail.server.shared_views` teaches the resend index too)
        self.shared_store = shared_store
        self.store = store
        self.objects = objects
        self.settings = settings or SpoolSettings()
        self.offload_bytes = offload_bytes
        self.dead_letter_dir = dead_letter_dir or spool.directory / "deadletter"
        self.dedup = (
            dedup
            if dedup is not None
            else RecentRequestIds(self.settings.dedup_window_s, self.settings.dedup_max_entries)
        )
        self.counters = Counters()
        self.ready = threading.Event()
        self._queue: queue.Queue[object] = queue.Queue(maxsize=self.settings.queue_records)
        self._written: queue.Queue[Any] = queue.Queue()  # (records, position, spooled at)
        self._stopping = False
        self._stopped = False
        self._threads: list[threading.Thread] = []
        # ingested keys whose records are queued but not yet durable, with their futures
        self._pending: dict[tuple[str, str], Future[SpoolPosition]] = {}
        self._pending_lock = threading.Lock()

    # -- life cycle ---------------------------------------------------------------------
    def start(self) -> None:
        """Warm the resend index, replay the spool into the store, start the threads."""
        since = datetime.now(UTC) - timedelta(seconds=self.settings.dedup_window_s)
        self.dedup.claim(self.store.recent_request_ids(since, self.dedup.max_entries))
        self._replay()
        for target, name in ((self._spool_loop, "spool"), (self._writer_loop, "batch-writer")):
            thread = threading.Thread(
                target=self._guarded, args=(target,), name=f"llmtrail-{name}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        self.ready.set()

    def begin_stop(self) -> None:
        """Stop accepting records; what was accepted is still flushed by `stop`."""
        self._stopping = True
        self.ready.clear()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop accepting, then flush queue → spool → store. Safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        self.begin_stop()
        if self._threads:
            deadline = time.monotonic() + timeout
            with self._pending_lock, contextlib.suppress(queue.Full):  # full, its thread dead
                self._queue.put(_STOP, timeout=timeout)
            for thread in self._threads:
                thread.join(max(0.0, deadline - time.monotonic()))
        self.spool.close()

    # -- capture side ---------------------------------------------------------------------
    def submit(self, record: InvocationRecord) -> bool:
        """Hand a gateway record over without waiting; False if it had to be dropped."""
        return self.submit_all([record]) == 1

    def submit_all(self, records: list[InvocationRecord]) -> int:
        """`submit` for a run of gateway records at once (one queue item, so the spool
        thread wakes once for them, not once each); how many were taken."""
        if not records:
            return 0
        with self._pending_lock:  # shared with stop(): nothing is queued behind the stop marker
            if self._stopping:
                self.counters.dropped_stopped += len(records)
                return 0
            try:
                self._queue.put_nowait(_Item(records))
            except queue.Full:
                self.counters.dropped_queue_full += len(records)
                return 0
            self.counters.accepted += len(records)  # under the lock: records finish elsewhere
        return len(records)

    def ingest(
        self,
        records: Sequence[InvocationRecord],
        spans: Sequence[Span | SpanFrames] = (),
        framed: RecordFrames | None = None,
    ) -> tuple[list[bool], Future[SpoolPosition]]:
        """Queue ``records`` (and ``spans``, already prepared, or framed; and ``framed``
        records, after ``records``, read back as records when any is a duplicate) for the
        spool. Returns, per record, whether it is new (False: a recent duplicate, not stored
        again) and a future that resolves after the fsync. Spans are not de-duplicated here:
        a span stored twice reads once (the latest)."""
        if self._stopping or not self.ready.is_set():
            raise Unavailable("the pipeline is not accepting records (starting or stopping)")
        keys = [(r.workspace, r.request_id) for r in records]
        if framed is not None:
            keys += framed.keys
        future: Future[SpoolPosition] = Future()
        with self._pending_lock:  # shared with stop(): nothing is queued behind the stop marker
            if self._stopping:
                raise Unavailable("the pipeline is stopping")
            fresh = self.dedup.claim(keys)
            # a resend of a record that is not on disk yet is acknowledged with its original
            originals = {
                id(f): f
                for k, ok in zip(keys, fresh, strict=True)
                if not ok and (f := self._pending.get(k)) is not None
            }
            if framed is not None and not all(fresh[len(records) :]):
                records, framed = [*records, *framed.records()], None
            item = _Item(
                [r for r, ok in zip(records, fresh[: len(records)], strict=True) if ok],
                future,
                [k for k, ok in zip(keys, fresh, strict=True) if ok],
                list(spans),
                [] if framed is None else [framed],
            )
            self._pending.update(dict.fromkeys(item.keys, future))
            if item.records or item.spans or item.framed:
                try:
                    self._queue.put_nowait(item)  # never block the event loop
                except queue.Full:
                    error = Unavailable("the pipeline queue is full; retry later")
                    self._settle_locked(item, error=error)
                    raise error from None
        taken = len(item.records) + sum(map(len, item.framed))
        self.counters.duplicates += len(keys) - taken
        if item.records or item.spans or item.framed:
            self.counters.accepted += taken
        else:
            future.set_result(self.spool.end_position())
        # callers get a future of their own: cancelling it never touches the pipeline's
        return fresh, _all_of([future, *originals.values()])

    def stats(self) -> dict[str, float]:
        out: dict[str, float] = {k: float(v) for k, v in asdict(self.counters).items()}
        spool = self.spool.stats
        out.update(
            queue_depth=self._queue.qsize(),
            spool_bytes=spool.bytes,
            spool_segments=spool.segments,
            spool_fsyncs=spool.fsyncs,
            spool_quarantined_frames=spool.quarantined_frames,
            spool_quarantined_bytes=spool.quarantined_bytes,
            dedup_entries=len(self.dedup),
            ready=1.0 if self.ready.is_set() else 0.0,
        )
        return out

    # -- threads --------------------------------------------------------------------------
    def _guarded(self, loop: Callable[[], None]) -> None:
        """Run a pipeline thread; if it ever dies, say so loudly and stop being ready, so that
        ingest answers 503 and /readyz fails instead of acknowledging into the void."""
        try:
            loop()
        except _GaveUp:
            log.warning(
                "the batch writer stopped with records left in the spool (replayed "
                "at the next start)"
            )
        except BaseException:
            self.counters.thread_failures += 1
            self.ready.clear()
            self._stopping = True
            log.critical("pipeline thread %s died", threading.current_thread().name, exc_info=True)

    def _spool_loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                break
            assert isinstance(first, _Item)
            # Gateway records wait for nobody: linger briefly so that one write covers many.
            # An ingest caller waits for its fsync, so a group led by one goes at once.
            linger = self.gateway_linger_s if first.future is None else 0.0
            items, stop = _gather(self._queue, first, lambda _: 1, 4096, linger)
            self._spool_items(items)
            if stop:
                break
        self._written.put(_STOP)

    def _drop_stored_elsewhere(self, records: list[InvocationRecord]) -> list[InvocationRecord]:
        """``records`` less those another server already stored within the resend window
        (only on a shared store; one look-up per batch)."""
        if not self.shared_store or not records:
            return records
        since = datetime.now(UTC) - timedelta(seconds=self.settings.dedup_window_s)
        try:
            stored = self.store.stored_request_ids(
                [(r.workspace, r.request_id) for r in records], since
            )
        except Exception:  # the append below meets the same trouble and retries
            log.warning("checking a batch against the shared store failed", exc_info=True)
            return records
        if not stored:
            return records
        self.counters.duplicates_elsewhere += len(stored)
        return [r for r in records if (r.workspace, r.request_id) not in stored]

    def _spool_items(self, items: list[_Item]) -> None:
        if self.policy is not None:
            for item in items:  # checked against policies that changed since: prepared here
                stale = [f for f in item.framed if f.policies != self.policy.generation]
                item.framed = [f for f in item.framed if f not in stale]
                item.records += RecordFrames.read_back(stale)
            self.policy.prepare_all([r for item in items for r in item.records])
        # gateway records wait for nobody: written now (a kill -9 spares them), fsync'd
        # before their batch is stored (`_store`); a group an ingest caller waits for, at once
        durable = any(item.future is not None for item in items)
        try:
            position = self.spool.append([f for i in items for f in _frames(i)], durable)
        except Exception:  # full, a disk error, an oversized frame: item by item
            for item in items:
                self._spool_one(item)
            return
        self._spooled(items, position)

    def _spool_one(self, item: _Item) -> None:
        try:
            position = self.spool.append(_frames(item), item.future is not None)
        except Exception as exc:
            full = isinstance(exc, SpoolFullError)
            if item.future is None:
                if full:
                    self.counters.dropped_spool_full += len(item.records)
                else:
                    self.counters.dropped_spool_error += len(item.records)
                log.warning("gateway record dropped: %s", exc)
            else:
                if full:
                    self.counters.ingest_refused_spool_full += len(item.records)
                else:
                    log.error("spool write failed: %s", exc)
                self._settle(item, error=Unavailable(f"{exc}; retry later"))
            return
        self._spooled([item], position)

    def _spooled(self, items: list[_Item], position: SpoolPosition) -> None:
        records = [r for i in items for r in i.records]
        spans = [s for i in items for s in i.spans]
        framed = [f for i in items for f in i.framed]
        self.counters.spooled += len(records) + sum(map(len, framed))
        self.counters.spans_spooled += span_count(spans)
        self._written.put((records, position, time.monotonic(), spans, framed))
        for item in items:
            if item.future is not None:
                self._settle(item, position=position)

    def _settle(
        self, item: _Item, *, position: SpoolPosition | None = None, error: Exception | None = None
    ) -> None:
        with self._pending_lock:
            self._settle_locked(item, position=position, error=error)

    def _settle_locked(
        self, item: _Item, *, position: SpoolPosition | None = None, error: Exception | None = None
    ) -> None:
        """Resolve an ingest item: its keys stop being pending (only where they are still its
        own: a resend may have claimed a key afresh since), and on ``error`` they leave the
        resend index too, for they were never stored. Caller holds ``_pending_lock``."""
        assert item.future is not None
        for key in item.keys:
            if self._pending.get(key) is item.future:
                del self._pending[key]
                if error is not None:
                    self.dedup.release([key])
        with contextlib.suppress(InvalidStateError):
            if error is not None:
                item.future.set_exception(error)
            else:
                item.future.set_result(position)  # type: ignore[arg-type]

    def _writer_loop(self) -> None:
        while True:
            first = self._written.get()
            if first is _STOP:
                return
            batch, stop = _gather(
                self._written,
                first,
                lambda b: len(b[0]) + span_count(b[3]) + sum(map(len, b[4])),
                self.settings.batch_records,
                self.settings.batch_wait_ms / 1000,
                # stored once the spool was quiet this long, without waiting out the window:
                # a burst is queryable at once, and steady traffic is stored in big batches
                # (whose fixed cost, the metric rollups above all, many records share)
                self.settings.batch_quiet_ms / 1000,
            )
            spans = [s for b in batch for s in b[3]]
            framed = [f for b in batch for f in b[4]]
            self._store([r for b in batch for r in b[0]], batch[-1][1], spans, framed)
            self.counters.writer_lag_ms = (time.monotonic() - batch[0][2]) * 1000
            if stop:
                return

    def _store(
        self,
        records: list[InvocationRecord],
        position: SpoolPosition,
        spans: Sequence[Span | SpanFrames] = (),
        framed: Sequence[RecordFrames] = (),
    ) -> None:
        """Store one batch (``records`` and ``framed`` ones) and commit its spool position. A batch
        the store refuses is not retried forever: at the first failure the records that fail the
        schema check go to the dead-letter file (NDJSON, importable with ``llmtrail ingest``);
        after ``_ISOLATE_AFTER`` failures the batch is isolated (`_isolate`), so that only the
        records the store refuses are dead-lettered and the others are stored. While the store
        is `Unavailable` (the database being reopened) nothing in the batch is at fault: it is
        retried until the store is back. Raises `_GaveUp` when stopping, leaving the batch in
        the spool for the next start."""
        try:  # the gateway records spooled without an fsync are durable before the store
            self.spool.sync()  # commits their position (a crash must not leave it past the end)
        except OSError:
            log.exception("the spool's fsync failed; the batch is stored all the same")
        if spans:
            self._store_spans(spans)  # before the position: a replay stores them again
        if framed and not self._takes_framed():
            records, framed = [*records, *RecordFrames.read_back(framed)], ()
        records = self._drop_stored_elsewhere(records)
        if self.objects is not None:
            for record in records:
                try:
                    prefix = self.object_prefix(record.workspace) if self.object_prefix else ""
                    self.counters.offloaded_bodies += offload_bodies(
                        record, self.objects, self.offload_bytes, prefix
                    )
                except Exception:  # the body stays inline
                    self.counters.offload_errors += 1
                    log.exception("offloading a large body failed")
        attempts = 0
        while True:
            try:
                self._append(records, position.encode(), framed)
                break
            except Exception as exc:
                attempts += 1
                self.counters.store_errors += 1
                log.exception(
                    "store append failed (attempt %d); the batch stays in the spool", attempts
                )
                if self._stopping and attempts > 3:
                    raise _GaveUp from None  # still in the spool: tried again at the next start
                if attempts == 1:  # framed records too: read back, checked and stored as records
                    records, framed = [*records, *RecordFrames.read_back(framed)], ()
                    records = self._dead_letter_invalid(records, position)
                    continue
                isolate = attempts >= _ISOLATE_AFTER and not isinstance(exc, Unavailable)
                if isolate and not self._stopping and self._isolate(records, position):
                    return
                time.sleep(min(0.05 * 2**attempts, 5.0))
        self.counters.stored += len(records) + sum(map(len, framed))
        self.counters.batches += 1
        self.spool.release(position)

    def _takes_framed(self) -> bool:
        """Whether framed records go to the store as their tables: a store that takes them
        (the recorder's), checks no batch against others' and tells nobody what it stored."""
        return hasattr(self.store, "append_framed") and not self.shared_store and not self.stored

    def _append(
        self,
        records: list[InvocationRecord],
        position: str | None = None,
        framed: Sequence[RecordFrames] = (),
    ) -> None:
        if framed:
            self.store.append_framed(records, framed, position)  # type: ignore[attr-defined]
            return  # `_takes_framed`: nobody to tell
        self.store.append(records, position)
        if self.stored is not None and records:
            try:
                self.stored(records)
            except Exception:  # the batch is stored: never appended again over this
                log.exception("telling that a batch was stored failed")

    def _store_spans(self, spans: Sequence[Span | SpanFrames]) -> None:
        """Store a batch's spans, retrying while the store fails (`_GaveUp` when stopping:
        they stay in the spool). A span stored twice by a replay reads once."""
        attempts = 0
        while True:
            try:
                if self.span_store is not None:
                    self.span_store.append(spans)
                self.counters.spans_stored += span_count(spans)
                return
            except Exception:
                attempts += 1
                self.counters.store_errors += 1
                log.exception("span append failed (attempt %d); they stay in the spool", attempts)
                if self._stopping and attempts > 3:
                    raise _GaveUp from None
                time.sleep(min(0.05 * 2**attempts, 5.0))

    def _isolate(self, records: list[InvocationRecord], position: SpoolPosition) -> bool:
        """Store every record of a refused batch that the store takes; dead-letter the rest.

        The batch goes to its dead-letter file first (fsync'd), then its spool position is
        committed alone: from then on every record is in the store or in that file, and none
        is stored twice by a replay. The batch is then split in halves, each half stored
        without a position, and a half the store refuses split again, down to the single
        records it refuses; the file is finally rewritten to hold only those. A crash midway
        leaves the whole batch in the file: importing it again within the resend window
        answers ``duplicate`` for the records already stored. False, with nothing changed,
        when the store does not even take the position alone."""
        path = self._write_dead_letter(records, position, "refused")
        try:
            self.store.append([], position.encode())
        except Exception:
            log.exception("the store refuses even an empty batch; the batch stays in the spool")
            path.unlink(missing_ok=True)
            return False
        refused: list[InvocationRecord] = []
        self._bisect(records, refused)
        if refused:
            self._write_dead_letter(refused, position, "refused")
            log.error("%d records of a batch written to %s", len(refused), path)
        else:
            path.unlink(missing_ok=True)
        self._forget(refused)
        self.counters.dead_lettered += len(refused)
        self.counters.stored += len(records) - len(refused)
        self.counters.batches += 1
        self.spool.release(position)
        return True

    def _bisect(self, records: list[InvocationRecord], refused: list[InvocationRecord]) -> None:
        """Store ``records`` (no spool position), halving what the store refuses; the single
        records it still refuses are added to ``refused``."""
        if not records:
            return
        try:
            self._append(records)
            return
        except Exception as exc:
            self.counters.store_errors += 1
            if len(records) == 1:
                log.error("record %s cannot be stored: %r", records[0].request_id, exc)
                refused.append(records[0])
                return
        half = len(records) // 2
        self._bisect(records[:half], refused)
        self._bisect(records[half:], refused)

    def _dead_letter_invalid(
        self, records: list[InvocationRecord], position: SpoolPosition
    ) -> list[InvocationRecord]:
        """Write the records that fail the schema check to the dead-letter file; the rest."""
        keep, out = [], []
        for record in records:
            try:
                check_types(record.data)
            except ValidationError as exc:
                log.error("record %s cannot be stored: %s", record.request_id, exc)
                out.append(record)
            else:
                keep.append(record)
        if out:
            path = self._write_dead_letter(out, position, "invalid")
            self._forget(out)
            self.counters.dead_lettered += len(out)
            log.error("%d records written to %s", len(out), path)
        return keep

    def _write_dead_letter(
        self, records: list[InvocationRecord], position: SpoolPosition, kind: str
    ) -> Path:
        """One file per batch and kind, named by its spool position and replaced atomically:
        a batch replayed after a crash rewrites the same file instead of adding to it."""
        self.dead_letter_dir.mkdir(parents=True, exist_ok=True)
        name = f"batch-{position.segment:012d}-{position.offset:012d}-{kind}"
        path = self.dead_letter_dir / f"{name}.ndjson"
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            f.write(b"".join(orjson.dumps(r.data) + b"\n" for r in records))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        return path

    def _forget(self, records: list[InvocationRecord]) -> None:
        """Dead-lettered records leave the resend index: sent again, they are stored."""
        self.dedup.release((r.workspace, r.request_id) for r in records)

    def _replay(self) -> None:
        committed = self.store.committed_position()
        after = SpoolPosition.decode(committed) if committed else SpoolPosition.ZERO
        self.spool.release(after)
        chunk: list[InvocationRecord] = []
        spans: list[Span] = []
        last = after
        for position, payload in self.spool.replay(after):
            try:
                found = decode_payload(payload)
            except (orjson.JSONDecodeError, KeyError, TypeError, ValidationError):
                self.counters.replay_undecodable += 1
            else:
                (spans if isinstance(found, Span) else chunk).append(found)  # type: ignore[arg-type]
            last = position
            if len(chunk) + len(spans) >= self.settings.batch_records:
                self._replay_batch(chunk, last, spans)
                chunk, spans = [], []
        if chunk or spans or last != after:
            self._replay_batch(chunk, last, spans)
        self.spool.advance_past(after)

    def _replay_batch(
        self, records: list[InvocationRecord], position: SpoolPosition, spans: list[Span]
    ) -> None:
        self.dedup.claim((r.workspace, r.request_id) for r in records)
        self._store(records, position, spans)
        self.counters.replayed += len(records)


T = TypeVar("T")


def _frames(item: _Item) -> list[bytes]:
    frames = [encode_payload(r) for r in item.records]
    for framed in item.framed:
        frames += framed.frames
    for span in item.spans:
        if isinstance(span, SpanFrames):
            frames += span.frames
        else:
            frames.append(encode_span_payload(span))
    return frames


def _gather(
    source: queue.Queue[Any],
    first: T,
    size: Callable[[T], int],
    limit: int,
    wait: float,
    quiet: float | None = None,
) -> tuple[list[T], bool]:
    """``first`` and what else arrives in ``source`` within ``wait`` seconds, up to ``limit``
    (as ``size`` counts), ending early when nothing arrived for ``quiet`` seconds; True as
    well when the stop marker was among them."""
    batch, count = [first], size(first)
    deadline = time.monotonic() + wait
    while count < limit:
        left = max(0.0, deadline - time.monotonic())
        try:
            more = source.get(timeout=left if quiet is None else min(left, quiet))
        except queue.Empty:
            break
        if more is _STOP:
            return batch, True
        batch.append(more)
        count += size(more)
    return batch, False


def _all_of(futures: list[Future[SpoolPosition]]) -> Future[SpoolPosition]:
    """A new future that resolves when all of ``futures`` have (with the first one's result),
    or fails with the first failure."""
    out: Future[SpoolPosition] = Future()
    remaining = [len(futures)]
    lock = threading.Lock()

    def done(f: Future[SpoolPosition]) -> None:
        with lock:
            if out.done():
                return
            if f.cancelled():
                out.set_exception(Unavailable("the request was cancelled"))
                return
            if f.exception() is not None:
                out.set_exception(f.exception())
                return
            remaining[0] -= 1
            if remaining[0] == 0:
                out.set_result(futures[0].result())

    for f in futures:
        f.add_done_callback(done)
    return out
