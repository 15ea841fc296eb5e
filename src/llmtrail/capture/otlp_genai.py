"""What an OpenTelemetry span means to llmtrail: a model call (an invocation record) or
another step of a trace (a `Span`).

The wire decoders in `otlp` turn protobuf and JSON into `OtlpSpan` values; this module reads
their attributes by the conventions instrumentations actually emit, all at once, so one
mapping serves every generation:

- OpenTelemetry GenAI before v1.37 (``gen_ai.system``, ``gen_ai.usage.prompt_tokens``,
  message events ``gen_ai.user.message`` … ``gen_ai.choice``, ``gen_ai.content.prompt``)
  and from v1.37 (``gen_ai.provider.name``, ``gen_ai.input.messages`` /
  ``gen_ai.output.messages`` / ``gen_ai.system_instructions``, cache token counts);
- OpenInference (``openinference.span.kind``, ``llm.*``, ``input.value``, ``session.id``);
- llmtrail's own SDK (``llmtrail.span.kind``, ``llmtrail.input`` / ``llmtrail.output``,
  ``llmtrail.tags``, ``llmtrail.metadata.*``, ``llmtrail.status``), which says first what
  it knows best: the SDK also sets ``gen_ai.operation.name``, but only its own attribute
  tells a ``task`` from any other step.

Where two conventions say the same thing the newer one wins. The bodies (what went in and
came out) are read by `otlp_content`, the other facts (error, tags, session, metadata, token
counts, …) by `otlp_fields`. The functions are pure: no clock, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from llmtrail.capture.otlp_content import input_body, output_body, span_io
from llmtrail.capture.otlp_fields import (
    INPUT_COUNTS,
    LLMTRAIL_KIND,
    LLMTRAIL_STATUS,
    LLMTRAIL_TAGS,
    OUTPUT_COUNT,
    app_name,
    cancellation,
    operation_name,
    put_count,
    request_metadata,
    session_id,
    span_error,
    span_tags,
    stop_reason,
    ttft_ms,
)
from llmtrail.capture.otlp_span import DEFAULT_JSON_DEPTH, OtlpSpan, first_str, json_depth_limit
from llmtrail.errors import ValidationError
from llmtrail.record import (
    DEFAULT_WORKSPACE,
    SCHEMA_TYPE,
    SCHEMA_VERSION,
)
from llmtrail.span import NAME_MAX, SPAN_KINDS, Span

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_NANOS = (datetime(9999, 1, 1, tzinfo=UTC) - _EPOCH) // timedelta(microseconds=1) * 1000


@dataclass
class DecodedTraces:
    """What one OTLP request holds: invocation-record documents (model calls, ready for
    `InvocationRecord.from_dict(doc, source="otlp")`) and the other spans."""

    records: list[dict[str, Any]] = field(default_factory=list)
    spans: list[Span] = field(default_factory=list)


# -- span kinds and providers ------------------------------------------------------------------

OPENINFERENCE_KINDS = {
    "LLM": "llm",
    "EMBEDDING": "embedding",
    "CHAIN": "workflow",
    "AGENT": "agent",
    "TOOL": "tool",
    "RETRIEVER": "retrieval",
    "RERANKER": "retrieval",
}
GENAI_OPERATION_KINDS = {
    "chat": "llm",
    "text_completion": "llm",
    "generate_content": "llm",
    "embeddings": "embedding",
    "execute_tool": "tool",
    "invoke_agent": "agent",
    "create_agent": "agent",
    "invoke_workflow": "workflow",
    "retrieval": "retrieval",
}
TRACELOOP_KINDS = {"workflow": "workflow", "task": "task", "agent": "agent", "tool": "tool"}
MODEL_CALL_KINDS = frozenset({"llm", "embedding"})

# GenAI (`gen_ai.provider.name`, `gen_ai.system`) and OpenInference (`llm.provider`,
# `llm.system`) names → llmtrail's provider names; others are kept, lowercased.
PROVIDERS = {
    "aws.bedrock": "bedrock",
    "aws": "bedrock",
    "az.ai.inference": "azure",
    "azure.ai.inference": "azure",
    "azure.ai.openai": "azure",
    "gcp.gemini": "gemini",
    "gcp.gen_ai": "google",
    "gcp.vertex_ai": "vertex_ai",
    "vertexai": "vertex_ai",
    "mistral_ai": "mistral",
    "mistralai": "mistral",
    "x_ai": "xai",
    "ibm.watsonx.ai": "watsonx",
}


def span_kind(attrs: Mapping[str, Any]) -> str:
    """llmtrail's span kind: the SDK's ``llmtrail.span.kind`` first, then OpenInference,
    GenAI or Traceloop attributes."""
    own = attrs.get(LLMTRAIL_KIND)
    if isinstance(own, str) and own in SPAN_KINDS:
        return own
    oi = attrs.get("openinference.span.kind")
    if isinstance(oi, str):
        return OPENINFERENCE_KINDS.get(oi.upper(), "other")
    op = attrs.get("gen_ai.operation.name")
    if isinstance(op, str) and op in GENAI_OPERATION_KINDS:
        return GENAI_OPERATION_KINDS[op]
    tl = attrs.get("traceloop.span.kind")
    if isinstance(tl, str) and tl in TRACELOOP_KINDS:
        return TRACELOOP_KINDS[tl]
    if any(k in attrs for k in ("gen_ai.system", "gen_ai.provider.name", "gen_ai.request.model")):
        return "llm"  # GenAI spans before gen_ai.operation.name was required
    return "other"


def provider_name(attrs: Mapping[str, Any]) -> str | None:
    """llmtrail's provider name for the span, or None when no attribute names one."""
    for key in ("gen_ai.provider.name", "llm.provider", "gen_ai.system", "llm.system"):
        value = attrs.get(key)
        if isinstance(value, str) and value:
            name = value.lower()
            return PROVIDERS.get(name, name)
    return None


