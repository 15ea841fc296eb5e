"""Cursor encoding and record ordering shared by every RecordStore."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

from llmtrail.errors import ValidationError

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def epoch_us(value: datetime) -> int:
    """Exact epoch microseconds of an aware datetime (no float rounding)."""
    delta = value - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def encode_cursor(micros: int, record_id: str) -> str:
    """A cursor after the record with this sort time (epoch microseconds) and recordId."""
    raw = f"{micros}|{record_id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str]:
    """(sort time in epoch microseconds, recordId) of the last record of the previous page."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        micros, record_id = raw.split("|", 1)
        return int(micros), record_id
    except (ValueError, UnicodeDecodeError):
        raise ValidationError("cursor", "is not a cursor this server issued") from None
