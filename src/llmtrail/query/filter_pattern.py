"""CloudWatch JSON filter patterns → a SQL condition over records.

``llmtrail logs --filter-pattern '{ $.modelId = "anthropic.*" && $.input.inputTokenCount >
1000 }'`` selects records the way ``FilterLogEvents`` selects JSON log events. The pattern is
parsed here (selectors ``$.a.b[0]``, ``= != < <= > >=``, ``&&`` over ``||`` with parentheses,
``IS NULL``, ``IS TRUE``/``IS FALSE``, ``EXISTS``/``NOT EXISTS``, values quoted or bare, ``*``
wildcards in strings, ``%regex%``) and each selector is resolved by the query language's
`FieldResolver`, so a pattern reads typed columns, maps, bodies and ``extra`` alike.

As in CloudWatch, ``!=`` and the ordering operators never match a record that lacks the
field, a number compares numerically, and a string with ``*`` matches as a wildcard. An empty
pattern matches every record. A key without the ``bodies`` permission (``bodies_allowed``
false) gets `Forbidden` for a selector that reads a body (`llmtrail.query.body_access`), and
matching records without their bodies.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlglot import exp

from llmtrail.query.body_access import refusal
from llmtrail.query.compiler import DEFAULT_LIMIT, CompiledQuery, utc
from llmtrail.query.dialects import DIALECTS, SqlDialect, is_null, not_null, string
from llmtrail.query.errors import QueryError, Span
from llmtrail.query.expressions import literal, number_of
from llmtrail.query.fields import BODY_PATHS, FieldResolver, touches_bodies
from llmtrail.query.kinds import Kind, Typed
from llmtrail.query.regexes import check_regex, escape
from llmtrail.query.relations import Relation, column, table
from llmtrail.schema import BODY_COLUMNS, RecordSchema, Type

FIELD = "filterPattern"
_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<op>&&|\|\||!=|<=|>=|=|<|>|\(|\)|\{|\})
  | (?P<selector>\$(?:\.[A-Za-z0-9_\-@]+|\[[0-9]+\])*)
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<regex>%(?:[^%\\]|\\.)+%)
  | (?P<word>[^\s"(){}&|=!<>%]+)
    """,
    re.VERBOSE,
)
_KEYWORDS = ("IS", "NULL", "TRUE", "FALSE", "NOT", "EXISTS")
_CMP = {"=": exp.EQ, "!=": exp.NEQ, "<": exp.LT, "<=": exp.LTE, ">": exp.GT, ">=": exp.GTE}


@dataclass(frozen=True)
class FilterPattern:
    """A compiled pattern: ``condition`` is a WHERE condition over ``records AS r`` (and
    ``bodies AS b`` when ``needs_bodies``)."""

    condition: exp.Expr
    needs_bodies: bool
    dialect: str


@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str
    span: Span


def compile_filter_pattern(
    text: str, *, dialect: str, schema: RecordSchema, bodies_allowed: bool = True
) -> FilterPattern:
    """Compile a JSON filter pattern. Raises `QueryError` (field ``filterPattern``), and
    `Forbidden` for a body selector when ``bodies_allowed`` is false."""
    if dialect not in DIALECTS:
        raise ValueError(f"dialect must be one of {', '.join(DIALECTS)}, got {dialect!r}")
    return _PatternCompiler(text, DIALECTS[dialect], schema, bodies_allowed).compile()


