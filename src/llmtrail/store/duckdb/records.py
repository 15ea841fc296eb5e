"""RecordStore on DuckDB: Arrow batches in, typed columns out.

Re-pricing (`DuckDBRecordStore.set_costs`) rewrites only the cost columns (and the ``extra``
column, where the parts of a ``cost`` block that no column holds live) of the records named,
in one transaction; `cost_update` is the pure part that both SQL backends share.
"""

from __future__ import annotations

import array
import functools
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import duckdb
import orjson

from llmtrail.errors import ValidationError
from llmtrail.record import DEFAULT_WORKSPACE, InvocationRecord, check_money
from llmtrail.schema import RECORD_COLUMNS, Column, RecordSchema, Type, metadata_column_name
from llmtrail.store.arrow import arrow_schema, arrow_types
from llmtrail.store.duckdb.database import Database, committed_durably, execute_all
from llmtrail.store.duckdb.metric_deltas import batch_deltas
from llmtrail.store.duckdb.metrics import DuckDBRollups
from llmtrail.store.interfaces import AppendResult, RecentCall, RecordPage, RecordQuery
from llmtrail.store.paging import decode_cursor, encode_cursor
from llmtrail.store.rows import from_row, to_columns

if TYPE_CHECKING:
    import pyarrow as pa


# the columns a record's ``cost`` block is split into, by their key in the block
# what `RecentCall` reads, in its order (both engines)
RECENT_CALL_COLUMNS = (
    "workspace, request_id, source, trace_id, parent_span_id, response_id, ingested_at"
)
COST_COLUMNS: dict[str, Column] = {c.path[1]: c for c in RECORD_COLUMNS if c.path[:1] == ("cost",)}


@functools.cache
def cost_update_schema() -> pa.Schema:
    """The Arrow schema of `set_costs`'s update table (built on first use, `arrow_types`)."""
    import pyarrow as pa

    types = arrow_types()
    return pa.schema(
        [
            pa.field("record_id", pa.string()),
            *(pa.field(c.name, types[c.type]) for c in COST_COLUMNS.values()),
            pa.field("extra", pa.string()),
        ]
    )


def cost_update(block: Mapping[str, Any] | None, extra: str | None) -> dict[str, Any]:
    """The new values of the cost columns and of ``extra`` for a record whose ``cost`` block
    becomes ``block`` (None: no cost), given its current ``extra`` JSON text. Keys of the block
    that no column holds (``otherUsd``) go to ``extra``, replacing the old block's. Raises
    `ValidationError` naming ``cost.KEY`` for an amount that is no decimal the column holds."""
    values: dict[str, Any] = dict.fromkeys((c.name for c in COST_COLUMNS.values()), None)
    rest: dict[str, Any] = {}
    for key, value in (block or {}).items():
        column = COST_COLUMNS.get(key)
        if column is None or value is None:
            rest[key] = value
        elif column.type is Type.DECIMAL:
            if isinstance(value, bool):
                raise ValidationError(f"cost.{key}", f"must be a decimal, got {value!r}")
            check_money(value, f"cost.{key}")  # the bounds ingest applies
            values[column.name] = Decimal(str(value))
        elif isinstance(value, str):
            values[column.name] = value
        else:
            raise ValidationError(f"cost.{key}", f"must be a string, got {value!r}")
    doc = orjson.loads(extra) if extra else {}
    doc.pop("cost", None)
    if rest or block == {}:
        doc["cost"] = rest
    values["extra"] = orjson.dumps(doc).decode() if doc else None
    return values


_INSERT_RECORDS = "INSERT INTO records BY NAME SELECT * FROM _batch_records"
_INSERT_BODIES = "INSERT INTO bodies BY NAME SELECT * FROM _batch_bodies"
_INSERT_POSITION = "INSERT INTO spool_position VALUES ('main', $position)"


def _select_list(columns: Sequence[Column], alias: str) -> str:
    parts = []
    for c in columns:
        ref = f'{alias}."{c.name}"'
        parts.append(f'epoch_us({ref}) AS "{c.name}"' if c.type is Type.TIMESTAMP else ref)
    return ", ".join(parts)


