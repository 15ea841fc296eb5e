"""What a report covers: a time range, a workspace and the time zone its days and months are in.

Every report reads the same slice of the ``records`` table, so the slice is described once
here, together with the SQL that selects it and buckets it by local day or month. The SQL
takes its values as named, bound parameters (``$workspace``, ``$start``, ``$end``, ``$tz``);
nothing the user typed is pasted into it. DuckDB converts the stored UTC ``timestamp`` to
wall-clock time in ``tz`` with ``timezone(tz, timestamp)``, so a day in ``Europe/Paris``
starts at the Paris midnight, daylight saving included.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import duckdb

from llmtrail.analytics.time_zones import time_zone
from llmtrail.errors import ValidationError
from llmtrail.record import DEFAULT_WORKSPACE

# The longest run of days a daily series is padded with empty days (ten years).
MAX_FILLED_DAYS = 3660

SCOPE_FILTER = 'workspace = $workspace AND "timestamp" >= $start AND "timestamp" < $end'
LOCAL_DAY = "CAST(date_trunc('day', timezone($tz, \"timestamp\")) AS DATE)"
LOCAL_MONTH = "strftime(timezone($tz, \"timestamp\"), '%Y-%m')"


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
        """The bound parameters `SCOPE_FILTER`, `LOCAL_DAY` and `LOCAL_MONTH` use."""
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


def fetch_rows(
    cursor: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any]
) -> list[dict[str, Any]]:
    """Rows of ``sql`` as dicts, run with those of the named ``params`` it uses."""
    used = {k: v for k, v in params.items() if f"${k}" in sql}
    result = cursor.execute(sql, used)
    names = [d[0] for d in result.description or ()]
    return [dict(zip(names, row, strict=True)) for row in result.fetchall()]
