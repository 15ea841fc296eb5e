"""Scalar functions of the language: name → builder of a typed SQL expression.

Each builder checks its arguments (count and kind, with the error on the argument) and
produces SQL meaning the same on both engines: ``substr`` counts from 0 as Insights does,
``strlen`` counts code points, ``concat`` treats a missing value as empty, ``sqrt`` and
``log`` are ``NULL`` outside their domain instead of ``nan``/``-inf``. Time bins are computed
from epoch microseconds (months from a month index), so ``bin(7m)`` lands on the same
boundaries everywhere; weeks start on Monday.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp

from llmtrail.query.ast import Call, Field, Period
from llmtrail.query.dialects import call, case, is_null, not_null, number, string
from llmtrail.query.expressions import SCALARS, ExprCompiler, null_safe_flag
from llmtrail.query.kinds import Kind, Typed, widest_number
from llmtrail.query.periods import TimePeriod, parse_period

WHITESPACE = " \t\n\r"
_MONDAY_OFFSET_US = 4 * 86_400_000_000  # 1970-01-05, the first Monday after the epoch


def _arity(c: ExprCompiler, node: Call, low: int, high: int | None = None) -> None:
    high = low if high is None else high
    count = len(node.args)
    if low <= count <= high:
        return
    if low == high:
        want = f"{low} argument{'s' if low != 1 else ''}"
    elif high > 99:
        want = f"at least {low} argument{'s' if low != 1 else ''}"
    else:
        want = f"{low} to {high} arguments"
    raise c.error(f"{node.name}() takes {want}, got {count}", node)


def builds(
    *names: str,
) -> Callable[[Callable[[ExprCompiler, Call], Typed]], Callable[[ExprCompiler, Call], Typed]]:
    def register(
        fn: Callable[[ExprCompiler, Call], Typed],
    ) -> Callable[[ExprCompiler, Call], Typed]:
        for name in names:
            SCALARS[name] = fn
        return fn

    return register


def _text(c: ExprCompiler, node: Call, index: int) -> exp.Expr:
    return c.to_text(c.value(node.args[index]))


def _num(c: ExprCompiler, node: Call, index: int) -> Typed:
    return c.to_number(c.value(node.args[index]), node.args[index])


# -- numbers ------------------------------------------------------------------------------


@builds("abs", "ceil", "floor")
def _rounding(c: ExprCompiler, node: Call) -> Typed:
    _arity(c, node, 1)
    value = _num(c, node, 0)
    return Typed(call(node.name, value.sql), value.kind)


@builds("sqrt")
def _sqrt(c: ExprCompiler, node: Call) -> Typed:
    _arity(c, node, 1)
    value = c.d.to_double(_num(c, node, 0).sql)
    negative = exp.LT(this=value, expression=number(0))
    return Typed(case((negative, exp.Null()), default=call("sqrt", value)), Kind.FLOAT)


@builds("log")
def _log(c: ExprCompiler, node: Call) -> Typed:
    _arity(c, node, 1)
    value = c.d.to_double(_num(c, node, 0).sql)
    outside = exp.LTE(this=value, expression=number(0))
    return Typed(case((outside, exp.Null()), default=c.d.ln(value)), Kind.FLOAT)


@builds("greatest", "least")
def _extreme(c: ExprCompiler, node: Call) -> Typed:
    _arity(c, node, 1, 1000)
    values = [_num(c, node, i) for i in range(len(node.args))]
    kind = widest_number([v.kind for v in values])
    return Typed(call(node.name, *(c.as_kind(v, kind) for v in values)), kind)


# -- general ------------------------------------------------------------------------------


@builds("ispresent")
def _ispresent(c: ExprCompiler, node: Call) -> Typed:
    _arity(c, node, 1)
    return Typed(not_null(c.value(node.args[0]).sql), Kind.BOOL)


@builds("coalesce")
def _coalesce(c: ExprCompiler, node: Call) -> Typed:
    _arity(c, node, 1, 1000)
    values = [c.value(a) for a in node.args]
    present = [v for v in values if not (v.is_constant and v.constant is None)]
    kinds = {v.kind for v in present}
    if len(kinds) == 1:
        kind = kinds.pop()
        parts = [v.sql for v in values]
    elif kinds and all(k.numeric for k in kinds):
        kind = widest_number(list(kinds))
        parts = [c.as_kind(v, kind) for v in values]
    else:
        kind = Kind.ANY if Kind.ANY in kinds else Kind.STRING
        parts = [c.to_text(v) for v in values]
    return Typed(exp.Coalesce(this=parts[0], expressions=parts[1:]), kind)


# -- strings ------------------------------------------------------------------------------


@builds("isempty")
def _isempty(c: ExprCompiler, node: Call) -> Typed:
    _arity(c, node, 1)
    text = _text(c, node, 0)
    empty = exp.Or(this=is_null(text), expression=exp.EQ(this=text, expression=string("")))
    return Typed(null_safe_flag(empty), Kind.INT)


@builds("isblank")
def _isblank(c: ExprCompiler, node: Call) -> Typed:
    _arity(c, node, 1)
    text = _text(c, node, 0)
    blank = exp.EQ(this=c.d.trim(text, string(WHITESPACE), "BOTH"), expression=string(""))
    return Typed(null_safe_flag(exp.Or(this=is_null(text), expression=blank)), Kind.INT)


@builds("strcontains")
def _strcontains(c: ExprCompiler, node: Call) -> Typed:
    _arity(c, node, 2)
    return Typed(null_safe_flag(c.d.contains(_text(c, node, 0), _text(c, node, 1))), Kind.INT)


@builds("concat")
def _concat(c: ExprCompiler, node: Call) -> Typed:
    _arity(c, node, 1, 1000)
    parts = [
        exp.Coalesce(this=_text(c, node, i), expressions=[string("")])
        for i in range(len(node.args))
    ]
    return Typed(call("concat", *parts) if len(parts) > 1 else parts[0], Kind.STRING)


@builds("strlen")
def _strlen(c: ExprCompiler, node: Call) -> Typed:
    _arity(c, node, 1)
    return Typed(c.d.strlen(_text(c, node, 0)), Kind.INT)


@builds("toupper", "tolower")
def _case(c: ExprCompiler, node: Call) -> Typed:
    _arity(c, node, 1)
    text = _text(c, node, 0)
    return Typed(c.d.upper(text) if node.name == "toupper" else c.d.lower(text), Kind.STRING)


@builds("substr")
def _substr(c: ExprCompiler, node: Call) -> Typed:
    _arity(c, node, 2, 3)
    text = _text(c, node, 0)
    start = _whole(c, node, 1)
    begin = (
        number(_clamp(start + 1))
        if isinstance(start, int)
        else exp.Add(this=start, expression=number(1))
    )
    length = None
    if len(node.args) == 3:
        count = _whole(c, node, 2)
        length = number(_clamp(max(count, 0))) if isinstance(count, int) else count
    return Typed(c.d.substr(text, begin, length), Kind.STRING)


_LONGEST_TEXT = 2**31 - 1  # no text either engine holds is longer


def _clamp(position: int) -> int:
    """A constant position or length within what both engines accept; beyond any text's
    length every value means the same (DuckDB refuses those above 2^32)."""
    return max(-_LONGEST_TEXT, min(position, _LONGEST_TEXT))


def _whole(c: ExprCompiler, node: Call, index: int) -> int | exp.Expr:
    value = _num(c, node, index)
    if value.is_constant and isinstance(value.constant, int):
        return value.constant
    if value.is_constant:
        raise c.error(f"{node.name}() needs a whole number here", node.args[index])
    return c.d.to_int(value.sql)


@builds("replace")
def _replace(c: ExprCompiler, node: Call) -> Typed:
    _arity(c, node, 3)
    return Typed(c.d.replace(_text(c, node, 0), _text(c, node, 1), _text(c, node, 2)), Kind.STRING)


@builds("trim", "ltrim", "rtrim")
def _trim(c: ExprCompiler, node: Call) -> Typed:
    _arity(c, node, 1, 2)
    chars = _text(c, node, 1) if len(node.args) == 2 else string(WHITESPACE)
    side = {"trim": "BOTH", "ltrim": "LEADING", "rtrim": "TRAILING"}[node.name]
    return Typed(c.d.trim(_text(c, node, 0), chars, side), Kind.STRING)


# -- time ---------------------------------------------------------------------------------


def _period(c: ExprCompiler, node: Call, index: int) -> TimePeriod:
    arg = node.args[index]
    period = parse_period(arg.text) if isinstance(arg, Period) else None
    if period is None:
        raise c.error("expected a time period such as 5m (units: ms s m h d w mo q y)", arg)
    return period


def _timestamp(c: ExprCompiler, node: Call, index: int) -> exp.Expr:
    value = c.value(node.args[index])
    if value.kind is not Kind.TIMESTAMP:
        raise c.error(f"{node.name}() needs a timestamp such as @timestamp", node.args[index])
    return value.sql


def floor_time(c: ExprCompiler, ts: exp.Expr, period: TimePeriod, *, up: bool = False) -> exp.Expr:
    """``ts`` rounded down (or up) to a multiple of ``period``."""
    d = c.d
    width = period.micros
    if width is not None:
        us = d.epoch_us(ts)
        offset = _MONDAY_OFFSET_US if period.unit == "w" else 0
        shifted = exp.Sub(this=us, expression=number(offset)) if offset else us
        rest = c.pmod(shifted, width)
        floor: exp.Expr = exp.Sub(this=us, expression=rest)
        if up:
            bump = case((exp.EQ(this=rest, expression=number(0)), number(0)), default=number(width))
            floor = exp.Add(this=floor, expression=bump)
        return d.from_epoch_us(floor)
    months = period.months
    assert months is not None
    index = d.month_index(ts)
    start = exp.Sub(this=index, expression=c.pmod(index, months))
    floor_ts = d.from_month_index(start)
    if not up:
        return floor_ts
    exact = exp.EQ(this=floor_ts, expression=ts)
    later = d.from_month_index(exp.Add(this=start, expression=number(months)))
    return case((exact, floor_ts), default=later)


@builds("bin")
def _bin(c: ExprCompiler, node: Call) -> Typed:
    _arity(c, node, 1)
    period = _period(c, node, 0)
    if c.scope.rel is None:
        raise c.error(
            "bin() uses @timestamp, which stats does not keep: keep it with "
            "max(@timestamp) as @t and use datefloor(@t, …)",
            node,
        )
    ts = c.value(Field(("@timestamp",), node.span))
    return Typed(floor_time(c, ts.sql, period), Kind.TIMESTAMP)


@builds("datefloor", "dateceil")
def _datefloor(c: ExprCompiler, node: Call) -> Typed:
    _arity(c, node, 2)
    ts = _timestamp(c, node, 0)
    period = _period(c, node, 1)
    return Typed(floor_time(c, ts, period, up=node.name == "dateceil"), Kind.TIMESTAMP)


@builds("frommillis")
def _from_millis(c: ExprCompiler, node: Call) -> Typed:
    _arity(c, node, 1)
    millis = c.d.to_int(_num(c, node, 0).sql)
    return Typed(c.d.from_epoch_us(exp.Mul(this=millis, expression=number(1000))), Kind.TIMESTAMP)


@builds("tomillis")
def _to_millis(c: ExprCompiler, node: Call) -> Typed:
    _arity(c, node, 1)
    return Typed(c.millis(_timestamp(c, node, 0)), Kind.INT)
