"""Spool frames: a span's frame reads back as the span it was written from, in the shape
written today and in the shape earlier versions wrote (`Span.to_dict`'s)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from llmtrail.pipeline.frames import PAYLOAD_VERSION, decode_payload, encode_span_payload
from llmtrail.record import InvocationRecord
from llmtrail.span import Span, SpanError


def every_field(microsecond: int = 0, **more: Any) -> dict[str, Any]:
    """A span's every field, none left to its default (``more`` adds or replaces)."""
    start = datetime(2026, 11, 23, 10, 30, 15, microsecond, tzinfo=UTC)
    return {
        "trace_id": "a" * 32,
        "span_id": "b" * 16,
        "name": "tool call",
        "start": start,
        "end": start + timedelta(seconds=2, microseconds=7),
        "kind": "tool",
        "parent_span_id": "c" * 16,
        "status": "ERROR",
        "error": SpanError("ValueError", "bad", "trace"),
        "input": {"q": [1, 2]},
        "output": "answer",
        "attributes": {"k": "v", "n": 3},
        "tags": ("x", "y"),
        "session_id": "s",
        "app": "app",
        "workspace": "w2",
        "source": "otlp",
        **more,
    }


def _span(microsecond: int, **more: Any) -> Span:
    return Span(**every_field(microsecond, **more))


@pytest.mark.parametrize("microsecond", [0, 123_000, 123_456, 999_999, 1])
def test_a_span_frame_reads_back_as_its_span(microsecond: int) -> None:
    span = _span(microsecond)
    back = decode_payload(encode_span_payload(span))
    assert isinstance(back, Span)
    assert back == span
    assert back.start.tzinfo is UTC and back.end.tzinfo is UTC


def test_a_span_frame_leaves_out_what_is_derived_or_not_read_back() -> None:
    record = InvocationRecord.from_dict(
        {"timestamp": "2026-11-23T10:30:15.123Z", "requestId": "r-1", "modelId": "m"}
    )
    span = _span(5, record=record)
    doc = orjson.loads(encode_span_payload(span))["s"]
    assert "durationMs" not in doc and "record" not in doc
    assert doc["start"] == "2026-11-23T10:30:15.000005Z"
    assert set(doc) | {"durationMs", "record"} == set(span.to_dict())
    assert decode_payload(encode_span_payload(span)) == dataclasses.replace(span, record=None)


def test_a_frame_written_by_an_earlier_version_still_reads() -> None:
    """Earlier versions wrote `Span.to_dict` (millisecond text, the duration included)."""
    span = _span(123_000)
    old = orjson.dumps({"v": PAYLOAD_VERSION, "k": "span", "s": span.to_dict()})
    assert decode_payload(old) == span
    assert decode_payload(old) == decode_payload(encode_span_payload(span))
