"""Typed, append-only migrations, rendered for DuckDB and recorded in ``_migrations``.

A migration is a name and a tuple of operations. Names are never reused or edited; a change
to the schema is a new migration at the end of the list. Promoting a ``requestMetadata`` key
is a migration of its own, named after the key, so the list of promoted keys can grow.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from llmtrail.store.schema import BODY_COLUMNS, RECORD_COLUMNS, Column, RecordSchema, Type

DUCKDB_TYPES = {
    Type.STRING: "VARCHAR",
    Type.INT: "BIGINT",
    Type.BOOL: "BOOLEAN",
    Type.TIMESTAMP: "TIMESTAMPTZ",
    Type.MAP: "MAP(VARCHAR, VARCHAR)",
    Type.JSON: "VARCHAR",
}


@dataclass(frozen=True)
class CreateTable:
    table: str
    columns: tuple[Column, ...] = ()
    raw_columns: tuple[tuple[str, str], ...] = ()  # (name, DuckDB type) for bookkeeping tables


@dataclass(frozen=True)
class AddColumn:
    table: str
    column: Column


Operation = CreateTable | AddColumn

MIGRATIONS: tuple[tuple[str, tuple[Operation, ...]], ...] = (
    (
        "0001_records_bodies_state",
        (
            CreateTable("records", RECORD_COLUMNS),
            CreateTable("bodies", BODY_COLUMNS),
            CreateTable(
                "spool_position", raw_columns=(("name", "VARCHAR"), ("position", "VARCHAR"))
            ),
            CreateTable(
                "state",
                raw_columns=(("namespace", "VARCHAR"), ("key", "VARCHAR"), ("value", "VARCHAR")),
            ),
        ),
    ),
)


def render(op: Operation) -> str:
    if isinstance(op, CreateTable):
        cols = [f'"{c.name}" {DUCKDB_TYPES[c.type]}' for c in op.columns]
        cols += [f'"{name}" {type_}' for name, type_ in op.raw_columns]
        return f'CREATE TABLE "{op.table}" ({", ".join(cols)})'
    return f'ALTER TABLE "{op.table}" ADD COLUMN "{op.column.name}" {DUCKDB_TYPES[op.column.type]}'


def planned(schema: RecordSchema) -> list[tuple[str, tuple[Operation, ...]]]:
    plan = list(MIGRATIONS)
    for column in schema.record_columns[len(RECORD_COLUMNS) :]:
        plan.append((f"promote_metadata_key:{column.path[1]}", (AddColumn("records", column),)))
    return plan


def apply_migrations(conn: duckdb.DuckDBPyConnection, schema: RecordSchema) -> list[str]:
    """Apply every migration not yet recorded; returns the names applied now."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS _migrations (name VARCHAR PRIMARY KEY, applied_at TIMESTAMPTZ)"
    )
    done = {row[0] for row in conn.execute("SELECT name FROM _migrations").fetchall()}
    applied = []
    for name, ops in planned(schema):
        if name in done:
            continue
        conn.execute("BEGIN")
        try:
            for op in ops:
                conn.execute(render(op))
            conn.execute("INSERT INTO _migrations VALUES (?, now())", [name])
            conn.execute("COMMIT")
        except Exception:
            conn.execute("ROLLBACK")
            raise
        applied.append(name)
    return applied
