"""Time parameters, read one way by every API, the web pages and the CLI.

An *instant* is

- an RFC 3339 / ISO 8601 timestamp (``2026-11-23T10:30:15.123Z``, an offset, or no zone:
  UTC), to the microsecond, in years 2 to 9998 (`llmtrail.record.parse_timestamp`);
- a ``YYYY-MM-DD`` date: its midnight in ``tz`` (UTC unless the caller passes a zone);
- epoch seconds, a JSON number, where the caller takes them (``epoch=True``: the query and
  metrics bodies, as CloudWatch's APIs do);
- a duration before or after ``now`` (``relative="before"``: ``since=1h`` of the audit log
  and the CLI; ``"after"``: a key's ``expires=90d``).

A *duration* is ``90s``, ``15m``, ``1h``, ``7d`` or ``2w`` (at most 12 ASCII digits; ``²h``
passes ``str.isdigit``), or an ISO 8601 duration such as ``PT15M``, ``P7D`` or ``P1DT12H``.

A *range* (`parse_range`) is ``[start, end)``: ``end`` defaults to ``now``, ``start`` to
``since`` before the end or else ``default`` before it; the end must follow the start, and
``max_span`` / ``longest_since`` bound it. `parse_bounds` is the same with both ends optional
(a listing's filters). Every bad value is a `ValidationError` naming the caller's own field
(``start``, ``startTime``, ``StartTime``, ``until``…) and, when a limit is broken, the limit;
each API turns it into its own error shape. Nothing here reads the clock: ``now`` is given.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Literal

from llmtrail.errors import ValidationError
from llmtrail.record import parse_timestamp

Relative = Literal["before", "after"]

MAX_TEXT = 64  # longer than any timestamp: refused before it is parsed or echoed
_SHORT = re.compile(r"([0-9]{1,12})([smhdw])")  # ASCII digits: "²h" passes str.isdigit
_ISO = re.compile(
    r"P(?:([0-9]{1,9})W)?(?:([0-9]{1,9})D)?(?:T(?:([0-9]{1,9})H)?(?:([0-9]{1,9})M)?(?:([0-9]{1,9})S)?)?"
)
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_ISO_UNITS = (604800, 86400, 3600, 60, 1)
_LONGEST = timedelta(days=999_999_999)  # timedelta's own limit


@dataclass(frozen=True)
class TimeRange:
    """``[start, end)``, aware datetimes."""

    start: datetime
    end: datetime

    @property
    def span(self) -> timedelta:
        return self.end - self.start


def parse_duration(
    value: object,
    field: str,
    *,
    shortest: timedelta | None = None,
    longest: timedelta | None = None,
) -> timedelta:
    """``value`` as a duration (``15m``, ``1h``, ``7d``, ``PT15M``), within ``[shortest,
    longest]`` when given; a `ValidationError` on ``field`` naming the bounds otherwise."""
    seconds = _seconds(value.strip()) if isinstance(value, str) else None
    if seconds is None:
        raise ValidationError(
            field, f"must be a duration such as 15m, 1h, 7d or PT15M, got {_shown(value)}"
        )
    if seconds > _LONGEST.total_seconds():
        raise ValidationError(field, f"is longer than the limit of {describe(_LONGEST)}")
    span = timedelta(seconds=seconds)
    if (shortest is not None and span < shortest) or (longest is not None and span > longest):
        low, high = describe(shortest or timedelta(0)), describe(longest or _LONGEST)
        raise ValidationError(field, f"must be from {low} to {high}, got {_shown(value)}")
    return span


def parse_instant(
    value: object,
    field: str,
    *,
    now: datetime | None = None,
    tz: tzinfo = UTC,
    epoch: bool = False,
    relative: Relative | None = None,
) -> datetime:
    """``value`` as an aware UTC-comparable datetime: RFC 3339, a date (midnight in ``tz``),
    epoch seconds when ``epoch``, a duration before/after ``now`` when ``relative``."""
    if epoch and isinstance(value, int | float) and not isinstance(value, bool):
        return _from_epoch(value, field)
    if not isinstance(value, str):
        raise ValidationError(field, f"must be {_forms(epoch, relative)}, got {_shown(value)}")
    text = value.strip()
    if len(text) > MAX_TEXT:
        raise ValidationError(field, f"is longer than the limit of {MAX_TEXT} characters")
    seconds = _seconds(text) if relative is not None else None
    if seconds is not None:
        if now is None:
            raise TypeError("a relative instant needs now")
        return _shifted(now, seconds if relative == "after" else -seconds, field)
    if _DATE.fullmatch(text):
        try:
            day = date.fromisoformat(text)
        except ValueError:
            pass
        else:
            if 1 < day.year < 9999:
                return datetime(day.year, day.month, day.day, tzinfo=tz)
    try:
        return parse_timestamp(text, field)
    except ValidationError:
        raise ValidationError(
            field, f"must be {_forms(epoch, relative)}, got {_shown(value)}"
        ) from None


def optional_instant(
    value: object,
    field: str,
    *,
    now: datetime | None = None,
    tz: tzinfo = UTC,
    epoch: bool = False,
    relative: Relative | None = None,
) -> datetime | None:
    """`parse_instant`, or None when ``value`` is absent (None or empty)."""
    if value is None or value == "":
        return None
    return parse_instant(value, field, now=now, tz=tz, epoch=epoch, relative=relative)


def parse_range(
    start: object,
    end: object,
    *,
    now: datetime,
    default: timedelta,
    since: object = None,
    names: tuple[str, str, str] = ("start", "end", "since"),
    tz: tzinfo = UTC,
    epoch: bool = False,
    relative: Relative | None = None,
    longest_since: timedelta | None = None,
    max_span: timedelta | None = None,
    end_inclusive: bool = False,
) -> TimeRange:
    """The range ``[start, end)`` the parameters name (absent: None or empty).

    ``end`` defaults to ``now``; ``start`` to ``since`` (a duration, 1 s to ``longest_since``)
    before the end, else to ``default`` before it; ``start`` and ``since`` together are
    refused. ``names`` are the caller's fields for start, end and since, used in every error.
    ``end_inclusive``: the end given is the last instant in the range (one microsecond is
    added). ``max_span`` bounds the range, ``tz`` places dates, ``epoch`` and ``relative``
    are `parse_instant`'s."""
    start_name, end_name, since_name = names
    read = functools.partial(optional_instant, now=now, tz=tz, epoch=epoch, relative=relative)
    begin, until = read(start, start_name), read(end, end_name)
    if until is not None and end_inclusive:
        until += timedelta(microseconds=1)
    until = now if until is None else until
    if since is not None and since != "":
        if begin is not None:
            raise ValidationError(since_name, f"cannot be combined with {start_name}: give one")
        span = parse_duration(
            since, since_name, shortest=timedelta(seconds=1), longest=longest_since
        )
        begin = _shifted(until, -span.total_seconds(), since_name)
    elif begin is None:
        begin = _shifted(until, -default.total_seconds(), start_name)
    _check(begin, until, start_name, end_name, max_span)
    return TimeRange(begin, until)


