"""One finished gateway call as the serving process hands it over, and the record it becomes.

The serving process only relays. When a call ends it takes the raw facts of the exchange —
the request as the route read it, the answer's bytes (or a stream's tee), the timings, the
route, who called and the headers already filtered — into one `CallFacts` and hands it on
without waiting and without parsing the answer. `record_of` turns those facts into the
record wherever the record path runs (the recorder process, or a thread of the CLI's own
runtime): the wire format's reader parses the answer, counts what the upstream did not say,
and the record is built once, here, for every outcome — a refusal, an upstream error, a
whole answer or a stream.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from llmtrail.config import Settings
from llmtrail.record import (
    SCHEMA_TYPE,
    SCHEMA_VERSION,
    InvocationRecord,
    format_timestamp,
    uuid7,
)
from llmtrail.schema import ADDITION_KEYS

log = logging.getLogger("llmtrail.gateway")

# how the answer is known: not at all (refused before the upstream), as a whole JSON body, as
# a stream's tee, or as an error body the gateway relayed
NO_ANSWER, WHOLE, STREAM, ERROR_BODY = "none", "whole", "stream", "error"


@dataclass
class CallFacts:
    """What the serving process knows when a call ends; everything here pickles cheaply."""

    wire: str  # openai | anthropic | bedrock: which reader parses the answer
    operation: str
    started: datetime
    request_id: str
    latency_ms: int
    model_id: str
    workspace: str
    input_body: Any = None
    time_to_first_token_ms: int | None = None
    identity: tuple[str, str] | None = None  # (identity.arn, identityType)
    headers: dict[str, str] = field(default_factory=dict)  # the recorded allow-list only
    no_log: bool = False  # the caller asked for its bodies not to be kept
    trace: dict[str, str] | None = None
    provider: str | None = None
    resolved_model: str | None = None
    metadata: dict[str, str] | None = None
    metadata_truncated: bool = False
    additions: dict[str, Any] = field(default_factory=dict)  # e.g. the inference profile
    answer: str = NO_ANSWER
    raw: bytes = b""  # the answer's bytes: a whole body, a stream's tee or an error body
    response_headers: dict[str, str] = field(default_factory=dict)
    truncated: bool = False  # the tee reached its limit
    status: str = "OK"
    error: dict[str, Any] | None = None
    error_code: str | None = None
    cancelled_code: str | None = None  # ClientDisconnected, …: set by the relay
    error_status: int | None = None  # an upstream error in mid-stream
    tpm_key: tuple[str, int] | None = None  # (key id, tokens per minute) when the key has one


@dataclass
class Outcome:
    """What an answer (or an assembled stream) tells the record."""

    output_body: Any = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    estimated: bool = False
    response_id: str | None = None
    stop_reason: str | None = None
    # an error the answer carries inside a 200 (e.g. an exception frame in an event stream)
    error: dict[str, Any] | None = None
    error_code: str | None = None


class Reader:
    """A wire format's answer reader: what a whole answer and a stream's tee say."""

    def outcome(self, facts: CallFacts, parsed: Any) -> Outcome:
        raise NotImplementedError

    def stream_outcome(self, facts: CallFacts) -> Outcome:
        raise NotImplementedError

    def error_code(self, status: int, upstream_type: str | None = None) -> str:
        raise NotImplementedError


def outcome_of(facts: CallFacts, reader: Reader) -> tuple[Outcome, dict[str, Any]]:
    """The answer's outcome, and how the record's status, error and code end up."""
    more: dict[str, Any] = {
        "status": facts.status,
        "error": facts.error,
        "error_code": facts.error_code,
    }
    if facts.answer == ERROR_BODY:
        return Outcome(output_body=json_or_none(facts.raw)), more
    if facts.answer == WHOLE:
        try:
            return reader.outcome(facts, json_or_none(facts.raw)), more
        except Exception:  # a strange answer must not lose the record
            log.exception("could not read a %s response", facts.wire)
            return Outcome(output_body=json_or_none(facts.raw)), more
    if facts.answer == STREAM:
        try:
            outcome = reader.stream_outcome(facts)
        except Exception:
            log.exception("could not read a %s stream", facts.wire)
            outcome = Outcome()
        outcome.estimated = outcome.estimated or facts.truncated
        if facts.status == "CANCELLED":
            more["error_code"] = facts.cancelled_code or "ClientDisconnected"
        elif facts.error_status is not None:
            more["error_code"] = reader.error_code(facts.error_status)
        elif outcome.error is not None:
            more.update(status="ERROR", error=outcome.error, error_code=outcome.error_code)
        return outcome, more
    return Outcome(), more


def record_of(
    facts: CallFacts,
    settings: Settings,
    reader: Reader,
    enrich: Callable[[dict[str, Any]], None] | None = None,
    withhold: Callable[[dict[str, Any]], object] | None = None,
) -> InvocationRecord:
    """The record of a finished call: its answer read, its cost added (``enrich``), and its
    bodies withheld when the caller asked (``withhold``, after pricing: the counts come from
    the bodies)."""
    o, more = outcome_of(facts, reader)
    doc: dict[str, Any] = {
        "schemaType": SCHEMA_TYPE,
        "schemaVersion": SCHEMA_VERSION,
        "timestamp": format_timestamp(facts.started),
        "accountId": settings.account_id,
        "region": settings.region,
        "requestId": facts.request_id,
        "operation": facts.operation,
        "modelId": facts.model_id,
    }
    if facts.identity is not None:
        doc["identity"] = {"arn": facts.identity[0]}
    if facts.metadata:
        doc["requestMetadata"] = facts.metadata
    inp: dict[str, Any] = {"inputContentType": "application/json"}
    if facts.input_body is not None:
        inp["inputBodyJson"] = facts.input_body
    if o.input_tokens is not None:
        inp["inputTokenCount"] = o.input_tokens
    if o.cache_read_tokens is not None:
        inp["cacheReadInputTokenCount"] = o.cache_read_tokens
    if o.cache_write_tokens is not None:
        inp["cacheWriteInputTokenCount"] = o.cache_write_tokens
    out: dict[str, Any] = {"outputContentType": "application/json"}
    if o.output_body is not None:
        out["outputBodyJson"] = o.output_body
    if o.output_tokens is not None:
        out["outputTokenCount"] = o.output_tokens
    doc["input"], doc["output"] = inp, out
    if more["error_code"]:
        doc["errorCode"] = more["error_code"]
    doc.update(
        recordId=uuid7(facts.started),
        workspace=facts.workspace,
        source="gateway",
        status=more["status"],
        latencyMs=facts.latency_ms,
    )
    optional = {
        "provider": facts.provider,
        "resolvedModelId": facts.resolved_model,
        "responseId": o.response_id,
        "stopReason": o.stop_reason,
        "error": more["error"],
        "trace": facts.trace,
        "timeToFirstTokenMs": facts.time_to_first_token_ms,
        "identityType": facts.identity[1] if facts.identity is not None else None,
        "requestMetadataTruncated": True if facts.metadata_truncated else None,
        "tokenCountEstimated": True if o.estimated else None,
        "requestHeaders": facts.headers or None,
    }
    doc.update({k: v for k, v in optional.items() if v is not None})
    doc.update(facts.additions)
    if enrich is not None:
        enrich(doc)
    if withhold is not None and facts.no_log:
        withhold(doc)
    return InvocationRecord(doc, tuple(k for k in doc if k in ADDITION_KEYS))


def json_or_none(raw: bytes) -> Any:
    try:
        return orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        return None
