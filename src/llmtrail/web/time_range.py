"""The time range every page shows, read from and written back to the page's URL.

A range is relative (``range=1h``: the last hour, up to the moment the page is drawn) or
absolute (``start`` and ``end``, RFC 3339 or the ``YYYY-MM-DDTHH:MM`` a ``datetime-local``
input sends, read as UTC). The URL is the page's whole state, so a link to a page keeps its
range (`TimeRange.query`), and a bad value is a `ValidationError` naming the parameter.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from llmtrail.errors import ValidationError
from llmtrail.timerange import parse_range

RELATIVE: dict[str, timedelta] = {
    "15m": timedelta(minutes=15),
    "1h": timedelta(hours=1),
    "3h": timedelta(hours=3),
    "12h": timedelta(hours=12),
    "1d": timedelta(days=1),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
DEFAULT = "1h"
MAX_SPAN = timedelta(days=3660)


@dataclass(frozen=True)
class TimeRange:
    """``[start, end)`` in UTC; ``relative`` is the ``range`` value it came from, if any."""

    start: datetime
    end: datetime
    relative: str | None = None

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()

    @property
    def label(self) -> str:
        if self.relative is not None:
            return f"last {self.relative}"
        return f"{_minute(self.start)} → {_minute(self.end)} UTC"

    def params(self) -> dict[str, str]:
        """The URL parameters that give this range again."""
        if self.relative is not None:
            return {"range": self.relative}
        return {"start": _iso(self.start), "end": _iso(self.end)}

    def query(self, **extra: str | list[str] | None) -> str:
        """``range=…`` (or ``start=…&end=…``) and ``extra`` (None values left out, lists
        as repeated parameters)."""
        pairs = {**self.params(), **{k: v for k, v in extra.items() if v is not None}}
        return urlencode(pairs, doseq=True)

    def relative_query(self, name: str, **extra: str | list[str] | None) -> str:
        """`query` of the range ``last {name}`` instead of this one."""
        return TimeRange(self.start, self.end, name).query(**extra)

    def input_value(self, which: str) -> str:
        """``start``/``end`` as a ``datetime-local`` input shows it (UTC)."""
        return _minute(self.start if which == "start" else self.end).replace(" ", "T")


def time_range(params: Mapping[str, str], now: datetime | None = None) -> TimeRange:
    """The range a page's query parameters name; the last hour when they name none."""
    now = now or datetime.now(UTC)
    start_text, end_text = params.get("start") or "", params.get("end") or ""
    if start_text or end_text:
        if not (start_text and end_text):
            missing = "end" if start_text else "start"
            raise ValidationError(missing, "is required with an absolute range (start and end)")
        found = parse_range(start_text, end_text, now=now, default=MAX_SPAN, max_span=MAX_SPAN)
        return TimeRange(found.start, found.end)
    name = params.get("range") or DEFAULT
    if name not in RELATIVE:
        raise ValidationError("range", f"must be one of {', '.join(RELATIVE)}, got {name[:40]!r}")
    return TimeRange(now - RELATIVE[name], now, name)


def default_range(now: datetime | None = None) -> TimeRange:
    """What a page shows when its own range parameters are wrong: the last hour."""
    now = now or datetime.now(UTC)
    return TimeRange(now - RELATIVE[DEFAULT], now, DEFAULT)


def period_for(span_seconds: float, points: int = 120) -> int:
    """A chart's period: a multiple of 60 s giving at most about ``points`` points."""
    minutes = max(1, int(-(-span_seconds // (60 * points))))
    for nice in (1, 5, 10, 15, 30, 60, 180, 360, 720, 1440):
        if minutes <= nice:
            return nice * 60
    return 1440 * 60 * max(1, int(-(-minutes // 1440)))


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _minute(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
