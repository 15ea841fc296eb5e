"""What one model call used and how it ended, as every wire-format decoder reports it.

The OpenAI, Anthropic and Bedrock decoders return this one small value, and every route turns
it into the record the same way (`llmtrail.capture.gateway.exchange.usage_outcome`), so the
same upstream answer gives the same record whichever route carried it. A count is ``None``
when the upstream did not say: nothing here guesses, so the caller can estimate the count
offline and flag the record as estimated. The coercers below are how every decoder reads a
number or a label out of untrusted JSON; they return ``None`` instead of raising, because
logging must never break a model call.

The one rule for a count (`token_count`): a non-negative integer no larger than a record
holds (`INT_MAX`), given as a JSON integer, an integral float (``12.0``) or a string of ASCII
digits (``"12"``, surrounding whitespace ignored). Anything else — ``"12.5"``, ``-1``,
``true``, ``2**63``, ``null``, ``"abc"`` — is unknown: an input or output count is then made
offline (the record flagged as estimated), a cache count stays unknown. An id or a stop reason
(`label`) is a non-empty string; a number there is unknown too.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import orjson

from llmtrail.record import INT_MAX, STRING_LIMITS

_MAX_COUNT = INT_MAX  # what a record holds: a larger count is not believed (counted offline)
_LABEL_LIMIT = 256  # what a record's responseId and error.type hold
STOP_REASON_MAX = STRING_LIMITS[("stopReason",)]  # what a record's stopReason holds


@dataclass(slots=True)  # not frozen: a frozen dataclass takes twice as long to make
class Usage:
    """Token counts, stop reason, output text and ids of one call; ``None`` means unknown.
    Never changed once made.

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
        for name in _USAGE_FIELDS:
            mine = getattr(self, name)
            values[name] = getattr(other, name) if mine is None or mine == "" else mine
        return Usage(**values)


_USAGE_FIELDS = tuple(f.name for f in fields(Usage))


def token_count(value: Any) -> int | None:
    """A count from JSON or a header: a non-negative integer (or integral float, or a string
    of ASCII digits) no larger than a record holds (`INT_MAX`), else None. The one rule every
    wire format reads its counts by; see the module's docstring."""
    if type(value) is int:  # the commonest, and exactly what the rest says of it
        return value if 0 <= value <= _MAX_COUNT else None
    if value is None or isinstance(value, bool):
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
