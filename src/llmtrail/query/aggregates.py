"""Aggregate functions of ``stats``: name → builder.

Exact where CloudWatch approximates: ``count_distinct`` counts exactly, ``pct`` is the exact
interpolated percentile (DuckDB ``quantile_cont``, ClickHouse ``quantileExactInclusive``).
``sum`` keeps integers integers and money DECIMAL; ``avg``, ``pct`` and ``stddev`` are
floats. ``earliest``/``latest`` take the value from the first/last record by
``@timestamp`` (ties by record id) among records that have it. Every aggregate of nothing is
``NULL``, except the counts, which are 0.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp

from llmtrail.query.ast import Call, Field, Literal
from llmtrail.query.expressions import AGGREGATES, ExprCompiler
from llmtrail.query.kinds import Kind, Typed
from llmtrail.query.relations import column


def aggregate(
    *names: str,
) -> Callable[[Callable[[ExprCompiler, Call], Typed]], Callable[[ExprCompiler, Call], Typed]]:
    def register(
        fn: Callable[[ExprCompiler, Call], Typed],
    ) -> Callable[[ExprCompiler, Call], Typed]:
        for name in names:
            AGGREGATES[name] = fn
        return fn

    return register


def _one(c: ExprCompiler, node: Call, extra: int = 0) -> Typed:
    if node.star or len(node.args) != 1 + extra:
        want = "a field" if not extra else "a field and a percentile"
        raise c.error(f"{node.name}() takes {want}", node)
    return c.argument(node.args[0])


def _numeric(c: ExprCompiler, node: Call, extra: int = 0) -> Typed:
    value = _one(c, node, extra)
    if value.kind in (Kind.STRING, Kind.TIMESTAMP, Kind.BOOL):
        what = ".".join(node.args[0].path) if isinstance(node.args[0], Field) else "its argument"
        raise c.error(
            f"{node.name}() needs numbers, but {what} is a {value.kind.value}", node.args[0]
        )
    return c.to_number(value, node.args[0])


@aggregate("count")
def _count(c: ExprCompiler, node: Call) -> Typed:
    if node.star or not node.args:
        return Typed(exp.Count(this=exp.Star()), Kind.INT)
    return Typed(exp.Count(this=_one(c, node).sql), Kind.INT)


@aggregate("count_distinct")
def _count_distinct(c: ExprCompiler, node: Call) -> Typed:
    return Typed(c.d.count_distinct(_one(c, node).sql), Kind.INT)


@aggregate("sum")
def _sum(c: ExprCompiler, node: Call) -> Typed:
    value = _numeric(c, node)
    return Typed(c.d.aggregate("sum", value.sql), value.kind)


@aggregate("avg")
def _avg(c: ExprCompiler, node: Call) -> Typed:
    value = _numeric(c, node)
    return Typed(c.d.aggregate("avg", c.d.to_double(value.sql)), Kind.FLOAT)


@aggregate("min", "max")
def _extreme(c: ExprCompiler, node: Call) -> Typed:
    value = _one(c, node)
    if value.kind in (Kind.ANY, Kind.JSON):
        value = c.to_number(value, node.args[0])
    elif value.kind is Kind.BOOL:
        value = Typed(c.d.to_int(value.sql), Kind.INT)
    return Typed(c.d.aggregate(node.name, value.sql), value.kind)


@aggregate("pct")
def _pct(c: ExprCompiler, node: Call) -> Typed:
    value = _numeric(c, node, extra=1)
    arg = node.args[1]
    if not isinstance(arg, Literal) or isinstance(arg.value, str) or not 0 <= arg.value <= 100:
        raise c.error("pct() needs a percentile from 0 to 100, such as 95", arg)
    fraction = arg.value / 100
    return Typed(c.d.percentile(c.d.to_double(value.sql), fraction), Kind.FLOAT)


@aggregate("stddev")
def _stddev(c: ExprCompiler, node: Call) -> Typed:
    value = _numeric(c, node)
    return Typed(c.d.stddev(c.d.to_double(value.sql)), Kind.FLOAT)


@aggregate("earliest", "latest")
def _earliest(c: ExprCompiler, node: Call) -> Typed:
    value = _one(c, node)
    rel = c.scope.rel
    if rel is None:
        raise c.error(f"{node.name}() orders by @timestamp, which stats does not keep", node)
    key = exp.Tuple(
        expressions=[column("timestamp", rel.records), column("record_id", rel.records)]
    )
    pick = c.d.arg_min if node.name == "earliest" else c.d.arg_max
    return Typed(pick(value.sql, key), value.kind)
