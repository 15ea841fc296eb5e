"""AST expressions → typed sqlglot expressions.

`ExprCompiler.value` compiles one expression in a `Scope` (the names the query defined so
far and the relation record fields come from), either per row or, inside ``stats``, as an
aggregate. Types decide the SQL: ``=`` between a JSON value and a number compares numbers,
``+`` on a string column is an error pointing at it, ``/`` is always a float division with
``NULL`` for a zero divisor (engines would say ``inf``, ``nan`` or raise). Functions and
aggregates live in `functions` and `aggregates`, each a table from name to builder.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from sqlglot import exp

from llmtrail.errors import ValidationError
from llmtrail.query.ast import (
    Binary,
    Call,
    Expr,
    Field,
    In,
    Like,
    Literal,
    Period,
    Regex,
    Unary,
    render,
)
from llmtrail.query.dialects import SqlDialect, case, number, string
from llmtrail.query.errors import QueryError
from llmtrail.query.fields import FieldResolver
from llmtrail.query.kinds import Kind, Typed, widest_number
from llmtrail.query.regexes import check_regex
from llmtrail.query.relations import Relation
from llmtrail.record import parse_timestamp

Builder = Callable[["ExprCompiler", Call], Typed]
SCALARS: dict[str, Builder] = {}
AGGREGATES: dict[str, Builder] = {}
_CMP: dict[str, Callable[..., exp.Expr]] = {
    "=": exp.EQ,
    "!=": exp.NEQ,
    "<": exp.LT,
    "<=": exp.LTE,
    ">": exp.GT,
    ">=": exp.GTE,
}


@dataclass
class Scope:
    """What names mean at one point of the pipeline. ``rel`` is None after ``stats``, when
    only the names it produced exist."""

    rel: Relation | None
    names: dict[str, Typed] = field(default_factory=dict)


def key_of(expr: Expr) -> str:
    """The name a computed value is found under again: a field's dotted path, otherwise
    the expression's canonical text."""
    return ".".join(expr.path) if isinstance(expr, Field) else render(expr)


