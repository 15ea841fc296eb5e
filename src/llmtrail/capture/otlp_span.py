"""An OpenTelemetry span as llmtrail reads it, whatever encoding carried it.

The wire decoders (`otlp`) produce these values; the convention mappings (`otlp_genai`,
`otlp_content`) read them. Ids are lowercase hex, attribute values plain Python values.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import orjson

from llmtrail.capture.gateway.asgi import json_depth

# JSON text inside attributes is parsed only this deep (the server's ``limits.max_json_depth``,
# set for one request by `json_depth_limit`); deeper text is kept as the string it is. A value
# sits a few levels inside a record or a span, and orjson writes at most 254 levels (a
# serialised record, a spool frame, a worker's pickled answer all need it whole), so the
# limit never exceeds `JSON_DEPTH_CEILING`.
DEFAULT_JSON_DEPTH = 64
JSON_DEPTH_CEILING = 128
_JSON_DEPTH: ContextVar[int] = ContextVar("otlp_json_depth", default=DEFAULT_JSON_DEPTH)


@dataclass(slots=True)
class OtlpEvent:
    """A span event: its name, time and attributes."""

    name: str
    time_unix_nano: int
    attributes: dict[str, Any]


@dataclass(slots=True)
class OtlpSpan:
    """One span as the OTLP request carried it, ids as lowercase hex, attribute values as
    plain Python values. ``where`` locates it in the request for error messages."""

    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    start_unix_nano: int
    end_unix_nano: int
    attributes: dict[str, Any]
    events: tuple[OtlpEvent, ...] = ()
    status_code: int = 0  # 0 unset, 1 ok, 2 error
    status_message: str = ""
    resource: dict[str, Any] = field(default_factory=dict)
    scope: str = ""
    where: str = "span"


def first_str(attrs: Mapping[str, Any], *keys: str) -> str | None:
    """The first of ``keys`` whose value is a non-empty string."""
    for key in keys:
        value = attrs.get(key)
        if isinstance(value, str) and value:
            return value
    return None


@contextmanager
def json_depth_limit(max_depth: int) -> Iterator[None]:
    """Parse attribute JSON at most ``max_depth`` levels deep (capped at
    `JSON_DEPTH_CEILING`) while the block runs."""
    token = _JSON_DEPTH.set(max(1, min(max_depth, JSON_DEPTH_CEILING)))
    try:
        yield
    finally:
        _JSON_DEPTH.reset(token)


def json_value(value: Any) -> Any:
    """A JSON string parsed (instrumentations send structured values as JSON text); text that
    is not JSON, or nests deeper than the limit, stays as it is."""
    if isinstance(value, str) and value[:1] in ("{", "["):
        return _parsed(value)
    return value


def json_text(value: Any) -> Any:
    """An attribute that is always JSON text (the llmtrail SDK's ``llmtrail.input`` /
    ``llmtrail.output``: ``"done"``, ``42``, ``{…}``) parsed; text that is not JSON (a value
    the SDK cut at its size limit) or nests deeper than the limit stays as it is."""
    if isinstance(value, str):
        return _parsed(value)
    return value


def _parsed(text: str) -> Any:
    try:
        parsed = orjson.loads(text)
    except orjson.JSONDecodeError:  # orjson's own limit (1024 levels) lands here too
        return text
    limit = _JSON_DEPTH.get()
    # nesting needs brackets: text with fewer of them than the limit cannot be too deep
    if text.count("{") + text.count("[") > limit and json_depth(parsed) > limit:
        return text
    return parsed
