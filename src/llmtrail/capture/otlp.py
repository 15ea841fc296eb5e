"""Decoding OTLP/HTTP trace exports (``POST /v1/traces``) into records and spans.

Two wire encodings carry the same ``ExportTraceServiceRequest``: protobuf, read with the
classes of ``opentelemetry-proto``, and OTLP's JSON, read by hand because it is not
protobuf's canonical JSON (trace and span ids are hex, not base64; 64-bit integers may be
strings). Both become `OtlpSpan` values, ids as lowercase hex and attribute values as plain
Python values, and one mapping (`otlp_genai`) decides which are model calls. Bad input
raises `ValidationError` naming the field by its place in the request, e.g.
``resourceSpans[0].scopeSpans[1].spans[2].traceId``; so does anything else that goes wrong
while decoding (a bug, logged with its traceback), naming the body, so that no request can
make the receiver fail in any other way. Everything here is a pure function of the request's
bytes and the JSON depth limit; gzip and size limits belong to the receiver.

Depth is bounded everywhere a value can nest: AnyValue arrays and kvlists at `MAX_DEPTH`
(in both encodings), JSON text inside attributes at the server's ``limits.max_json_depth``
(deeper text stays a string, `otlp_span.json_value`), flattened keys at
`otlp_content.KEY_DEPTH_MAX` levels. So every value decoded here serialises, pickles and
fits in a record.
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import orjson

from llmtrail.capture.otlp_genai import DecodedTraces, map_spans
from llmtrail.capture.otlp_span import DEFAULT_JSON_DEPTH, OtlpEvent, OtlpSpan
from llmtrail.errors import ValidationError
from llmtrail.record import DEFAULT_WORKSPACE

if TYPE_CHECKING:
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue

__all__ = [
    "DecodedTraces",
    "OtlpEvent",
    "OtlpSpan",
    "decode_json",
    "decode_protobuf",
    "decode_traces",
    "parse_json",
    "parse_protobuf",
]

PROTOBUF_TYPES = ("application/x-protobuf", "application/protobuf")
JSON_TYPES = ("application/json",)
MAX_DEPTH = 32  # nesting of array and kvlist attribute values
_STATUS_NAMES = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}
_INT64_TEXT = re.compile(r"-?[0-9]{1,20}")
log = logging.getLogger("llmtrail.otlp")


def decode_traces(
    body: bytes,
    content_type: str,
    *,
    workspace: str = DEFAULT_WORKSPACE,
    max_json_depth: int = DEFAULT_JSON_DEPTH,
) -> DecodedTraces:
    """Decode a request body by its media type (protobuf or JSON)."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media in PROTOBUF_TYPES:
        return decode_protobuf(body, workspace=workspace, max_json_depth=max_json_depth)
    if media in JSON_TYPES:
        return decode_json(body, workspace=workspace, max_json_depth=max_json_depth)
    raise ValidationError(
        "content-type", f"must be application/x-protobuf or application/json, got {media!r}"
    )


def decode_protobuf(
    body: bytes, *, workspace: str = DEFAULT_WORKSPACE, max_json_depth: int = DEFAULT_JSON_DEPTH
) -> DecodedTraces:
    """Records and spans of a protobuf ``ExportTraceServiceRequest``."""
    return _decoded(parse_protobuf, body, workspace, max_json_depth)


def decode_json(
    body: bytes | str | Any,
    *,
    workspace: str = DEFAULT_WORKSPACE,
    max_json_depth: int = DEFAULT_JSON_DEPTH,
) -> DecodedTraces:
    """Records and spans of an OTLP/JSON ``ExportTraceServiceRequest`` (bytes, text, or the
    already parsed object)."""
    return _decoded(parse_json, body, workspace, max_json_depth)


def _decoded(
    parse: Callable[[Any], list[OtlpSpan]], body: Any, workspace: str, max_json_depth: int
) -> DecodedTraces:
    """``parse`` then `map_spans`; an error that is not a `ValidationError` is a bug here, and
    is one to the sender too: the body is refused, naming it, and the bug is logged."""
    try:
        return map_spans(parse(body), workspace=workspace, max_json_depth=max_json_depth)
    except (ValidationError, MemoryError):
        raise
    except Exception as exc:
        log.exception("could not decode an OTLP request")
        raise ValidationError(
            "body", f"could not be decoded ({type(exc).__name__}: {str(exc)[:200]})"
        ) from None


# -- protobuf ----------------------------------------------------------------------------------