class DuckDBRecordStore:
    """Records, their bodies and, in the same transaction, their metric rollups."""

    def __init__(self, db: Database, rollups: DuckDBRollups | None = None) -> None:
        self.db = db
        self.rollups = rollups or DuckDBRollups(db.schema)
        self.schema = db.schema
        self._promoted = {k: metadata_column_name(k) for k in self.schema.promoted_keys}

    def append(
        self, records: Sequence[InvocationRecord], position: str | None = None
    ) -> AppendResult:
        record_table, body_table = self.arrow_tables(records, datetime.now(UTC))
        staged = batch_deltas(record_table, self.schema)
        return self.append_tables(record_table, body_table, position, staged)

    def append_tables(
        self,
        record_table: pa.Table,
        body_table: pa.Table,
        position: str | None = None,
        staged: tuple[pa.Table, pa.Table] | None = None,
    ) -> AppendResult:
        """Store a batch already converted (`batch_tables`, in the recorder process), with
        its spool position, in one transaction; ``ingested_at`` is set to now here, so that
        it follows the order of commits. ``staged`` is the batch's metric staging rows
        (`batch_deltas`, made where the batch was converted); without them the SQL stages
        it."""
        if record_table.num_rows:
            import pyarrow as pa

            # from a buffer, not a list: pyarrow's list conversion imports pandas (~80 MB,
            # seconds of CPU) to check the list is not a pandas object
            n = record_table.num_rows
            now_us = int(datetime.now(UTC).timestamp() * 1_000_000)
            buffer = pa.py_buffer(array.array("q", [now_us]) * n)
            at = pa.Array.from_buffers(pa.timestamp("us", "UTC"), n, [None, buffer])
            index = record_table.schema.get_field_index("ingested_at")
            record_table = record_table.set_column(index, "ingested_at", at)
        has_rows, has_bodies = record_table.num_rows > 0, body_table.num_rows > 0

        def write(conn: duckdb.DuckDBPyConnection) -> None:
            conn.execute("BEGIN")
            try:
                statements: list[tuple[str, dict[str, Any] | None]] = []
                if has_rows:
                    conn.register("_batch_records", record_table)
                    statements.append((_INSERT_RECORDS, None))
                    if staged is not None:
                        conn.register("_batch_deltas", staged[0])
                        conn.register("_batch_delta_histograms", staged[1])
                    statements += self.rollups.staging(conn, record_table, staged is not None)
                if has_bodies:
                    conn.register("_batch_bodies", body_table)
                    statements.append((_INSERT_BODIES, None))
                if position is not None:
                    statements.append(("DELETE FROM spool_position WHERE name = 'main'", None))
                    statements.append((_INSERT_POSITION, {"position": position}))
                execute_all(conn, statements)  # one call, where no rollup was refused a value
                for name, registered in (
                    ("_batch_records", has_rows),
                    ("_batch_deltas", has_rows and staged is not None),
                    ("_batch_delta_histograms", has_rows and staged is not None),
                    ("_batch_bodies", has_bodies),
                ):
                    if registered:
                        conn.unregister(name)
                conn.execute("COMMIT")
            except BaseException as exc:
                if committed_durably(exc):  # stored; only the database must be reopened
                    self.db.lose(exc)
                    return
                conn.execute("ROLLBACK")
                self.rollups.forget_admissions()
                raise

        self.db.write(write)
        return AppendResult(stored=record_table.num_rows, position=position)

    def arrow_tables(
        self, records: Sequence[InvocationRecord], ingested_at: datetime
    ) -> tuple[pa.Table, pa.Table]:
        """The record and body tables of one batch, as they are inserted."""
        return batch_tables(records, self.schema, ingested_at)

    def committed_position(self) -> str | None:
        row = self.db.read(
            lambda c: c.execute(
                "SELECT position FROM spool_position WHERE name = 'main'"
            ).fetchone()
        )
        return None if row is None else str(row[0])

    def get(self, request_id: str, workspace: str = DEFAULT_WORKSPACE) -> InvocationRecord | None:
        rows = self._select(
            "r.workspace = ? AND r.request_id = ?",
            [workspace, request_id],
            order='r."timestamp" ASC, r.record_id ASC',
            limit=1,
            with_bodies=True,
        )
        return rows[0][0] if rows else None

    def find(self, query: RecordQuery) -> RecordPage:
        where: list[str] = ["r.workspace = ?"]
        params: list[Any] = [query.workspace]
        for column, value in (
            ("model_id", query.model_id),
            ("operation", query.operation),
            ("status", query.status),
            ("provider", query.provider),
        ):
            if value is not None:
                where.append(f"r.{column} = ?")
                params.append(value)
        if query.start is not None:
            where.append('r."timestamp" >= ?')
            params.append(query.start)
        if query.end is not None:
            where.append('r."timestamp" < ?')
            params.append(query.end)
        for key, value in query.metadata:
            if key in self._promoted:
                where.append(f'r."{self._promoted[key]}" = ?')
                params.append(value)
            else:
                where.append("r.request_metadata[?] = ?")
                params.extend([key, value])
        if query.ingested_after is not None:
            where.append("r.ingested_at > ?")
            params.append(query.ingested_after)
        following = query.order == "ingested"
        sort = "ingested_at" if following else "timestamp"
        if query.cursor:
            micros, record_id = decode_cursor(query.cursor)
            where.append(f'(epoch_us(r."{sort}"), r.record_id) {">" if following else "<"} (?, ?)')
            params.extend([micros, record_id])
        direction = "ASC" if following else "DESC"
        rows = self._select(
            " AND ".join(where),
            params,
            order=f'r."{sort}" {direction}, r.record_id {direction}',
            limit=query.limit + 1,
            with_bodies=query.with_bodies,
        )
        page = rows[: query.limit]
        next_cursor = None
        if page and (following or len(rows) > query.limit):
            record, values = page[-1]
            next_cursor = encode_cursor(int(values[sort]), record.record_id)
        elif following:
            next_cursor = query.cursor
        return RecordPage([record for record, _ in page], next_cursor)

    def recent_request_ids(self, since: datetime, limit: int) -> list[tuple[str, str]]:
        rows = self.db.read(
            lambda c: c.execute(
                "SELECT workspace, request_id FROM records WHERE ingested_at >= ? "
                "ORDER BY ingested_at DESC LIMIT ?",
                [since, limit],
            ).fetchall()
        )
        return [(str(w), str(r)) for w, r in rows]

    def recent_calls(self, since: datetime, limit: int) -> list[RecentCall]:
        rows = self.db.read(
            lambda c: c.execute(
                f"SELECT {RECENT_CALL_COLUMNS} FROM records WHERE ingested_at >= ? "
                "ORDER BY ingested_at DESC LIMIT ?",
                [since, limit],
            ).fetchall()
        )
        return [RecentCall(*row) for row in reversed(rows)]

    def stored_request_ids(
        self, keys: Sequence[tuple[str, str]], since: datetime
    ) -> set[tuple[str, str]]:
        if not keys:
            return set()
        import pyarrow as pa  # on first use (`arrow_types`)

        wanted = pa.table(
            {
                "workspace": pa.array([w for w, _ in keys], pa.string()),
                "request_id": pa.array([r for _, r in keys], pa.string()),
            }
        )

        def read(c: duckdb.DuckDBPyConnection) -> list[tuple[Any, ...]]:
            c.register("_wanted_ids", wanted)
            try:
                return c.execute(
                    "SELECT DISTINCT r.workspace, r.request_id FROM records r JOIN _wanted_ids w "
                    "ON r.workspace = w.workspace AND r.request_id = w.request_id "
                    "WHERE r.ingested_at >= ?",
                    [since],
                ).fetchall()
            finally:
                c.unregister("_wanted_ids")

        return {(str(w), str(r)) for w, r in self.db.read(read)}

    def set_costs(
        self, costs: Mapping[str, Mapping[str, Any] | None], workspace: str = DEFAULT_WORKSPACE
    ) -> int:
        if not costs:
            return 0
        import pyarrow as pa  # on first use (`arrow_types`)

        wanted = pa.table({"record_id": pa.array(list(costs), pa.string())})

        def write(conn: duckdb.DuckDBPyConnection) -> int:
            conn.execute("BEGIN")
            try:
                conn.register("_cost_ids", wanted)
                found = conn.execute(
                    "SELECT r.record_id, r.extra FROM records r "
                    "JOIN _cost_ids i ON i.record_id = r.record_id WHERE r.workspace = ?",
                    [workspace],
                ).fetchall()
                conn.unregister("_cost_ids")
                if found:
                    rows = [
                        {"record_id": rid, **cost_update(costs[rid], extra)} for rid, extra in found
                    ]
                    schema = cost_update_schema()
                    update = pa.Table.from_pylist(rows, schema=schema)
                    names = [f.name for f in schema if f.name != "record_id"]
                    sets = ", ".join(f'"{n}" = c."{n}"' for n in names)
                    conn.register("_cost_update", update)
                    conn.execute(
                        f"UPDATE records SET {sets} FROM _cost_update c "
                        "WHERE records.record_id = c.record_id AND records.workspace = ?",
                        [workspace],
                    )
                    conn.unregister("_cost_update")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return len({rid for rid, _ in found})

        return self.db.write(write)

    def close(self) -> None:
        self.db.close()

    def _select(
        self, where: str, params: list[Any], *, order: str, limit: int, with_bodies: bool
    ) -> list[tuple[InvocationRecord, dict[str, Any]]]:
        cols = self.schema.record_columns
        body_cols = self.schema.body_columns[1:]
        select = _select_list(cols, "r")
        join = ""
        if with_bodies:
            select += ", " + ", ".join(f'b."{c.name}"' for c in body_cols)
            join = "LEFT JOIN bodies b ON b.record_id = r.record_id"
        sql = (
            f"SELECT {select} FROM records r {join} WHERE {where} "
            f"ORDER BY {order} LIMIT {int(limit)}"
        )
        rows = self.db.read(lambda c: c.execute(sql, params).fetchall())
        names = [c.name for c in cols]
        out = []
        for row in rows:
            values = dict(zip(names, row[: len(cols)], strict=True))
            body = (
                dict(zip([c.name for c in body_cols], row[len(cols) :], strict=True))
                if with_bodies
                else None
            )
            out.append((from_row(values, body, self.schema), values))
        return out


