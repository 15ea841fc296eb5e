"""Time periods for ``bin``, ``datefloor`` and ``dateceil``.

AWS documents the units ``millisecond ms msec``, ``second s sec``, ``minute m min``,
``hour h hr``, ``day d``, ``week w``, ``month mo mon``, ``quarter q qtr`` and ``year y yr``,
each multi-letter spelling also with a plural ``s``. Fixed-width periods become a number of
microseconds; months, quarters and years a number of calendar months, because their width
varies.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_US = {
    "ms": 1_000,
    "s": 1_000_000,
    "m": 60_000_000,
    "h": 3_600_000_000,
    "d": 86_400_000_000,
    "w": 7 * 86_400_000_000,
}
_MONTHS = {"mo": 1, "q": 3, "y": 12}
_SPELLINGS = {
    "ms": ("ms", "msec", "millisecond"),
    "s": ("s", "sec", "second"),
    "m": ("m", "min", "minute"),
    "h": ("h", "hr", "hour"),
    "d": ("d", "day"),
    "w": ("w", "week"),
    "mo": ("mo", "mon", "month"),
    "q": ("q", "qtr", "quarter"),
    "y": ("y", "yr", "year"),
}
UNITS: dict[str, str] = {}
for _unit, _names in _SPELLINGS.items():
    for _name in _names:
        UNITS[_name] = _unit
        if len(_name) > 1:
            UNITS[_name + "s"] = _unit

MAX_AMOUNT = 1_000_000


@dataclass(frozen=True)
class TimePeriod:
    """``amount`` of ``unit`` (a canonical unit: ms s m h d w mo q y)."""

    amount: int
    unit: str

    @property
    def micros(self) -> int | None:
        """The width in microseconds, or None for calendar periods (months and longer)."""
        return self.amount * _US[self.unit] if self.unit in _US else None

    @property
    def months(self) -> int | None:
        """The width in calendar months, or None for fixed-width periods."""
        return self.amount * _MONTHS[self.unit] if self.unit in _MONTHS else None


def parse_period(text: str) -> TimePeriod | None:
    """The period ``text`` spells (``5m``, ``2hrs``), or None if it is not one."""
    match = re.fullmatch(r"([0-9]+)([A-Za-z]+)", text)
    if match is None:
        return None
    unit = UNITS.get(match.group(2).lower())
    amount = int(match.group(1))
    if unit is None or not 0 < amount <= MAX_AMOUNT:
        return None
    return TimePeriod(amount, unit)
