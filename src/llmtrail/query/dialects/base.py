"""The builders both dialects share, and the helpers that make sqlglot nodes.

`SqlDialect` names every operation the compiler needs ("the JSON value at this path as
text", "an exact percentile", …); `duckdb` and `clickhouse` implement them. The helpers
build nodes whose rendering does not depend on the dialect (``CASE``, literals, calls
rendered with exactly the given name).
"""

from __future__ import annotations

from datetime import datetime

from sqlglot import exp


def call(name: str, *args: exp.Expr) -> exp.Expr:
    """A function call rendered with exactly this name."""
    return exp.Anonymous(this=name, expressions=list(args))


def string(text: str) -> exp.Expr:
    return exp.Literal.string(text)


def number(value: int | float | str) -> exp.Expr:
    return exp.Literal.number(value)


def case(*whens: tuple[exp.Expr, exp.Expr], default: exp.Expr | None = None) -> exp.Case:
    """``CASE WHEN c THEN v … [ELSE d] END``."""
    node = exp.Case()
    for condition, value in whens:
        node = node.when(condition, value)
    return node.else_(default) if default is not None else node


def is_null(value: exp.Expr) -> exp.Expr:
    return exp.Is(this=value, expression=exp.Null())


def not_null(value: exp.Expr) -> exp.Expr:
    return exp.Not(this=is_null(value))


