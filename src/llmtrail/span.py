"""Spans: the steps of a trace that are not model calls.

DESIGN.md's *Records and spans*: a model call is stored once, as an invocation record whose
``trace`` block makes it a span; the spans table holds only the other steps (workflow, agent,
tool, task, retrieval, embedding, …). A trace is the union of both, so this module also turns
a record into the `Span` it stands for (`span_from_record`). Trace summaries are a read model
of the store (`llmtrail.store.spans`).

A span's JSON (`Span.to_dict`) uses the record's style: lowerCamelCase keys, RFC 3339 UTC
times. Its stored columns are described once, in `SPAN_COLUMNS`, for every backend.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any

from llmtrail.errors import ValidationError
from llmtrail.record import DEFAULT_WORKSPACE, InvocationRecord, format_timestamp, parse_timestamp
from llmtrail.schema import Column, Role, Type

SPAN_KINDS = ("workflow", "agent", "tool", "task", "retrieval", "embedding", "llm", "other")
SPAN_STATUSES = ("OK", "ERROR")
SPAN_SOURCES = ("sdk", "otlp")

NAME_MAX = 1024
TAG_MAX = 256
TAGS_MAX = 64
TEXT_MAX = 256  # sessionId, app

_TRACE_ID = re.compile(r"[0-9a-f]{32}")
_SPAN_ID = re.compile(r"[0-9a-f]{16}")


@dataclass(frozen=True)
class SpanError:
    """Why a span failed: the exception's type, message and stack trace."""

    type: str | None = None
    message: str | None = None
    stack_trace: str | None = None

    def to_dict(self) -> dict[str, str]:
        """``{type, message, stackTrace}`` without the parts that are missing."""
        pairs = (("type", self.type), ("message", self.message), ("stackTrace", self.stack_trace))
        return {k: v for k, v in pairs if v is not None}


