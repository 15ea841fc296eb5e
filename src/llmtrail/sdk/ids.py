"""Trace and span ids, and the W3C ``traceparent`` header that carries them.

Ids come from an `IdGenerator` so that tests can inject a deterministic one
(`llmtrail.sdk.testing.SequentialIds`); the default draws from ``os.urandom``, which is safe
across threads and after ``fork``. Ids are kept as lowercase hex text, the form both
``traceparent`` and OTLP/JSON use, so nothing converts them on the way out.
"""

from __future__ import annotations

import os
import re
from typing import NamedTuple, Protocol

_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
INVALID_TRACE_ID = "0" * 32
INVALID_SPAN_ID = "0" * 16


class IdGenerator(Protocol):
    """Where new trace and span ids come from."""

    def trace_id(self) -> str:
        """A new trace id: 32 lowercase hex digits, not all zero."""
        ...

    def span_id(self) -> str:
        """A new span id: 16 lowercase hex digits, not all zero."""
        ...


class RandomIds:
    """Random ids from ``os.urandom`` (the default)."""

    def trace_id(self) -> str:
        """A random 128-bit trace id."""
        while True:
            value = os.urandom(16).hex()
            if value != INVALID_TRACE_ID:
                return value

    def span_id(self) -> str:
        """A random 64-bit span id."""
        while True:
            value = os.urandom(8).hex()
            if value != INVALID_SPAN_ID:
                return value


class TraceParent(NamedTuple):
    """The parts of a ``traceparent`` header that llmtrail uses."""

    trace_id: str
    span_id: str
    sampled: bool


def format_traceparent(trace_id: str, span_id: str, sampled: bool = True) -> str:
    """The W3C ``traceparent`` value (version 00) naming ``span_id`` as the parent."""
    return f"00-{trace_id}-{span_id}-{'01' if sampled else '00'}"


def parse_traceparent(value: str) -> TraceParent | None:
    """``value`` split into its ids, or None when it is not a valid ``traceparent``."""
    match = _TRACEPARENT.match(value.strip().lower())
    if match is None:
        return None
    version, trace_id, span_id, flags = match.groups()
    if version == "ff" or trace_id == INVALID_TRACE_ID or span_id == INVALID_SPAN_ID:
        return None
    return TraceParent(trace_id, span_id, bool(int(flags, 16) & 1))
