"""A report as data: summary figures, named tables and the charts drawn from them.

The three reports (performance, cost, chargeback) differ only in the SQL that fills them;
once built, each is the same shape, so every renderer (JSON, CSV, HTML, PDF, PNG) is written
once against this module and never knows which report it draws. A value's `Kind` says how it
is written: money is a `Decimal` everywhere and becomes text only at the edge (`values`).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from llmtrail.reports.scope import ReportScope


class Kind(enum.Enum):
    """How a value is typed and written."""

    TEXT = "text"  # str, None when the record had no value
    INT = "int"  # a count
    FLOAT = "float"  # a measurement, e.g. milliseconds
    RATIO = "ratio"  # 0..1, shown as a percentage
    MONEY = "money"  # Decimal US dollars, exact
    DATE = "date"  # a local day (datetime.date)
    MONTH = "month"  # a local month, "YYYY-MM"


@dataclass(frozen=True)
class Column:
    """One column of a table: ``key`` names it in JSON and CSV, ``label`` for people."""

    key: str
    label: str
    kind: Kind


@dataclass(frozen=True)
class Figure:
    """One headline number of a report."""

    key: str
    label: str
    kind: Kind
    value: Any


@dataclass(frozen=True)
class Table:
    """Rows of values, each a mapping from column key to value."""

    key: str
    title: str
    columns: tuple[Column, ...]
    rows: tuple[Mapping[str, Any], ...]

    def column(self, key: str) -> Column:
        for column in self.columns:
            if column.key == key:
                return column
        raise KeyError(key)


class ChartKind(enum.Enum):
    LINE = "line"  # x is a date or month
    BAR = "bar"  # vertical bars, one group per y column
    BARH = "barh"  # horizontal bars (long category names)
    STACKED = "stacked"  # vertical bars stacked over the y columns, or over `series` values


@dataclass(frozen=True)
class Chart:
    """A chart of table ``table``: ``x`` against each column in ``y``. With ``series``, the
    table is pivoted: one trace per distinct value of that column, of the single ``y``."""

    key: str
    title: str
    kind: ChartKind
    table: str
    x: str
    y: tuple[str, ...]
    y_label: str
    series: str | None = None


@dataclass(frozen=True)
class Report:
    """A built report. ``csv_table`` is the key of the table CSV output holds by default."""

    name: str  # performance | cost | chargeback
    title: str
    scope: ReportScope
    generated_at: datetime
    figures: tuple[Figure, ...]
    tables: tuple[Table, ...]
    charts: tuple[Chart, ...]
    csv_table: str
    parameters: Mapping[str, str] = field(default_factory=dict)

    def table(self, key: str) -> Table:
        """The table called ``key``; raises `KeyError` naming the tables there are."""
        for table in self.tables:
            if table.key == key:
                return table
        raise KeyError(f"{key!r}: this report has {', '.join(t.key for t in self.tables)}")

    def figure(self, key: str) -> Any:
        """The value of headline figure ``key``."""
        for fig in self.figures:
            if fig.key == key:
                return fig.value
        raise KeyError(key)


def chart_series(table: Table, chart: Chart) -> list[tuple[str, list[Any], list[Any]]]:
    """The traces of ``chart`` as (name, x values, y values), shared by every chart renderer.
    Pivoted charts get one trace per ``series`` value, with a zero where a value is absent."""
    if chart.series is None:
        xs = [row[chart.x] for row in table.rows]
        return [(table.column(y).label, xs, [row[y] for row in table.rows]) for y in chart.y]
    xs = list(dict.fromkeys(row[chart.x] for row in table.rows))
    names = list(dict.fromkeys(row[chart.series] for row in table.rows))
    values: dict[tuple[Any, Any], Any] = {}
    for row in table.rows:
        key = (row[chart.series], row[chart.x])
        values[key] = values.get(key, 0) + (row[chart.y[0]] or 0)
    return [(_series_name(name), xs, [values.get((name, x), 0) for x in xs]) for name in names]


def _series_name(value: Any) -> str:
    return "(none)" if value is None else str(value)


def figures_of(items: Sequence[tuple[str, str, Kind, Any]]) -> tuple[Figure, ...]:
    """Figures from (key, label, kind, value) tuples."""
    return tuple(Figure(k, label, kind, value) for k, label, kind, value in items)
