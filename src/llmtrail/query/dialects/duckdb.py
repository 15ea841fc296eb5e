"""DuckDB's spelling of the compiler's operations.

JSON is read with JSON pointers (``/messages/0/role``), which escape any key; text becomes a
number with ``TRY_CAST``; ``NULL``-propagating concatenation is ``||`` (DuckDB's ``concat``
skips ``NULL``); time is epoch microseconds (``epoch_us``/``make_timestamptz``).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlglot import exp

from llmtrail.query.dialects.base import SqlDialect, call, case, is_null, number, string


def _pointer(path: tuple[str, ...]) -> str:
    return "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in path)


class DuckDB(SqlDialect):
    name = "duckdb"

    def json_text(self, doc: exp.Expr, path: tuple[str, ...]) -> exp.Expr:
        return call("json_extract_string", doc, string(_pointer(path)))

    def json_raw(self, doc: exp.Expr, path: tuple[str, ...]) -> exp.Expr:
        return exp.cast(call("json_extract", doc, string(_pointer(path))), "VARCHAR")

    def json_is_null(self, doc: exp.Expr, path: tuple[str, ...]) -> exp.Expr:
        return exp.EQ(
            this=call("json_type", doc, string(_pointer(path))), expression=string("NULL")
        )

    def json_is_array(self, raw: exp.Expr) -> exp.Expr:
        return exp.EQ(this=call("json_type", raw), expression=string("ARRAY"))

    def merge_json(self, left: exp.Expr, right: exp.Expr) -> exp.Expr:
        return exp.cast(call("json_merge_patch", left, right), "VARCHAR")

    def map_get(self, mapping: exp.Expr, key: str) -> exp.Expr:
        return exp.Bracket(this=mapping, expressions=[string(key)])

    def map_json(self, mapping: exp.Expr) -> exp.Expr:
        return case(
            (
                exp.GT(this=call("cardinality", mapping), expression=number(0)),
                call("to_json", mapping),
            )
        )

    def to_json(self, value: exp.Expr) -> exp.Expr:
        return exp.cast(call("to_json", value), "VARCHAR")

    def concat_strict(self, *parts: exp.Expr) -> exp.Expr:
        out = parts[0]
        for part in parts[1:]:
            out = exp.DPipe(this=out, expression=part)
        return out

    def text_to_double(self, text: exp.Expr) -> exp.Expr:
        return exp.TryCast(this=text, to=exp.DataType.build("DOUBLE"))

    def text_to_decimal(self, text: exp.Expr) -> exp.Expr:
        return exp.TryCast(this=text, to=exp.DataType.build("DECIMAL(38, 9)"))

    def to_text(self, value: exp.Expr) -> exp.Expr:
        return exp.cast(value, "VARCHAR")

    def timestamp_text(self, ts: exp.Expr) -> exp.Expr:
        return call("strftime", ts, string("%Y-%m-%dT%H:%M:%S.%fZ"))

    def timestamp_literal(self, value: datetime) -> exp.Expr:
        text = value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00:00")
        return exp.cast(string(text), "TIMESTAMPTZ")

    def local_date(self, ts: exp.Expr, tz: str, unit: str) -> exp.Expr:
        local = call("timezone", string(tz), ts)
        return exp.cast(call("date_trunc", string(unit), local), "DATE")

    def utc_bucket(self, ts: exp.Expr, unit: str) -> exp.Expr:
        return call("date_trunc", string(unit), call("timezone", string("UTC"), ts))

    def map_keys(self, mapping: exp.Expr) -> exp.Expr:
        return call("unnest", call("map_keys", mapping))

    def epoch_us(self, ts: exp.Expr) -> exp.Expr:
        return call("epoch_us", ts)

    def from_epoch_us(self, micros: exp.Expr) -> exp.Expr:
        return call("make_timestamptz", micros)

    def int_div(self, left: exp.Expr, right: exp.Expr) -> exp.Expr:
        return exp.IntDiv(this=left, expression=right)

    def month_index(self, ts: exp.Expr) -> exp.Expr:
        years = exp.Sub(this=call("year", ts), expression=number(1970))
        months = exp.Sub(this=call("month", ts), expression=number(1))
        return exp.Add(
            this=exp.Mul(this=exp.Paren(this=years), expression=number(12)), expression=months
        )

    def from_month_index(self, months: exp.Expr) -> exp.Expr:
        epoch = exp.cast(string("1970-01-01 00:00:00+00:00"), "TIMESTAMPTZ")
        return exp.Add(this=epoch, expression=call("to_months", exp.cast(months, "INTEGER")))

    def regex_match(self, text: exp.Expr, pattern: str) -> exp.Expr:
        return call("regexp_matches", text, string(pattern))

    def regex_group(self, text: exp.Expr, pattern: str, group: int) -> exp.Expr:
        return case(
            (
                self.regex_match(text, pattern),
                call("regexp_extract", text, string(pattern), number(group)),
            )
        )

    def contains(self, text: exp.Expr, part: exp.Expr) -> exp.Expr:
        return call("contains", text, part)

    def strlen(self, text: exp.Expr) -> exp.Expr:
        return call("length", text)

    def upper(self, text: exp.Expr) -> exp.Expr:
        return call("upper", text)

    def lower(self, text: exp.Expr) -> exp.Expr:
        return call("lower", text)

    def substr(self, text: exp.Expr, start: exp.Expr, length: exp.Expr | None) -> exp.Expr:
        args = [text, start] + ([length] if length is not None else [])
        return call("substring", *args)

    def replace(self, text: exp.Expr, search: exp.Expr, replacement: exp.Expr) -> exp.Expr:
        return call("replace", text, search, replacement)

    def ln(self, value: exp.Expr) -> exp.Expr:
        return call("ln", value)

    def text_prefix(self, text: exp.Expr, chars: int) -> exp.Expr:
        return call("left", text, number(chars))

    def digest(self, text: exp.Expr) -> exp.Expr:
        return call("md5", text)

    def join_nonnull(self, parts: list[exp.Expr], separator: str) -> exp.Expr:
        return call("concat_ws", string(separator), *parts)

    def aggregate(self, name: str, value: exp.Expr) -> exp.Expr:
        return call(name, value)

    def count_distinct(self, value: exp.Expr) -> exp.Expr:
        return exp.Count(this=exp.Distinct(expressions=[value]))

    def any_value(self, value: exp.Expr) -> exp.Expr:
        return call("any_value", value)

    def distinct_values(self, value: exp.Expr) -> exp.Expr:
        return call("list_distinct", call("list", value))  # list_distinct drops NULL

    def percentile(self, value: exp.Expr, fraction: float) -> exp.Expr:
        return call("quantile_cont", value, number(repr(fraction)))

    def stddev(self, value: exp.Expr) -> exp.Expr:
        return call("stddev_samp", value)

    def arg_min(self, value: exp.Expr, key: exp.Expr) -> exp.Expr:
        return call("arg_min", value, key)

    def arg_max(self, value: exp.Expr, key: exp.Expr) -> exp.Expr:
        return call("arg_max", value, key)

    def unnest(self, raw: exp.Expr) -> exp.Expr:
        json_list = exp.DataType.build("JSON[]", dialect="duckdb")
        as_list = case(
            (is_null(raw), exp.cast(exp.Null(), json_list)),
            (self.json_is_array(raw.copy()), exp.cast(raw.copy(), json_list.copy())),
            default=exp.Array(expressions=[exp.cast(raw, "JSON")]),
        )
        return exp.cast(call("unnest", as_list), "VARCHAR")
