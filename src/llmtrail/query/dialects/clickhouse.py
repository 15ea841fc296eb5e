"""ClickHouse's spelling of the compiler's operations.

JSON is read with ``JSONExtract(…, 'Nullable(String)')`` (list positions are 1-based);
map lookups and aggregates are made ``NULL`` where ClickHouse would answer ``''``, ``0`` or
``nan`` (``mapContains``, the ``-OrNull`` combinator); regexes start with ``(?-s)`` because
ClickHouse's ``match`` lets ``.`` match a newline; time is epoch microseconds
(``toUnixTimestamp64Micro``/``fromUnixTimestamp64Micro``).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from sqlglot import exp

from llmtrail.query.dialects.base import SqlDialect, call, case, is_null, number, string

_INDEX = re.compile(r"[0-9]{1,9}")  # a list index in a path (longer digit runs are keys)


class ClickHouse(SqlDialect):
    name = "clickhouse"

    def _keys(self, path: tuple[str, ...]) -> list[exp.Expr]:
        # ClickHouse addresses array elements by 1-based position
        return [number(int(p) + 1) if _INDEX.fullmatch(p) else string(p) for p in path]

    def json_text(self, doc: exp.Expr, path: tuple[str, ...]) -> exp.Expr:
        return call("JSONExtract", doc, *self._keys(path), string("Nullable(String)"))

    def json_raw(self, doc: exp.Expr, path: tuple[str, ...]) -> exp.Expr:
        raw = call("JSONExtractRaw", doc, *self._keys(path))
        return call("nullIf", raw, string(""))

    def json_is_null(self, doc: exp.Expr, path: tuple[str, ...]) -> exp.Expr:
        keys = self._keys(path)
        return exp.And(
            this=call("JSONHas", doc, *keys),
            expression=exp.EQ(this=call("JSONType", doc, *keys), expression=string("Null")),
        )

    def json_is_array(self, raw: exp.Expr) -> exp.Expr:
        return exp.EQ(this=call("JSONType", raw), expression=string("Array"))

    def merge_json(self, left: exp.Expr, right: exp.Expr) -> exp.Expr:
        return call("JSONMergePatch", left, right)

    def map_get(self, mapping: exp.Expr, key: str) -> exp.Expr:
        return call(
            "if",
            call("mapContains", mapping, string(key)),
            exp.Bracket(this=mapping, expressions=[string(key)]),
            exp.Null(),
        )

    def map_json(self, mapping: exp.Expr) -> exp.Expr:
        return case((call("notEmpty", mapping), call("toJSONString", mapping)))

    def to_json(self, value: exp.Expr) -> exp.Expr:
        return call("if", is_null(value), exp.Null(), call("toJSONString", value.copy()))

    def concat_strict(self, *parts: exp.Expr) -> exp.Expr:
        return call("concat", *parts)  # NULL when any part is

    def text_to_double(self, text: exp.Expr) -> exp.Expr:
        return call("toFloat64OrNull", call("trimBoth", text))

    def text_to_decimal(self, text: exp.Expr) -> exp.Expr:
        return call("toDecimal128OrNull", call("trimBoth", text), number(9))

    def to_text(self, value: exp.Expr) -> exp.Expr:
        return call("toString", value)

    def timestamp_text(self, ts: exp.Expr) -> exp.Expr:
        return call("formatDateTime", ts, string("%Y-%m-%dT%H:%i:%S.%fZ"))

    def timestamp_literal(self, value: datetime) -> exp.Expr:
        text = value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        return call("toDateTime64", string(text), number(6), string("UTC"))

    def local_date(self, ts: exp.Expr, tz: str, unit: str) -> exp.Expr:
        name = {"day": "toDate", "month": "toStartOfMonth"}[unit]
        return call(name, ts, string(tz))

    def utc_bucket(self, ts: exp.Expr, unit: str) -> exp.Expr:
        start = {"hour": "toStartOfHour", "day": "toStartOfDay", "month": "toStartOfMonth"}
        return call("toDateTime", call(start[unit], ts, string("UTC")), string("UTC"))

    def map_keys(self, mapping: exp.Expr) -> exp.Expr:
        return call("arrayJoin", call("mapKeys", mapping))

    def epoch_us(self, ts: exp.Expr) -> exp.Expr:
        return call("toUnixTimestamp64Micro", ts)

    def from_epoch_us(self, micros: exp.Expr) -> exp.Expr:
        return call("fromUnixTimestamp64Micro", micros, string("UTC"))

    def int_div(self, left: exp.Expr, right: exp.Expr) -> exp.Expr:
        return call("intDiv", left, right)

    def month_index(self, ts: exp.Expr) -> exp.Expr:
        years = exp.Sub(this=call("toYear", ts), expression=number(1970))
        months = exp.Sub(this=call("toMonth", ts), expression=number(1))
        return exp.Add(
            this=exp.Mul(this=exp.Paren(this=years), expression=number(12)), expression=months
        )

    def from_month_index(self, months: exp.Expr) -> exp.Expr:
        epoch = call("toDateTime64", string("1970-01-01 00:00:00.000000"), number(6), string("UTC"))
        return call("addMonths", epoch, months)

    def regex_match(self, text: exp.Expr, pattern: str) -> exp.Expr:
        return call("match", text, string("(?-s)" + pattern))

    def regex_group(self, text: exp.Expr, pattern: str, group: int) -> exp.Expr:
        groups = call("extractGroups", text, string("(?-s)" + pattern))
        return call(
            "if",
            self.regex_match(text, pattern),
            call("arrayElement", groups, number(group)),
            exp.Null(),
        )

    def contains(self, text: exp.Expr, part: exp.Expr) -> exp.Expr:
        return exp.GT(this=call("position", text, part), expression=number(0))

    def strlen(self, text: exp.Expr) -> exp.Expr:
        return call("lengthUTF8", text)

    def upper(self, text: exp.Expr) -> exp.Expr:
        return call("upperUTF8", text)

    def lower(self, text: exp.Expr) -> exp.Expr:
        return call("lowerUTF8", text)

    def substr(self, text: exp.Expr, start: exp.Expr, length: exp.Expr | None) -> exp.Expr:
        args = [text, start] + ([length] if length is not None else [])
        return call("substringUTF8", *args)

    def replace(self, text: exp.Expr, search: exp.Expr, replacement: exp.Expr) -> exp.Expr:
        return call("replaceAll", text, search, replacement)

    def ln(self, value: exp.Expr) -> exp.Expr:
        return call("log", value)

    def text_prefix(self, text: exp.Expr, chars: int) -> exp.Expr:
        return call("leftUTF8", text, number(chars))

    def digest(self, text: exp.Expr) -> exp.Expr:
        return call("lower", call("hex", call("MD5", text)))

    def join_nonnull(self, parts: list[exp.Expr], separator: str) -> exp.Expr:
        x = exp.to_identifier("x")
        keep = exp.Lambda(this=call("isNotNull", x), expressions=[x])
        kept = call("arrayFilter", keep, exp.Array(expressions=parts))
        return call("arrayStringConcat", kept, string(separator))

    def aggregate(self, name: str, value: exp.Expr) -> exp.Expr:
        return call(f"{name}OrNull", value)

    def count_distinct(self, value: exp.Expr) -> exp.Expr:
        return call("uniqExact", value)

    def any_value(self, value: exp.Expr) -> exp.Expr:
        return call("any", value)

    def distinct_values(self, value: exp.Expr) -> exp.Expr:
        return call("groupUniqArray", value)  # skips NULL

    def percentile(self, value: exp.Expr, fraction: float) -> exp.Expr:
        return exp.ParameterizedAgg(
            this="quantileExactInclusiveOrNull",
            expressions=[number(repr(fraction))],
            params=[value],
        )

    def stddev(self, value: exp.Expr) -> exp.Expr:
        enough = exp.GT(this=exp.Count(this=value), expression=number(1))
        return call("if", enough, call("stddevSampStable", value), exp.Null())

    def arg_min(self, value: exp.Expr, key: exp.Expr) -> exp.Expr:
        return call("argMinOrNull", value, key)

    def arg_max(self, value: exp.Expr, key: exp.Expr) -> exp.Expr:
        return call("argMaxOrNull", value, key)

    def unnest(self, raw: exp.Expr) -> exp.Expr:
        text = call("ifNull", raw, string(""))  # an array cannot be Nullable
        as_array = call(
            "multiIf",
            exp.EQ(this=text, expression=string("")),
            exp.Array(expressions=[]),
            self.json_is_array(text.copy()),
            call("JSONExtractArrayRaw", text.copy()),
            exp.Array(expressions=[text.copy()]),
        )
        return call("arrayJoin", as_array)
