"""The typed migrations of `llmtrail.store.duckdb.migrations`, rendered for ClickHouse.

The operations and the list of migrations are shared with DuckDB, so both backends hold the
same tables and columns under the same migration names; this module adds only what is
ClickHouse's own: column types (``LowCardinality``, ``Nullable``, ``DateTime64(6, 'UTC')``),
each table's engine, partition and sort key, and skip indexes.

* ``records``: ``PARTITION BY toYYYYMM(timestamp) ORDER BY (workspace, toDate(timestamp),
  model_id, timestamp)``. Every column the record may lack is ``Nullable`` (as in DuckDB), so
  the sort key needs ``allow_nullable_key``. No unique key: duplicates are kept out by the
  writer (see `replay`). A bloom filter on ``request_id`` serves ``get``; a min-max index on
  ``ingested_at`` lets "what arrived since" skip old parts, whose rows arrived long ago.
* ``bodies``: sorted by ``record_id`` (UUIDv7, so time-ordered), fetched by ``IN``.
* ``spans``: sorted by ``(workspace, trace_id, span_id)``, read by trace.
* ``spool_position`` and ``state``: ``ReplacingMergeTree`` keyed like the DuckDB tables'
  rows; read with ``FINAL``, the last row written for a key wins.
* ``metric_rollups`` and ``metric_histograms``: ``AggregatingMergeTree`` sorted by the whole
  series key, each measure a ``SimpleAggregateFunction`` of how its deltas merge, so merges
  fold the rows materialized views add per insert (`metrics`); they remember insert blocks
  like ``records``, since a de-duplicated insert of records is de-duplicated in them too.
  The staging tables and ``metric_dimension_values`` exist but stay empty on ClickHouse.

`CLICKHOUSE_MIGRATIONS` follow the shared ones: what only ClickHouse has (codecs, skip
indexes, ``LowCardinality`` where the shared columns did not ask for it).

A ``Map`` cannot be ``Nullable``: an absent map is stored empty (`columns` keeps the
difference). ClickHouse has no transactions around DDL, so every statement can run twice
(``IF NOT EXISTS``, a backfill that overwrites with the same values) and a migration's name is
recorded after its statements: one cut short runs again whole, and servers starting at once
may both apply one harmlessly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from clickhouse_connect.driver.binding import quote_identifier
from clickhouse_connect.driver.client import Client

from llmtrail.schema import RECORD_COLUMNS, Column, RecordSchema, Type
from llmtrail.store.duckdb.metrics import DIM_COLUMNS, MEASURES
from llmtrail.store.duckdb.migrations import (
    AddColumn,
    BackfillMetadataColumn,
    CreateMetricViews,
    CreateTable,
    Operation,
    planned,
)

CLICKHOUSE_TYPES = {
    Type.STRING: "String",
    Type.INT: "Int64",
    Type.BOOL: "Bool",
    Type.TIMESTAMP: "DateTime64(6, 'UTC')",
    Type.MAP: "Map(String, String)",
    Type.JSON: "String",
    Type.DECIMAL: "Decimal(38, 9)",
}
# Bookkeeping tables name their columns' types in DuckDB's words (see `CreateTable`).
RAW_TYPES = {
    "VARCHAR": "String",
    "BIGINT": "Int64",
    "BOOLEAN": "Bool",
    "TIMESTAMPTZ": "DateTime64(6, 'UTC')",
    "INTEGER": "Int32",
    "DECIMAL(38, 9)": "Decimal(38, 9)",
}
# How many recent insert blocks each table remembers for insert de-duplication tokens.
DEDUPLICATION_WINDOW = 1000


@dataclass(frozen=True)
class TableLayout:
    """What ClickHouse needs beyond the columns: engine, keys, skip indexes, settings."""

    engine: str
    order_by: str
    partition_by: str | None = None
    indexes: tuple[str, ...] = ()
    settings: tuple[tuple[str, int], ...] = ()
    nullable: frozenset[str] = frozenset()  # bookkeeping columns that may hold NULL
    low_cardinality: frozenset[str] = frozenset()  # bookkeeping strings of few values
    aggregates: tuple[tuple[str, str], ...] = ()  # (column, how rows merge) of an aggregating table


# The metric rollup tables hold the same columns on both backends; on ClickHouse, views fill
# them as records are inserted (`metrics`). A dimension outside a row's set holds ''.
_DIMS = frozenset(
    {
        "model_id",
        "operation",
        "provider",
        "application_name",
        "tenant_id",
        "team",
        "cost_center",
        "inference_profile",
        "status",
        "error_type",
    }
)
_EXTREMES = frozenset({"latency_min", "latency_max", "ttft_min", "ttft_max"})
_SERIES = ", ".join(c for c in DIM_COLUMNS)
_METRIC_TABLE_SETTINGS = (("non_replicated_deduplication_window", DEDUPLICATION_WINDOW),)


LAYOUTS: dict[str, TableLayout] = {
    "records": TableLayout(
        engine="MergeTree",
        partition_by="toYYYYMM(timestamp)",
        order_by="(workspace, toDate(timestamp), model_id, timestamp)",
        indexes=(
            "request_id_bloom request_id TYPE bloom_filter(0.001) GRANULARITY 1",
            "ingested_at_minmax ingested_at TYPE minmax GRANULARITY 1",
        ),
        settings=(
            ("allow_nullable_key", 1),
            ("non_replicated_deduplication_window", DEDUPLICATION_WINDOW),
        ),
    ),
    "bodies": TableLayout(
        engine="MergeTree",
        order_by="record_id",
        settings=(
            ("allow_nullable_key", 1),
            ("non_replicated_deduplication_window", DEDUPLICATION_WINDOW),
        ),
    ),
    "spans": TableLayout(
        engine="MergeTree",
        order_by="(workspace, trace_id, span_id)",
        settings=(("allow_nullable_key", 1),),
    ),
    "spool_position": TableLayout(engine="ReplacingMergeTree", order_by="name"),
    "state": TableLayout(engine="ReplacingMergeTree", order_by="(namespace, `key`)"),
    "metric_rollups": TableLayout(
        engine="AggregatingMergeTree",
        partition_by="toYYYYMM(bucket)",
        order_by=f"(workspace, width_s, dimset, bucket, {_SERIES})",
        nullable=_EXTREMES,
        low_cardinality=_DIMS,
        aggregates=tuple((m[0], m[3]) for m in MEASURES),
        settings=_METRIC_TABLE_SETTINGS,
    ),
    "metric_histograms": TableLayout(
        engine="AggregatingMergeTree",
        partition_by="toYYYYMM(bucket)",
        order_by=f"(workspace, width_s, dimset, metric, bucket, {_SERIES}, idx)",
        low_cardinality=_DIMS | {"metric"},
        aggregates=(("n", "sum"),),
        settings=_METRIC_TABLE_SETTINGS,
    ),
    "metric_dimension_values": TableLayout(
        engine="ReplacingMergeTree", order_by="(workspace, dimension, value)"
    ),
    "metric_staging": TableLayout(
        engine="MergeTree", order_by="(workspace, bucket)", nullable=_EXTREMES
    ),
    "metric_staging_histograms": TableLayout(engine="MergeTree", order_by="(workspace, bucket)"),
}

MIGRATIONS_TABLE = "_migrations"
_PROMOTED_PREFIX = "promote_metadata_key:"
_ZSTD = "Nullable(String) CODEC(ZSTD(3))"
_LOW = "LowCardinality(Nullable(String))"


# ClickHouse's own migrations, applied after the shared ones: append-only, and an applied one
# is never edited (a change is a new entry). ``{records}``, ``{bodies}`` and ``{spans}`` are
# the qualified table names. Each statement can run twice.
# * 0001: bodies and other JSON text compressed with ZSTD (JSON compresses ~5-10x; LZ4, the
#   default, about half as well). A codec applies to parts written from then on and to
#   parts as they merge; no data is rewritten by the migration.
# * 0002: the look-ups by trace: a bloom filter on ``records.trace_id`` (a trace's calls
#   are found without reading the workspace's range of the sort key) and a min-max index on
#   ``spans.start_time`` (trace lists by time skip old parts).
# * 0003: the few-valued span columns as ``LowCardinality`` (kind, status, source, app).
# * 0004: every other ``records`` column compressed for what it holds: strings (ids, text,
#   the few-valued ones too) with ZSTD rather than LZ4, times as deltas, integers through T64,
#   each then ZSTD (benchmarks/README.md, part I: 887 → 818 bytes a record with bodies).
def column_type(column: Column) -> str:
    """The ClickHouse type of a schema column."""
    base = CLICKHOUSE_TYPES[column.type]
    if column.type is Type.MAP:
        return base  # cannot be Nullable: an absent map is stored empty
    nullable = f"Nullable({base})"
    return f"LowCardinality({nullable})" if column.low_cardinality else nullable


_RECORD_CODECS = {
    Type.STRING: "CODEC(ZSTD(3))",
    Type.TIMESTAMP: "CODEC(Delta, ZSTD(3))",
    Type.INT: "CODEC(T64, ZSTD(3))",
}


def _record_codecs() -> tuple[str, ...]:
    """0004's statements: each base ``records`` column of a type in `_RECORD_CODECS`."""
    return tuple(
        f"ALTER TABLE {{records}} MODIFY COLUMN {quote_identifier(c.name)} "
        f"{column_type(c)} {_RECORD_CODECS[c.type]}"
        for c in RECORD_COLUMNS
        if c.type in _RECORD_CODECS
    )


