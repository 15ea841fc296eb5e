"""`DataEraser` on ClickHouse: deletions are synchronous mutations.

``ALTER TABLE … DELETE`` with ``mutations_sync = 2`` rewrites every part holding a matching
row before it returns, so a row erased is gone from every *active* part at once (a
lightweight ``DELETE FROM`` would only mask it until a merge). The parts it replaced stay on
disk as inactive parts until the table's ``old_parts_lifetime`` (8 minutes by default) has
passed, then ClickHouse removes them; nothing a client can run hurries that, so `reclaim` has
nothing left to do. A mutation rewrites whole parts, so callers should delete in large pages.

The materialized views that keep the rollups do not see deletes: erasure rebuilds the
affected rollups (`MetricStore.rebuild`) or deletes them (`delete_rollups`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import orjson

from llmtrail.schema import metadata_column_name
from llmtrail.span import SPAN_COLUMNS, Span, SpanError
from llmtrail.store.clickhouse.columns import row_values, select_expression
from llmtrail.store.clickhouse.database import ClickHouseDatabase
from llmtrail.store.duckdb.erasure import from_micros
from llmtrail.store.interfaces import (
    TENANT_ATTRIBUTES,
    USER_ATTRIBUTES,
    RecordSelection,
    SelectedRecords,
    SpanSelection,
)
from llmtrail.store.paging import epoch_us
from llmtrail.store.rows import BODY_NAMES, from_row

_SYNC = {"mutations_sync": 2}
_HAS_BODY = "(input_body_json IS NOT NULL OR output_body_json IS NOT NULL)"


class _Bound:
    """Server-bound parameters of one statement."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def __call__(self, value: Any, type_: str) -> str:
        name = f"p{len(self.values)}"
        self.values[name] = value
        return f"{{{name}:{type_}}}"

    def time(self, moment: datetime) -> str:
        return f"fromUnixTimestamp64Micro({self(epoch_us(moment), 'Int64')}, 'UTC')"


