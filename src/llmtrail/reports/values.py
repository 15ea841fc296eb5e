"""How one value of a report is written: in JSON, in a CSV cell, and for people.

Money is a `Decimal` until here and is written with a fixed number of decimals — the store's
scale, 9, in JSON and CSV (exact: sums of stored costs lose nothing), `DISPLAY_MONEY_PLACES`
in HTML and PDF. Measurements are rounded only for display. A missing value is ``null`` in
JSON, an empty CSV cell and an em dash for people.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from llmtrail.reports.report import Kind

MONEY_PLACES = 9
DISPLAY_MONEY_PLACES = 4
FLOAT_PLACES = 3
RATIO_PLACES = 6
MISSING = "—"


def json_value(value: Any, kind: Kind) -> Any:
    """``value`` as a JSON value: money as a fixed-decimal string, dates as ISO text."""
    if value is None:
        return None
    if kind is Kind.MONEY:
        return money_text(value)
    if kind is Kind.INT:
        return int(value)
    if kind is Kind.FLOAT:
        return round(float(value), FLOAT_PLACES)
    if kind is Kind.RATIO:
        return round(float(value), RATIO_PLACES)
    if kind is Kind.DATE and isinstance(value, date):
        return value.isoformat()
    return str(value)


def csv_value(value: Any, kind: Kind) -> str:
    """``value`` as a CSV cell: as in JSON, with an empty cell for a missing value."""
    out = json_value(value, kind)
    return "" if out is None else str(out)


def display_value(value: Any, kind: Kind) -> str:
    """``value`` for people: thousands separators, percentages, dollars."""
    if value is None:
        return MISSING
    if kind is Kind.MONEY:
        return "$" + f"{Decimal(value):,.{DISPLAY_MONEY_PLACES}f}"
    if kind is Kind.INT:
        return f"{int(value):,}"
    if kind is Kind.FLOAT:
        return f"{float(value):,.1f}"
    if kind is Kind.RATIO:
        return f"{float(value):.2%}"
    if kind is Kind.DATE and isinstance(value, date):
        return value.isoformat()
    return str(value)


def money_text(value: Decimal | int) -> str:
    """A money amount with exactly `MONEY_PLACES` decimals (``"0.000000000"`` for zero)."""
    return f"{Decimal(value):.{MONEY_PLACES}f}"


def chart_number(value: Any) -> float | int | None:
    """A value as a chart draws it (money as a float: only the picture is approximate)."""
    if value is None:
        return None
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, int | float):
        return value
    return None
