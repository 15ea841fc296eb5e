"""What a report covers: a time range, a workspace and the time zone its days and months are in.

Every report reads the same slice of the ``records`` table, so the slice is described once
here, together with the syntax trees that select it (`scoped`) and bucket it by local day or
month (`local_date`), for the engine a `Reader` runs on; every value is a literal of the
tree, nothing the user typed is pasted. The stored UTC ``timestamp`` is converted to
wall-clock time in ``tz`` by the engine, so a day in ``Europe/Paris`` starts at the Paris
midnight, daylight saving included.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlglot import exp

from llmtrail.analytics.time_zones import time_zone
from llmtrail.errors import ValidationError
from llmtrail.query.reads import Reader, column
from llmtrail.record import DEFAULT_WORKSPACE

# The longest run of days a daily series is padded with empty days (ten years).
MAX_FILLED_DAYS = 3660


def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name``; raises `ValidationError` on ``tz`` when there is none
    (or when the engine would not know it: `time_zone`)."""
    return time_zone(name, "tz")


@dataclass(frozen=True)
class ReportScope:
    """The records a report reads: ``start <= timestamp < end`` in ``workspace``, with days
    and months counted in time zone ``tz``. A naive ``start`` or ``end`` is wall-clock time
    in ``tz``; both are kept as aware datetimes."""

    start: datetime
    end: datetime
    workspace: str = DEFAULT_WORKSPACE
    tz: str = "UTC"

    def __post_init__(self) -> None:
        tzinfo = zone(self.tz)
        for name in ("start", "end"):
            value = getattr(self, name)
            if not isinstance(value, datetime):
                raise ValidationError(name, f"expected a datetime, got {type(value).__name__}")
            if value.tzinfo is None:
                object.__setattr__(self, name, value.replace(tzinfo=tzinfo))
        if not self.start < self.end:
            raise ValidationError(
                "end", f"must be after start ({self.start.isoformat()}), got {self.end.isoformat()}"
            )
        if not self.workspace:
            raise ValidationError("workspace", "must not be empty")

    @property
    def zoneinfo(self) -> ZoneInfo:
        return zone(self.tz)

    def params(self) -> dict[str, Any]:
        """The scope's values: workspace, start and end in UTC, and tz."""
        return {
            "workspace": self.workspace,
            "start": self.start.astimezone(UTC),
            "end": self.end.astimezone(UTC),
            "tz": self.tz,
        }

    def local_days(self) -> list[date]:
        """Every local day the range touches, in order (empty past `MAX_FILLED_DAYS`)."""
        first = self.start.astimezone(self.zoneinfo).date()
        last = (self.end - timedelta(microseconds=1)).astimezone(self.zoneinfo).date()
        count = (last - first).days + 1
        if count > MAX_FILLED_DAYS:
            return []
        return [first + timedelta(days=n) for n in range(count)]

    def describe(self) -> dict[str, str]:
        """The scope as JSON-ready strings: instants in UTC ISO 8601, the workspace and tz."""
        return {
            "start": _iso(self.start),
            "end": _iso(self.end),
            "workspace": self.workspace,
            "tz": self.tz,
        }

    def period_text(self) -> str:
        """The range for people, in wall-clock time of ``tz``."""
        fmt = "%Y-%m-%d %H:%M"
        start = self.start.astimezone(self.zoneinfo).strftime(fmt)
        end = self.end.astimezone(self.zoneinfo).strftime(fmt)
        return f"{start} to {end} ({self.tz})"


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def scoped(r: Reader, scope: ReportScope, *columns: exp.Expr) -> exp.Select:
    """``SELECT columns FROM records`` of ``scope`` (alias ``r``)."""
    where = r.in_range("r", scope.workspace, scope.start, scope.end)
    return exp.select(*columns).from_(r.table("records", "r")).where(where)


def local_date(r: Reader, scope: ReportScope, unit: str) -> exp.Expr:
    """The local ``day`` or first day of the ``month`` of each record, in ``scope.tz``."""
    return r.d.local_date(column("timestamp", "r"), scope.tz, unit)


def per_model(r: Reader, scope: ReportScope, measures: list[exp.Expr], largest: str) -> exp.Select:
    """``measures`` per model of ``scope`` (column ``model``), the ``largest`` first."""
    model = column("model_id", "r")
    return (
        scoped(r, scope, exp.alias_(model, "model"), *measures)
        .group_by(model.copy())
        .order_by(
            exp.Ordered(this=exp.column(largest), desc=True),
            exp.Ordered(this=model.copy(), nulls_first=False),
        )
    )


def per_day(r: Reader, scope: ReportScope, measures: list[exp.Expr]) -> exp.Select:
    """``measures`` per local day of ``scope`` (column ``day``), in date order."""
    day = local_date(r, scope, "day")
    return (
        scoped(r, scope, exp.alias_(day, "day"), *measures)
        .group_by(day.copy())
        .order_by(day.copy())
    )