# -- the mapping -------------------------------------------------------------------------------

_UNKNOWN: Any = object()  # an argument not given (None is a value)


def map_spans(
    spans: Iterable[OtlpSpan],
    *,
    workspace: str = DEFAULT_WORKSPACE,
    max_json_depth: int = DEFAULT_JSON_DEPTH,
) -> DecodedTraces:
    """Model calls become record documents, every other span a `Span`; JSON text in
    attributes is parsed at most ``max_json_depth`` levels deep (deeper stays text)."""
    out = DecodedTraces()
    apps: dict[int, str | None] = {}  # by resource: spans of one resource share it
    with json_depth_limit(max_json_depth):
        for span in spans:
            kind = span_kind(span.attributes)
            if kind in MODEL_CALL_KINDS:
                out.records.append(to_record(span, kind))
            else:
                app = apps.get(id(span.resource), _UNKNOWN)
                if app is _UNKNOWN:
                    app = apps[id(span.resource)] = app_name(span)
                out.spans.append(to_span(span, kind, workspace, app=app))
    return out


def to_record(span: OtlpSpan, kind: str = "llm") -> dict[str, Any]:
    """The invocation-record document of a model-call span (Bedrock's ModelInvocationLog
    keys plus llmtrail's additions; ``requestId`` is ``otlp-<traceId>-<spanId>``, so a span
    sent twice is one record)."""
    a = span.attributes
    _times(span)
    model = first_str(
        a,
        "gen_ai.request.model",
        "llm.request.model_name",
        "llm.model_name",
        "embedding.model_name",
        "gen_ai.response.model",
    )
    resolved = first_str(a, "gen_ai.response.model", "llm.response.model_name")
    operation = a.get("gen_ai.operation.name")
    request_body = input_body(span)
    response_body = output_body(span)
    response_id = first_str(a, "gen_ai.response.id")
    if response_id is None and isinstance(response_body, dict):
        rid = response_body.get("id")
        response_id = rid if isinstance(rid, str) and rid else None
    inp: dict[str, Any] = {"inputContentType": "application/json"}
    if request_body is not None:
        inp["inputBodyJson"] = request_body
    for key, names in INPUT_COUNTS:
        put_count(inp, key, span, names)
    out: dict[str, Any] = {"outputContentType": "application/json"}
    if response_body is not None:
        out["outputBodyJson"] = response_body
    put_count(out, "outputTokenCount", span, OUTPUT_COUNT)
    doc: dict[str, Any] = {
        "schemaType": SCHEMA_TYPE,
        "schemaVersion": SCHEMA_VERSION,
        "timestamp": _timestamp(span.start_unix_nano // 1000),
        "requestId": f"otlp-{span.trace_id}-{span.span_id}",
        "operation": operation_name(operation, kind),
        "modelId": model or "unknown",
    }
    metadata, truncated = request_metadata(span)
    if metadata:
        doc["requestMetadata"] = metadata
    doc["input"], doc["output"] = inp, out
    error = span_error(span)
    status = "ERROR" if error else "OK"
    if span.attributes.get(LLMTRAIL_STATUS) == "CANCELLED":
        status, error = "CANCELLED", cancellation(span)
    trace = {
        "traceId": span.trace_id,
        "spanId": span.span_id,
        "parentSpanId": span.parent_span_id,
        "sessionId": session_id(span),
        "spanKind": kind,
        "name": span.name,
    }
    optional: dict[str, Any] = {
        "provider": provider_name(a),
        "resolvedModelId": resolved,
        "responseId": response_id,
        "latencyMs": (span.end_unix_nano // 1000 - span.start_unix_nano // 1000) // 1000,
        "timeToFirstTokenMs": ttft_ms(span),
        "stopReason": stop_reason(span, response_body),
        "status": status,
        "error": error.to_dict() if error else None,
        "trace": {k: v for k, v in trace.items() if v is not None},
        "source": "otlp",
        "requestMetadataTruncated": True if truncated else None,
    }
    doc.update({k: v for k, v in optional.items() if v is not None})
    return doc


def to_span(
    span: OtlpSpan, kind: str, workspace: str = DEFAULT_WORKSPACE, *, app: Any = _UNKNOWN
) -> Span:
    """The `Span` of a step that is not a model call. Attributes are kept except those that
    became its input, output, session or tags. ``app`` is the resource's `app_name` when the
    caller knows it already."""
    start, end = _times(span)
    given, returned = span_io(span)
    a = span.attributes
    taken_in = given[0] if given is not None else None
    taken_out = returned[0] if returned is not None else None
    attributes = {
        k: v for k, v in a.items() if k not in _SPAN_USED and k != taken_in and k != taken_out
    }
    session = a.get("gen_ai.conversation.id") or a.get("session.id")
    return Span(
        trace_id=span.trace_id,
        span_id=span.span_id,
        parent_span_id=span.parent_span_id,
        kind=kind,
        name=span.name or "span",
        start=start,
        end=end,
        status="ERROR" if span.status_code == 2 else "OK",
        error=span_error(span) if span.status_code == 2 else None,
        input=given[1] if given else None,
        output=returned[1] if returned else None,
        attributes=attributes,
        tags=span_tags(span) if LLMTRAIL_TAGS in a or "tag.tags" in a else (),
        session_id=session_id(span) if session else None,
        app=app_name(span) if app is _UNKNOWN else app,
        workspace=workspace,
        source="otlp",
    )


# attributes a `Span` holds elsewhere than in its attributes
_SPAN_USED = frozenset(
    {LLMTRAIL_KIND, LLMTRAIL_TAGS, "tag.tags", "session.id", "gen_ai.conversation.id"}
)


# -- fields ------------------------------------------------------------------------------------


def _times(span: OtlpSpan) -> tuple[datetime, datetime]:
    """Start and end (microseconds), checked; the span's name is checked here too."""
    start, end = span.start_unix_nano, span.end_unix_nano
    if 0 < start <= end < _MAX_NANOS and len(span.name) <= NAME_MAX:
        return _EPOCH + timedelta(0, 0, start // 1000), _EPOCH + timedelta(0, 0, end // 1000)
    _check_times(span)
    raise AssertionError("unreachable: _check_times raises")  # pragma: no cover


def _timestamp(micros: int) -> str:
    """`llmtrail.record.format_timestamp` of a time in microseconds since the epoch, built
    from a naive ``isoformat`` (several times faster than ``strftime`` on an aware value);
    years 1970–9998 only."""
    text = (_NAIVE_EPOCH + timedelta(0, 0, micros)).isoformat()
    if micros % 1_000_000 == 0:
        return text + ".000Z"  # isoformat leaves the fraction out
    return (text[:-3] if micros % 1000 == 0 else text) + "Z"


_NAIVE_EPOCH = datetime(1970, 1, 1)


def _check_times(span: OtlpSpan) -> None:
    """Raise the `ValidationError` that says what is wrong with a span's times or name."""
    if len(span.name) > NAME_MAX:
        raise ValidationError(
            f"{span.where}.name", f"is {len(span.name)} characters; at most {NAME_MAX}"
        )
    for name, nanos in (
        ("startTimeUnixNano", span.start_unix_nano),
        ("endTimeUnixNano", span.end_unix_nano),
    ):
        if not 0 < nanos < _MAX_NANOS:
            raise ValidationError(
                f"{span.where}.{name}",
                "must be a time after 1970 and before 9999, in nanoseconds since the epoch",
            )
    if span.end_unix_nano < span.start_unix_nano:
        raise ValidationError(f"{span.where}.endTimeUnixNano", "must not be before the start")