@dataclass
class Span:
    """One step of a trace. Spans made from invocation records (`span_from_record`) carry the
    record in ``record``; spans stored in a SpanStore have none."""

    trace_id: str
    span_id: str
    name: str
    start: datetime
    end: datetime
    kind: str = "other"
    parent_span_id: str | None = None
    status: str = "OK"  # OK | ERROR (a record's span may also be CANCELLED)
    error: SpanError | None = None
    input: Any = None
    output: Any = None
    attributes: dict[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    session_id: str | None = None
    app: str | None = None
    workspace: str = DEFAULT_WORKSPACE
    source: str = "sdk"
    record: InvocationRecord | None = None

    def __reduce__(self) -> tuple[type[Span], tuple[Any, ...]]:
        """Pickled as its fields in order (an OTLP export's spans cross two process
        boundaries): ~40 % cheaper both ways than the instance dictionary."""
        return Span, _FIELDS(self)

    @property
    def duration_ms(self) -> int:
        """Whole milliseconds from start to end."""
        return (self.end - self.start) // timedelta(milliseconds=1)

    @property
    def is_root(self) -> bool:
        """True when the span names no parent."""
        return not self.parent_span_id

    def to_dict(self) -> dict[str, Any]:
        """The span as JSON: lowerCamelCase keys, RFC 3339 times, no null values."""
        record = self.record.to_dict() if self.record is not None else None
        return self._doc(
            format_timestamp(self.start), format_timestamp(self.end), self.duration_ms, record
        )

    def frame_doc(self) -> dict[str, Any]:
        """What a spool frame holds of the span (`from_dict` reads it back): `to_dict`'s keys
        with the times left as datetimes, for orjson to write (several times cheaper than
        `format_timestamp`), and without what is derived (the duration) or not read back (a
        record's span's record)."""
        return self._doc(self.start, self.end, None, None)

    def _doc(self, start: Any, end: Any, duration: int | None, record: Any) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "traceId": self.trace_id,
            "spanId": self.span_id,
            "parentSpanId": self.parent_span_id,
            "kind": self.kind,
            "name": self.name,
            "start": start,
            "end": end,
            "durationMs": duration,
            "status": self.status,
            "error": self.error.to_dict() if self.error else None,
            "input": self.input,
            "output": self.output,
            "attributes": self.attributes or None,
            "tags": list(self.tags) or None,
            "sessionId": self.session_id,
            "app": self.app,
            "workspace": self.workspace,
            "source": self.source,
            "record": record,
        }
        return {k: v for k, v in doc.items() if v is not None}

    @classmethod
    def from_dict(
        cls, doc: Any, *, workspace: str = DEFAULT_WORKSPACE, source: str = "sdk"
    ) -> Span:
        """Validate a span that arrived as JSON (the `to_dict` shape; ``workspace`` and
        ``source`` are llmtrail's, never the caller's). Raises `ValidationError`."""
        if not isinstance(doc, Mapping):
            raise ValidationError("span", "must be a JSON object")
        start = parse_timestamp(_text(doc, "start", required=True) or "", "start")
        end = parse_timestamp(_text(doc, "end", required=True) or "", "end")
        if end < start:
            raise ValidationError("end", "must not be before start")
        kind = _text(doc, "kind") or "other"
        if kind not in SPAN_KINDS:
            raise ValidationError("kind", f"must be one of {'|'.join(SPAN_KINDS)}, got {kind!r}")
        status = _text(doc, "status") or "OK"
        if status not in SPAN_STATUSES:
            raise ValidationError("status", f"must be OK or ERROR, got {status!r}")
        if source not in SPAN_SOURCES:
            raise ValidationError("source", f"must be one of {'|'.join(SPAN_SOURCES)}")
        error = doc.get("error")
        if error is not None and not isinstance(error, Mapping):
            raise ValidationError("error", "must be an object {type, message, stackTrace}")
        attributes = doc.get("attributes") or {}
        if not isinstance(attributes, Mapping):
            raise ValidationError("attributes", "must be an object")
        tags = doc.get("tags") or []
        if not isinstance(tags, list) or len(tags) > TAGS_MAX:
            raise ValidationError("tags", f"must be a list of at most {TAGS_MAX} strings")
        for i, tag in enumerate(tags):
            if not isinstance(tag, str) or not 0 < len(tag) <= TAG_MAX:
                raise ValidationError(f"tags[{i}]", f"must be a string of 1–{TAG_MAX} characters")
        name = _text(doc, "name", required=True) or ""
        if len(name) > NAME_MAX:
            raise ValidationError("name", f"is {len(name)} characters; at most {NAME_MAX}")
        return cls(
            trace_id=check_trace_id(_text(doc, "traceId", required=True), "traceId"),
            span_id=check_span_id(_text(doc, "spanId", required=True), "spanId"),
            parent_span_id=(
                check_span_id(_text(doc, "parentSpanId"), "parentSpanId")
                if doc.get("parentSpanId")
                else None
            ),
            kind=kind,
            name=name,
            start=start,
            end=end,
            status=status,
            error=_error(error) if error else None,
            input=doc.get("input"),
            output=doc.get("output"),
            attributes=dict(attributes),
            tags=tuple(tags),
            session_id=_short(doc, "sessionId"),
            app=_short(doc, "app"),
            workspace=workspace,
            source=source,
        )


_FIELDS = operator.attrgetter(*(f.name for f in fields(Span)))


def check_trace_id(value: Any, field: str = "traceId") -> str:
    """A W3C trace id: 32 lowercase hex digits, not all zero. Raises `ValidationError`."""
    if not isinstance(value, str) or not _TRACE_ID.fullmatch(value) or not value.strip("0"):
        raise ValidationError(field, "must be 32 lowercase hex digits (16 bytes), not all zero")
    return value


def check_span_id(value: Any, field: str = "spanId") -> str:
    """A W3C span id: 16 lowercase hex digits, not all zero. Raises `ValidationError`."""
    if not isinstance(value, str) or not _SPAN_ID.fullmatch(value) or not value.strip("0"):
        raise ValidationError(field, "must be 16 lowercase hex digits (8 bytes), not all zero")
    return value