class ExprCompiler:
    """Compiles expressions of one query for one dialect."""

    def __init__(self, text: str, dialect: SqlDialect, resolver: FieldResolver) -> None:
        self.text = text
        self.d = dialect
        self.resolver = resolver
        self.scope = Scope(None)
        self.aggregate = False  # compiling a stats aggregate expression
        self.inside_aggregate = False
        self.found_aggregate = False

    def error(self, reason: str, node: Expr) -> QueryError:
        return QueryError(reason, self.text, node.span)

    # -- entry points -----------------------------------------------------------------------
    def value(self, expr: Expr, scope: Scope | None = None) -> Typed:
        """Compile ``expr`` per row (in ``scope``, or the current one)."""
        if scope is None:
            return self._value(expr)
        saved = (self.scope, self.aggregate, self.inside_aggregate)
        self.scope, self.aggregate, self.inside_aggregate = scope, False, False
        try:
            return self._value(expr)
        finally:
            self.scope, self.aggregate, self.inside_aggregate = saved

    def aggregate_value(self, expr: Expr, scope: Scope) -> Typed:
        """Compile a ``stats`` expression: aggregates, and arithmetic or functions of them."""
        saved = (self.scope, self.aggregate, self.inside_aggregate, self.found_aggregate)
        self.scope, self.aggregate, self.inside_aggregate = scope, True, False
        self.found_aggregate = False
        try:
            result = self._value(expr)
            if not self.found_aggregate:
                raise self.error(
                    "expected an aggregate function such as count(*), sum(…) or pct(…, 95)",
                    expr,
                )
            return result
        finally:
            (self.scope, self.aggregate, self.inside_aggregate, self.found_aggregate) = saved

    def argument(self, expr: Expr) -> Typed:
        """An aggregate function's argument: a per-row value."""
        if self.inside_aggregate:
            raise self.error("an aggregate function cannot contain another", expr)
        saved = self.inside_aggregate
        self.inside_aggregate = True
        try:
            return self._value(expr)
        finally:
            self.inside_aggregate = saved

    def condition(self, expr: Expr) -> exp.Expr:
        """Compile ``expr`` as a filter condition."""
        return self.to_condition(self._value(expr), expr)

    # -- the tree walk ----------------------------------------------------------------------
    def _value(self, expr: Expr) -> Typed:
        names = self.scope.names
        if not isinstance(expr, Field | Literal) and render(expr) in names:
            return names[render(expr)].fresh()
        if isinstance(expr, Field):
            return self.field(expr)
        if isinstance(expr, Literal):
            return literal(expr.value)
        if isinstance(expr, Period):
            raise self.error("a time period only goes in bin(), datefloor() or dateceil()", expr)
        if isinstance(expr, Regex):
            raise self.error("a /regex/ only goes after like or =~", expr)
        if isinstance(expr, Unary):
            operand = self._value(expr.operand)
            if expr.op == "not":
                return Typed(exp.Not(this=self.to_condition(operand, expr.operand)), Kind.BOOL)
            value = self.to_number(operand, expr.operand)
            return Typed(exp.Neg(this=exp.Paren(this=value.sql)), value.kind)
        if isinstance(expr, Binary):
            return self.binary(expr)
        if isinstance(expr, Like):
            return self.like(expr)
        if isinstance(expr, In):
            return self.membership(expr)
        return self.call(expr)

    def field(self, node: Field) -> Typed:
        names = self.scope.names
        dotted = ".".join(node.path)
        if dotted in names:
            return names[dotted].fresh()
        for depth in range(len(node.path) - 1, 0, -1):
            prefix = ".".join(node.path[:depth])
            if prefix in names and names[prefix].kind in (Kind.ANY, Kind.JSON):
                doc = names[prefix].sql.copy()
                return Typed(self.d.json_text(doc, node.path[depth:]), Kind.ANY)
        rel = self.scope.rel
        if rel is None:
            known = ", ".join(sorted(names)) or "none"
            raise self.error(
                f"{dotted} does not exist after stats; the fields there are: {known}", node
            )
        if self.aggregate and not self.inside_aggregate:
            raise self.error(
                f"{dotted} must be inside an aggregate function such as count({dotted})", node
            )
        value = self.resolver.resolve(node.path, rel)
        if value is None:
            raise self.error(f"unknown system field {node.path[0]}", node)
        return value

    def call(self, node: Call) -> Typed:
        if node.name in AGGREGATES:
            if not self.aggregate:
                raise self.error(f"{node.name}() is an aggregate function: use it in stats", node)
            if self.inside_aggregate:
                raise self.error("an aggregate function cannot contain another", node)
            self.found_aggregate = True
            return AGGREGATES[node.name](self, node)
        builder = SCALARS.get(node.name)
        if builder is None:
            if node.name in UNSUPPORTED_FUNCTIONS:
                raise self.error(f"{node.name}() is not supported by llmtrail", node)
            raise self.error(f"unknown function {node.name}()", node)
        if node.star:
            raise self.error(f"{node.name}(*) is not allowed; only count(*) takes *", node)
        return builder(self, node)

    def binary(self, node: Binary) -> Typed:
        if node.op in ("and", "or"):
            first = self.to_condition(self._value(node.left), node.left)
            second = self.to_condition(self._value(node.right), node.right)
            cls = exp.And if node.op == "and" else exp.Or
            return Typed(exp.Paren(this=cls(this=first, expression=second)), Kind.BOOL)
        left, right = self._value(node.left), self._value(node.right)
        if node.op in _CMP:
            return Typed(self.compare(node.op, left, right, node), Kind.BOOL)
        return self.arithmetic(node.op, left, right, node)

    def arithmetic(self, op: str, left: Typed, right: Typed, node: Binary) -> Typed:
        a, b = self.to_number(left, node.left), self.to_number(right, node.right)
        d = self.d
        if op in ("/", "^"):
            x, y = d.to_double(a.sql), d.to_double(b.sql)
            if op == "^":
                return Typed(exp.Pow(this=x, expression=y), Kind.FLOAT)
            return Typed(
                exp.Div(this=x, expression=exp.Nullif(this=y, expression=number(0))), Kind.FLOAT
            )
        kind = widest_number([a.kind, b.kind])
        x, y = self.as_kind(a, kind), self.as_kind(b, kind)
        if op == "%":
            return Typed(
                exp.Paren(
                    this=exp.Mod(this=x, expression=exp.Nullif(this=y, expression=number(0)))
                ),
                kind,
            )
        cls = {"+": exp.Add, "-": exp.Sub, "*": exp.Mul}[op]
        return Typed(exp.Paren(this=cls(this=x, expression=y)), kind)

    def compare(self, op: str, left: Typed, right: Typed, node: Expr) -> exp.Expr:
        cls = _CMP[op]
        kinds = {left.kind, right.kind}
        if Kind.TIMESTAMP in kinds:
            x, y = self.timestamps(left, right, node)
            return cls(this=x, expression=y)
        if Kind.BOOL in kinds and not kinds & {Kind.INT, Kind.FLOAT, Kind.DECIMAL}:
            x, y = self.booleans(left, right)
            return cls(this=x, expression=y)
        if kinds & {Kind.INT, Kind.FLOAT, Kind.DECIMAL}:
            a = self.to_number(left, node, strings=True)
            b = self.to_number(right, node, strings=True)
            kind = widest_number([a.kind, b.kind])
            if Kind.DECIMAL in (a.kind, b.kind) and kind is Kind.FLOAT:
                kind = Kind.DECIMAL if a.is_constant or b.is_constant else Kind.FLOAT
            return cls(this=self.as_kind(a, kind), expression=self.as_kind(b, kind))
        return cls(this=self.to_text(left), expression=self.to_text(right))

    def like(self, node: Like) -> Typed:
        text = self.to_text(self._value(node.operand))
        if isinstance(node.pattern, Regex):
            regex, _ = check_regex(node.pattern.pattern, self.text, node.pattern.span)
            test = self.d.regex_match(text, regex)
        else:
            test = self.d.contains(text, string(str(node.pattern.value)))
        return Typed(exp.Not(this=test) if node.negated else test, Kind.BOOL)

    def membership(self, node: In) -> Typed:
        operand = self._value(node.operand)
        items = [self._value(i) for i in node.items]
        if not items:
            return Typed(exp.Boolean(this=node.negated), Kind.BOOL)
        tests = [self.compare("=", operand, item, node) for item in items]
        if all(isinstance(t, exp.EQ) for t in tests) and len({t.this.sql() for t in tests}) == 1:
            test: exp.Expr = exp.In(this=tests[0].this, expressions=[t.expression for t in tests])
        else:
            test = tests[0]
            for more in tests[1:]:
                test = exp.Or(this=test, expression=more)
            test = exp.Paren(this=test)
        return Typed(exp.Not(this=test) if node.negated else test, Kind.BOOL)

    # -- conversions ------------------------------------------------------------------------
    def to_number(self, value: Typed, node: Expr, *, strings: bool = False) -> Typed:
        """``value`` as a number. JSON values become numbers (``NULL`` if they are not);
        a string column is an error unless ``strings`` (comparisons), a constant is folded."""
        kind = value.kind
        if kind.numeric:
            return value
        if value.is_constant and isinstance(value.constant, str):
            folded = number_of(value.constant)
            if folded is None:
                if strings:
                    return Typed(exp.Null(), Kind.FLOAT, None, True)
                raise self.error(f"{value.constant!r} is not a number", node)
            return literal(folded)
        if value.is_constant and value.constant is None:
            return Typed(exp.Null(), Kind.FLOAT, None, True)
        if kind is Kind.ANY or (kind is Kind.STRING and strings):
            return Typed(self.d.text_to_double(value.sql), Kind.FLOAT)
        if kind is Kind.JSON:
            return Typed(self.d.text_to_double(self.d.json_text(value.sql, ())), Kind.FLOAT)
        if kind is Kind.BOOL:
            return Typed(self.d.to_int(value.sql), Kind.INT)
        what = _describe(node)
        if kind is Kind.TIMESTAMP:
            raise self.error(f"{what} is a timestamp, not a number: use toMillis({what})", node)
        raise self.error(f"{what} is a string, not a number", node)

    def to_text(self, value: Typed) -> exp.Expr:
        kind = value.kind
        if kind.textual:
            return value.sql
        if kind is Kind.JSON:
            return self.d.json_text(value.sql, ())
        if kind is Kind.TIMESTAMP:
            return self.d.timestamp_text(value.sql)
        if value.is_constant and value.constant is None:
            return value.sql
        return self.d.to_text(value.sql)

    def to_condition(self, value: Typed, node: Expr) -> exp.Expr:
        if value.kind is Kind.BOOL:
            return value.sql
        if value.kind.numeric:
            return exp.NEQ(this=value.sql, expression=number(0))
        raise self.error(
            f'{_describe(node)} is not a condition: compare it, e.g. {_describe(node)} = "x"',
            node,
        )

    def as_kind(self, value: Typed, kind: Kind) -> exp.Expr:
        """A number converted to ``kind`` (int, decimal or float)."""
        if value.kind is kind or (value.is_constant and value.constant is None):
            return value.sql
        if kind is Kind.FLOAT:
            return self.d.to_double(value.sql)
        if kind is Kind.DECIMAL:
            if value.is_constant:  # the number as written, not its binary float
                return self.d.to_decimal(string(repr(value.constant)))
            return self.d.to_decimal(value.sql)
        return value.sql

    def timestamps(self, left: Typed, right: Typed, node: Expr) -> tuple[exp.Expr, exp.Expr]:
        out = []
        for value in (left, right):
            if value.kind is Kind.TIMESTAMP:
                other = right if value is left else left
                if other.kind.numeric or (
                    other.is_constant and number_of(str(other.constant)) is not None
                ):
                    out.append(self.millis(value.sql))  # compared with epoch milliseconds
                else:
                    out.append(value.sql)
            elif value.is_constant and isinstance(value.constant, str):
                if number_of(value.constant) is not None:
                    out.append(literal(number_of(value.constant) or 0).sql)
                    continue
                try:
                    out.append(self.d.timestamp_literal(parse_timestamp(value.constant)))
                except ValidationError:
                    raise self.error(
                        f"{value.constant!r} is not a timestamp (use 2026-01-31T10:00:00Z)", node
                    ) from None
            elif value.kind.numeric or value.kind is Kind.ANY:
                out.append(self.to_number(value, node).sql)
            else:
                raise self.error(
                    "a timestamp compares with a timestamp or epoch milliseconds", node
                )
        return out[0], out[1]

    def millis(self, ts: exp.Expr) -> exp.Expr:
        us = self.d.epoch_us(ts)
        rest = self.pmod(us, 1000)
        return self.d.int_div(exp.Paren(this=exp.Sub(this=us, expression=rest)), number(1000))

    def pmod(self, value: exp.Expr, divisor: int) -> exp.Expr:
        """``value`` modulo ``divisor``, never negative."""
        inner = exp.Mod(this=value, expression=number(divisor))
        shifted = exp.Add(this=exp.Paren(this=inner), expression=number(divisor))
        return exp.Paren(this=exp.Mod(this=exp.Paren(this=shifted), expression=number(divisor)))

    def booleans(self, left: Typed, right: Typed) -> tuple[exp.Expr, exp.Expr]:
        """Both sides as booleans (``"true"``/``"false"`` constants read as such), or both
        as text when one side is neither."""
        out: list[exp.Expr] = []
        for value in (left, right):
            if value.kind is Kind.BOOL:
                out.append(value.sql)
            elif value.is_constant and str(value.constant).lower() in ("true", "false"):
                out.append(exp.Boolean(this=str(value.constant).lower() == "true"))
            elif value.is_constant and value.constant is None:
                out.append(exp.Null())
            else:
                return self.to_text(left), self.to_text(right)
        return out[0], out[1]


