"""`Query` → one SQL statement for DuckDB or ClickHouse.

The pipeline is compiled stage by stage. A stage is a ``SELECT`` under construction plus
the names the query defined so far (`Scope`). Commands that act per row (``fields``,
``filter``, ``parse``, ``display``) fold into the current stage: a defined field is inlined
where it is used. Commands that change the set of rows wrap the stage in a subquery and
continue outside it: ``stats`` (``GROUP BY``), ``unnest`` (a row per element), ``dedup`` (a
``row_number()`` window) and any row command after ``limit``. A wrapped record-level stage
passes every stored column through, so later commands can still name any record field.

Every statement filters ``workspace`` and ``[start, end)`` on ``timestamp`` first — the
innermost ``SELECT`` over ``records``, which every later stage wraps, so no filter, ``SOURCE``,
``dedup`` or ``parse`` reaches a row of another workspace — joins ``bodies`` only when the
query touches a body (or ``@message``) and the caller may read bodies (``bodies_allowed``;
`llmtrail.query.body_access` refuses the query otherwise), and ends in a total order:
the query's ``sort`` (default ``@timestamp desc``, or the group keys after ``stats``), then
``@timestamp desc, recordId desc`` (or the group keys), ``NULL`` last, so that ``limit`` and
paging with ``offset`` are deterministic on both engines. Output columns are named ``c0, c1,
…``; `CompiledQuery.fields` gives their CloudWatch names, so no user text is ever an
identifier in the SQL.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlglot import exp

from llmtrail.query import aggregates, functions  # noqa: F401  (register their builders)
from llmtrail.query.ast import (
    Command,
    Dedup,
    Display,
    Field,
    Fields,
    Filter,
    Limit,
    Parse,
    Query,
    Sort,
    Source,
    Stats,
    Unnest,
)
from llmtrail.query.body_access import reads_bodies, refuse_bodies
from llmtrail.query.dialects import DIALECTS, SqlDialect, is_null, number, string
from llmtrail.query.errors import QueryError, Span
from llmtrail.query.expressions import ExprCompiler, Scope, key_of
from llmtrail.query.fields import FieldResolver
from llmtrail.query.keys import group_key, needs_bound
from llmtrail.query.kinds import Kind, Typed
from llmtrail.query.ordering import total_order
from llmtrail.query.parser import parse_query
from llmtrail.query.regexes import check_regex
from llmtrail.query.relations import Relation, column, identifier, table, table_alias
from llmtrail.query.sources import resolve_sources
from llmtrail.schema import BODY_COLUMNS, RecordSchema, Type

DEFAULT_LIMIT = 10_000
MAX_STATS = 2


@dataclass(frozen=True)
class CompiledQuery:
    """One query compiled for one dialect.

    ``sql`` is the statement (every value inlined as a literal); its result columns are, in
    order, ``fields`` (the names CloudWatch would show: ``sum(input.inputTokenCount)``, an
    alias, ``@timestamp``) with ``kinds`` (``string int float decimal bool timestamp any``).
    ``aggregated`` says whether the rows are ``stats`` results rather than records."""

    sql: str
    fields: tuple[str, ...]
    kinds: tuple[str, ...]
    tree: exp.Select
    dialect: str
    aggregated: bool


@dataclass
class _Stage:
    select: exp.Select
    scope: Scope
    shown: list[tuple[str, str]] = field(default_factory=list)  # (name, key) from fields
    display: list[tuple[str, str]] | None = None
    order: list[tuple[Typed, bool]] | None = None
    limit: int | None = None
    grouped: bool = False
    group_keys: list[Typed] = field(default_factory=list)
    stats_shown: list[tuple[str, str]] = field(default_factory=list)
    elements: list[Typed] = field(default_factory=list)  # unnested values: tie-breakers


def compile_query(
    query: str | Query,
    *,
    dialect: str,
    schema: RecordSchema,
    workspace: str,
    start: datetime,
    end: datetime,
    limit: int = DEFAULT_LIMIT,
    offset: int = 0,
    database: str | None = None,
    bodies_allowed: bool = True,
    log_groups: Collection[str] = (),
) -> CompiledQuery:
    """Compile a Logs Insights query (text or parsed) over ``workspace``'s records with
    ``start <= timestamp < end``, returning at most ``limit`` rows from ``offset`` on.
    ``database`` qualifies the ``records`` and ``bodies`` tables when given. Raises
    `QueryError` for a query that cannot run, naming line and column, and `Forbidden` for
    one that reads a body when ``bodies_allowed`` is false (the caller's key lacks the
    ``bodies`` permission). ``log_groups`` are the workspace's own log group names, which
    ``SOURCE`` accepts besides Bedrock's."""
    if dialect not in DIALECTS:
        raise ValueError(f"dialect must be one of {', '.join(DIALECTS)}, got {dialect!r}")
    if limit < 1 or offset < 0:
        raise ValueError("limit must be at least 1 and offset at least 0")
    parsed = parse_query(query) if isinstance(query, str) else query
    if not bodies_allowed:
        refuse_bodies(parsed)
    compiler = _Compiler(parsed, DIALECTS[dialect], schema, database, bodies_allowed)
    compiler.log_groups = tuple(log_groups)
    return compiler.compile(workspace, utc(start), utc(end), limit, offset)


