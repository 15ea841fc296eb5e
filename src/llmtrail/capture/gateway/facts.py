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
    input_body: Any = None  # the request body parsed, or None with ``request_raw``
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
    request_raw: bytes | None = None  # the request body's bytes, for `request_body` to parse

    def request_body(self) -> Any:
        """The request body: ``input_body``, or parsed from ``request_raw`` on first use (in
        the recorder process; the serving process parsed and checked the same bytes)."""
        if self.input_body is None and self.request_raw is not None:
            self.input_body = orjson.loads(self.request_raw)
            self.request_raw = None
        return self.input_body


@dataclass(slots=True)
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
    o, status, error, error_code = _read(facts, reader)
    return o, {"status": status, "error": error, "error_code": error_code}


def _read(
    facts: CallFacts, reader: Reader
) -> tuple[Outcome, str, dict[str, Any] | None, str | None]:
    """`outcome_of` as a tuple: the outcome, the status, the error and the error code."""
    status, error, code, answer = facts.status, facts.error, facts.error_code, facts.answer
    if answer == WHOLE:
        try:
            return reader.outcome(facts, json_or_none(facts.raw)), status, error, code
        except Exception:  # a strange answer must not lose the record
            log.exception("could not read a %s response", facts.wire)
            return Outcome(output_body=json_or_none(facts.raw)), status, error, code
    if answer == STREAM:
        try:
            o = reader.stream_outcome(facts)
        except Exception:
            log.exception("could not read a %s stream", facts.wire)
            o = Outcome()
        o.estimated = o.estimated or facts.truncated
        if status == "CANCELLED":
            code = facts.cancelled_code or "ClientDisconnected"
        elif facts.error_status is not None:
            code = reader.error_code(facts.error_status)
        elif o.error is not None:
            status, error, code = "ERROR", o.error, o.error_code
        return o, status, error, code
    if answer == ERROR_BODY:
        return Outcome(output_body=json_or_none(facts.raw)), status, error, code
    return Outcome(), status, error, code


def record_of(
    facts: CallFacts,
    settings: Settings,
    reader: Reader,
    enrich: Callable[[dict[str, Any]], None] | None = None,
    withhold: Callable[[dict[str, Any]], object] | None = None,
) -> InvocationRecord:
    """The record of a finished call: its answer read, its cost added (``enrich``), and its
    bodies withheld when the caller asked (``withhold``, after pricing: the counts come from
    the bodies).

    The record's keys come in one fixed order (the order a stored record's JSON keeps): the
    Bedrock fields, then what llmtrail adds, then the call's additions."""
    body = facts.request_body()
    o, status, error, error_code = _read(facts, reader)
    started = facts.started
    identity = facts.identity
    doc: dict[str, Any] = {
        "schemaType": SCHEMA_TYPE,
        "schemaVersion": SCHEMA_VERSION,
        "timestamp": format_timestamp(started),
        "accountId": settings.account_id,
        "region": settings.region,
        "requestId": facts.request_id,
        "operation": facts.operation,
        "modelId": facts.model_id,
    }
    if identity is not None:
        doc["identity"] = {"arn": identity[0]}
    if facts.metadata:
        doc["requestMetadata"] = facts.metadata
    inp: dict[str, Any] = {"inputContentType": "application/json"}
    if body is not None:
        inp["inputBodyJson"] = body
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
    doc["input"] = inp
    doc["output"] = out
    if error_code:
        doc["errorCode"] = error_code
    doc["recordId"] = uuid7(started)
    doc["workspace"] = facts.workspace
    doc["source"] = "gateway"
    doc["status"] = status
    doc["latencyMs"] = facts.latency_ms
    # what is known of the call, each only when it is
    if facts.provider is not None:
        doc["provider"] = facts.provider
    if facts.resolved_model is not None:
        doc["resolvedModelId"] = facts.resolved_model
    if o.response_id is not None:
        doc["responseId"] = o.response_id
    if o.stop_reason is not None:
        doc["stopReason"] = o.stop_reason
    if error is not None:
        doc["error"] = error
    if facts.trace is not None:
        doc["trace"] = facts.trace
    if facts.time_to_first_token_ms is not None:
        doc["timeToFirstTokenMs"] = facts.time_to_first_token_ms
    if identity is not None and identity[1] is not None:
        doc["identityType"] = identity[1]
    if facts.metadata_truncated:
        doc["requestMetadataTruncated"] = True
    if o.estimated:
        doc["tokenCountEstimated"] = True
    if facts.headers:
        doc["requestHeaders"] = facts.headers
    if facts.additions:
        doc.update(facts.additions)
    if enrich is not None:
        enrich(doc)
    if withhold is not None and facts.no_log:
        withhold(doc)
    return InvocationRecord(doc, tuple(filter(ADDITION_KEYS.__contains__, doc)))


def json_or_none(raw: bytes) -> Any:
    try:
        return orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        return None
