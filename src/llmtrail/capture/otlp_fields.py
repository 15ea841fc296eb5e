"""The facts a span's attributes carry — its error, tags, session, application, request
metadata, finish reason, operation, token counts — read by whichever convention carried
them (GenAI before and after v1.37, OpenInference, the llmtrail SDK's ``llmtrail.*``).
`otlp_genai` assembles them into records and spans. Pure functions of the span; the two
small memos (operation names, fitted metadata) only remember what they computed.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping
from typing import Any

from llmtrail.capture.otlp_content import event_body
from llmtrail.capture.otlp_span import OtlpSpan, first_str, json_value
from llmtrail.errors import ValidationError
from llmtrail.record import coerce_request_metadata
from llmtrail.span import TAG_MAX, TAGS_MAX, TEXT_MAX, SpanError

LLMTRAIL_KIND = "llmtrail.span.kind"
LLMTRAIL_TAGS = "llmtrail.tags"
LLMTRAIL_STATUS = "llmtrail.status"
LLMTRAIL_METADATA = "llmtrail.metadata."


def span_error(span: OtlpSpan) -> SpanError | None:
    """The span's error when its status is ERROR: ``error.type`` or the exception event's
    type (``_OTHER`` when neither names one), message and stack trace."""
    if span.status_code != 2:
        return None
    exc: Mapping[str, Any] = next((e.attributes for e in span.events if e.name == "exception"), {})
    type_ = first_str(span.attributes, "error.type") or first_str(exc, "exception.type")
    message = first_str(exc, "exception.message") or span.status_message or None
    return SpanError(type_ or "_OTHER", message, first_str(exc, "exception.stacktrace"))


def span_tags(span: OtlpSpan) -> tuple[str, ...]:
    """The SDK's ``llmtrail.tags`` or OpenInference's ``tag.tags``, each tag cut to
    `TAG_MAX` characters, at most `TAGS_MAX` of them, empty ones left out."""
    for key in (LLMTRAIL_TAGS, "tag.tags"):
        tags = span.attributes.get(key)
        if isinstance(tags, str):
            tags = [tags]
        if isinstance(tags, list):
            kept = (str(t)[:TAG_MAX] for t in tags if t is not None and str(t))
            return tuple(kept)[:TAGS_MAX]
    return ()


def span_metadata(span: OtlpSpan) -> dict[str, Any]:
    """The SDK's ``llmtrail.metadata.<key>`` attributes as ``{key: value}``."""
    cut = len(LLMTRAIL_METADATA)
    return {
        k[cut:]: v
        for k, v in span.attributes.items()
        if k.startswith(LLMTRAIL_METADATA) and len(k) > cut
    }


def cancellation(span: OtlpSpan) -> SpanError:
    """Why the SDK marked a span CANCELLED: the exception event's type and message."""
    exc: Mapping[str, Any] = next((e.attributes for e in span.events if e.name == "exception"), {})
    return SpanError(
        first_str(exc, "exception.type") or "cancelled", first_str(exc, "exception.message")
    )


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
    """``requestMetadata`` for a model call: OpenInference ``metadata``, the SDK's
    ``llmtrail.metadata.*``, application_name (service.name), user_id and environment,
    fitted to Bedrock's limits."""
    raw: dict[str, Any] = {}
    meta = json_value(span.attributes.get("metadata"))
    if isinstance(meta, dict):
        raw.update(meta)
    raw.update(span_metadata(span))
    pairs = (
        ("application_name", app_name(span)),
        ("user_id", first_str(span.attributes, "user.id", "enduser.id")),
        (
            "environment",
            first_str(span.resource, "deployment.environment.name", "deployment.environment"),
        ),
    )
    raw.update({k: v for k, v in pairs if v})
    if not raw:
        return {}, False
    if all(type(v) is str for v in raw.values()):
        fitted, truncated = _coerced(tuple(raw.items()))
        return dict(fitted), truncated
    return coerce_request_metadata(raw)


@functools.lru_cache(maxsize=4096)
def _coerced(items: tuple[tuple[str, str], ...]) -> tuple[tuple[tuple[str, str], ...], bool]:
    """`coerce_request_metadata` of string pairs, remembered: the same few application and
    user names come with every span."""
    fitted, truncated = coerce_request_metadata(dict(items))
    return tuple(fitted.items()), truncated


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
        messages = response_body.get("messages")  # GenAI output messages (parts)
        if isinstance(messages, list) and messages and isinstance(messages[0], dict):
            reason = messages[0].get("finish_reason")
            if isinstance(reason, str) and reason:
                return reason
        choices = response_body.get("choices")
        if isinstance(choices, list) and choices and isinstance(choices[0], dict):
            reason = choices[0].get("finish_reason")
            return reason if isinstance(reason, str) else None
    return None


def operation_name(operation: Any, kind: str) -> str:
    if isinstance(operation, str) and operation:
        known = _OPERATIONS.get(operation)
        if known is None:
            known = "".join(p.capitalize() for p in re.split(r"[_.\s]+", operation) if p)
            if len(_OPERATIONS) < 1024:
                _OPERATIONS[operation] = known
        return known
    return "Embeddings" if kind == "embedding" else "Chat"


_OPERATIONS: dict[str, str] = {}  # gen_ai.operation.name → operation, as first computed


def ttft_ms(span: OtlpSpan) -> int | None:
    value = span.attributes.get("gen_ai.response.time_to_first_chunk")  # seconds
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return round(value * 1000) if math.isfinite(value) else None
    return None


# record key → the attributes that may carry it, newest convention first
INPUT_COUNTS = (
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
OUTPUT_COUNT = (
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.completion_tokens",
    "llm.token_count.completion",
)


def put_count(target: dict[str, Any], key: str, span: OtlpSpan, names: tuple[str, ...]) -> None:
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
