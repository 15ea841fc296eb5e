"""SpanStore on ClickHouse: the DuckDB store's queries in ClickHouse's words.

Spans are appended as Arrow batches to ``spans`` (sorted by workspace, trace and span, so a
trace is one range of the key); a span sent again is a new row and reads keep the latest
``ingested_at`` of each ``(traceId, spanId)`` (``LIMIT 1 BY``). Each server makes its own
``ingested_at`` strictly increasing; two servers writing one span at the same microsecond
may return either. A trace's records are read from ``records`` and their bodies by one
``IN`` look-up on ``bodies``, as `ClickHouseRecordStore` reads pages.

A trace summary is one query over both tables that mirrors
`llmtrail.store.spans.summarize_trace` as `llmtrail.store.duckdb.spans` does: the root is the
first element in (has a parent, start, spanId) order (``argMin`` over that tuple), a record
wins over a span with the same spanId, tokens come from records alone. Times are carried as
epoch microseconds throughout, so the two sides of the ``UNION ALL`` agree on types and the
cursor compares exact integers.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa

from llmtrail.record import DEFAULT_WORKSPACE, InvocationRecord
from llmtrail.schema import Type, metadata_column_name
from llmtrail.span import SPAN_COLUMNS, Span, span_from_record
from llmtrail.store.arrow import span_table
from llmtrail.store.clickhouse.columns import Params, row_values, select_expression
from llmtrail.store.clickhouse.database import ClickHouseDatabase
from llmtrail.store.duckdb.spans import _span, _summary
from llmtrail.store.paging import EPOCH, decode_cursor, encode_cursor, epoch_us
from llmtrail.store.rows import BODY_NAMES, from_row
from llmtrail.store.spans import TracePage, TraceQuery

_STORED = tuple(c for c in SPAN_COLUMNS if c.name != "ingested_at")
_SPAN_SELECT = ", ".join(
    f"toUnixTimestamp64Micro(`{c.name}`)" if c.type is Type.TIMESTAMP else f"`{c.name}`"
    for c in _STORED
)
_LATEST = "ORDER BY ingested_at DESC LIMIT 1 BY trace_id, span_id"
_ORDER_KEY = "tuple(ifNull(parent_span_id, '') != '', s, span_id)"
_TEXT = "Nullable(String)"


class ClickHouseSpanStore:
    """SpanStore on the `ClickHouseDatabase` that also holds the records."""

    def __init__(self, db: ClickHouseDatabase) -> None:
        self.db = db
        self.schema = db.schema
        self._last_ingested = EPOCH
        if "application_name" in self.schema.promoted_keys:
            self._app = f"`{metadata_column_name('application_name')}`"
        else:
            self._app = "nullIf(request_metadata['application_name'], '')"

    def append(self, spans: Sequence[Span]) -> int:
        latest = {(s.workspace, s.trace_id, s.span_id): s for s in spans}  # last one wins
        if not latest:
            return len(spans)
        now = max(datetime.now(UTC), self._last_ingested + timedelta(microseconds=1))
        self._last_ingested = now
        table = span_table(list(latest.values()))
        stamp = pa.array([now] * table.num_rows, type=pa.timestamp("us", tz="UTC"))
        table = table.append_column("ingested_at", stamp)
        self.db.insert_arrow("spans", table, {"insert_deduplicate": 0})
        return len(spans)

    def get_trace(self, trace_id: str, workspace: str = DEFAULT_WORKSPACE) -> list[Span]:
        records = [span_from_record(r) for r in self._records_of(trace_id, workspace)]
        taken = {s.span_id for s in records}
        names = [c.name for c in _STORED]
        rows = self.db.query(
            f"SELECT {_SPAN_SELECT} FROM {self.db.table('spans')} "
            "WHERE workspace = {w:String} AND trace_id = {t:String} " + _LATEST,
            {"w": workspace, "t": trace_id},
        )
        stored = [_span(dict(zip(names, row, strict=True))) for row in rows]
        spans = records + [s for s in stored if s.span_id not in taken]
        return sorted(spans, key=lambda s: (s.start, s.span_id))

    def find_traces(self, query: TraceQuery) -> TracePage:
        sql, params = self._summary_sql(query)
        rows = self.db.query(sql, params)
        page = [_summary(_nulls(row), query.workspace) for row in rows[: query.limit]]
        more = len(rows) > query.limit and bool(page)
        cursor = encode_cursor(epoch_us(page[-1].start), page[-1].trace_id) if more else None
        return TracePage(page, cursor)

    def close(self) -> None:
        self.db.close()

    # -- SQL ------------------------------------------------------------------------------------

    def _summary_sql(self, q: TraceQuery) -> tuple[str, dict[str, Any]]:
        p = Params()
        ws = p.bind(q.workspace, "String")
        only = ""
        if q.start is not None or q.end is not None:
            # a trace starting in the window has its first element in it: only those traces
            bounds = [
                f"{op} {p.micros(value)}"
                for op, value in ((">=", q.start), ("<", q.end))
                if value is not None
            ]
            span_time = " AND ".join(f"start_time {b}" for b in bounds)
            record_time = " AND ".join(f"timestamp {b}" for b in bounds)
            only = (
                f"AND trace_id IN (SELECT trace_id FROM {self.db.table('spans')} "
                f"WHERE workspace = {ws} AND {span_time} UNION ALL SELECT trace_id "
                f"FROM {self.db.table('records')} WHERE workspace = {ws} "
                f"AND trace_id IS NOT NULL AND {record_time})"
            )
        record_name = (
            "arrayStringConcat(arrayFilter(x -> x != '', "
            "[ifNull(operation, ''), ifNull(model_id, '')]), ' ')"
        )
        record_rows = (
            f"SELECT CAST(trace_id AS {_TEXT}) AS trace_id, "
            f"CAST(coalesce(nullIf(span_id, ''), request_id) AS {_TEXT}) AS span_id, "
            f"CAST(parent_span_id AS {_TEXT}) AS parent_span_id, "
            f"CAST(coalesce(nullIf(span_name, ''), nullIf({record_name}, ''), 'model call') "
            f"AS {_TEXT}) AS name, toUnixTimestamp64Micro(timestamp) AS s, "
            "s + toInt64(ifNull(latency_ms, 0)) * 1000 AS e, "
            f"CAST(coalesce(nullIf(status, ''), 'OK') AS {_TEXT}) AS status, "
            f"CAST({self._app} AS {_TEXT}) AS app, CAST(session_id AS {_TEXT}) AS session_id, "
            "toInt64(1) AS llm, toInt64(ifNull(input_token_count, 0)) AS tin, "
            "toInt64(ifNull(output_token_count, 0)) AS tout "
            f"FROM {self.db.table('records')} "
            f"WHERE workspace = {ws} AND ifNull(trace_id, '') != '' {only}"
        )
        span_rows = (
            "SELECT trace_id, span_id, parent_span_id, name, "
            "toUnixTimestamp64Micro(start_time) AS s, toUnixTimestamp64Micro(end_time) AS e, "
            "status, app, session_id, toInt64(0) AS llm, toInt64(0) AS tin, toInt64(0) AS tout "
            f"FROM {self.db.table('spans')} WHERE workspace = {ws} {only} {_LATEST}"
        )
        where = _filters(q, p)
        sql = (
            f"WITH rec AS ({record_rows}), spn AS ({span_rows}) "
            "SELECT trace_id, "
            f"argMin(name, {_ORDER_KEY}), argMin(status, {_ORDER_KEY}), "
            "min(s) AS ts, max(e) AS te, count() AS n, sum(llm), "
            "countIf(status = 'ERROR') AS errors, sum(tin), sum(tout), "
            f"argMinIf(session_id, {_ORDER_KEY}, ifNull(session_id, '') != '') AS sid, "
            f"argMinIf(app, {_ORDER_KEY}, ifNull(app, '') != '') AS tapp "
            "FROM (SELECT * FROM rec UNION ALL SELECT * FROM spn "
            "WHERE (trace_id, span_id) NOT IN (SELECT trace_id, span_id FROM rec)) "
            f"GROUP BY trace_id HAVING {where} "
            f"ORDER BY ts DESC, trace_id DESC LIMIT {int(q.limit) + 1}"
        )
        return sql, p.values

    def _records_of(self, trace_id: str, workspace: str) -> list[InvocationRecord]:
        cols = self.schema.record_columns
        rows = self.db.query(
            f"SELECT {', '.join(select_expression(c) for c in cols)} "
            f"FROM {self.db.table('records')} "
            "WHERE workspace = {w:String} AND trace_id = {t:String}",
            {"w": workspace, "t": trace_id},
        )
        found = [row_values(cols, row) for row in rows]
        bodies: dict[str, dict[str, Any]] = {}
        if found:
            body_rows = self.db.query(
                f"SELECT {', '.join(BODY_NAMES)} FROM {self.db.table('bodies')} "
                "WHERE record_id IN {ids:Array(String)}",
                {"ids": [v["record_id"] for v in found]},
            )
            bodies = {row[0]: dict(zip(BODY_NAMES, row, strict=True)) for row in body_rows}
        return [from_row(v, bodies.get(v["record_id"]), self.schema) for v in found]


def _filters(q: TraceQuery, p: Params) -> str:
    where = ["1"]
    for sql, value, type_ in (
        ("ts >= {}", None if q.start is None else epoch_us(q.start), "Int64"),
        ("ts < {}", None if q.end is None else epoch_us(q.end), "Int64"),
        ("tapp = {}", q.app, "String"),
        ("sid = {}", q.session_id, "String"),
        ("argMin(status, " + _ORDER_KEY + ") = {}", q.status, "String"),
        ("intDiv(te - ts, 1000) >= {}", q.min_duration_ms, "Int64"),
    ):
        if value is not None:
            where.append(sql.format(p.bind(value, type_)))
    if q.has_error is not None:
        where.append("errors > 0" if q.has_error else "errors = 0")
    if q.cursor:
        micros, trace_id = decode_cursor(q.cursor)
        where.append(f"(ts, trace_id) < ({p.bind(micros, 'Int64')}, {p.bind(trace_id, 'String')})")
    return " AND ".join(where)


def _nulls(row: Sequence[Any]) -> tuple[Any, ...]:
    """A summary row with the empty session and app (what ``argMinIf`` gives for none) as
    None, as DuckDB's ``FILTER`` gives them."""
    values = list(row)
    values[10] = values[10] or None
    values[11] = values[11] or None
    return tuple(values)
