"""RecordStore on ClickHouse: Arrow batches in, typed columns out.

Reads bind every value as a ``{name:Type}`` server parameter; times travel as exact epoch
microseconds. A page of records is one query on ``records`` and, when bodies are wanted, one
``IN`` lookup on ``bodies`` (sorted by ``record_id``), not a join, which ClickHouse would
answer by reading the whole right side. How appends stay idempotent is in `replay`.

Re-pricing (`ClickHouseRecordStore.set_costs`) is one synchronous mutation: each cost column
is set from a map of record id to new value (two bound arrays), so a batch of records
with different costs is rewritten in one pass (ClickHouse has no multi-statement transaction;
a mutation is applied to each part atomically).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from llmtrail.record import DEFAULT_WORKSPACE, InvocationRecord
from llmtrail.schema import Type, metadata_column_name
from llmtrail.store.clickhouse.columns import (
    Params,
    arrow_table,
    note_empty_maps,
    row_values,
    select_expression,
)
from llmtrail.store.clickhouse.database import ClickHouseDatabase
from llmtrail.store.clickhouse.replay import dedup_token, may_be_stored
from llmtrail.store.duckdb.records import (
    COST_COLUMNS,
    RECENT_CALL_COLUMNS,
    arrow_schema,
    cost_update,
)
from llmtrail.store.interfaces import AppendResult, RecentCall, RecordPage, RecordQuery
from llmtrail.store.paging import decode_cursor, encode_cursor, epoch_us
from llmtrail.store.rows import BODY_NAMES, from_row, to_columns

DEFAULT_SPOOL = "main"
_NO_DEDUPLICATION = {"insert_deduplicate": 0}


class ClickHouseRecordStore:
    """Invocation records and their bodies in a `ClickHouseDatabase`.

    ``spool`` names the spool whose position this store commits: each writer process (each
    gateway replica) has its own.
    """

    def __init__(self, db: ClickHouseDatabase, spool: str = DEFAULT_SPOOL) -> None:
        self.db = db
        self.schema = db.schema
        self.spool = spool
        self._record_arrow = arrow_schema(self.schema.record_columns)
        self._body_arrow = arrow_schema(self.schema.body_columns)
        self._promoted = {k: metadata_column_name(k) for k in self.schema.promoted_keys}
        self._opened_us = epoch_us(datetime.now(UTC))
        self._unsure = False  # an append failed part-way: the next one looks up every record

    def append(
        self, records: Sequence[InvocationRecord], position: str | None = None
    ) -> AppendResult:
        cols, bodies = to_columns(records, self.schema, datetime.now(UTC))
        note_empty_maps(cols, self.schema)
        skipped = 0 if position is None else self._drop_stored(cols, bodies)
        try:
            # bodies first: a record becomes visible with its bodies already there (a
            # reader between the two inserts would otherwise get a record without them)
            for table, columns, schema in (
                ("bodies", bodies, self._body_arrow),
                ("records", cols, self._record_arrow),
            ):
                if not columns["record_id"]:
                    continue
                settings: dict[str, Any] = dict(_NO_DEDUPLICATION)
                if position is not None:
                    token = dedup_token(self.spool, position, columns["record_id"])
                    settings = {
                        "insert_deduplication_token": token,
                        # the metric views' inserts are dropped with a dropped block
                        "deduplicate_blocks_in_dependent_materialized_views": 1,
                    }
                self.db.insert_arrow(table, arrow_table(columns, schema), settings)
            if position is not None:
                self.db.insert_row("spool_position", {"name": self.spool, "position": position})
        except BaseException:
            self._unsure = True
            raise
        self._unsure = False
        extra = {"already_stored": skipped} if skipped else {}
        return AppendResult(stored=len(records), position=position, extra=extra)

    def committed_position(self) -> str | None:
        rows = self.db.query(
            f"SELECT position FROM {self.db.table('spool_position')} FINAL "
            "WHERE name = {name:String}",
            {"name": self.spool},
        )
        return str(rows[0][0]) if rows else None

    def get(self, request_id: str, workspace: str = DEFAULT_WORKSPACE) -> InvocationRecord | None:
        params = Params()
        where = (
            f"workspace = {params.bind(workspace, 'String')} "
            f"AND request_id = {params.bind(request_id, 'String')}"
        )
        rows = self._select(where, params, "timestamp ASC, record_id ASC", 1, with_bodies=True)
        return rows[0][0] if rows else None

    def find(self, query: RecordQuery) -> RecordPage:
        params = Params()
        where = self._conditions(query, params)
        following = query.order == "ingested"
        sort = "ingested_at" if following else "timestamp"
        if query.cursor:
            micros, record_id = decode_cursor(query.cursor)
            after = (params.bind(micros, "Int64"), params.bind(record_id, "String"))
            bound = f"fromUnixTimestamp64Micro({after[0]}, 'UTC')"
            where.append(f"{sort} {'>=' if following else '<='} {bound}")  # prunes by the key
            where.append(
                f"(toUnixTimestamp64Micro({sort}), record_id) {'>' if following else '<'} "
                f"({after[0]}, {after[1]})"
            )
        direction = "ASC" if following else "DESC"
        rows = self._select(
            " AND ".join(where),
            params,
            f"{sort} {direction}, record_id {direction}",
            query.limit + 1,
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
        return [(str(w), str(r)) for w, r in self._recent("workspace, request_id", since, limit)]

    def recent_calls(self, since: datetime, limit: int) -> list[RecentCall]:
        rows = self._recent(RECENT_CALL_COLUMNS, since, limit)
        return [
            RecentCall(ws, rid, source, trace, parent, response, _aware(at))
            for ws, rid, source, trace, parent, response, at in reversed(rows)
        ]

    def _recent(self, columns: str, since: datetime, limit: int) -> Sequence[Sequence[Any]]:
        """``columns`` of the ``limit`` records ingested last since ``since``, latest first."""
        params = Params()
        return self.db.query(
            f"SELECT {columns} FROM {self.db.table('records')} "
            f"WHERE ingested_at >= {params.micros(since)} "
            f"ORDER BY ingested_at DESC LIMIT {max(int(limit), 0)}",
            params.values,
        )

    def stored_request_ids(
        self, keys: Sequence[tuple[str, str]], since: datetime
    ) -> set[tuple[str, str]]:
        if not keys:
            return set()
        params = Params()
        ids = params.bind(sorted({r for _, r in keys}), "Array(String)")  # the bloom filter's
        rows = self.db.query(
            f"SELECT DISTINCT workspace, request_id FROM {self.db.table('records')} "
            f"WHERE request_id IN {ids} AND ingested_at >= {params.micros(since)}",
            params.values,
        )
        return {(str(w), str(r)) for w, r in rows} & set(keys)

    def set_costs(
        self, costs: Mapping[str, Mapping[str, Any] | None], workspace: str = DEFAULT_WORKSPACE
    ) -> int:
        if not costs:
            return 0
        params = Params()
        where = (
            f"workspace = {params.bind(workspace, 'String')} "
            f"AND record_id IN {params.bind(list(costs), 'Array(String)')}"
        )
        table = self.db.table("records")
        found = {
            str(rid): extra
            for rid, extra in self.db.query(
                f"SELECT record_id, extra FROM {table} WHERE {where}", params.values
            )
        }
        if not found:
            return 0
        updates = {rid: cost_update(costs[rid], extra) for rid, extra in found.items()}
        assignments = []
        for name, money in _COST_TARGETS:
            given = {rid: _text(v[name]) for rid, v in updates.items() if v[name] is not None}
            if not given:
                assignments.append(f"`{name}` = NULL")
                continue
            keys, texts = (
                params.bind(list(given), "Array(String)"),
                params.bind(list(given.values()), "Array(String)"),
            )
            mapping = f"mapFromArrays({keys}, {texts})"
            value = f"{mapping}[record_id]"
            if money:
                value = f"toDecimal128OrNull({value}, 9)"
            assignments.append(f"`{name}` = if(mapContains({mapping}, record_id), {value}, NULL)")
        self.db.command(
            f"ALTER TABLE {table} UPDATE {', '.join(assignments)} WHERE {where}",
            params.values,
            {"mutations_sync": 2},
        )
        return len(found)

    def close(self) -> None:
        self.db.close()

    def _conditions(self, query: RecordQuery, params: Params) -> list[str]:
        where = [f"workspace = {params.bind(query.workspace, 'String')}"]
        for column, value in (
            ("model_id", query.model_id),
            ("operation", query.operation),
            ("status", query.status),
            ("provider", query.provider),
        ):
            if value is not None:
                where.append(f"{column} = {params.bind(value, 'String')}")
        if query.start is not None:
            where.append(f"timestamp >= {params.micros(query.start)}")
        if query.end is not None:
            where.append(f"timestamp < {params.micros(query.end)}")
        for key, value in query.metadata:
            if key in self._promoted:
                where.append(f"`{self._promoted[key]}` = {params.bind(value, 'String')}")
            else:
                k = params.bind(key, "String")
                where.append(
                    f"mapContains(request_metadata, {k}) "
                    f"AND request_metadata[{k}] = {params.bind(value, 'String')}"
                )
        if query.ingested_after is not None:
            where.append(f"ingested_at > {params.micros(query.ingested_after)}")
        return where

    def _select(
        self, where: str, params: Params, order: str, limit: int, *, with_bodies: bool
    ) -> list[tuple[InvocationRecord, dict[str, Any]]]:
        cols = self.schema.record_columns
        select = ", ".join(select_expression(c) for c in cols)
        rows = self.db.query(
            f"SELECT {select} FROM {self.db.table('records')} WHERE {where} "
            f"ORDER BY {order} LIMIT {int(limit)}",
            params.values,
        )
        found = [row_values(cols, row) for row in rows]
        bodies = self._bodies([v["record_id"] for v in found]) if with_bodies and found else {}
        return [
            (from_row(values, bodies.get(values["record_id"]), self.schema), values)
            for values in found
        ]

    def _bodies(self, record_ids: list[str]) -> dict[str, dict[str, Any]]:
        rows = self.db.query(
            f"SELECT {', '.join(BODY_NAMES)} FROM {self.db.table('bodies')} "
            "WHERE record_id IN {ids:Array(String)}",
            {"ids": record_ids},
        )
        return {row[0]: dict(zip(BODY_NAMES, row, strict=True)) for row in rows}

    def _drop_stored(self, cols: dict[str, list[Any]], bodies: dict[str, list[Any]]) -> int:
        """Remove from the batch (in place) the records and bodies already stored, looking up
        only those that may be (see `replay`); the number of records removed."""
        check = [
            rid
            for rid in cols["record_id"]
            if isinstance(rid, str) and (self._unsure or may_be_stored(rid, self._opened_us))
        ]
        if not check:
            return 0
        checked = set(check)
        stamps = [
            ts
            for rid, ts in zip(cols["record_id"], cols["timestamp"], strict=True)
            if rid in checked
        ]
        before = len(cols["record_id"])
        stored = self._stored_ids("records", check, stamps)
        if stored:
            _keep_rows(cols, [rid not in stored for rid in cols["record_id"]])
        body_stored = self._stored_ids("bodies", [r for r in bodies["record_id"] if r in checked])
        if body_stored:
            _keep_rows(bodies, [rid not in body_stored for rid in bodies["record_id"]])
        return before - len(cols["record_id"])

    def _stored_ids(
        self, table: str, ids: list[str], stamps: list[datetime | None] | None = None
    ) -> set[str]:
        if not ids:
            return set()
        params = Params()
        where = f"record_id IN {params.bind(ids, 'Array(String)')}"
        if stamps and all(s is not None for s in stamps):
            known = [s for s in stamps if s is not None]
            where += (
                f" AND timestamp >= {params.micros(min(known))}"
                f" AND timestamp <= {params.micros(max(known))}"
            )
        rows = self.db.query(
            f"SELECT DISTINCT record_id FROM {self.db.table(table)} WHERE {where}", params.values
        )
        return {str(row[0]) for row in rows}


# (column, holds money) for every column `set_costs` rewrites
_COST_TARGETS = (
    *((c.name, c.type is Type.DECIMAL) for c in COST_COLUMNS.values()),
    ("extra", False),
)


def _text(value: Any) -> str:
    """A column value as the text the mutation parses (a Decimal never in E notation)."""
    return format(value, "f") if isinstance(value, Decimal) else str(value)


def _keep_rows(columns: dict[str, list[Any]], keep: list[bool]) -> None:
    for name, values in columns.items():
        columns[name] = [v for v, k in zip(values, keep, strict=True) if k]


def _aware(value: datetime) -> datetime:
    """ClickHouse's ``DateTime64(6, 'UTC')`` as an aware datetime."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