def parse_bounds(
    start: object,
    end: object,
    *,
    names: tuple[str, str] = ("start", "end"),
    now: datetime | None = None,
    tz: tzinfo = UTC,
    epoch: bool = False,
    relative: Relative | None = None,
) -> tuple[datetime | None, datetime | None]:
    """``start`` and ``end``, each optional (absent: None), for a listing's time filters; when
    both are given the end must follow the start."""
    read = functools.partial(optional_instant, now=now, tz=tz, epoch=epoch, relative=relative)
    begin, until = read(start, names[0]), read(end, names[1])
    if begin is not None and until is not None:
        _check(begin, until, names[0], names[1], None)
    return begin, until


def describe(span: timedelta) -> str:
    """``span`` in its largest whole unit: ``455d``, ``3h``, ``90s``."""
    seconds = int(span.total_seconds())
    for unit in ("d", "h", "m"):
        if seconds and seconds % _UNITS[unit] == 0:
            return f"{seconds // _UNITS[unit]}{unit}"
    return f"{seconds}s"


def _check(
    start: datetime, end: datetime, start_name: str, end_name: str, max_span: timedelta | None
) -> None:
    if not start < end:
        raise ValidationError(
            end_name, f"must be after {start_name} ({_iso(start)}), got {_iso(end)}"
        )
    if max_span is not None and end - start > max_span:
        raise ValidationError(
            start_name,
            f"is more than {describe(max_span)} before {end_name}; the longest range is "
            f"{describe(max_span)}",
        )


def _shifted(moment: datetime, seconds: float, field: str) -> datetime:
    """``moment`` moved by ``seconds``, within years 2 to 9998."""
    try:
        shifted = moment + timedelta(seconds=seconds)
    except OverflowError:
        shifted = (datetime.min if seconds < 0 else datetime.max).replace(tzinfo=UTC)
    if shifted.year <= 1:
        raise ValidationError(field, "reaches too far back: before year 2")
    if shifted.year >= 9999:
        raise ValidationError(field, "reaches too far ahead: past year 9998")
    return shifted


def _seconds(text: str) -> int | None:
    short = _SHORT.fullmatch(text)
    if short is not None:
        return int(short[1]) * _UNITS[short[2]]
    iso = _ISO.fullmatch(text)
    if iso is None or not any(iso.groups()) or text.endswith("T"):
        return None
    return sum(int(part or 0) * unit for part, unit in zip(iso.groups(), _ISO_UNITS, strict=True))


def _from_epoch(value: float, field: str) -> datetime:
    try:
        moment = datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):  # NaN, or beyond what a datetime holds
        moment = datetime.min.replace(tzinfo=UTC)
    if not 1 < moment.year < 9999:
        raise ValidationError(field, f"epoch seconds must fall in years 2 to 9998, got {value!r}")
    return moment


def _forms(epoch: bool, relative: Relative | None) -> str:
    forms = ["an RFC 3339 timestamp such as 2026-11-23T10:30:15Z", "a YYYY-MM-DD date"]
    if epoch:
        forms.append("epoch seconds")
    if relative is not None:
        forms.append(f"a duration {relative} now such as 15m or 7d")
    return ", ".join(forms[:-1]) + " or " + forms[-1] + " (years 2 to 9998)"


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:40] + "..."


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
