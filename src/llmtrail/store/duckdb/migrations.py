"""Typed, append-only migrations, rendered for DuckDB and recorded in ``_migrations``.

A migration is a name and a tuple of operations. Names are never reused or edited; a change
to the schema is a new migration at the end of the list. Promoting a ``requestMetadata`` key
is a migration of its own, named after the key, so the list of promoted keys can grow.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from llmtrail.metrics.dimensions import DIMENSIONS
from llmtrail.schema import BODY_COLUMNS, RECORD_COLUMNS, Column, RecordSchema, Type
from llmtrail.span import SPAN_COLUMNS
from llmtrail.store.duckdb.metrics import tables as metric_tables

COLUMN_BY_NAME = {c.name: c for c in RECORD_COLUMNS}

DUCKDB_TYPES = {
    Type.STRING: "VARCHAR",
    Type.INT: "BIGINT",
    Type.BOOL: "BOOLEAN",
    Type.TIMESTAMP: "TIMESTAMPTZ",
    Type.MAP: "MAP(VARCHAR, VARCHAR)",
    Type.JSON: "VARCHAR",
    Type.DECIMAL: "DECIMAL(38, 9)",
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


@dataclass(frozen=True)
class BackfillMetadataColumn:
    """Copy a ``requestMetadata`` key from the map into its promoted column."""

    column: Column


@dataclass(frozen=True)
class CreateMetricViews:
    """Have the engine roll records up as they are inserted: on ClickHouse, materialized
    views from ``records`` into the rollup tables (`llmtrail.store.clickhouse.metrics`),
    written from the records' columns when it runs, so promoting a dimension's metadata key
    runs it again. Nothing on DuckDB, whose record store writes the rollups in the batch's
    own transaction."""


Operation = CreateTable | AddColumn | BackfillMetadataColumn | CreateMetricViews
# requestMetadata keys that are dimensions: promoting one re-creates the metric views
_DIMENSION_KEYS = frozenset(d.metadata_key for d in DIMENSIONS if d.metadata_key)

MIGRATIONS: tuple[tuple[str, tuple[Operation, ...]], ...] = (
    (
        "0001_records_bodies_state",
        (
            CreateTable("records", tuple(c for c in RECORD_COLUMNS if c.since is None)),
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
    ("0002_identity_type", (AddColumn("records", COLUMN_BY_NAME["identity_type"]),)),
    ("0003_spans", (CreateTable("spans", SPAN_COLUMNS),)),
    (
        "0004_cost_profile_characters",
        tuple(
            AddColumn("records", c)
            for c in RECORD_COLUMNS
            if c.since == "0004_cost_profile_characters"
        ),
    ),
    (
        "0005_metric_rollups",
        tuple(CreateTable(name, raw_columns=columns) for name, columns in metric_tables()),
    ),
    ("0006_metric_views", (CreateMetricViews(),)),
)


def render(op: Operation) -> tuple[str, list[str]] | None:
    """The DuckDB statement for ``op`` and its bound parameters; None for nothing to do."""
    if isinstance(op, CreateMetricViews):
        return None
    if isinstance(op, BackfillMetadataColumn):
        name = op.column.name
        return f'UPDATE records SET "{name}" = request_metadata[?]', [op.column.path[1]]
    if isinstance(op, CreateTable):
        cols = [f'"{c.name}" {DUCKDB_TYPES[c.type]}' for c in op.columns]
        cols += [f'"{name}" {type_}' for name, type_ in op.raw_columns]
        return f'CREATE TABLE "{op.table}" ({", ".join(cols)})', []
    type_ = DUCKDB_TYPES[op.column.type]
    return f'ALTER TABLE "{op.table}" ADD COLUMN "{op.column.name}" {type_}', []


def planned(schema: RecordSchema) -> list[tuple[str, tuple[Operation, ...]]]:
    plan = list(MIGRATIONS)
    for column in schema.record_columns[len(RECORD_COLUMNS) :]:
        ops: tuple[Operation, ...] = (AddColumn("records", column), BackfillMetadataColumn(column))
        if column.path[1] in _DIMENSION_KEYS:
            ops += (CreateMetricViews(),)
        plan.append((f"promote_metadata_key:{column.path[1]}", ops))
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
                statement = render(op)
                if statement is not None:
                    conn.execute(*statement)
            conn.execute("INSERT INTO _migrations VALUES (?, now())", [name])
            conn.execute("COMMIT")
        except Exception:
            conn.execute("ROLLBACK")
            raise
        applied.append(name)
    return applied


def promoted_keys(conn: duckdb.DuckDBPyConnection) -> list[str]:
    """Every ``requestMetadata`` key ever promoted in this database, in promotion order."""
    prefix = "promote_metadata_key:"
    rows = conn.execute(
        "SELECT name FROM _migrations WHERE starts_with(name, ?) ORDER BY applied_at, name",
        [prefix],
    ).fetchall()
    return [str(row[0])[len(prefix) :] for row in rows]
