"""The one way in: every write — gateway calls, ingested records, OTLP model calls and OTLP
spans — takes the same path, validate → enrich once → logging configuration and redaction →
spool (fsync) → batch → store, with the same durability (records are also de-duplicated by
``requestId``; a span stored twice reads once).

`RecordPath` is that path, built from its parts. It runs in the recorder process under a
server (`recorder_record_path`: the store and the control-plane state are the serving
process's, reached over the link), and in the process itself for the CLI working on a data
directory with no server (`Runtime`'s own).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from llmtrail.capture.gateway.facts import CallFacts, Reader, record_of
from llmtrail.capture.ingest_body import validate_batch
from llmtrail.config import Settings
from llmtrail.errors import Unavailable
from llmtrail.pipeline.enrich import Enricher, enriched
from llmtrail.pipeline.ingest_frames import (
    WORKER_BYTES,
    IngestRules,
    prepare_body,
    warm_worker,
)
from llmtrail.pipeline.packed import Packed, RecordFrames, SpanFrames
from llmtrail.pipeline.pipeline import Pipeline
from llmtrail.pipeline.spool import Spool, SpoolPosition
from llmtrail.record import InvocationRecord
from llmtrail.schema import RecordSchema
from llmtrail.security.delivery import apply_delivery
from llmtrail.security.erasure_files import (
    pending_in_spool,
    record_matcher,
    release_stored,
    stored_flush,
)
from llmtrail.security.logging_config import LoggingConfigs, LoggingConfigStore
from llmtrail.security.record_policy import RecordPolicy
from llmtrail.security.redaction_store import RedactionPolicies
from llmtrail.server.workers import WorkerError
from llmtrail.span import Span

log = logging.getLogger("llmtrail.pipeline")
PRICES_NAMESPACE = "prices"
# what a gateway record tells the serving process: its budgets, the OTLP merge index and
# tokens per minute read these keys (never the bodies)
_NOT_LEARNED = ("input", "output", "requestHeaders")


class RecordPath:
    def __init__(
        self,
        settings: Settings,
        pipeline: Pipeline,
        enricher: Enricher,
        policy: RecordPolicy,
        logging_configs: LoggingConfigs,
        redaction: RedactionPolicies,
        readers: dict[str, Reader] | None = None,
        keeps_span_frames: bool = False,
    ) -> None:
        self.settings = settings
        self.pipeline = pipeline
        self.enricher = enricher
        self.policy = policy
        self.logging_configs = logging_configs
        self.redaction = redaction
        self._readers = readers
        # an export's framed spans are spooled and stored as they are, where the policies
        # leave them alone (the recorder's span store takes their rows as they are)
        self.keeps_span_frames = keeps_span_frames
        # the recorder's worker processes (`Workers`), which prepare large ingest bodies
        # once they are warm (`pipeline/ingest_frames.py`); None: this process prepares them
        self.workers: Any = None
        self.workers_warm = threading.Event()
        self._warming = threading.Lock()
        self.ingest_in_workers = 0  # records of bodies prepared in a worker
        self.ingest_framed = 0  # of which crossed framed

    @property
    def readers(self) -> dict[str, Reader]:
        if self._readers is None:
            from llmtrail.capture.gateway.readers import readers

            self._readers = readers(self.settings)
        return self._readers

    def start(self, warm: bool = True) -> None:
        """Replay the spool and start the pipeline's threads (blocking); with ``warm``, load
        the tokenizer and the price table (~2 s) on a thread of their own, so that the first
        records do not wait for them. Nobody's model call waits for them either way: records
        are built after the answer was sent (in the recorder process under a server)."""
        self.pipeline.start()
        if warm:
            threading.Thread(target=self._warm, name="llmtrail-warm", daemon=True).start()

    def _warm(self) -> None:
        """Load what building and converting the first records needs: the tokenizer, the
        price table, the wire formats' readers, and pyarrow (in the CLI's own process its first
        conversion also imports pandas, a few seconds of CPU; the recorder refuses pandas)."""
        from llmtrail.capture.tokens import count_tokens
        from llmtrail.store.duckdb.records import batch_tables

        try:
            count_tokens("warm the tokenizer up before the first record")
            _ = self.enricher.table
            _ = self.readers
            sample = InvocationRecord.from_dict(
                {
                    "timestamp": "2026-01-01T00:00:00Z",
                    "requestId": "warm-up",
                    "modelId": "warm-up",
                    "operation": "Converse",
                }
            )
            batch_tables([sample], RecordSchema(self.settings.promoted_metadata_keys), _now())
        except Exception:  # they load again on first use
            log.exception("warming the record path up failed")
            return
        log.info("record path warm")

    def stop(self, timeout: float) -> None:
        self.pipeline.stop(timeout)

    def forget_policies(self) -> None:
        """The serving process changed a logging configuration or a redaction policy: read
        them again at their next use (cheap: it reads nothing now). A changed price is read
        again by `Enricher.reload`."""
        self.policy.changed()

    def stats(self) -> dict[str, float]:
        out = self.pipeline.stats()
        out["redaction_failures"] = float(self.policy.failures)
        out["redactions"] = float(self.policy.redactions)
        if self.workers is not None:
            out["ingest_in_workers"] = float(self.ingest_in_workers)
            out["ingest_framed"] = float(self.ingest_framed)
            out["ingest_worker_restarts"] = float(self.workers.restarts)
            out["ingest_workers_warm"] = float(self.workers_warm.is_set())
        return out

    # -- the ways in ----------------------------------------------------------------------------
    def record_call(self, facts: CallFacts) -> InvocationRecord:
        """A gateway call's record: its answer read, priced, its bodies withheld when the
        caller asked."""
        return record_of(
            facts,
            self.settings,
            self.readers[facts.wire],
            enrich=self.enricher,
            withhold=self._withhold,
        )

    def record_calls(
        self,
        facts: Sequence[CallFacts],
        before_submit: Callable[[list[dict[str, Any]]], None] | None = None,
    ) -> list[dict[str, Any]]:
        """Records of finished calls handed to the pipeline; what each spent, for the
        serving process (`learned`), given to ``before_submit`` before the records can be
        stored."""
        seen, records = [], []
        for f in facts:
            try:
                record = self.record_call(f)
            except Exception:  # never lose the others over one
                log.exception("building the record of request %s failed", f.request_id)
                continue
            seen.append(learned(record, f))
            records.append(record)
        if before_submit is not None:
            before_submit(seen)
        self.pipeline.submit_all(records)
        return seen

    def ingest_body(self, raw: bytes, gzipped: bool, workspace: str) -> Future[Any]:
        """Decode, validate and price an ingest body, and spool its valid records: a future
        of (per-item results, where the valid ones sit, which were new) after the fsync. A
        body of `WORKER_BYTES` or more is prepared in a worker process once they are warm
        (the first such body starts them and is prepared here)."""
        if self.workers is not None and len(raw) >= WORKER_BYTES:
            if self.workers_warm.is_set():
                try:
                    return self._ingest_in_worker(raw, gzipped, workspace)
                except (Unavailable, WorkerError):  # a worker died twice, or is stopping
                    log.warning("an ingest body's worker failed; prepared here", exc_info=True)
            else:
                self._warm_workers(workspace)
        limits = self.settings.limits
        results, valid, where = validate_batch(
            raw,
            gzipped,
            limits.max_ingest_bytes,
            limits.max_ingest_records,
            limits.max_json_depth,
            workspace,
        )
        fresh, spooled = self.pipeline.ingest(enriched(valid, self.enricher))
        return _once_spooled(spooled, (results, where, fresh))

    def _ingest_in_worker(self, raw: bytes, gzipped: bool, workspace: str) -> Future[Any]:
        prepared = self.workers.call(prepare_body, raw, gzipped, workspace, self._rules(workspace))
        framed = prepared.records
        self.ingest_in_workers += len(framed)
        if isinstance(framed, RecordFrames):
            self.ingest_framed += len(framed)
            self.policy.redactions += prepared.redactions
            self.policy.failures += prepared.failures
            fresh, spooled = self.pipeline.ingest((), framed=framed)
        else:
            fresh, spooled = self.pipeline.ingest(framed.unpack())
        return _once_spooled(spooled, (prepared.results, prepared.where, fresh))

    def _rules(self, workspace: str) -> IngestRules:
        """What a worker needs to prepare a body of ``workspace`` as this process would."""
        policies = self.policy.generation  # first: a change while the rest is read counts
        logging_config, redaction, hash_key = self.policy.rules_of(workspace)
        overrides, aliases = self.enricher.in_force()
        limits = self.settings.limits
        pipeline = self.pipeline
        return IngestRules(
            max_bytes=limits.max_ingest_bytes,
            max_records=limits.max_ingest_records,
            max_depth=limits.max_json_depth,
            promoted_keys=tuple(self.settings.promoted_metadata_keys),
            provider_aliases=aliases,
            offload_bytes=pipeline.offload_bytes if pipeline.objects is not None else 1 << 62,
            price_overrides=overrides,
            logging=logging_config,
            redaction=redaction,
            hash_key=hash_key,
            policies=policies,
        )

    def _warm_workers(self, workspace: str) -> None:
        """Start the worker processes and let each load what preparing a body needs (~2 s),
        on threads of their own, once; bodies are prepared here meanwhile."""
        if not self._warming.acquire(blocking=False):
            return
        rules = self._rules(workspace)
        workers = self.workers

        def warm() -> None:
            try:
                with ThreadPoolExecutor(workers.processes) as each:
                    list(
                        each.map(
                            lambda _: workers.call(warm_worker, rules), range(workers.processes)
                        )
                    )
            except Exception:
                log.exception("the ingest workers did not start; bodies are prepared here")
                return
            self.workers_warm.set()
            log.info("%d ingest workers warm", workers.processes)

        threading.Thread(target=warm, name="llmtrail-warm-workers", daemon=True).start()

    def ingest_otlp(
        self,
        records: Sequence[InvocationRecord] | Packed[InvocationRecord],
        spans: Sequence[Span] | Packed[Span] | SpanFrames,
        links: Sequence[Span],
    ) -> Future[Any]:
        """Spool an OTLP export: its model calls (records, priced here), its other spans
        (the logging configuration and redaction applied here first; framed ones go as they
        are when those would leave them alone) and the spans that link records into traces
        (their errors and labels redacted): a future of which records were new, after the
        fsync."""
        if isinstance(records, Packed):
            records = records.unpack()
        kept: list[Span | SpanFrames] = []
        if isinstance(spans, SpanFrames):
            if self.keeps_span_frames and self.policy.leaves_spans(spans.workspace, spans.frames):
                kept.append(spans)
                spans = ()
            else:
                spans = spans.spans()  # read back from their frames, as a replay would
        elif isinstance(spans, Packed):
            spans = spans.unpack()
        for span in spans:
            self.policy.prepare_span(span)
        for link in links:
            self.policy.prepare_link(link)
        priced = enriched(list(records), self.enricher)
        fresh, spooled = self.pipeline.ingest(priced, [*kept, *spans, *links])
        return _once_spooled(spooled, fresh)

    # -- the erasure's spool operations ---------------------------------------------------------
    def flush(self) -> None:
        """Wait (at most 30 s) until the store committed everything spooled so far."""
        stored_flush(self.pipeline.spool, self.pipeline.store.committed_position)()

    def release_stored(self) -> int:
        return release_stored(self.pipeline.spool, self.pipeline.store.committed_position())

    def pending_in_spool(
        self, workspace: str, request_ids: frozenset[str], user: str | None, tenant: str | None
    ) -> int:
        matches = record_matcher(workspace, request_ids, user, tenant)
        committed = self.pipeline.store.committed_position()
        return pending_in_spool(self.pipeline.spool, committed, matches)

    def _withhold(self, doc: dict[str, Any]) -> object:
        return apply_delivery(
            doc, self.logging_configs.for_workspace(doc["workspace"]), no_log=True
        )


class LocalRecording:
    """The record path run in this process: the CLI on a data directory with no server, and
    servers built in a test's own process. Same interface as `RecorderProcess`."""

    def __init__(self, path: RecordPath, learn: Callable[[list[dict[str, Any]]], None]) -> None:
        self.path = path
        self.learn = learn
        self.ready = path.pipeline.ready
        self.spool_ops = path
        self.pid: int | None = None

    def start(self, warm: bool = True) -> None:
        self.path.start(warm)

    def is_ready(self) -> bool:
        return self.ready.is_set()

    def begin_stop(self) -> None:
        self.path.pipeline.begin_stop()

    def close(self, timeout: float = 30.0) -> None:
        self.path.stop(timeout)

    def hand_over(self, facts: CallFacts) -> bool:
        self.learn(self.path.record_calls([facts]))
        return True

    async def ingest_body(
        self, raw: bytes, gzipped: bool, workspace: str
    ) -> tuple[list[dict[str, Any]], list[int], list[bool]]:
        future = await asyncio.to_thread(self.path.ingest_body, raw, gzipped, workspace)
        result: tuple[list[dict[str, Any]], list[int], list[bool]] = await asyncio.wrap_future(
            future
        )
        return result

    async def ingest_otlp(
        self,
        records: Sequence[InvocationRecord] | Packed[InvocationRecord],
        spans: Sequence[Span] | Packed[Span] | SpanFrames,
        links: Sequence[Span],
    ) -> list[bool]:
        future = await asyncio.to_thread(self.path.ingest_otlp, records, spans, links)
        fresh: list[bool] = await asyncio.wrap_future(future)
        return fresh

    def use_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Nothing to do: the record path runs in this process."""

    async def caught_up(self, timeout: float = 2.0) -> None:
        """Nothing to wait for: a call's record is learned from as it is handed over."""

    def tell_policies_changed(self) -> None:
        """Nothing to tell: the policies here are the server's own objects."""

    def stats(self) -> dict[str, float]:
        return self.path.stats()