def _text(doc: Mapping[str, Any], key: str, *, required: bool = False) -> str | None:
    value = doc.get(key)
    if value is None or value == "":
        if required:
            raise ValidationError(key, "is required")
        return None
    if not isinstance(value, str):
        raise ValidationError(key, "must be a string")
    return value


def _short(doc: Mapping[str, Any], key: str) -> str | None:
    value = _text(doc, key)
    if value is not None and len(value) > TEXT_MAX:
        raise ValidationError(key, f"is {len(value)} characters; at most {TEXT_MAX}")
    return value


def _error(doc: Mapping[str, Any]) -> SpanError:
    return SpanError(
        type=_text(doc, "type"), message=_text(doc, "message"), stack_trace=_text(doc, "stackTrace")
    )


# -- a record as a span ----------------------------------------------------------------------


def span_from_record(record: InvocationRecord) -> Span:
    """The span an invocation record stands for in its trace (kind ``llm`` unless its
    ``trace.spanKind`` says otherwise), carrying the record itself and its bodies as input
    and output. The record must have ``trace.traceId``."""
    d = record.data
    trace = d.get("trace") or {}
    start = record.timestamp
    latency = d.get("latencyMs")
    end = start + timedelta(milliseconds=latency if isinstance(latency, int) else 0)
    error = d.get("error") if isinstance(d.get("error"), dict) else None
    if error or d.get("errorCode"):
        error_value: SpanError | None = SpanError(
            type=(error or {}).get("type") or d.get("errorCode"),
            message=(error or {}).get("message"),
            stack_trace=(error or {}).get("stackTrace"),
        )
    else:
        error_value = None
    meta = d.get("requestMetadata") or {}
    return Span(
        trace_id=str(trace["traceId"]),
        span_id=str(trace.get("spanId") or record.request_id),
        parent_span_id=trace.get("parentSpanId") or None,
        kind=trace.get("spanKind") or "llm",
        name=trace.get("name") or record_span_name(d.get("operation"), d.get("modelId")),
        start=start,
        end=end,
        status=str(d.get("status") or "OK"),
        error=error_value,
        input=(d.get("input") or {}).get("inputBodyJson"),
        output=(d.get("output") or {}).get("outputBodyJson"),
        session_id=trace.get("sessionId"),
        app=meta.get("application_name"),
        workspace=record.workspace,
        source=str(d.get("source") or "gateway"),
        record=record,
    )


def record_span_name(operation: Any, model_id: Any) -> str:
    """A record's span name when its trace block has none: ``operation modelId``."""
    return " ".join(str(p) for p in (operation, model_id) if p) or "model call"


# -- storage -----------------------------------------------------------------------------------


def _col(name: str, type_: Type, path: str) -> Column:
    role = Role.INTERNAL if not path else Role.ADDITION
    return Column(name, type_, tuple(path.split(".")) if path else (), role)


S, T, J = Type.STRING, Type.TIMESTAMP, Type.JSON

# The spans table, for every backend; paths are those of `Span.to_dict`.
SPAN_COLUMNS: tuple[Column, ...] = (
    _col("workspace", S, "workspace"),
    _col("trace_id", S, "traceId"),
    _col("span_id", S, "spanId"),
    _col("parent_span_id", S, "parentSpanId"),
    _col("kind", S, "kind"),
    _col("name", S, "name"),
    _col("start_time", T, "start"),
    _col("end_time", T, "end"),
    _col("status", S, "status"),
    _col("error_type", S, "error.type"),
    _col("error_message", S, "error.message"),
    _col("error_stack_trace", S, "error.stackTrace"),
    _col("input", J, "input"),
    _col("output", J, "output"),
    _col("attributes", J, "attributes"),
    _col("tags", J, "tags"),
    _col("session_id", S, "sessionId"),
    _col("app", S, "app"),
    _col("source", S, "source"),
    _col("ingested_at", T, ""),
)
