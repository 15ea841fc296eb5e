"""Cost Explorer's ``TimePeriod`` and ``Granularity``: the range a request reads, its periods,
and the refusals AWS answers for a range it will not read.

Dates are UTC days (``2026-11-06``), End exclusive, as AWS takes them; ``HOURLY`` also takes
whole hours (``2026-12-06T09:00:00Z``). The refusals, in AWS's words:

- Start not before End: ValidationException ``Start date (and hour) should be before end
  date (and hour)``;
- End after the first day of next month: ValidationException ``end date past the beginning
  of next month``;
- a time of day with DAILY or MONTHLY: ValidationException ``Hourly timePeriod is not
  supported for this request``;
- HOURLY starting more than 14 days ago: ValidationException ``start date is too old for
  hourly, the max supported days for hourly granularity is 14 days.``;
- a range whose first day (hour, for HOURLY) the workspace's retention policy has already
  deleted (``recordsDays``): BillExpirationException ``The requested report expired. Update
  the date interval and try again.`` — llmtrail keeps what retention keeps, not AWS's 14 or 38
  months.

A period is the calendar day, month or hour (UTC), cut to the range: MONTHLY from the 15th
starts its first period on the 15th, as AWS does. A period is ``Estimated`` until it ends:
calls still arrive in it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from llmtrail.server.aws.operations import AwsError

__all__ = ["UNITS", "Window", "read_window"]

UNITS = {"HOURLY": "hour", "DAILY": "day", "MONTHLY": "month"}
HOURLY_DAYS = 14
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2}):(\d{2})Z)?")


def _invalid(message: str) -> AwsError:
    return AwsError("ValidationException", message)


def _instant(value: str, name: str) -> tuple[datetime, bool]:
    """The UTC moment ``value`` names and whether it named a time of day."""
    found = _DATE.fullmatch(value)
    try:
        if found is None:
            raise ValueError(value)
        year, month, day, hour, minute, second = (int(p) for p in found.groups(default="0"))
        moment = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
        return moment, found.group(4) is not None
    except ValueError:
        raise _invalid(
            f"TimePeriod.{name} {value!r} is not a date (YYYY-MM-DD) or, for HOURLY, an hour "
            "(YYYY-MM-DDThh:00:00Z)"
        ) from None


def _month_after(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def _next(moment: datetime, granularity: str) -> datetime:
    if granularity == "HOURLY":
        return moment + timedelta(hours=1)
    if granularity == "DAILY":
        return moment + timedelta(days=1)
    following = _month_after(moment.date())
    return datetime(following.year, following.month, following.day, tzinfo=UTC)


def _floor(moment: datetime, granularity: str) -> datetime:
    if granularity == "HOURLY":
        return moment.replace(minute=0, second=0, microsecond=0)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return day.replace(day=1) if granularity == "MONTHLY" else day


@dataclass(frozen=True)
class Window:
    """A checked range ``[start, end)`` (UTC) read at ``granularity``."""

    start: datetime
    end: datetime
    granularity: str

    @property
    def unit(self) -> str:
        """The SQL bucket of one period: ``hour``, ``day`` or ``month``."""
        return UNITS[self.granularity]

    def periods(self) -> list[tuple[datetime, datetime]]:
        """Every period of the range, in order, cut to it."""
        out: list[tuple[datetime, datetime]] = []
        at = self.start
        while at < self.end:
            following = min(_next(_floor(at, self.granularity), self.granularity), self.end)
            out.append((at, following))
            at = following
        return out

    def text(self, moment: datetime) -> str:
        """``moment`` as TimePeriod writes it: a date, or for HOURLY an hour."""
        if self.granularity == "HOURLY":
            return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
        return moment.date().isoformat()


def read_window(
    period: dict[str, str], granularity: str, now: datetime, kept_since: datetime | None
) -> Window:
    """The range of ``period`` at ``granularity``, checked as AWS checks it at ``now``;
    ``kept_since`` is the workspace's retention cutoff (None: it keeps everything)."""
    start, start_timed = _instant(period["Start"], "Start")
    end, end_timed = _instant(period["End"], "End")
    hourly = granularity == "HOURLY"
    for moment, timed in ((start, start_timed), (end, end_timed)):
        if timed and not hourly and moment.hour:
            raise _invalid("Hourly timePeriod is not supported for this request")
        if moment.minute or moment.second:
            raise _invalid("TimePeriod: an hour is written YYYY-MM-DDThh:00:00Z")
    if not start < end:
        raise _invalid("Start date (and hour) should be before end date (and hour)")
    today = now.astimezone(UTC).date()
    if end.date() > _month_after(today) or (end.date() == _month_after(today) and end.hour):
        raise _invalid("end date past the beginning of next month")
    if hourly and start < _floor(now, "DAILY") - timedelta(days=HOURLY_DAYS):
        raise _invalid(
            "start date is too old for hourly, the max supported days for hourly granularity "
            f"is {HOURLY_DAYS} days."
        )
    first = _next(_floor(start, "HOURLY" if hourly else "DAILY"), "HOURLY" if hourly else "DAILY")
    if kept_since is not None and first <= kept_since:
        raise AwsError(
            "BillExpirationException",
            "The requested report expired. Update the date interval and try again.",
        )
    return Window(start, end, granularity)
