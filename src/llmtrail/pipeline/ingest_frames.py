"""An ingest body made ready to spool and store in a worker process of the recorder.

The recorder's GIL bounded ingest: decoding, validating and pricing a body's records, writing
their spool frames and converting them to Arrow ran on it, ~70 µs a record, while the
machine's other core sat partly idle. A body of `WORKER_BYTES` or more now goes to one of
the recorder's worker processes (`prepare_body`): bytes and what the record path knows in
(`IngestRules`: the limits, the price overrides, the workspace's logging configuration and
redaction policy with its hashing key), the results and the records out. The recorder only
claims their request ids, spools the frames and hands the tables on.

The worker also applies the workspace's logging configuration and redaction policy, as the
recorder's spool thread does (`RecordPolicy.prepare_all`, the same code, with the policies
the recorder read): to copies of the records that need it, found by the same one search. So
the records cross framed (`RecordFrames`), finished as the spool holds them, unless a body is
large enough to be offloaded to the object store (a frame holds its record's bodies, so a
frame within the threshold holds no body over it), a value cannot be written as JSON, or the
workspace's policies could not be read. Those cross as the records decoded (`Packed.records`),
untouched, and take the record path as they did in the recorder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from llmtrail.capture.ingest_body import validate_batch
from llmtrail.pipeline.enrich import Enricher, enriched
from llmtrail.pipeline.frames import encode_payload
from llmtrail.pipeline.link import ipc
from llmtrail.pipeline.packed import Packed, RecordFrames
from llmtrail.record import InvocationRecord
from llmtrail.schema import RecordSchema
from llmtrail.security.logging_config import LoggingConfig
from llmtrail.security.record_policy import RecordPolicy
from llmtrail.security.redaction import Redactor
from llmtrail.security.redaction_policy import RedactionPolicy

# bodies this large or larger go to a worker: below it, the round trip costs more than it saves
WORKER_BYTES = 64 * 1024


@dataclass(frozen=True)
class IngestRules:
    """What the record path knows that preparing a body needs, sent with each body."""

    max_bytes: int
    max_records: int
    max_depth: int
    promoted_keys: tuple[str, ...]
    provider_aliases: tuple[tuple[str, str], ...]
    offload_bytes: int
    price_overrides: tuple[Any, ...]
    logging: LoggingConfig | None  # the workspace's; None: it could not be read
    redaction: RedactionPolicy | None  # None: no redaction
    # the redaction's ``hash`` action's key: in memory only, never printed
    hash_key: bytes = field(repr=False)
    policies: int = 0  # `RecordPolicy.generation` when the above were read


@dataclass
class PreparedBody:
    """What `prepare_body` answers: the per-item results, where the valid records sit
    among them, and those records, framed or as JSON documents."""

    results: list[dict[str, Any]]
    where: list[int]
    records: RecordFrames | Packed[InvocationRecord]
    prepared: int = 0  # framed records the policies changed
    redactions: int = 0  # what `RecordPolicy` counts, for the recorder's counters
    failures: int = 0


def prepare_body(raw: bytes, gzipped: bool, workspace: str, rules: IngestRules) -> PreparedBody:
    """Decode, validate and price an ingest body; prepare its valid records under the
    workspace's policies, frame them and convert them (`_frame`), unless they cannot cross
    framed. Runs in a worker process."""
    results, valid, where = validate_batch(
        raw, gzipped, rules.max_bytes, rules.max_records, rules.max_depth, workspace
    )
    priced = enriched(valid, _enricher(rules))
    prepared = PreparedBody(results, where, Packed.records(priced))
    if priced and rules.logging is not None:
        _frame(prepared, priced, workspace, rules)
    return prepared


def _frame(
    out: PreparedBody, records: list[InvocationRecord], workspace: str, rules: IngestRules
) -> None:
    """Prepare and frame ``records`` into ``out``; ``out`` is left as it is where they
    cannot cross framed."""
    assert rules.logging is not None
    redactor = None if rules.redaction is None else _redactor(rules.redaction, rules.hash_key)
    policy = RecordPolicy(_Fixed(rules.logging), None if redactor is None else _Fixed(redactor))
    try:
        positions = policy.to_prepare(workspace, records)
        if positions:  # prepared as copies: records that cannot cross framed stay untouched
            records = list(records)
            for i in positions:
                record = records[i]
                records[i] = InvocationRecord(
                    orjson.loads(orjson.dumps(record.data)), record.derived
                )
                policy.prepare(records[i])
        frames = [encode_payload(r) for r in records]
    except (TypeError, ValueError):  # orjson's errors: a value it refuses; the recorder copes
        return
    if max(map(len, frames)) > rules.offload_bytes:
        return
    from llmtrail.store.duckdb.records import batch_tables

    schema = RecordSchema(rules.promoted_keys)
    rows, bodies = batch_tables(records, schema, datetime.now(UTC))  # ingested_at: at insert
    keys = [(r.workspace, r.request_id) for r in records]
    out.records = RecordFrames(frames, keys, ipc(rows), ipc(bodies), rules.policies)
    out.prepared, out.redactions, out.failures = len(positions), policy.redactions, policy.failures


class _Fixed:
    """A workspace's logging configuration or redactor as the recorder read them, served as
    `LoggingConfigs` and `RedactionPolicies` serve theirs."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def for_workspace(self, workspace: str) -> Any:
        return self.value

    def invalidate(self, workspace: str | None = None) -> None:
        """Nothing to read again: the rules came with the body."""


def warm_worker(rules: IngestRules) -> None:
    """Load what preparing a body needs (the price table, pyarrow, the redactor), so that
    the first body a worker prepares does not wait for it."""
    record = InvocationRecord.from_dict(
        {
            "timestamp": "2026-01-01T00:00:00Z",
            "requestId": "warm-up",
            "modelId": "warm-up",
            "operation": "Converse",
        }
    )
    _frame(
        PreparedBody([], [], Packed.records([])),
        enriched([record], _enricher(rules)),
        "default",
        rules,
    )


# what the last bodies were prepared with, kept while it stays the same
_enrichers: dict[str, Enricher] = {}
_redactors: dict[tuple[str, bytes], Redactor] = {}


def _enricher(rules: IngestRules) -> Enricher:
    key = orjson.dumps([rules.price_overrides, rules.provider_aliases], default=str).decode()
    enricher = _enrichers.get(key)
    if enricher is None:
        overrides = rules.price_overrides
        enricher = Enricher(lambda: overrides, dict(rules.provider_aliases))
        _enrichers.clear()
        _enrichers[key] = enricher
    return enricher


def _redactor(policy: RedactionPolicy, hash_key: bytes) -> Redactor:
    key = (orjson.dumps(policy.to_json()).decode(), hash_key)
    redactor = _redactors.get(key)
    if redactor is None:
        redactor = Redactor(policy, hash_key)
        _redactors.clear()
        _redactors[key] = redactor
    return redactor