CLICKHOUSE_MIGRATIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "clickhouse_0001_compressed_json",
        (
            f"ALTER TABLE {{bodies}} MODIFY COLUMN input_body_json {_ZSTD}",
            f"ALTER TABLE {{bodies}} MODIFY COLUMN output_body_json {_ZSTD}",
            f"ALTER TABLE {{records}} MODIFY COLUMN extra {_ZSTD}",
            *(
                f"ALTER TABLE {{spans}} MODIFY COLUMN {name} {_ZSTD}"
                for name in ("input", "output", "attributes", "error_stack_trace")
            ),
        ),
    ),
    (
        "clickhouse_0002_trace_indexes",
        (
            "ALTER TABLE {records} ADD INDEX IF NOT EXISTS trace_id_bloom trace_id "
            "TYPE bloom_filter(0.001) GRANULARITY 1",
            "ALTER TABLE {spans} ADD INDEX IF NOT EXISTS start_time_minmax start_time "
            "TYPE minmax GRANULARITY 1",
        ),
    ),
    (
        "clickhouse_0003_span_low_cardinality",
        tuple(
            f"ALTER TABLE {{spans}} MODIFY COLUMN {name} {_LOW}"
            for name in ("kind", "status", "source", "app")
        ),
    ),
    ("clickhouse_0004_record_codecs", _record_codecs()),
)