def filter_pattern_query(
    text: str,
    *,
    dialect: str,
    schema: RecordSchema,
    workspace: str,
    start: datetime,
    end: datetime,
    limit: int = DEFAULT_LIMIT,
    offset: int = 0,
    with_bodies: bool = True,
    database: str | None = None,
    bodies_allowed: bool = True,
) -> CompiledQuery:
    """The records matching pattern ``text`` in ``workspace`` and ``[start, end)``, newest
    first (ties by record id): every stored record column, then the body columns when
    ``with_bodies`` (``database`` qualifies the tables). ``fields`` are the stored column
    names and ``kinds`` their schema types (``string int bool timestamp map json``), ready
    for `llmtrail.store.rows.from_row`. Without ``bodies_allowed`` the bodies are never read:
    not in the output, and a body selector is `Forbidden`."""
    pattern = compile_filter_pattern(
        text, dialect=dialect, schema=schema, bodies_allowed=bodies_allowed
    )
    with_bodies = with_bodies and bodies_allowed
    d = DIALECTS[dialect]
    join = with_bodies or pattern.needs_bodies
    outputs = [column(c.name, "r") for c in schema.record_columns]
    names = [c.name for c in schema.record_columns]
    if with_bodies:
        for col in BODY_COLUMNS:
            if col.type is Type.JSON:
                outputs.append(column(col.name, "b"))
                names.append(col.name)
    select = exp.select(*outputs).from_(table("records", "r", database), copy=False)
    if join:
        on = exp.EQ(this=column("record_id", "b"), expression=column("record_id", "r"))
        select = select.join(table("bodies", "b", database), on=on, join_type="LEFT", copy=False)
    in_range = exp.and_(
        exp.EQ(this=column("workspace", "r"), expression=string(workspace)),
        exp.GTE(this=column("timestamp", "r"), expression=d.timestamp_literal(utc(start))),
        exp.LT(this=column("timestamp", "r"), expression=d.timestamp_literal(utc(end))),
    )
    select = select.where(in_range, copy=False).where(pattern.condition, copy=False)
    select = select.order_by(
        exp.Ordered(this=column("timestamp", "r"), desc=True),
        exp.Ordered(this=column("record_id", "r"), desc=True),
        copy=False,
    ).limit(limit, copy=False)
    if offset:
        select = select.offset(offset, copy=False)
    kinds = [c.type.value for c in schema.record_columns]
    kinds += ["json"] * (len(names) - len(kinds))
    return CompiledQuery(
        sql=select.sql(dialect=d.name),
        fields=tuple(names),
        kinds=tuple(kinds),
        tree=select,
        dialect=d.name,
        aggregated=False,
    )