def batch_tables(
    records: Sequence[InvocationRecord], schema: RecordSchema, ingested_at: datetime
) -> tuple[pa.Table, pa.Table]:
    """The record and body tables of one batch as `DuckDBRecordStore.append_tables` takes
    them; needs no database, so the recorder process builds them.

    Money and timestamps go to Arrow as text, cast there (`to_columns` ``for_arrow``). Arrow's
    parsers are stricter than `Decimal` and `parse_timestamp` and never read a text they
    accept differently, so the tables are the same; a batch whose conversion fails in any way
    is converted again the exact way, which builds the same tables or raises what it raised."""
    record_schema, body_schema = _arrow_schemas(schema)
    try:
        cols, bodies = to_columns(records, schema, ingested_at, for_arrow=True)
        return _table(cols, record_schema, ingested_at), _table(bodies, body_schema)
    except Exception:  # the exact way below raises it again, or succeeds
        pass
    cols, bodies = to_columns(records, schema, ingested_at)
    return _table(cols, record_schema, ingested_at), _table(bodies, body_schema)


@functools.lru_cache(maxsize=16)
def _arrow_schemas(schema: RecordSchema) -> tuple[pa.Schema, pa.Schema]:
    """The record and body tables' Arrow schemas for ``schema`` (a few per process)."""
    return arrow_schema(schema.record_columns), arrow_schema(schema.body_columns)


