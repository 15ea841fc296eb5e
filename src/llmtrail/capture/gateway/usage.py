"""What one model call used and how it ended, as every wire-format decoder reports it.

The Anthropic and Bedrock decoders (and any later one) return this one small value, so a
route fills the record the same way whatever the upstream spoke. A count is ``None`` when the
upstream did not say: nothing here guesses, so the caller can estimate the count offline and
flag the record as estimated. The coercers below are how every decoder reads a number or a
label out of untrusted JSON; they return ``None`` instead of raising, because logging must
never break a model call.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import orjson

from llmtrail.record import INT_MAX

_MAX_COUNT = INT_MAX  # what a record holds: a larger count is not believed (counted offline)
_LABEL_LIMIT = 256


@dataclass(frozen=True)
class Usage:
    """Token counts, stop reason, output text and ids of one call; ``None`` means unknown.

    ``input_tokens`` is what the provider reports as input: for Anthropic and Bedrock that
    excludes cache reads and writes, which have their own counts.
    """

    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    stop_reason: str | None = None
    text: str = ""
    response_id: str | None = None
    latency_ms: int | None = None  # the upstream's own measure (Converse metrics, headers)

    def filled_from(self, other: Usage) -> Usage:
        """This usage with each unknown field (``None``, or empty text) taken from ``other``."""
        values = {}
        for f in fields(self):
            mine = getattr(self, f.name)
            values[f.name] = getattr(other, f.name) if mine is None or mine == "" else mine
        return Usage(**values)


def token_count(value: Any) -> int | None:
    """A count from JSON or a header: a non-negative integer (or integral float, or a string
    of digits) no larger than a record holds (`INT_MAX`), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    elif isinstance(value, str):
        value = value.strip()
        if not value.isascii() or not value.isdigit() or len(value) > 19:
            return None
        value = int(value)
    if isinstance(value, int) and 0 <= value <= _MAX_COUNT:
        return value
    return None


def label(value: Any, limit: int = _LABEL_LIMIT) -> str | None:
    """A stop reason, id or error type: a non-empty string, cut to ``limit``; else None."""
    if isinstance(value, str) and value:
        return value[:limit]
    return None


def as_dict(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    """``value`` if it is a JSON array, else an empty one."""
    return value if isinstance(value, list) else []


def block_index(value: Any, limit: int = 4096) -> int | None:
    """A stream's content-block index: a small non-negative int, else None (the event is
    then dropped rather than letting a hostile index allocate without bound)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < limit:
        return None
    return value


def tool_input(parts: list[str], start: Any) -> tuple[Any, bool]:
    """A streamed tool call's input: the concatenated partial JSON parsed, or ``start`` (the
    input the block opened with) when no part came. Returns ``(input, ok)``; when the JSON is
    truncated or malformed the input is the raw concatenated string and ``ok`` is False, so
    nothing the model sent is lost and the caller can flag the record."""
    raw = "".join(parts)
    if not raw.strip():
        return (start if start is not None else {}), True
    try:
        return orjson.loads(raw), True
    except ValueError:  # orjson.JSONDecodeError, or text that is not valid UTF-8
        return raw, False
