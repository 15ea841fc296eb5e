"""What an OpenTelemetry span means to llmtrail: a model call (an invocation record) or
another step of a trace (a `Span`).

The wire decoders in `otlp` turn protobuf and JSON into `OtlpSpan` values; this module reads
their attributes by the conventions instrumentations actually emit, all at once, so one
mapping serves every generation:

- OpenTelemetry GenAI before v1.37 (``gen_ai.system``, ``gen_ai.usage.prompt_tokens``,
  message events ``gen_ai.user.message`` … ``gen_ai.choice``, ``gen_ai.content.prompt``)
  and from v1.37 (``gen_ai.provider.name``, ``gen_ai.input.messages`` /
  ``gen_ai.output.messages`` / ``gen_ai.system_instructions``, cache token counts);
- OpenInference (``openinference.span.kind``, ``llm.*``, ``input.value``, ``session.id``).

Where two conventions say the same thing the newer one wins. The bodies (what went in and
came out) are read by `otlp_content`. The functions are pure: no clock, no I/O.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from llmtrail.capture.otlp_content import event_body, input_body, output_body, span_io
from llmtrail.capture.otlp_span import OtlpSpan, first_str, json_value
from llmtrail.errors import ValidationError
from llmtrail.record import (
    DEFAULT_WORKSPACE,
    SCHEMA_TYPE,
    SCHEMA_VERSION,
    coerce_request_metadata,
    format_timestamp,
)
from llmtrail.store.spans import NAME_MAX, TAG_MAX, TAGS_MAX, TEXT_MAX, Span, SpanError

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
    """llmtrail's span kind from OpenInference, GenAI or Traceloop attributes."""
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


def map_spans(spans: Iterable[OtlpSpan], *, workspace: str = DEFAULT_WORKSPACE) -> DecodedTraces:
    """Model calls become record documents, every other span a `Span`."""
    out = DecodedTraces()
    for span in spans:
        kind = span_kind(span.attributes)
        if kind in MODEL_CALL_KINDS:
            out.records.append(to_record(span, kind))
        else:
            out.spans.append(to_span(span, kind, workspace))
    return out


def to_record(span: OtlpSpan, kind: str = "llm") -> dict[str, Any]:
    """The invocation-record document of a model-call span (Bedrock's ModelInvocationLog
    keys plus llmtrail's additions; ``requestId`` is ``otlp-<traceId>-<spanId>``, so a span
    sent twice is one record)."""
    a = span.attributes
    start, end = _times(span)
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
    for key, names in _INPUT_COUNTS:
        _put_count(inp, key, span, names)
    out: dict[str, Any] = {"outputContentType": "application/json"}
    if response_body is not None:
        out["outputBodyJson"] = response_body
    _put_count(out, "outputTokenCount", span, _OUTPUT_COUNT)
    doc: dict[str, Any] = {
        "schemaType": SCHEMA_TYPE,
        "schemaVersion": SCHEMA_VERSION,
        "timestamp": format_timestamp(start),
        "requestId": f"otlp-{span.trace_id}-{span.span_id}",
        "operation": _operation(operation, kind),
        "modelId": model or "unknown",
    }
    metadata, truncated = request_metadata(span)
    if metadata:
        doc["requestMetadata"] = metadata
    doc["input"], doc["output"] = inp, out
    error = span_error(span)
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
        "latencyMs": (end - start) // timedelta(milliseconds=1),
        "timeToFirstTokenMs": _ttft_ms(span),
        "stopReason": stop_reason(span, response_body),
        "status": "ERROR" if error else "OK",
        "error": error.to_dict() if error else None,
        "trace": {k: v for k, v in trace.items() if v is not None},
        "source": "otlp",
        "requestMetadataTruncated": True if truncated else None,
    }
    doc.update({k: v for k, v in optional.items() if v is not None})
    return doc


def to_span(span: OtlpSpan, kind: str, workspace: str = DEFAULT_WORKSPACE) -> Span:
    """The `Span` of a step that is not a model call. Attributes are kept except those that
    became its input, output, session or tags."""
    start, end = _times(span)
    given, returned = span_io(span)
    used = {"tag.tags", "session.id", "gen_ai.conversation.id"}
    used |= {pair[0] for pair in (given, returned) if pair is not None}
    tags = span.attributes.get("tag.tags")
    return Span(
        trace_id=span.trace_id,
        span_id=span.span_id,
        parent_span_id=span.parent_span_id,
        kind=kind,
        name=span.name or "span",
        start=start,
        end=end,
        status="ERROR" if span.status_code == 2 else "OK",
        error=span_error(span),
        input=given[1] if given else None,
        output=returned[1] if returned else None,
        attributes={k: v for k, v in span.attributes.items() if k not in used},
        tags=tuple(str(t)[:TAG_MAX] for t in tags[:TAGS_MAX]) if isinstance(tags, list) else (),
        session_id=session_id(span),
        app=app_name(span),
        workspace=workspace,
        source="otlp",
    )