def parse_protobuf(body: bytes) -> list[OtlpSpan]:
    """The spans of a protobuf-encoded request."""
    # protobuf and opentelemetry-proto (~9 MB) load with the first protobuf request
    from google.protobuf.message import DecodeError
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except (DecodeError, RecursionError) as exc:
        raise ValidationError(
            "body", f"is not a protobuf ExportTraceServiceRequest ({exc})"
        ) from None
    out: list[OtlpSpan] = []
    for i, rs in enumerate(request.resource_spans):
        resource = _pb_attributes(rs.resource.attributes, f"resourceSpans[{i}].resource")
        for j, ss in enumerate(rs.scope_spans):
            for k, span in enumerate(ss.spans):
                where = f"resourceSpans[{i}].scopeSpans[{j}].spans[{k}]"
                out.append(
                    OtlpSpan(
                        trace_id=_pb_id(span.trace_id, 16, f"{where}.traceId"),
                        span_id=_pb_id(span.span_id, 8, f"{where}.spanId"),
                        parent_span_id=(
                            _pb_id(span.parent_span_id, 8, f"{where}.parentSpanId")
                            if span.parent_span_id
                            else None
                        ),
                        name=span.name,
                        start_unix_nano=span.start_time_unix_nano,
                        end_unix_nano=span.end_time_unix_nano,
                        attributes=_pb_attributes(span.attributes, where),
                        events=tuple(
                            OtlpEvent(
                                e.name,
                                e.time_unix_nano,
                                _pb_attributes(e.attributes, f"{where}.events[{n}]"),
                            )
                            for n, e in enumerate(span.events)
                        ),
                        status_code=_status_code(int(span.status.code), f"{where}.status.code"),
                        status_message=span.status.message,
                        resource=resource,
                        scope=ss.scope.name,
                        where=where,
                    )
                )
    return out


def _pb_id(raw: bytes, size: int, field: str) -> str:
    if len(raw) != size or not any(raw):
        raise ValidationError(field, f"must be {size} bytes, not all zero; got {len(raw)} bytes")
    return raw.hex()


def _pb_attributes(attributes: Any, at: str) -> dict[str, Any]:
    try:
        return {kv.key: _pb_value(kv.value, 0) for kv in attributes}
    except _TooDeep:
        key = next(kv.key for kv in attributes if _too_deep(kv.value))
        raise ValidationError(
            f"{at}.attributes.{key}", f"nests deeper than {MAX_DEPTH} levels"
        ) from None


class _TooDeep(Exception):
    """An AnyValue nests deeper than `MAX_DEPTH` (named by `_pb_attributes`)."""


def _too_deep(value: AnyValue) -> bool:
    try:
        _pb_value(value, 0)
    except _TooDeep:
        return True
    return False


def _pb_value(value: AnyValue, depth: int) -> Any:
    """An AnyValue as a plain value, nested at most `MAX_DEPTH` levels as in JSON."""
    if depth > MAX_DEPTH:
        raise _TooDeep
    which = value.WhichOneof("value")
    if which == "string_value":
        return value.string_value
    if which == "bool_value":
        return value.bool_value
    if which == "int_value":
        return value.int_value
    if which == "double_value":
        return value.double_value
    if which == "array_value":
        return [_pb_value(v, depth + 1) for v in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _pb_value(kv.value, depth + 1) for kv in value.kvlist_value.values}
    if which == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return None


# -- JSON --------------------------------------------------------------------------------------


def parse_json(body: bytes | str | Any) -> list[OtlpSpan]:
    """The spans of an OTLP/JSON request: lowerCamelCase keys, hex ids, AnyValue objects,
    64-bit integers as numbers or decimal strings; unknown keys are ignored."""
    if isinstance(body, bytes | bytearray | memoryview | str):
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise ValidationError("body", f"is not JSON ({exc})") from None
    else:
        doc = body
    _object(doc, "body")
    out: list[OtlpSpan] = []
    for i, rs in enumerate(_array(doc, "resourceSpans", "")):
        at = f"resourceSpans[{i}]"
        _object(rs, at)
        resource = _object(rs.get("resource") or {}, f"{at}.resource")
        resource_attrs = _attributes(resource, f"{at}.resource")
        for j, ss in enumerate(_array(rs, "scopeSpans", at)):
            at_scope = f"{at}.scopeSpans[{j}]"
            _object(ss, at_scope)
            scope = _object(ss.get("scope") or {}, f"{at_scope}.scope")
            scope_name = _string(scope, "name", f"{at_scope}.scope")
            for k, span in enumerate(_array(ss, "spans", at_scope)):
                where = f"{at_scope}.spans[{k}]"
                out.append(_json_span(_object(span, where), where, resource_attrs, scope_name))
    return out


