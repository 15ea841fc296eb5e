"""Read models as syntax trees: the building blocks the analytics and report read models
(cost by dimension, month spend, error groups, timeline rows, report figures) share.

A read model builds one ``SELECT`` with sqlglot from the schema's column names and the
dialect builders (`llmtrail.query.dialects`), every value a literal of the tree, and a
`Reader` renders it for its engine and runs it there through the `QueryEngine` interface —
the same path the query language takes, so a read model answers alike on DuckDB and on
ClickHouse and no engine's SQL is written outside the store.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlglot import exp

from llmtrail.query.compiler import utc
from llmtrail.query.dialects import DIALECTS, SqlDialect, number, string
from llmtrail.query.dimensions import dimension_expr
from llmtrail.query.relations import Relation, column, table
from llmtrail.schema import RecordSchema
from llmtrail.store.interfaces import QueryEngine
from llmtrail.store.read_engine import read_engine

__all__ = ["ReadSource", "Reader", "column", "count_if", "number", "string"]

# What a read model is given: a `QueryEngine`, or a DuckDB `Database` (`read_engine`).
ReadSource = Any


@dataclass(frozen=True)
class Reader:
    """One engine's side of a read model: its dialect, schema and tables, and `rows`."""

    engine: QueryEngine

    @classmethod
    def of(cls, source: Any) -> Reader:
        """The reader of a `QueryEngine`, or of a DuckDB `Database` (`read_engine`)."""
        return cls(read_engine(source))

    @property
    def d(self) -> SqlDialect:
        return DIALECTS[self.engine.dialect]

    @property
    def schema(self) -> RecordSchema:
        return self.engine.schema

    def table(self, name: str, alias: str) -> exp.Table:
        """``records``, ``spans``, … qualified with the engine's database where it has one."""
        return table(name, alias, getattr(self.engine, "database", None))

    def in_range(
        self,
        alias: str,
        workspace: str,
        start: datetime | None,
        end: datetime | None,
        at: str = "timestamp",
    ) -> exp.Expr:
        """``workspace = … AND at >= start AND at < end`` (a missing bound is left out)."""
        terms: list[exp.Expr] = [
            exp.EQ(this=column("workspace", alias), expression=string(workspace))
        ]
        if start is not None:
            lit = self.d.timestamp_literal(utc(start))
            terms.append(exp.GTE(this=column(at, alias), expression=lit))
        if end is not None:
            lit = self.d.timestamp_literal(utc(end))
            terms.append(exp.LT(this=column(at, alias), expression=lit))
        return exp.and_(*terms)

    def dimension(self, name: str, alias: str = "r") -> exp.Expr:
        """The dimension ``name`` (`llmtrail.query.dimensions`) of each row, as text."""
        return dimension_expr(name, self.schema, self.d, Relation(alias, None))

    def sql(self, select: exp.Expr) -> str:
        return select.sql(dialect=self.d.name)

    def rows(self, select: exp.Expr) -> list[tuple[Any, ...]]:
        """Run ``select`` on the engine; its rows."""
        return self.engine.execute(self.sql(select), f"read-{uuid.uuid4().hex}").rows

    def dicts(self, select: exp.Expr, names: Sequence[str]) -> list[dict[str, Any]]:
        """Run ``select``; each row as a dict of ``names`` in column order."""
        return [dict(zip(names, row, strict=True)) for row in self.rows(select)]


def count_if(condition: exp.Expr) -> exp.Expr:
    """How many rows of the group meet ``condition`` (0 for none, on both engines)."""
    one = exp.Case().when(condition, number(1)).else_(number(0))
    return exp.Coalesce(this=exp.Sum(this=one), expressions=[number(0)])