UNSUPPORTED_FUNCTIONS = frozenset(
    {
        "now",
        "jsonparse",
        "jsonstringify",
        "isvalidip",
        "isvalidipv4",
        "isvalidipv6",
        "isipinsubnet",
        "isipv4insubnet",
        "isipv6insubnet",
        "sortsfirst",
        "sortslast",
        "rate",
        "count_over_time",
        "sum_over_time",
        "histogram",
    }
)


def literal(value: str | int | float | Decimal | None) -> Typed:
    """A constant as a typed SQL literal."""
    if value is None:
        return Typed(exp.Null(), Kind.ANY, None, True)
    if isinstance(value, str):
        return Typed(string(value), Kind.STRING, value, True)
    if isinstance(value, bool):
        return Typed(exp.Boolean(this=value), Kind.BOOL, value, True)
    if isinstance(value, int):
        return Typed(number(value), Kind.INT, value, True)
    if isinstance(value, Decimal):
        return Typed(number(str(value)), Kind.DECIMAL, value, True)
    text = repr(value)  # a float literal, not DuckDB's DECIMAL reading of 1.5
    return Typed(number(text if "e" in text else text + "e0"), Kind.FLOAT, value, True)


def number_of(text: str) -> int | float | None:
    """The number ``text`` spells (an int when it is whole and fits 64 bits), or None."""
    stripped = text.strip()
    try:
        if re.fullmatch(r"[+-]?[0-9]+", stripped):
            value = int(stripped)
            return value if -(2**63) <= value < 2**63 else float(value)
        number_ = float(Decimal(stripped))
    except (InvalidOperation, ValueError, OverflowError):
        return None
    finite = number_ == number_ and number_ not in (float("inf"), float("-inf"))
    return number_ if finite else None


def _describe(node: Expr) -> str:
    return ".".join(node.path) if isinstance(node, Field) else render(node)


def null_safe_flag(test: exp.Expr) -> exp.Expr:
    """``1`` where ``test`` holds, else ``0`` (also for ``NULL``)."""
    return case((test, number(1)), default=number(0))