def _once_spooled(spooled: Future[SpoolPosition], value: Any) -> Future[Any]:
    """A future of ``value`` that resolves when ``spooled`` does (its error, if it fails)."""
    out: Future[Any] = Future()

    def done(f: Future[SpoolPosition]) -> None:
        error = f.exception()
        if error is not None:
            out.set_exception(error)
        else:
            out.set_result(value)

    spooled.add_done_callback(done)
    return out


def _now() -> datetime:
    return datetime.now(UTC)


def learned(record: InvocationRecord, facts: CallFacts) -> dict[str, Any]:
    """What the serving process learns of a gateway record: its keys, cost and dimensions
    (for budgets and the merge index) and its tokens (for a key's tokens per minute)."""
    doc = {k: v for k, v in record.data.items() if k not in _NOT_LEARNED}
    inp, out = record.data.get("input") or {}, record.data.get("output") or {}
    doc["_tokens"] = int(inp.get("inputTokenCount") or 0) + int(out.get("outputTokenCount") or 0)
    if facts.tpm_key is not None:
        doc["_tpm"] = facts.tpm_key
    return doc


def recorder_record_path(
    settings: Settings,
    redaction_key: bytes,
    link: Any,
    before_append: Callable[[], None] | None = None,
) -> RecordPath:
    """The record path of the recorder process: its spool, the serving process's stores
    (``before_append`` runs before each batch crosses to be stored)."""
    from llmtrail.pipeline.link import RemoteRecordStore, RemoteSpanStore, RemoteStateStore
    from llmtrail.pipeline.packed import span_batch
    from llmtrail.schema import RecordSchema
    from llmtrail.store.duckdb.records import batch_tables
    from llmtrail.store.objects import open_object_store

    state = RemoteStateStore(link)
    schema = RecordSchema(settings.promoted_metadata_keys)
    records = RemoteRecordStore(link, schema, batch_tables, before_append)
    objects = open_object_store(settings)
    spans = RemoteSpanStore(link, span_batch)
    return build_record_path(
        settings, records, state, redaction_key, objects, spans, keeps_span_frames=True
    )


