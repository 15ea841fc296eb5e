"""Where a compiled stage reads its columns.

The first stage reads ``records`` (alias ``r``) and, when the query touches bodies,
``bodies`` (alias ``b``); a stage that wraps another reads every column through the
subquery's alias. Column references are always quoted and qualified, so no column name is
ever mistaken for a keyword or for another relation's column.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp


@dataclass(frozen=True)
class Relation:
    """Table aliases of the record columns and of the body columns (None: not joined)."""

    records: str
    bodies: str | None


def column(name: str, table: str) -> exp.Column:
    """A quoted, qualified column reference."""
    return exp.Column(
        this=exp.to_identifier(name, quoted=True), table=exp.to_identifier(table, quoted=True)
    )


def identifier(name: str) -> exp.Identifier:
    """A quoted identifier."""
    return exp.to_identifier(name, quoted=True)


def table(name: str, alias: str, database: str | None = None) -> exp.Table:
    """``[database.]name AS alias``, all quoted."""
    db = identifier(database) if database else None
    return exp.Table(this=identifier(name), db=db, alias=table_alias(alias))


def table_alias(name: str) -> exp.TableAlias:
    return exp.TableAlias(this=identifier(name))
