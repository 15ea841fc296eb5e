"""An ingest body made ready to spool and store in a worker process of the recorder.

The recorder's GIL bounded ingest: decoding, validating and pricing a body's records, writing
their spool frames and converting them to Arrow ran on it, ~70 µs a record, while the
machine's other core sat partly idle. A body of `WORKER_BYTES` or more now goes to one of
the recorder's worker processes (`prepare_body`): bytes and what the record path knows in
(the limits, the price overrides, whether the workspace's logging configuration keeps
everything and its redaction policy), the results and the records out. The recorder only
claims their request ids, spools the frames and hands the tables on.

Records cross framed (`RecordFrames`) only when nothing before the spool would change them:
the workspace delivers every body, no detector of its redaction policy can find anything in
what `Redactor.redact_record` reads of them (the same one search `RecordPolicy.to_prepare`
makes), and no body is large enough to be offloaded (a frame holds its record's bodies, so a
frame within the threshold holds no body over it). Otherwise they cross as JSON documents
(`Packed.records`) and take the record path as they did in the recorder.
"""

from __future__ import annotations

from dataclasses import dataclass
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
    # the workspace keeps every body, text and medium (no delivery rule changes a record)
    delivers_all: bool
    redaction: RedactionPolicy | None
    policies: int  # `RecordPolicy.generation` when the above were read


@dataclass
class PreparedBody:
    """What `prepare_body` answers: the per-item results, where the valid records sit
    among them, and those records, framed or as JSON documents."""

    results: list[dict[str, Any]]
    where: list[int]
    records: RecordFrames | Packed[InvocationRecord]


def prepare_body(raw: bytes, gzipped: bool, workspace: str, rules: IngestRules) -> PreparedBody:
    """Decode, validate and price an ingest body; frame and convert its valid records when
    nothing before the spool would change them. Runs in a worker process."""
    results, valid, where = validate_batch(
        raw, gzipped, rules.max_bytes, rules.max_records, rules.max_depth, workspace
    )
    priced = enriched(valid, _enricher(rules))
    return PreparedBody(results, where, _framed(priced, rules) or Packed.records(priced))


def _framed(records: list[InvocationRecord], rules: IngestRules) -> RecordFrames | None:
    if not records or not rules.delivers_all:
        return None
    if rules.redaction is not None and _redactor(rules.redaction).to_redact(
        [r.data for r in records]
    ):
        return None
    try:
        frames = [encode_payload(r) for r in records]
    except orjson.JSONEncodeError:  # a value orjson refuses: the record path copes
        return None
    if max(map(len, frames)) > rules.offload_bytes:
        return None
    from llmtrail.store.duckdb.records import batch_tables

    schema = RecordSchema(rules.promoted_keys)
    rows, bodies = batch_tables(records, schema, datetime.now(UTC))  # ingested_at: at insert
    keys = [(r.workspace, r.request_id) for r in records]
    return RecordFrames(frames, keys, ipc(rows), ipc(bodies), rules.policies)


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
    _framed(enriched([record], _enricher(rules)), rules)


# what the last bodies were prepared with, kept while it stays the same
_enrichers: dict[str, Enricher] = {}
_redactors: dict[str, Redactor] = {}


def _enricher(rules: IngestRules) -> Enricher:
    key = orjson.dumps([rules.price_overrides, rules.provider_aliases], default=str).decode()
    enricher = _enrichers.get(key)
    if enricher is None:
        overrides = rules.price_overrides
        enricher = Enricher(lambda: overrides, dict(rules.provider_aliases))
        _enrichers.clear()
        _enrichers[key] = enricher
    return enricher


def _redactor(policy: RedactionPolicy) -> Redactor:
    """A redactor of ``policy`` for its search alone (`Redactor.to_redact`), which no key
    takes part in: the hashing key stays with the record path."""
    key = orjson.dumps(policy.to_json()).decode()
    redactor = _redactors.get(key)
    if redactor is None:
        redactor = Redactor(policy, b"")
        _redactors.clear()
        _redactors[key] = redactor
    return redactor
