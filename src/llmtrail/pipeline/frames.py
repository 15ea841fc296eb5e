"""What a spool frame holds: one finished record or one span, as versioned JSON.

A record frame is ``{"v": 1, "d": [derived keys], "r": record}`` (as since the first
version); a span frame, ``{"v": 1, "k": "span", "s": span}`` in the span's JSON shape
(`Span.frame_doc`: its times as orjson writes them, no duration; frames in `Span.to_dict`'s
shape, as earlier versions wrote them, read the same). Both are written after the logging
configuration and redaction applied, so the spool never holds what a workspace does not keep.
"""

from __future__ import annotations

from typing import Any

import orjson

from llmtrail.record import InvocationRecord
from llmtrail.span import Span

PAYLOAD_VERSION = 1


def encode_payload(record: InvocationRecord) -> bytes:
    return orjson.dumps({"v": PAYLOAD_VERSION, "d": record.derived, "r": record.data})


def encode_span_payload(span: Span) -> bytes:
    """Its times as orjson writes an aware datetime: RFC 3339 in UTC with ``Z``, microseconds
    unless they are 0 (``Span.from_dict`` reads either exactly)."""
    return orjson.dumps(
        {"v": PAYLOAD_VERSION, "k": "span", "s": span.frame_doc()}, option=orjson.OPT_UTC_Z
    )


def decode_payload(payload: bytes) -> InvocationRecord | Span:
    """The record or span of a frame; raises on a frame that is neither (`DECODE_ERRORS`)."""
    body: dict[str, Any] = orjson.loads(payload)
    if body.get("k") == "span":
        doc = body["s"]
        return Span.from_dict(doc, workspace=doc["workspace"], source=doc.get("source", "otlp"))
    return InvocationRecord(body["r"], tuple(body.get("d") or ()))