def table_name(database: str, table: str) -> str:
    """``database.table``, each part quoted."""
    return f"{quote_identifier(database)}.{quote_identifier(table)}"


def render(op: Operation, database: str) -> tuple[str, dict[str, Any]]:
    """The ClickHouse statement for ``op`` in ``database`` and its bound parameters."""
    if isinstance(op, CreateTable):
        return _create_table(op, database), {}
    if isinstance(op, AddColumn):
        name, type_ = quote_identifier(op.column.name), column_type(op.column)
        target = table_name(database, op.table)
        return f"ALTER TABLE {target} ADD COLUMN IF NOT EXISTS {name} {type_}", {}
    if isinstance(op, BackfillMetadataColumn):
        name = quote_identifier(op.column.name)
        sql = (
            f"ALTER TABLE {table_name(database, 'records')} "
            f"UPDATE {name} = request_metadata[{{key:String}}] "
            "WHERE mapContains(request_metadata, {key:String})"
        )
        return sql, {"key": op.column.path[1]}
    raise TypeError(f"no ClickHouse rendering for migration operation {op!r}")


def _create_table(op: CreateTable, database: str) -> str:
    layout = LAYOUTS.get(op.table)
    if layout is None:  # a sort key cannot change later: it is chosen here, not defaulted
        raise TypeError(f"table {op.table!r} has no ClickHouse layout in LAYOUTS")
    parts = [f"{quote_identifier(c.name)} {column_type(c)}" for c in op.columns]
    merged = dict(layout.aggregates)
    for name, type_ in op.raw_columns:
        ch_type = RAW_TYPES[type_]
        if name in layout.nullable:
            ch_type = f"Nullable({ch_type})"
        if name in layout.low_cardinality:
            ch_type = f"LowCardinality({ch_type})"
        if name in merged:
            ch_type = f"SimpleAggregateFunction({merged[name]}, {ch_type})"
        parts.append(f"{quote_identifier(name)} {ch_type}")
    parts += [f"INDEX {index}" for index in layout.indexes]
    sql = f"CREATE TABLE IF NOT EXISTS {table_name(database, op.table)} ({', '.join(parts)}) "
    sql += f"ENGINE = {layout.engine}"
    if layout.partition_by:
        sql += f" PARTITION BY {layout.partition_by}"
    sql += f" ORDER BY {layout.order_by}"
    if layout.settings:
        sql += " SETTINGS " + ", ".join(f"{k} = {v}" for k, v in layout.settings)
    return sql


