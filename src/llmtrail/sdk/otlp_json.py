"""Finished spans as an OTLP/HTTP JSON ``ExportTraceServiceRequest``.

The standard protobuf-JSON mapping with OTLP's own rules: trace and span ids as lowercase
hex (not base64), 64-bit integers (times, ``intValue``) as decimal strings, enums as
integers, lowerCamelCase keys, and attributes as ``{"key", "value": AnyValue}`` lists. Any
OTLP receiver accepts it; a test parses it with protobuf's own JSON parser. A pure function:
the exporter's thread calls it on each batch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from llmtrail.sdk.genai import span_attributes
from llmtrail.sdk.spans import AttributeValue, FinishedSpan

SCOPE_NAME = "llmtrail.sdk"
SPAN_KIND_INTERNAL = 1
SPAN_KIND_CLIENT = 3
STATUS_CODE_ERROR = 2
_INT64 = range(-(2**63), 2**63)


def any_value(value: Any) -> dict[str, Any]:
    """One OTLP ``AnyValue``: strings, booleans, int64, doubles and arrays of them; anything
    else as its JSON text."""
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)} if value in _INT64 else {"stringValue": str(value)}
    if isinstance(value, float):
        if math.isnan(value):
            return {"doubleValue": "NaN"}
        if math.isinf(value):
            return {"doubleValue": "Infinity" if value > 0 else "-Infinity"}
        return {"doubleValue": value}
    if isinstance(value, list | tuple):
        return {"arrayValue": {"values": [any_value(v) for v in value]}}
    return {"stringValue": orjson.dumps(value, default=str).decode()}


def key_values(attributes: Mapping[str, AttributeValue | Any]) -> list[dict[str, Any]]:
    """Attributes as an OTLP ``KeyValue`` list, in their order."""
    return [{"key": key, "value": any_value(value)} for key, value in attributes.items()]


def encode_span(span: FinishedSpan) -> dict[str, Any]:
    """One ``Span`` message."""
    out: dict[str, Any] = {"traceId": span.trace_id, "spanId": span.span_id}
    if span.parent_span_id:
        out["parentSpanId"] = span.parent_span_id
    out.update(
        name=span.name,
        kind=SPAN_KIND_CLIENT if span.kind in ("llm", "embedding") else SPAN_KIND_INTERNAL,
        startTimeUnixNano=str(span.start_ns),
        endTimeUnixNano=str(span.end_ns),
        attributes=key_values(span_attributes(span)),
    )
    status: dict[str, Any] = {}
    if span.exception is not None:
        error = span.exception
        out["events"] = [
            {
                "timeUnixNano": str(error.time_ns),
                "name": "exception",
                "attributes": key_values(
                    {
                        "exception.type": error.type,
                        "exception.message": error.message,
                        "exception.stacktrace": error.stacktrace,
                    }
                ),
            }
        ]
        if span.status == "ERROR":
            status = {"code": STATUS_CODE_ERROR, "message": f"{error.type}: {error.message}"}
    out["status"] = status
    return out


def export_request(
    spans: Sequence[FinishedSpan], resource: Mapping[str, AttributeValue], scope_version: str
) -> dict[str, Any]:
    """The whole ``ExportTraceServiceRequest`` for one batch: one resource, one scope."""
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": key_values(resource)},
                "scopeSpans": [
                    {
                        "scope": {"name": SCOPE_NAME, "version": scope_version},
                        "spans": [encode_span(s) for s in spans],
                    }
                ],
            }
        ]
    }


def export_body(
    spans: Sequence[FinishedSpan], resource: Mapping[str, AttributeValue], scope_version: str
) -> bytes:
    """`export_request` as the bytes of an HTTP body."""
    return orjson.dumps(export_request(spans, resource, scope_version))