class _PatternCompiler:
    def __init__(
        self, text: str, dialect: SqlDialect, schema: RecordSchema, bodies_allowed: bool = True
    ) -> None:
        self.text = text
        self.bodies_allowed = bodies_allowed
        self.d = dialect
        self.resolver = FieldResolver(schema, dialect)
        self.tokens = self.tokenize()
        self.i = 0
        self.bodies = False
        self.rel = Relation("r", "b" if bodies_allowed else None)

    def error(self, reason: str, token: _Tok) -> QueryError:
        return QueryError(reason, self.text, token.span, field=FIELD)

    def tokenize(self) -> list[_Tok]:
        out = []
        pos = 0
        while pos < len(self.text):
            match = _TOKEN.match(self.text, pos)
            if match is None:
                bad = _Tok("?", self.text[pos], Span(pos, pos + 1))
                raise self.error(f"unexpected character {self.text[pos]!r}", bad)
            kind = match.lastgroup or "?"
            if kind != "space":
                out.append(_Tok(kind, match.group(), Span(pos, match.end())))
            pos = match.end()
        out.append(_Tok("end", "", Span(len(self.text), len(self.text))))
        return out

    def peek(self) -> _Tok:
        return self.tokens[self.i]

    def take(self, kind: str, text: str | None = None, what: str = "") -> _Tok:
        token = self.peek()
        if token.kind != kind or (text is not None and token.text != text):
            found = "the end of the pattern" if token.kind == "end" else repr(token.text)
            raise self.error(f"expected {what or text or kind}, found {found}", token)
        self.i += 1
        return token

    def at(self, kind: str, text: str | None = None) -> bool:
        token = self.peek()
        return token.kind == kind and (text is None or token.text == text)

    def word(self, *words: str) -> bool:
        return self.peek().kind == "word" and self.peek().text.upper() in words

    def compile(self) -> FilterPattern:
        if self.at("end"):
            return FilterPattern(exp.Boolean(this=True), False, self.d.name)
        if not self.at("op", "{"):
            raise self.error(
                'expected { to start a JSON filter pattern, such as { $.modelId = "x" }',
                self.peek(),
            )
        self.take("op", "{")
        condition = self.disjunction(0)
        self.take("op", "}", "&&, || or }")
        self.take("end", what="the end of the pattern")
        return FilterPattern(condition, self.bodies, self.d.name)

    def disjunction(self, depth: int) -> exp.Expr:
        left = self.conjunction(depth)
        while self.at("op", "||"):
            self.i += 1
            left = exp.Or(this=left, expression=self.conjunction(depth))
        return exp.Paren(this=left)

    def conjunction(self, depth: int) -> exp.Expr:
        left = self.term(depth)
        while self.at("op", "&&"):
            self.i += 1
            left = exp.And(this=left, expression=self.term(depth))
        return left

    def term(self, depth: int) -> exp.Expr:
        if self.at("op", "("):
            if depth > 32:
                raise self.error("the pattern is nested too deeply", self.peek())
            self.i += 1
            inner = self.disjunction(depth + 1)
            self.take("op", ")", "&&, || or )")
            return inner
        token = self.take("selector", what="a selector such as $.modelId")
        path = tuple(re.findall(r"\.([^.\[]+)|\[([0-9]+)\]", token.text[1:]))
        parts = tuple(a or b for a, b in path)
        if not parts:
            raise self.error("the selector needs a property, such as $.modelId", token)
        if touches_bodies(parts):
            if not self.bodies_allowed:
                raise refusal(parts, self.text, token.span, field=FIELD)
            self.bodies = True
        value = self.resolver.resolve(parts, self.rel)
        if value is None:
            raise self.error(f"unknown selector {token.text}", token)
        if self.word("IS"):
            self.i += 1
            return self.is_test(parts, value)
        if self.word("NOT"):
            self.i += 1
            if not self.word("EXISTS"):
                raise self.error("expected EXISTS after NOT", self.peek())
            self.i += 1
            return exp.Paren(
                this=exp.And(
                    this=is_null(value.sql), expression=exp.Not(this=self.explicit_null(parts))
                )
            )
        if self.word("EXISTS"):
            self.i += 1
            return exp.Paren(
                this=exp.Or(this=not_null(value.sql), expression=self.explicit_null(parts))
            )
        op = self.peek()
        if op.kind != "op" or op.text not in _CMP:
            raise self.error("expected = != < <= > >=, IS, EXISTS or NOT EXISTS", op)
        self.i += 1
        return self.comparison(op, value)

    def is_test(self, parts: tuple[str, ...], value: Typed) -> exp.Expr:
        token = self.peek()
        if self.word("NULL"):
            self.i += 1
            return self.explicit_null(parts)
        if self.word("TRUE", "FALSE"):
            self.i += 1
            flag = token.text.upper() == "TRUE"
            if value.kind is Kind.BOOL:
                return exp.EQ(this=value.sql, expression=exp.Boolean(this=flag))
            return exp.EQ(this=value.sql, expression=string("true" if flag else "false"))
        raise self.error("expected NULL, TRUE or FALSE after IS", token)

    def explicit_null(self, parts: tuple[str, ...]) -> exp.Expr:
        """Whether the record holds a JSON ``null`` at ``parts`` (kept in ``extra``, or in a
        body)."""
        for body_path, body_column in BODY_PATHS.items():
            if parts[:2] == body_path and len(parts) > 2:
                return self.d.json_is_null(column(body_column, "b"), parts[2:])
        return exp.func(
            "COALESCE", self.d.json_is_null(column("extra", "r"), parts), exp.Boolean(this=False)
        )

    def comparison(self, op: _Tok, value: Typed) -> exp.Expr:
        token = self.peek()
        cmp = _CMP[op.text]
        ordering = op.text not in ("=", "!=")
        if token.kind == "regex":
            self.i += 1
            if ordering:
                raise self.error("a %regex% goes with = or !=", token)
            regex, _ = check_regex(token.text[1:-1], self.text, token.span)
            return self.matching(op.text, value, self.d.regex_match(self.text_of(value), regex))
        if token.kind not in ("string", "word"):
            raise self.error('expected a value: a number, a "string" or %regex%', token)
        self.i += 1
        raw = _unquote(token.text) if token.kind == "string" else token.text
        number_ = number_of(raw) if token.kind == "word" else None
        if number_ is not None:
            if value.kind is Kind.TIMESTAMP:
                raise self.error("compare timestamps in the time range, not the pattern", token)
            kind_value = (
                value
                if value.kind.numeric
                else Typed(self.d.text_to_double(self.text_of(value)), Kind.FLOAT)
            )
            constant = literal(number_)
            return cmp(this=kind_value.sql, expression=constant.sql)
        if ordering:
            raise self.error(f"{op.text} needs a number", token)
        if "*" in raw:
            regex = "^" + ".*".join(escape(p) for p in raw.split("*")) + "$"
            return self.matching(
                op.text, value, self.d.regex_match(self.text_of(value), "(?s)" + regex)
            )
        return self.matching(
            op.text, value, exp.EQ(this=self.text_of(value), expression=string(raw))
        )

    def matching(self, op: str, value: Typed, test: exp.Expr) -> exp.Expr:
        if op == "=":
            return test
        return exp.Paren(
            this=exp.And(this=not_null(value.sql.copy()), expression=exp.Not(this=test))
        )

    def text_of(self, value: Typed) -> exp.Expr:
        sql = value.sql.copy()
        if value.kind.textual:
            return sql
        if value.kind is Kind.TIMESTAMP:
            return self.d.timestamp_text(sql)
        return self.d.to_text(sql)


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text[1:-1])