def build_record_path(
    settings: Settings,
    records: Any,
    state: Any,
    redaction_key: bytes,
    objects: Any,
    spans: Any,
    keeps_span_frames: bool = False,
) -> RecordPath:
    """A `RecordPath` over ``records`` and ``state`` (the stores, or their remote stand-ins);
    ``keeps_span_frames`` where ``spans`` takes framed spans' rows as they are."""
    logging_configs = LoggingConfigs(LoggingConfigStore(state))
    redaction = RedactionPolicies(state, redaction_key)
    policy = RecordPolicy(logging_configs, redaction)
    s = settings.spool
    spool = Spool(
        settings.data_dir / "spool",
        segment_bytes=s.segment_bytes,
        max_bytes=s.max_bytes,
        fsync=s.fsync,
    )
    pipeline = Pipeline(
        spool,
        records,
        objects=objects,
        settings=s,
        offload_bytes=settings.offload_bytes,
        policy=policy,
        object_prefix=lambda ws: logging_configs.for_workspace(ws).large_data_prefix,
        span_store=spans,
        # gateway records arrive in runs the link gathered for 10 ms: spooled as they come
        gateway_linger_s=0.0,
    )
    enricher = Enricher(
        lambda: state.list(PRICES_NAMESPACE).values(),
        {name: p.type for name, p in settings.providers.items()},
    )
    return RecordPath(
        settings,
        pipeline,
        enricher,
        policy,
        logging_configs,
        redaction,
        keeps_span_frames=keeps_span_frames,
    )
