"""`DataEraser` on DuckDB: deletions for retention and erasure, each step one short job on
the writer thread.

The writer thread is the only one that writes (`Database.write`), and a batch of records
waits behind whatever job it runs, so nothing here deletes "everything older than X" in one
statement: callers page through `select` (``limit`` records, oldest first) and delete each
page with `delete_records`, spans go ``limit`` at a time, rollups one bucket width at a time.

What DuckDB leaves on disk. A ``DELETE`` marks rows deleted; a checkpoint (`reclaim`) folds
the write-ahead log into the file and rewrites the row groups, but the blocks the old data
occupied become *free blocks* whose bytes stay in the file until reused — neither
``CHECKPOINT``, ``FORCE CHECKPOINT``, ``VACUUM`` nor rewriting the table
(``CREATE TABLE … AS``, ``DROP``) clears them (measured on DuckDB 2.0). Only copying the
database into a fresh file (``COPY FROM DATABASE``) leaves them behind: `compact_database_file`
does that, with no process holding the file (the server's connection may not attach files:
``enable_external_access`` is off), which is why erasure says so in its report.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from llmtrail.schema import RecordSchema, Type, metadata_column_name
from llmtrail.span import Span
from llmtrail.store.duckdb.database import Database
from llmtrail.store.duckdb.metrics import WIDTHS, DuckDBRollups
from llmtrail.store.duckdb.spans import _SPAN_SELECT, _STORED, _span
from llmtrail.store.interfaces import (
    TENANT_ATTRIBUTES,
    USER_ATTRIBUTES,
    RecordSelection,
    SelectedRecords,
    SpanSelection,
)
from llmtrail.store.rows import from_row

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ROLLUP_TABLES = ("metric_rollups", "metric_histograms")
_STAGING_TABLES = ("metric_staging", "metric_staging_histograms")


def metadata_sql(schema: RecordSchema, key: str, alias: str = "r") -> str:
    """The SQL for ``requestMetadata.KEY`` of a record row: its column once promoted."""
    if key in schema.promoted_keys:
        return f'{alias}."{metadata_column_name(key)}"'
    return f"{alias}.request_metadata['{key}']"


def record_conditions(schema: RecordSchema, sel: RecordSelection) -> tuple[str, list[Any]]:
    """The ``WHERE`` clause (over ``records r``) of a selection, and its parameters."""
    where: list[str] = ["r.workspace = ?"]
    params: list[Any] = [sel.workspace]
    if sel.start is not None:
        where.append('r."timestamp" >= ?')
        params.append(sel.start)
    if sel.before is not None:
        where.append('r."timestamp" < ?')
        params.append(sel.before)
    if sel.request_ids:
        where.append("list_contains(?::VARCHAR[], r.request_id)")
        params.append(list(sel.request_ids))
    for key, value in (("user_id", sel.user), ("tenant_id", sel.tenant)):
        if value is not None:
            where.append(f"{metadata_sql(schema, key)} = ?")
            params.append(value)
    if sel.with_body:
        where.append(
            "(r.input_body_s3_path IS NOT NULL OR r.output_body_s3_path IS NOT NULL OR "
            "b.input_body_json IS NOT NULL OR b.output_body_json IS NOT NULL)"
        )
    if sel.after is not None:
        where.append('(epoch_us(r."timestamp"), r.record_id) > (?, ?)')
        params.extend([to_micros(sel.after[0]), sel.after[1]])
    return " AND ".join(where), params


def span_conditions(sel: SpanSelection) -> tuple[str, list[Any]]:
    """The ``WHERE`` clause (over ``spans``) of a span selection, and its parameters."""
    where: list[str] = ["workspace = ?"]
    params: list[Any] = [sel.workspace]
    if sel.before is not None:
        where.append("start_time < ?")
        params.append(sel.before)
    anyof: list[str] = []
    if sel.trace_ids:
        anyof.append("list_contains(?::VARCHAR[], trace_id)")
        params.append(list(sel.trace_ids))
    for keys, value in ((USER_ATTRIBUTES, sel.user), (TENANT_ATTRIBUTES, sel.tenant)):
        if value is not None:
            for key in keys:
                anyof.append(f"json_extract_string(attributes, '$.\"{key}\"') = ?")
                params.append(value)
    if anyof:
        where.append("(" + " OR ".join(anyof) + ")")
    return " AND ".join(where), params


def to_micros(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1)


def from_micros(micros: int) -> datetime:
    return EPOCH + timedelta(microseconds=int(micros))


class DuckDBEraser:
    """`DataEraser` over a `Database` (and its rollups, whose admitted values it updates)."""

    RESIDUE = (
        "DuckDB keeps the old bytes of deleted rows in free blocks of its file until the file "
        "is compacted: stop the server and run `llmtrail retention compact`"
    )

    def __init__(self, db: Database, rollups: DuckDBRollups | None = None) -> None:
        self.db = db
        self.rollups = rollups
        self.schema = db.schema

    def select(self, selection: RecordSelection, limit: int, full: bool = False) -> SelectedRecords:
        where, params = record_conditions(self.schema, selection)
        cols = self.schema.record_columns
        head = (
            'epoch_us(r."timestamp"), r.record_id, r.trace_id, r.input_body_s3_path, '
            "r.output_body_s3_path, (b.input_body_json IS NOT NULL OR "
            "b.output_body_json IS NOT NULL)"
        )
        if full:
            head += ", " + ", ".join(
                f'epoch_us(r."{c.name}")' if c.type is Type.TIMESTAMP else f'r."{c.name}"'
                for c in cols
            )
            head += ", b.input_body_json, b.output_body_json"
        sql = (
            f"SELECT {head} FROM records r LEFT JOIN bodies b ON b.record_id = r.record_id "
            f'WHERE {where} ORDER BY r."timestamp", r.record_id LIMIT {int(limit)}'
        )
        rows = self.db.read(lambda c: c.execute(sql, params).fetchall())
        out = SelectedRecords()
        names = [c.name for c in cols]
        for row in rows:
            micros, record_id, trace_id, in_path, out_path, has_body = row[:6]
            out.record_ids.append(str(record_id))
            out.bodies += bool(has_body)
            out.objects += [p for p in (in_path, out_path) if p]
            if trace_id:
                out.trace_ids.add(str(trace_id))
            stamp = from_micros(micros) if micros is not None else EPOCH
            out.first = stamp if out.first is None else min(out.first, stamp)
            out.after = (stamp, str(record_id))
            if full:
                values = dict(zip(names, row[6 : 6 + len(cols)], strict=True))
                body = {"input_body_json": row[-2], "output_body_json": row[-1]}
                out.records.append(from_row(values, body, self.schema))
        if len(rows) < limit:
            out.after = None
        return out

    def delete_records(
        self, workspace: str, record_ids: Sequence[str], bodies_only: bool = False
    ) -> int:
        if not record_ids:
            return 0
        import pyarrow as pa  # on first use (`records.arrow_types`)

        ids = pa.table({"record_id": pa.array(list(record_ids), pa.string())})
        mine = (
            "SELECT i.record_id FROM _erase_ids i JOIN records r ON r.record_id = i.record_id "
            "WHERE r.workspace = ?"
        )

        def write(conn: duckdb.DuckDBPyConnection) -> int:
            conn.execute("BEGIN")
            try:
                conn.register("_erase_ids", ids)
                row = conn.execute(f"SELECT count(*) FROM ({mine})", [workspace]).fetchone()
                touched = int(row[0]) if row else 0
                conn.execute(f"DELETE FROM bodies WHERE record_id IN ({mine})", [workspace])
                if bodies_only:
                    conn.execute(
                        "UPDATE records SET input_body_s3_path = NULL, output_body_s3_path = NULL "
                        "WHERE workspace = ? AND record_id IN (SELECT record_id FROM _erase_ids) "
                        "AND (input_body_s3_path IS NOT NULL OR output_body_s3_path IS NOT NULL)",
                        [workspace],
                    )
                else:
                    conn.execute(
                        "DELETE FROM records WHERE workspace = ? "
                        "AND record_id IN (SELECT record_id FROM _erase_ids)",
                        [workspace],
                    )
                conn.unregister("_erase_ids")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return touched

        return self.db.write(write)

    def delete_spans(
        self,
        selection: SpanSelection,
        limit: int,
        keep: Callable[[list[Span]], None] | None = None,
        dry_run: bool = False,
    ) -> int:
        where, params = span_conditions(selection)
        if dry_run:
            row = self.db.read(
                lambda c: c.execute(f"SELECT count(*) FROM spans WHERE {where}", params).fetchone()
            )
            return int(row[0]) if row else 0
        names = [c.name for c in _STORED]

        def write(conn: duckdb.DuckDBPyConnection) -> int:
            conn.execute("BEGIN")
            try:
                select = f"rowid, {_SPAN_SELECT}" if keep is not None else "rowid"
                rows = conn.execute(
                    f"SELECT {select} FROM spans WHERE {where} LIMIT {int(limit)}", params
                ).fetchall()
                if rows and keep is not None:
                    keep([_span(dict(zip(names, r[1:], strict=True))) for r in rows])
                if rows:
                    conn.execute(
                        "DELETE FROM spans WHERE list_contains(?::BIGINT[], rowid)",
                        [[r[0] for r in rows]],
                    )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return len(rows)

        return self.db.write(write)

    def delete_rollups(
        self,
        workspace: str,
        before: datetime | None = None,
        tenant: str | None = None,
        dry_run: bool = False,
    ) -> int:
        if before is None and tenant is None:
            return 0
        where: list[str] = ["workspace = ?"]
        params: list[Any] = [workspace]
        if before is not None:
            where.append("bucket < ?")
            params.append(before)
        if tenant is not None:
            where.append("tenant_id = ?")
            params.append(tenant)
        condition = " AND ".join(where)
        row = self.db.read(
            lambda c: c.execute(
                f"SELECT count(*) FROM metric_rollups WHERE {condition}", params
            ).fetchone()
        )
        count = int(row[0]) if row else 0
        if dry_run:
            return count
        for width in WIDTHS:  # one width a job: the writer is never held for long

            def by_width(conn: duckdb.DuckDBPyConnection, width: int = width) -> None:
                for table in _ROLLUP_TABLES:
                    conn.execute(
                        f"DELETE FROM {table} WHERE width_s = ? AND {condition}", [width, *params]
                    )

            self.db.write(by_width)

        def staging(conn: duckdb.DuckDBPyConnection) -> None:
            for table in _STAGING_TABLES:
                conn.execute(f"DELETE FROM {table} WHERE {condition}", params)
            if tenant is not None:
                conn.execute(
                    "DELETE FROM metric_dimension_values WHERE workspace = ? "
                    "AND dimension = 'TenantId' AND value = ?",
                    [workspace, tenant],
                )
                if self.rollups is not None:
                    self.rollups.forget_admissions()

        self.db.write(staging)
        return count

    def reclaim(self) -> None:
        self.db.checkpoint()


def compact_database_file(path: Path | str) -> tuple[int, int]:
    """Copy the DuckDB file at ``path`` into a fresh file and put it in its place, so that
    the free blocks (old bytes of deleted rows) are gone; no process may hold the file. The
    file's size before and after."""
    path = Path(path)
    fresh = path.with_name(path.name + ".compacting")
    fresh.unlink(missing_ok=True)
    before = path.stat().st_size
    conn = duckdb.connect()
    try:
        conn.execute("ATTACH ? AS old (READ_ONLY)", [str(path)])
        conn.execute("ATTACH ? AS fresh", [str(fresh)])
        conn.execute("COPY FROM DATABASE old TO fresh")
        conn.execute("DETACH old")
        conn.execute("DETACH fresh")
    except BaseException:
        conn.close()
        fresh.unlink(missing_ok=True)
        raise
    conn.close()
    with open(fresh, "rb") as f:
        os.fsync(f.fileno())
    os.replace(fresh, path)
    Path(str(path) + ".wal").unlink(missing_ok=True)  # folded: the old file was checkpointed
    return before, path.stat().st_size