class SqlDialect:
    """The builders both dialects share; subclasses supply what differs."""

    name = ""

    # -- values -----------------------------------------------------------------------------
    def json_text(self, doc: exp.Expr, path: tuple[str, ...]) -> exp.Expr:
        """The JSON value at ``path`` in JSON text ``doc``: a string unquoted, anything else
        as JSON text, ``NULL`` when missing or ``null``."""
        raise NotImplementedError

    def json_raw(self, doc: exp.Expr, path: tuple[str, ...]) -> exp.Expr:
        """The JSON text of the value at ``path`` (strings quoted), ``NULL`` when missing."""
        raise NotImplementedError

    def json_is_null(self, doc: exp.Expr, path: tuple[str, ...]) -> exp.Expr:
        """Whether ``path`` holds an explicit JSON ``null``."""
        raise NotImplementedError

    def json_is_array(self, raw: exp.Expr) -> exp.Expr:
        raise NotImplementedError

    def merge_json(self, left: exp.Expr, right: exp.Expr) -> exp.Expr:
        """JSON merge-patch of two object texts (``right`` wins)."""
        raise NotImplementedError

    def map_get(self, mapping: exp.Expr, key: str) -> exp.Expr:
        """The value under ``key`` in a string map, ``NULL`` when absent."""
        raise NotImplementedError

    def map_json(self, mapping: exp.Expr) -> exp.Expr:
        """A string map as a JSON object text, ``NULL`` when empty or absent."""
        raise NotImplementedError

    def to_json(self, value: exp.Expr) -> exp.Expr:
        """A scalar as JSON text (strings quoted and escaped); ``NULL`` stays ``NULL``."""
        raise NotImplementedError

    def concat_strict(self, *parts: exp.Expr) -> exp.Expr:
        """The parts concatenated, ``NULL`` if any of them is."""
        raise NotImplementedError

    def text_to_double(self, text: exp.Expr) -> exp.Expr:
        raise NotImplementedError

    def text_to_decimal(self, text: exp.Expr) -> exp.Expr:
        raise NotImplementedError

    def to_double(self, value: exp.Expr) -> exp.Expr:
        return exp.cast(value, exp.DataType.build("DOUBLE"))

    def to_decimal(self, value: exp.Expr) -> exp.Expr:
        return exp.cast(value, exp.DataType.build("DECIMAL(38, 9)"))

    def to_int(self, value: exp.Expr) -> exp.Expr:
        return exp.cast(value, exp.DataType.build("BIGINT"))

    def to_bool(self, value: exp.Expr) -> exp.Expr:
        return exp.cast(value, exp.DataType.build("BOOLEAN"))

    def to_text(self, value: exp.Expr) -> exp.Expr:
        """A number or boolean as text."""
        raise NotImplementedError

    def timestamp_text(self, ts: exp.Expr) -> exp.Expr:
        """A timestamp as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``."""
        raise NotImplementedError

    # -- time -------------------------------------------------------------------------------
    def timestamp_literal(self, value: datetime) -> exp.Expr:
        raise NotImplementedError

    def epoch_us(self, ts: exp.Expr) -> exp.Expr:
        raise NotImplementedError

    def from_epoch_us(self, micros: exp.Expr) -> exp.Expr:
        raise NotImplementedError

    def int_div(self, left: exp.Expr, right: exp.Expr) -> exp.Expr:
        """Integer division of integers (exact here: callers divide whole multiples)."""
        raise NotImplementedError

    def month_index(self, ts: exp.Expr) -> exp.Expr:
        """Calendar months since 1970-01."""
        raise NotImplementedError

    def from_month_index(self, months: exp.Expr) -> exp.Expr:
        """The first instant of the month ``months`` after 1970-01."""
        raise NotImplementedError

    def local_date(self, ts: exp.Expr, tz: str, unit: str) -> exp.Expr:
        """The calendar day (``unit="day"``) or the first day of the month (``"month"``)
        that ``ts`` falls in, in the IANA time zone ``tz``, as a DATE."""
        raise NotImplementedError

    def utc_bucket(self, ts: exp.Expr, unit: str) -> exp.Expr:
        """The start of the UTC ``hour``, ``day`` or ``month`` ``ts`` falls in, as a
        timestamp."""
        raise NotImplementedError

    # -- text -------------------------------------------------------------------------------
    def regex_match(self, text: exp.Expr, pattern: str) -> exp.Expr:
        raise NotImplementedError

    def regex_group(self, text: exp.Expr, pattern: str, group: int) -> exp.Expr:
        """Capture group ``group`` (1-based) of the first match, ``NULL`` without a match."""
        raise NotImplementedError

    def contains(self, text: exp.Expr, part: exp.Expr) -> exp.Expr:
        raise NotImplementedError

    def strlen(self, text: exp.Expr) -> exp.Expr:
        raise NotImplementedError

    def upper(self, text: exp.Expr) -> exp.Expr:
        raise NotImplementedError

    def lower(self, text: exp.Expr) -> exp.Expr:
        raise NotImplementedError

    def substr(self, text: exp.Expr, start: exp.Expr, length: exp.Expr | None) -> exp.Expr:
        """Code points from 1-based ``start``."""
        raise NotImplementedError

    def replace(self, text: exp.Expr, search: exp.Expr, replacement: exp.Expr) -> exp.Expr:
        raise NotImplementedError

    def trim(self, text: exp.Expr, chars: exp.Expr, side: str) -> exp.Expr:
        """Strip the characters of ``chars`` from ``side`` (BOTH, LEADING, TRAILING)."""
        return exp.Trim(this=text, expression=chars, position=side)

    def ln(self, value: exp.Expr) -> exp.Expr:
        raise NotImplementedError

    def text_prefix(self, text: exp.Expr, chars: int) -> exp.Expr:
        """The first ``chars`` code points of ``text``."""
        raise NotImplementedError

    def digest(self, text: exp.Expr) -> exp.Expr:
        """The MD5 digest of ``text`` as 32 lowercase hexadecimal digits."""
        raise NotImplementedError

    def join_nonnull(self, parts: list[exp.Expr], separator: str) -> exp.Expr:
        """The non-NULL ``parts`` joined with ``separator``."""
        raise NotImplementedError

    # -- aggregates -------------------------------------------------------------------------
    def aggregate(self, name: str, value: exp.Expr) -> exp.Expr:
        """``sum``, ``avg``, ``min`` or ``max``; ``NULL`` over no values."""
        raise NotImplementedError

    def count_distinct(self, value: exp.Expr) -> exp.Expr:
        raise NotImplementedError

    def any_value(self, value: exp.Expr) -> exp.Expr:
        """Any one value of the group (all are equal where the compiler uses it)."""
        raise NotImplementedError

    def percentile(self, value: exp.Expr, fraction: float) -> exp.Expr:
        raise NotImplementedError

    def distinct_values(self, value: exp.Expr) -> exp.Expr:
        """The group's distinct non-``NULL`` values as a list (in no particular order)."""
        raise NotImplementedError

    def stddev(self, value: exp.Expr) -> exp.Expr:
        raise NotImplementedError

    def arg_min(self, value: exp.Expr, key: exp.Expr) -> exp.Expr:
        """``value`` from the row with the smallest ``key`` among rows where it is present."""
        raise NotImplementedError

    def arg_max(self, value: exp.Expr, key: exp.Expr) -> exp.Expr:
        raise NotImplementedError

    # -- rows -------------------------------------------------------------------------------
    def map_keys(self, mapping: exp.Expr) -> exp.Expr:
        """One row per key of a string map (none for an empty map)."""
        raise NotImplementedError

    def unnest(self, raw: exp.Expr) -> exp.Expr:
        """One row per element of JSON array text ``raw`` (each element as JSON text), one
        row for any other JSON value, none for ``NULL``."""
        raise NotImplementedError