# -- fields ------------------------------------------------------------------------------------


def _times(span: OtlpSpan) -> tuple[datetime, datetime]:
    """Start and end (microseconds), checked; the span's name is checked here too."""
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
    start = _EPOCH + timedelta(microseconds=span.start_unix_nano // 1000)
    return start, _EPOCH + timedelta(microseconds=span.end_unix_nano // 1000)


def span_error(span: OtlpSpan) -> SpanError | None:
    """The span's error when its status is ERROR: ``error.type`` or the exception event's
    type (``_OTHER`` when neither names one), message and stack trace."""
    if span.status_code != 2:
        return None
    exc: Mapping[str, Any] = next((e.attributes for e in span.events if e.name == "exception"), {})
    type_ = first_str(span.attributes, "error.type") or first_str(exc, "exception.type")
    message = first_str(exc, "exception.message") or span.status_message or None
    return SpanError(type_ or "_OTHER", message, first_str(exc, "exception.stacktrace"))


def session_id(span: OtlpSpan) -> str | None:
    """``gen_ai.conversation.id`` or OpenInference's ``session.id``."""
    value = first_str(span.attributes, "gen_ai.conversation.id", "session.id")
    return value[:TEXT_MAX] if value else None


def app_name(span: OtlpSpan) -> str | None:
    """The resource's ``service.name``, unless it is the SDK's ``unknown_service`` default."""
    name = first_str(span.resource, "service.name")
    if not name or name.startswith("unknown_service"):
        return None
    return name[:TEXT_MAX]


def request_metadata(span: OtlpSpan) -> tuple[dict[str, str], bool]:
    """``requestMetadata`` for a model call: application_name (service.name), user_id,
    environment and OpenInference ``metadata``, fitted to Bedrock's limits."""
    raw: dict[str, Any] = {}
    meta = json_value(span.attributes.get("metadata"))
    if isinstance(meta, dict):
        raw.update(meta)
    pairs = (
        ("application_name", app_name(span)),
        ("user_id", first_str(span.attributes, "user.id", "enduser.id")),
        (
            "environment",
            first_str(span.resource, "deployment.environment.name", "deployment.environment"),
        ),
    )
    raw.update({k: v for k, v in pairs if v})
    return coerce_request_metadata(raw) if raw else ({}, False)


def stop_reason(span: OtlpSpan, response_body: Any) -> str | None:
    """The first finish reason any convention gives."""
    reasons = span.attributes.get("gen_ai.response.finish_reasons")
    if isinstance(reasons, list) and reasons and isinstance(reasons[0], str):
        return reasons[0]
    if isinstance(reasons, str) and reasons:
        return reasons
    value = first_str(span.attributes, "llm.finish_reason")
    if value:
        return value
    for event in span.events:
        if event.name == "gen_ai.choice":
            body = event_body(event)
            if isinstance(body.get("finish_reason"), str):
                return str(body["finish_reason"])
    if isinstance(response_body, dict):
        if isinstance(response_body.get("stop_reason"), str):  # Anthropic
            return str(response_body["stop_reason"])
        choices = response_body.get("choices")
        if isinstance(choices, list) and choices and isinstance(choices[0], dict):
            reason = choices[0].get("finish_reason")
            return reason if isinstance(reason, str) else None
    return None


def _operation(operation: Any, kind: str) -> str:
    if isinstance(operation, str) and operation:
        return "".join(part.capitalize() for part in re.split(r"[_.\s]+", operation) if part)
    return "Embeddings" if kind == "embedding" else "Chat"


def _ttft_ms(span: OtlpSpan) -> int | None:
    value = span.attributes.get("gen_ai.response.time_to_first_chunk")  # seconds
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return round(value * 1000) if math.isfinite(value) else None
    return None


# record key → the attributes that may carry it, newest convention first
_INPUT_COUNTS = (
    (
        "inputTokenCount",
        ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens", "llm.token_count.prompt"),
    ),
    (
        "cacheReadInputTokenCount",
        (
            "gen_ai.usage.cache_read.input_tokens",
            "gen_ai.usage.cache_read_input_tokens",
            "llm.token_count.prompt_details.cache_read",
        ),
    ),
    (
        "cacheWriteInputTokenCount",
        (
            "gen_ai.usage.cache_creation.input_tokens",
            "gen_ai.usage.cache_creation_input_tokens",
            "llm.token_count.prompt_details.cache_write",
        ),
    ),
)
_OUTPUT_COUNT = (
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.completion_tokens",
    "llm.token_count.completion",
)


def _put_count(target: dict[str, Any], key: str, span: OtlpSpan, names: tuple[str, ...]) -> None:
    for name in names:
        value = span.attributes.get(name)
        if value is None:
            continue
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if type(value) is not int or not 0 <= value < 2**63:
            raise ValidationError(
                f"{span.where}.attributes.{name}", "must be a non-negative integer"
            )
        target[key] = value
        return