def apply_migrations(client: Client, database: str, schema: RecordSchema) -> list[str]:
    """Apply every migration not yet recorded in ``database``; the names applied now."""
    log = table_name(database, MIGRATIONS_TABLE)
    client.command(f"CREATE DATABASE IF NOT EXISTS {quote_identifier(database)}")
    client.command(
        f"CREATE TABLE IF NOT EXISTS {log} (name String, applied_at DateTime64(6, 'UTC')) "
        "ENGINE = MergeTree ORDER BY name"
    )
    done = {row[0] for row in client.query(f"SELECT DISTINCT name FROM {log}").result_rows}
    applied = []
    for name, ops in planned(schema):
        if name in done:
            continue
        for op in ops:
            if isinstance(op, BackfillMetadataColumn) and not _holds_key(client, database, op):
                continue  # a mutation costs even when it matches nothing
            if isinstance(op, CreateMetricViews):
                for sql in metric_views(client, database):
                    client.command(sql)
                continue
            sql, params = render(op, database)
            client.command(sql, parameters=params, settings={"mutations_sync": 2})
        _record(client, log, name)
        applied.append(name)
    tables = {t: table_name(database, t) for t in ("records", "bodies", "spans")}
    for name, statements in CLICKHOUSE_MIGRATIONS:
        if name in done:
            continue
        for statement in statements:
            client.command(statement.format(**tables), settings={"mutations_sync": 2})
        _record(client, log, name)
        applied.append(name)
    return applied


def _record(client: Client, log: str, name: str) -> None:
    """Note migration ``name`` as applied (after its statements: one cut short runs again)."""
    client.command(f"INSERT INTO {log} SELECT {{name:String}}, now64(6)", parameters={"name": name})


def metric_views(client: Client, database: str) -> list[str]:
    """The statements creating (or re-pointing) the metric views over ``records`` as its
    columns are now: a dimension's metadata key is read from its column once promoted."""
    from llmtrail.store.clickhouse.metrics import view_statements  # it renders with LAYOUTS

    columns = {
        str(row[0])
        for row in client.query(
            "SELECT name FROM system.columns WHERE database = {db:String} AND table = 'records'",
            parameters={"db": database},
        ).result_rows
    }
    return view_statements(database, columns)


def _holds_key(client: Client, database: str, op: BackfillMetadataColumn) -> bool:
    """Whether any stored record has the key in its ``requestMetadata`` map."""
    rows = client.query(
        f"SELECT 1 FROM {table_name(database, 'records')} "
        "WHERE mapContains(request_metadata, {key:String}) LIMIT 1",
        parameters={"key": op.column.path[1]},
    ).result_rows
    return bool(rows)


def promoted_keys(client: Client, database: str) -> list[str]:
    """Every ``requestMetadata`` key ever promoted in ``database``, in promotion order."""
    rows = client.query(
        f"SELECT name FROM {table_name(database, MIGRATIONS_TABLE)} "
        "WHERE startsWith(name, {prefix:String}) GROUP BY name ORDER BY min(applied_at), name",
        parameters={"prefix": _PROMOTED_PREFIX},
    ).result_rows
    return [str(row[0])[len(_PROMOTED_PREFIX) :] for row in rows]