def utc(value: datetime) -> datetime:
    """``value`` in UTC; a naive value is taken to be UTC already."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class _Compiler:
    def __init__(
        self,
        query: Query,
        dialect: SqlDialect,
        schema: RecordSchema,
        database: str | None,
        bodies_allowed: bool = True,
    ) -> None:
        self.query = query
        self.database = database
        self.d = dialect
        self.schema = schema
        self.c = ExprCompiler(query.text, dialect, FieldResolver(schema, dialect))
        self.counter = itertools.count()
        self.bodies = bodies_allowed and reads_bodies(query)  # never joined otherwise
        self.log_groups: tuple[str, ...] = ()

    def error(self, reason: str, node: Command) -> QueryError:
        return QueryError(reason, self.query.text, node.span)

    def fresh(self, prefix: str) -> str:
        return f"{prefix}{next(self.counter)}"

    # -- the statement ----------------------------------------------------------------------
    def compile(
        self, workspace: str, start: datetime, end: datetime, limit: int, offset: int
    ) -> CompiledQuery:
        self.check_order()
        sources = [c for c in self.query.commands if isinstance(c, Source)]
        resolve_sources(sources, self.query.text, self.log_groups)  # the records: the only set
        stage = self.base(workspace, start, end)
        for command in self.query.commands:
            stage = HANDLERS[type(command)](self, stage, command)
        return self.finish(stage, limit, offset)

    def check_order(self) -> None:
        commands = self.query.commands
        for i, command in enumerate(commands):
            if isinstance(command, Dedup):
                for later in commands[i + 1 :]:
                    if not isinstance(later, Limit):
                        raise self.error("only limit may follow dedup", later)
        stats = [i for i, c in enumerate(commands) if isinstance(c, Stats)]
        if len(stats) > MAX_STATS:
            raise self.error("a query may have at most two stats commands", commands[stats[2]])
        if len(stats) == 2:
            for command in commands[: stats[1]]:
                if isinstance(command, Sort | Limit):
                    raise self.error(
                        "sort and limit must come after the second stats command", command
                    )

    def base(self, workspace: str, start: datetime, end: datetime) -> _Stage:
        d = self.d
        select = exp.select().from_(table("records", "r", self.database), copy=False)
        rel = Relation("r", "b" if self.bodies else None)
        if self.bodies:
            bodies: exp.Expr = table("bodies", "b", self.database)
            if d.name == "clickhouse":  # join only the bodies of the records in range
                in_range = (
                    exp.select(column("record_id", "r"))
                    .from_(table("records", "r", self.database), copy=False)
                    .where(self.in_range("r", workspace, start, end), copy=False)
                )
                names = [c.name for c in BODY_COLUMNS]
                inner = (
                    exp.select(*(column(n, "b") for n in names))
                    .from_(table("bodies", "b", self.database), copy=False)
                    .where(
                        exp.In(this=column("record_id", "b"), query=exp.Subquery(this=in_range)),
                        copy=False,
                    )
                )
                bodies = exp.Subquery(this=inner, alias=table_alias("b"))
            on = exp.EQ(this=column("record_id", "b"), expression=column("record_id", "r"))
            select = select.join(bodies, on=on, join_type="LEFT", copy=False)
        select = select.where(self.in_range("r", workspace, start, end), copy=False)
        return _Stage(select, Scope(rel))

    def in_range(self, table: str, workspace: str, start: datetime, end: datetime) -> exp.Expr:
        d = self.d
        return exp.and_(
            exp.EQ(this=column("workspace", table), expression=string(workspace)),
            exp.GTE(this=column("timestamp", table), expression=d.timestamp_literal(start)),
            exp.LT(this=column("timestamp", table), expression=d.timestamp_literal(end)),
        )

    # -- commands ---------------------------------------------------------------------------
    def fields(self, stage: _Stage, cmd: Fields) -> _Stage:
        for item in cmd.items:
            value = self.c.value(item.expr, stage.scope)
            key = item.alias or key_of(item.expr)
            stage.scope.names[key] = value
            if key not in [k for _, k in stage.shown]:
                stage.shown.append((item.name, key))
        return stage

    def display(self, stage: _Stage, cmd: Display) -> _Stage:
        stage.display = []
        for item in cmd.items:
            key = item.alias or key_of(item.expr)
            stage.scope.names[key] = self.c.value(item.expr, stage.scope)
            stage.display.append((item.name, key))
        return stage

    def filter(self, stage: _Stage, cmd: Filter) -> _Stage:
        if stage.limit is not None:
            stage = self.wrap(stage)[0]
        condition = self.c.value(cmd.condition, stage.scope)
        test = self.c.to_condition(condition, cmd.condition)
        stage.select = stage.select.where(test, copy=False)
        return stage

    def stats(self, stage: _Stage, cmd: Stats) -> _Stage:
        if stage.limit is not None:
            stage = self.wrap(stage)[0]
        scope = stage.scope
        groups = [(p, self.c.value(p.expr, scope)) for p in cmd.by]
        aggs = [(p, self.c.aggregate_value(p.expr, scope)) for p in cmd.aggregates]
        alias = self.fresh("s")
        inner = stage.select
        names: dict[str, Typed] = {}
        shown: list[tuple[str, str]] = []
        keys: list[Typed] = []
        for p, value in groups + aggs:
            grouping = any(p is g for g, _ in groups)
            name = self.fresh("g" if grouping else "a")
            shown_value = value.fresh().sql
            if grouping and needs_bound(value):  # grouped by a bounded key: shown in full
                shown_value = self.d.any_value(shown_value)
            inner = inner.select(exp.alias_(shown_value, name, quoted=True), copy=False)
            key = p.alias or key_of(p.expr)
            names[key] = value.moved(column(name, alias))
            shown.append((p.name, key))
            if grouping:
                keys.append(names[key])
        if groups:
            inner = inner.group_by(*(self.group_key(v) for _, v in groups), copy=False)
        select = exp.select().from_(exp.Subquery(this=inner, alias=table_alias(alias)), copy=False)
        return _Stage(select, Scope(None, names), grouped=True, group_keys=keys, stats_shown=shown)

    def sort(self, stage: _Stage, cmd: Sort) -> _Stage:
        if stage.limit is not None:
            stage = self.wrap(stage)[0]
        stage.order = [(self.c.value(k.expr, stage.scope), k.descending) for k in cmd.keys]
        return stage

    def limit(self, stage: _Stage, cmd: Limit) -> _Stage:
        stage.limit = cmd.count if stage.limit is None else min(stage.limit, cmd.count)
        return stage

    def dedup(self, stage: _Stage, cmd: Dedup) -> _Stage:
        if stage.limit is not None:
            stage = self.wrap(stage)[0]
        keys = [self.c.value(f, stage.scope) for f in cmd.fields]
        window = exp.Window(
            this=exp.RowNumber(),
            partition_by=[self.group_key(k) for k in keys],
            order=exp.Order(expressions=self.order_terms(stage)),
        )
        stage, (row, *key_columns) = self.wrap(stage, [window] + [k.sql for k in keys])
        keep: exp.Expr = exp.EQ(this=row, expression=number(1))
        for key in key_columns:
            keep = exp.Or(this=keep, expression=is_null(key.copy()))
        stage.select = stage.select.where(exp.Paren(this=keep), copy=False)
        return stage

    def group_key(self, value: Typed) -> exp.Expr:
        """What ``stats … by`` and ``dedup`` group ``value`` by (`llmtrail.query.keys`)."""
        sql = value.fresh().sql
        return group_key(self.d, sql) if needs_bound(value) else sql

    def parse(self, stage: _Stage, cmd: Parse) -> _Stage:
        source = self.c.to_text(self.c.value(cmd.source, stage.scope))
        if cmd.kind == "regex":
            groups = check_regex(cmd.pattern, self.query.text, cmd.span)[1]
            indexes = [groups[name] for name in cmd.names]
        else:
            indexes = list(range(1, len(cmd.names) + 1))
        for name, index in zip(cmd.names, indexes, strict=True):
            value = self.d.regex_group(source.copy(), cmd.regex, index)
            stage.scope.names[name] = Typed(value, Kind.ANY)
        return stage

    def unnest(self, stage: _Stage, cmd: Unnest) -> _Stage:
        if stage.limit is not None:
            stage = self.wrap(stage)[0]
        raw = self.list_source(stage, cmd.source)
        stage, (element,) = self.wrap(stage, [self.d.unnest(raw)])
        value = Typed(element, Kind.JSON)
        stage.scope.names[cmd.alias] = value
        stage.elements.append(value)
        return stage

    def list_source(self, stage: _Stage, source: Field) -> exp.Expr:
        names = stage.scope.names
        path = source.path
        for depth in range(len(path), 0, -1):
            value = names.get(".".join(path[:depth]))
            if value is not None and value.kind is Kind.JSON:
                doc = value.fresh().sql
                return doc if depth == len(path) else self.d.json_raw(doc, path[depth:])
            if value is not None:
                break
        rel = stage.scope.rel
        raw = None
        if rel is not None and ".".join(path) not in names:
            raw = self.c.resolver.raw(path, rel)
        if raw is None:
            dotted = ".".join(path)
            raise QueryError(
                f"unnest needs a list from the record or from another unnest; {dotted} is not one",
                self.query.text,
                source.span,
            )
        return raw

    # -- wrapping ---------------------------------------------------------------------------
    def wrap(
        self, stage: _Stage, additions: list[exp.Expr] | None = None
    ) -> tuple[_Stage, list[exp.Column]]:
        """Make ``stage`` a subquery; the new stage sees the same names (and every record
        column), plus one column for each of ``additions``."""
        alias = self.fresh("q")
        inner = stage.select
        rel = stage.scope.rel
        if rel is not None:
            inner = inner.select(
                exp.Column(this=exp.Star(), table=identifier(rel.records)), copy=False
            )
            if rel.bodies is not None and rel.bodies != rel.records:
                for col in BODY_COLUMNS:
                    if col.type is Type.JSON:
                        inner = inner.select(column(col.name, rel.bodies), copy=False)

        def carry(value: Typed) -> Typed:
            if value.is_constant:
                return value.fresh()
            sql = value.sql
            if (
                rel is not None
                and isinstance(sql, exp.Column)
                and sql.table in (rel.records, rel.bodies)
            ):
                return value.moved(column(sql.name, alias))  # passed through already
            name = self.fresh("c")
            nonlocal inner
            inner = inner.select(exp.alias_(value.fresh().sql, name, quoted=True), copy=False)
            return value.moved(column(name, alias))

        names = {key: carry(value) for key, value in stage.scope.names.items()}
        by_id = {id(v): names[k] for k, v in stage.scope.names.items()}
        order = [(by_id.get(id(v)) or carry(v), desc) for v, desc in stage.order or []]
        group_keys = [by_id.get(id(v)) or carry(v) for v in stage.group_keys]
        elements = [by_id.get(id(v)) or carry(v) for v in stage.elements]
        added = []
        for addition in additions or []:
            name = self.fresh("x")
            inner = inner.select(exp.alias_(addition, name, quoted=True), copy=False)
            added.append(column(name, alias))
        if stage.limit is not None:
            terms = self.order_terms(stage)
            if terms:
                inner = inner.order_by(*terms, copy=False)
            inner = inner.limit(stage.limit, copy=False)
        select = exp.select().from_(exp.Subquery(this=inner, alias=table_alias(alias)), copy=False)
        new_rel = None if rel is None else Relation(alias, alias if rel.bodies else None)
        wrapped = _Stage(
            select,
            Scope(new_rel, names),
            shown=stage.shown,
            display=stage.display,
            order=order or None,
            grouped=stage.grouped,
            group_keys=group_keys,
            stats_shown=stage.stats_shown,
            elements=elements,
        )
        return wrapped, added

    # -- the end ----------------------------------------------------------------------------
    def finish(self, stage: _Stage, limit: int, offset: int) -> CompiledQuery:
        outputs = stage.display
        if outputs is None:
            outputs = stage.stats_shown + stage.shown if stage.grouped else stage.shown
        if not outputs:
            for name in ("@timestamp", "@message"):
                stage.scope.names.setdefault(
                    name, self.c.value(Field((name,), _START), stage.scope)
                )
            outputs = [("@timestamp", "@timestamp"), ("@message", "@message")]
        select = stage.select
        kinds = []
        for i, (_, key) in enumerate(outputs):
            value = stage.scope.names[key].fresh()
            sql = value.sql
            if value.kind is Kind.JSON:
                sql, value = self.d.json_text(sql, ()), Typed(sql, Kind.ANY)
            elif value.kind is Kind.BOOL:
                sql = self.d.to_bool(sql)
            select = select.select(exp.alias_(sql, f"c{i}", quoted=True), copy=False)
            kinds.append(value.kind.value)
        terms = self.order_terms(stage)
        if terms:
            select = select.order_by(*terms, copy=False)
        rows = limit if stage.limit is None else min(limit, stage.limit)
        select = select.limit(rows, copy=False)
        if offset:
            select = select.offset(offset, copy=False)
        _unshare(select)
        return CompiledQuery(
            sql=select.sql(dialect=self.d.name),
            fields=tuple(name for name, _ in outputs),
            kinds=tuple(kinds),
            tree=select,
            dialect=self.d.name,
            aggregated=stage.grouped,
        )

    def order_terms(self, stage: _Stage) -> list[exp.Ordered]:
        """The stage's sort, then the tie-breakers that make the order total."""
        keys = list(stage.order or [])
        if stage.grouped:
            breakers = [(k, False) for k in stage.group_keys]
        else:
            rel = stage.scope.rel
            assert rel is not None
            ts = Typed(column("timestamp", rel.records), Kind.TIMESTAMP)
            rid = Typed(column("record_id", rel.records), Kind.STRING, short=True)
            keys = keys or [(ts, True)]
            breakers = [(ts, True), (rid, True)] + [(e, False) for e in stage.elements]
        return total_order(self.d, keys, breakers)


# The dispatch table of pipe commands.
HANDLERS: dict[type, Callable[[_Compiler, _Stage, Any], _Stage]] = {
    Fields: _Compiler.fields,
    Display: _Compiler.display,
    Filter: _Compiler.filter,
    Stats: _Compiler.stats,
    Sort: _Compiler.sort,
    Limit: _Compiler.limit,
    Dedup: _Compiler.dedup,
    Parse: _Compiler.parse,
    Unnest: _Compiler.unnest,
    Source: lambda compiler, stage, command: stage,  # resolved before the first stage
}
_START = Span(0, 0)


def _unshare(tree: exp.Expr) -> None:
    """Copy any node that appears twice in ``tree`` so that each has one parent."""
    seen: set[int] = set()
    stack = [tree]
    while stack:
        node = stack.pop()
        for key, value in list(node.args.items()):
            children = value if isinstance(value, list) else [value]
            for index, child in enumerate(children):
                if not isinstance(child, exp.Expr):
                    continue
                if id(child) in seen:
                    child = child.copy()
                    if isinstance(value, list):
                        value[index] = child
                        child.parent, child.arg_key, child.index = node, key, index
                    else:
                        node.set(key, child)
                seen.add(id(child))
                stack.append(child)