def _table(
    columns: dict[str, list[Any]], schema: pa.Schema, ingested_at: datetime | None = None
) -> pa.Table:
    """The Arrow table of `to_columns`'s lists, each column built by pyarrow with its type:
    a column of nulls (most of a batch's) without looking at its values, ``ingested_at`` (the
    same in every row) from the one value, maps from their dicts as they are, and money and
    timestamps held as text cast from strings."""
    import pyarrow as pa  # on first use (`arrow_types`)

    types = arrow_types()
    money, stamp = types[Type.DECIMAL], types[Type.TIMESTAMP]
    arrays = []
    for field in schema:
        values, kind = columns[field.name], field.type
        n = len(values)
        if ingested_at is not None and field.name == "ingested_at":
            arrays.append(pa.repeat(pa.scalar(ingested_at, kind), n))
            continue
        if values.count(None) == n:
            arrays.append(pa.nulls(n, kind))
            continue
        if kind in (money, stamp):
            held = set(map(type, values))
            if held <= _TEXT:
                arrays.append(pa.array(values, pa.string()).cast(kind))
                continue
            if kind == money and not held <= _DECIMALS:  # as `to_columns` converts them
                values = [None if v is None else Decimal(str(v)) for v in values]
        elif pa.types.is_map(kind) and not set(map(type, values)) <= _DICTS:
            values = [None if v is None else list(v.items()) for v in values]
        arrays.append(pa.array(values, type=kind))
    return pa.Table.from_arrays(arrays, schema=schema)


_TEXT = frozenset({str, type(None)})
_DECIMALS = frozenset({Decimal, type(None)})
_DICTS = frozenset({dict, type(None)})