class ClickHouseEraser:
    """`DataEraser` over a `ClickHouseDatabase`."""

    def __init__(self, db: ClickHouseDatabase) -> None:
        self.db = db
        self.schema = db.schema

    def select(self, selection: RecordSelection, limit: int, full: bool = False) -> SelectedRecords:
        p = _Bound()
        where = self._record_conditions(selection, p)
        cols = self.schema.record_columns
        head = (
            "toUnixTimestamp64Micro(timestamp), record_id, trace_id, input_body_s3_path, "
            "output_body_s3_path"
        )
        if full:
            head += ", " + ", ".join(select_expression(c) for c in cols)
        rows = self.db.query(
            f"SELECT {head} FROM {self.db.table('records')} WHERE {where} "
            f"ORDER BY timestamp, record_id LIMIT {int(limit)}",
            p.values,
        )
        ids = [str(r[1]) for r in rows]
        bodies = self._bodies(ids, full) if ids else {}
        out = SelectedRecords()
        for row in rows:
            micros, record_id, trace_id, in_path, out_path = row[:5]
            body = bodies.get(str(record_id))
            out.record_ids.append(str(record_id))
            out.bodies += body is not None
            out.objects += [path for path in (in_path, out_path) if path]
            if trace_id:
                out.trace_ids.add(str(trace_id))
            stamp = from_micros(micros)
            out.first = stamp if out.first is None else min(out.first, stamp)
            out.after = (stamp, str(record_id))
            if full:
                values = row_values(cols, row[5:])
                out.records.append(from_row(values, body, self.schema))
        if len(rows) < limit:
            out.after = None
        return out

    def delete_records(
        self, workspace: str, record_ids: Sequence[str], bodies_only: bool = False
    ) -> int:
        if not record_ids:
            return 0
        records = self.db.table("records")
        mine = [
            str(r[0])
            for r in self.db.query(
                f"SELECT DISTINCT record_id FROM {records} WHERE workspace = {{ws:String}} "
                "AND record_id IN {ids:Array(String)}",
                {"ws": workspace, "ids": list(record_ids)},
            )
        ]
        if not mine:
            return 0
        params = {"ws": workspace, "ids": mine}
        bodies = self.db.table("bodies")
        self.db.command(
            f"ALTER TABLE {bodies} DELETE WHERE record_id IN {{ids:Array(String)}}",
            params,
            _SYNC,
        )
        if bodies_only:
            self.db.command(
                f"ALTER TABLE {records} UPDATE input_body_s3_path = NULL, "
                "output_body_s3_path = NULL WHERE workspace = {ws:String} "
                "AND record_id IN {ids:Array(String)}",
                params,
                _SYNC,
            )
        else:
            self.db.command(
                f"ALTER TABLE {records} DELETE WHERE workspace = {{ws:String}} "
                "AND record_id IN {ids:Array(String)}",
                params,
                _SYNC,
            )
        return len(mine)

    def delete_spans(
        self,
        selection: SpanSelection,
        limit: int,
        keep: Callable[[list[Span]], None] | None = None,
        dry_run: bool = False,
    ) -> int:
        p = _Bound()
        where = _span_conditions(selection, p)
        spans = self.db.table("spans")
        if dry_run:
            return int(self.db.query(f"SELECT count() FROM {spans} WHERE {where}", p.values)[0][0])
        names = [c.name for c in SPAN_COLUMNS]
        select = ", ".join(select_expression(c) for c in SPAN_COLUMNS)
        rows = self.db.query(
            f"SELECT {select} FROM {spans} WHERE {where} LIMIT {int(limit)}", p.values
        )
        if not rows:
            return 0
        found = [dict(zip(names, row, strict=True)) for row in rows]
        if keep is not None:
            keep([_span(r) for r in found])
        keys = sorted({(r["trace_id"], r["span_id"]) for r in found})
        pairs = p([f"{t}/{s}" for t, s in keys], "Array(String)")
        self.db.command(
            f"ALTER TABLE {spans} DELETE WHERE {where} "
            f"AND concat(trace_id, '/', span_id) IN {pairs}",
            p.values,
            _SYNC,
        )
        return len(found)

    def delete_rollups(
        self,
        workspace: str,
        before: datetime | None = None,
        tenant: str | None = None,
        dry_run: bool = False,
    ) -> int:
        if before is None and tenant is None:
            return 0
        p = _Bound()
        where = [f"workspace = {p(workspace, 'String')}"]
        if before is not None:
            where.append(f"bucket < {p.time(before)}")
        if tenant is not None:
            where.append(f"tenant_id = {p(tenant, 'String')}")
        condition = " AND ".join(where)
        rollups = self.db.table("metric_rollups")
        count = int(
            self.db.query(f"SELECT count() FROM {rollups} WHERE {condition}", p.values)[0][0]
        )
        if dry_run:
            return count
        for table in ("metric_rollups", "metric_histograms"):
            target = self.db.table(table)
            if self.db.query(f"SELECT 1 FROM {target} WHERE {condition} LIMIT 1", p.values):
                self.db.command(f"ALTER TABLE {target} DELETE WHERE {condition}", p.values, _SYNC)
        return count

    def reclaim(self) -> None:
        """Nothing to do: the mutations rewrote the parts (see the module docstring)."""

    def _record_conditions(self, sel: RecordSelection, p: _Bound) -> str:
        where = [f"workspace = {p(sel.workspace, 'String')}"]
        if sel.start is not None:
            where.append(f"timestamp >= {p.time(sel.start)}")
        if sel.before is not None:
            where.append(f"timestamp < {p.time(sel.before)}")
        if sel.request_ids:
            where.append(f"request_id IN {p(list(sel.request_ids), 'Array(String)')}")
        for key, value in (("user_id", sel.user), ("tenant_id", sel.tenant)):
            if value is None:
                continue
            if key in self.schema.promoted_keys:
                where.append(f"`{metadata_column_name(key)}` = {p(value, 'String')}")
            else:
                k = p(key, "String")
                where.append(f"request_metadata[{k}] = {p(value, 'String')}")
        if sel.with_body:
            where.append(
                "(input_body_s3_path IS NOT NULL OR output_body_s3_path IS NOT NULL OR "
                f"record_id IN (SELECT record_id FROM {self.db.table('bodies')} "
                f"WHERE {_HAS_BODY}))"
            )
        if sel.after is not None:
            micros, record_id = p(epoch_us(sel.after[0]), "Int64"), p(sel.after[1], "String")
            where.append(
                f"(toUnixTimestamp64Micro(timestamp), record_id) > ({micros}, {record_id})"
            )
        return " AND ".join(where)

    def _bodies(self, ids: list[str], full: bool) -> dict[str, dict[str, Any]]:
        """The body rows holding a body, by record id (the bodies themselves with ``full``)."""
        names = BODY_NAMES if full else ("record_id",)
        rows = self.db.query(
            f"SELECT {', '.join(names)} FROM {self.db.table('bodies')} "
            f"WHERE record_id IN {{ids:Array(String)}} AND {_HAS_BODY}",
            {"ids": ids},
        )
        return {str(r[0]): dict(zip(names, r, strict=True)) for r in rows}


def _span_conditions(sel: SpanSelection, p: _Bound) -> str:
    where = [f"workspace = {p(sel.workspace, 'String')}"]
    if sel.before is not None:
        where.append(f"start_time < {p.time(sel.before)}")
    anyof: list[str] = []
    if sel.trace_ids:
        anyof.append(f"trace_id IN {p(list(sel.trace_ids), 'Array(String)')}")
    for keys, value in ((USER_ATTRIBUTES, sel.user), (TENANT_ATTRIBUTES, sel.tenant)):
        if value is None:
            continue
        bound = p(value, "String")
        for key in keys:
            anyof.append(f"JSONExtractString(ifNull(attributes, ''), {p(key, 'String')}) = {bound}")
    if anyof:
        where.append("(" + " OR ".join(anyof) + ")")
    return " AND ".join(where)


def _span(row: dict[str, Any]) -> Span:
    """A stored span row (times as epoch microseconds) as a `Span`."""

    def loads(text: Any) -> Any:
        return None if text is None else orjson.loads(text)

    error = SpanError(row["error_type"], row["error_message"], row["error_stack_trace"])
    return Span(
        trace_id=row["trace_id"],
        span_id=row["span_id"],
        parent_span_id=row["parent_span_id"],
        kind=row["kind"],
        name=row["name"],
        start=from_micros(row["start_time"]),
        end=from_micros(row["end_time"]),
        status=row["status"],
        error=error if error.to_dict() else None,
        input=loads(row["input"]),
        output=loads(row["output"]),
        attributes=loads(row["attributes"]) or {},
        tags=tuple(loads(row["tags"]) or ()),
        session_id=row["session_id"],
        app=row["app"],
        workspace=row["workspace"],
        source=row["source"],
    )
