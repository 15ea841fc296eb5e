"""An OpenTelemetry span as llmtrail reads it, whatever encoding carried it.

The wire decoders (`otlp`) produce these values; the convention mappings (`otlp_genai`,
`otlp_content`) read them. Ids are lowercase hex, attribute values plain Python values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson


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


def json_value(value: Any) -> Any:
    """A JSON string parsed (instrumentations send structured values as JSON text)."""
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    return value


def json_text(value: Any) -> Any:
    """An attribute that is always JSON text (the llmtrail SDK's ``llmtrail.input`` /
    ``llmtrail.output``: ``"done"``, ``42``, ``{…}``) parsed; text that is not JSON (a value
    the SDK cut at its size limit) stays as it is."""
    if isinstance(value, str):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    return value