def _json_span(
    span: Mapping[str, Any], where: str, resource: dict[str, Any], scope: str
) -> OtlpSpan:
    parent = span.get("parentSpanId")
    status = _object(span.get("status") or {}, f"{where}.status")
    code = status.get("code", 0)
    if isinstance(code, str) and code in _STATUS_NAMES:
        code = _STATUS_NAMES[code]
    if type(code) is not int:
        raise ValidationError(f"{where}.status.code", "must be 0 (unset), 1 (ok) or 2 (error)")
    events = []
    for n, event in enumerate(_array(span, "events", where)):
        at = f"{where}.events[{n}]"
        _object(event, at)
        events.append(
            OtlpEvent(
                _string(event, "name", at),
                _uint64(event.get("timeUnixNano", 0), f"{at}.timeUnixNano"),
                _attributes(event, at),
            )
        )
    return OtlpSpan(
        trace_id=_hex_id(span.get("traceId"), 16, f"{where}.traceId"),
        span_id=_hex_id(span.get("spanId"), 8, f"{where}.spanId"),
        parent_span_id=_hex_id(parent, 8, f"{where}.parentSpanId") if parent else None,
        name=_string(span, "name", where),
        start_unix_nano=_uint64(span.get("startTimeUnixNano", 0), f"{where}.startTimeUnixNano"),
        end_unix_nano=_uint64(span.get("endTimeUnixNano", 0), f"{where}.endTimeUnixNano"),
        attributes=_attributes(span, where),
        events=tuple(events),
        status_code=_status_code(code, f"{where}.status.code"),
        status_message=_string(status, "message", f"{where}.status"),
        resource=resource,
        scope=scope,
        where=where,
    )


def _object(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValidationError(field, "must be a JSON object")
    return value


def _array(doc: Mapping[str, Any], key: str, at: str) -> list[Any]:
    value = doc.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValidationError(f"{at}.{key}" if at else key, "must be a JSON array")
    return value


def _string(doc: Mapping[str, Any], key: str, at: str) -> str:
    value = doc.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValidationError(f"{at}.{key}", "must be a string")
    return value


def _hex_id(value: Any, size: int, field: str) -> str:
    text = value.lower() if isinstance(value, str) else None
    if text is None or len(text) != 2 * size or not _is_hex(text) or not text.strip("0"):
        shown = f"{len(value)} characters" if isinstance(value, str) else repr(value)[:40]
        raise ValidationError(
            field, f"must be {2 * size} hex digits ({size} bytes), not all zero; got {shown}"
        )
    return text


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdef" for c in text)


def _uint64(value: Any, field: str) -> int:
    number = _integer(value, field)
    if not 0 <= number < 2**64:
        raise ValidationError(field, "must be an unsigned 64-bit integer")
    return number


def _integer(value: Any, field: str) -> int:
    if type(value) is int:
        return value
    if isinstance(value, str) and _INT64_TEXT.fullmatch(value):  # ASCII digits only
        return int(value)
    raise ValidationError(field, "must be an integer (a JSON number or a decimal string)")


def _status_code(code: int, field: str) -> int:
    if code not in (0, 1, 2):
        raise ValidationError(field, f"must be 0 (unset), 1 (ok) or 2 (error), got {code}")
    return code


def _attributes(doc: Mapping[str, Any], at: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for n, kv in enumerate(_array(doc, "attributes", at)):
        field = f"{at}.attributes[{n}]"
        _object(kv, field)
        key = kv.get("key")
        if not isinstance(key, str):
            raise ValidationError(f"{field}.key", "must be a string")
        out[key] = _any_value(kv.get("value"), f"{at}.attributes.{key}", 0)
    return out


def _any_value(value: Any, field: str, depth: int) -> Any:
    """An AnyValue object as a plain value (an empty one is None)."""
    if value is None:
        return None
    if depth > MAX_DEPTH:
        raise ValidationError(field, f"nests deeper than {MAX_DEPTH} levels")
    _object(value, field)
    if "stringValue" in value:
        return _typed(value["stringValue"], str, field, "a string")
    if "boolValue" in value:
        return _typed(value["boolValue"], bool, field, "a boolean")
    if "intValue" in value:
        number = _integer(value["intValue"], field)
        if not -(2**63) <= number < 2**63:
            raise ValidationError(field, "intValue must fit in 64 bits")
        return number
    if "doubleValue" in value:
        return _double(value["doubleValue"], field)
    if "arrayValue" in value:
        array = _object(value["arrayValue"] or {}, field)
        return [
            _any_value(item, f"{field}[{n}]", depth + 1)
            for n, item in enumerate(_array(array, "values", field))
        ]
    if "kvlistValue" in value:
        kvlist = _object(value["kvlistValue"] or {}, field)
        out: dict[str, Any] = {}
        for n, kv in enumerate(_array(kvlist, "values", field)):
            _object(kv, f"{field}[{n}]")
            key = kv.get("key")
            if not isinstance(key, str):
                raise ValidationError(f"{field}[{n}].key", "must be a string")
            out[key] = _any_value(kv.get("value"), f"{field}.{key}", depth + 1)
        return out
    if "bytesValue" in value:
        return _typed(value["bytesValue"], str, field, "base64 text")
    return None


def _typed(value: Any, type_: type, field: str, word: str) -> Any:
    if type(value) is not type_:
        raise ValidationError(field, f"must be {word}")
    return value


def _double(value: Any, field: str) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if value in ("NaN", "Infinity", "-Infinity"):  # proto3 JSON's non-finite spellings
        return float(value)
    raise ValidationError(field, "doubleValue must be a number")
