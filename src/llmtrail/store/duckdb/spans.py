"""SpanStore on DuckDB: spans in their own table, traces read as the union with the records.

Writes are append-only Arrow batches (no unique index on a hot table): a span sent again is a
new row, and reads keep the latest row of each ``(traceId, spanId)`` — ``ingested_at`` is made
strictly increasing by the writer thread, which runs every append in turn. The records table
already holds model calls with their ``trace`` columns, so a trace summary is one SQL query
over both tables that mirrors `llmtrail.store.spans.summarize_trace` term by term: the root
is the first element in (has a parent, start, spanId) order, a record wins over a span with
the same spanId, tokens come from records alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import duckdb
import orjson

from llmtrail.record import DEFAULT_WORKSPACE
from llmtrail.schema import Type, metadata_column_name
from llmtrail.span import SPAN_COLUMNS, Span, SpanError, span_from_record
from llmtrail.store.arrow import latest_of, span_table
from llmtrail.store.duckdb.database import Database
from llmtrail.store.paging import EPOCH, decode_cursor, encode_cursor
from llmtrail.store.rows import from_row
from llmtrail.store.spans import TracePage, TraceQuery, TraceSummary

if TYPE_CHECKING:
    import pyarrow as pa

_STORED = tuple(c for c in SPAN_COLUMNS if c.name != "ingested_at")
_SPAN_SELECT = ", ".join(
    f'epoch_us("{c.name}") AS "{c.name}"' if c.type is Type.TIMESTAMP else f'"{c.name}"'
    for c in _STORED
)
_LATEST = "QUALIFY row_number() OVER (PARTITION BY trace_id, span_id ORDER BY ingested_at DESC) = 1"
_ORDER_KEY = "(coalesce(parent_span_id, '') <> '', s, span_id)"


class DuckDBSpanStore:
    """SpanStore on the `Database` that also holds the records."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.schema = db.schema
        self._last_ingested = EPOCH
        if "application_name" in self.schema.promoted_keys:
            self._app = f'"{metadata_column_name("application_name")}"'
        else:
            self._app = "request_metadata['application_name']"

    def append(self, spans: Sequence[Span]) -> int:
        if spans:
            self.append_table(span_table(latest_of(spans)))
        return len(spans)

    def append_table(self, table: pa.Table) -> None:
        """Insert spans already converted (`span_table`, in the recorder process)."""

        def write(conn: duckdb.DuckDBPyConnection) -> None:
            now = max(datetime.now(UTC), self._last_ingested + timedelta(microseconds=1))
            self._last_ingested = now
            conn.register("_batch_spans", table)
            try:
                conn.execute(
                    "INSERT INTO spans BY NAME SELECT *, ?::TIMESTAMPTZ AS ingested_at "
                    "FROM _batch_spans",
                    [now],
                )
            finally:
                conn.unregister("_batch_spans")

        self.db.write(write)

    def get_trace(self, trace_id: str, workspace: str = DEFAULT_WORKSPACE) -> list[Span]:
        records = [span_from_record(r) for r in self._records_of(trace_id, workspace)]
        taken = {s.span_id for s in records}
        names = [c.name for c in _STORED]
        rows = self.db.read(
            lambda c: c.execute(
                f"SELECT {_SPAN_SELECT} FROM spans WHERE workspace = ? AND trace_id = ? {_LATEST}",
                [workspace, trace_id],
            ).fetchall()
        )
        stored = [_span(dict(zip(names, row, strict=True))) for row in rows]
        spans = records + [s for s in stored if s.span_id not in taken]
        return sorted(spans, key=lambda s: (s.start, s.span_id))

    def find_traces(self, query: TraceQuery) -> TracePage:
        sql, params = self._summary_sql(query)
        rows = self.db.read(lambda c: c.execute(sql, params).fetchall())
        page = [_summary(row, query.workspace) for row in rows[: query.limit]]
        more = len(rows) > query.limit and bool(page)
        cursor = encode_cursor(_us(page[-1].start), page[-1].trace_id) if more else None
        return TracePage(page, cursor)

    def close(self) -> None:
        self.db.close()

    # -- SQL ------------------------------------------------------------------------------------

    def _summary_sql(self, q: TraceQuery) -> tuple[str, list[Any]]:
        params: list[Any] = []
        only = ""
        if q.start is not None or q.end is not None:
            # a trace starting in the window has its first element in it: only those traces
            bounds, bound_params = [], []
            for op, value in ((">=", q.start), ("<", q.end)):
                if value is not None:
                    bounds.append(f"{op} ?")
                    bound_params.append(value)
            span_time = " AND ".join(f"start_time {b}" for b in bounds)
            record_time = " AND ".join(f'"timestamp" {b}' for b in bounds)
            only = (
                "AND trace_id IN (SELECT trace_id FROM spans WHERE workspace = ? "
                f"AND {span_time} UNION SELECT trace_id FROM records WHERE workspace = ? "
                f"AND trace_id IS NOT NULL AND {record_time})"
            )
            params_only = [q.workspace, *bound_params, q.workspace, *bound_params]
        else:
            params_only = []
        record_rows = (
            "SELECT trace_id, coalesce(nullif(span_id, ''), request_id) AS span_id, "
            "parent_span_id, coalesce(nullif(span_name, ''), nullif(concat_ws(' ', "
            "nullif(operation, ''), nullif(model_id, '')), ''), 'model call') AS name, "
            '"timestamp" AS s, "timestamp" + to_milliseconds(coalesce(latency_ms, 0)) AS e, '
            f"coalesce(nullif(status, ''), 'OK') AS status, {self._app} AS app, session_id, "
            "1 AS llm, coalesce(input_token_count, 0) AS tin, "
            "coalesce(output_token_count, 0) AS tout "
            f"FROM records WHERE workspace = ? AND coalesce(trace_id, '') <> '' {only}"
        )
        span_rows = (
            "SELECT trace_id, span_id, parent_span_id, name, start_time AS s, end_time AS e, "
            "status, app, session_id, 0 AS llm, 0 AS tin, 0 AS tout "
            f"FROM spans WHERE workspace = ? {only} {_LATEST}"
        )
        params += [q.workspace, *params_only, q.workspace, *params_only]
        where, where_params = _filters(q)
        params += where_params
        sql = (
            f"WITH rec AS ({record_rows}), spn AS ({span_rows}), "
            "el AS (SELECT * FROM rec UNION ALL SELECT * FROM spn WHERE NOT EXISTS "
            "(SELECT 1 FROM rec WHERE rec.trace_id = spn.trace_id AND rec.span_id = spn.span_id)),"
            " t AS (SELECT trace_id, "
            f"arg_min(name, {_ORDER_KEY}) AS name, arg_min(status, {_ORDER_KEY}) AS status, "
            "min(s) AS s, max(e) AS e, count(*) AS n, sum(llm) AS llm, "
            "count(*) FILTER (WHERE status = 'ERROR') AS errors, "
            "sum(tin) AS tin, sum(tout) AS tout, "
            f"arg_min(session_id, {_ORDER_KEY}) FILTER (WHERE coalesce(session_id, '') <> '') "
            "AS session_id, "
            f"arg_min(app, {_ORDER_KEY}) FILTER (WHERE coalesce(app, '') <> '') AS app "
            "FROM el GROUP BY trace_id) "
            "SELECT trace_id, name, status, epoch_us(s), epoch_us(e), n, llm, errors, tin, tout, "
            f"session_id, app FROM t WHERE {where} "
            f"ORDER BY s DESC, trace_id DESC LIMIT {int(q.limit) + 1}"
        )
        return sql, params

    def _records_of(self, trace_id: str, workspace: str) -> list[Any]:
        cols = self.schema.record_columns
        select = ", ".join(
            f'epoch_us(r."{c.name}")' if c.type is Type.TIMESTAMP else f'r."{c.name}"' for c in cols
        )
        sql = (
            f"SELECT {select}, b.input_body_json, b.output_body_json FROM records r "
            "LEFT JOIN bodies b ON b.record_id = r.record_id "
            "WHERE r.workspace = ? AND r.trace_id = ?"
        )
        rows = self.db.read(lambda c: c.execute(sql, [workspace, trace_id]).fetchall())
        names = [c.name for c in cols]
        out = []
        for row in rows:
            values = dict(zip(names, row[: len(cols)], strict=True))
            body = {"input_body_json": row[len(cols)], "output_body_json": row[len(cols) + 1]}
            out.append(from_row(values, body, self.schema))
        return out


def _filters(q: TraceQuery) -> tuple[str, list[Any]]:
    where = ["TRUE"]
    params: list[Any] = []
    for sql, value in (
        ("s >= ?", q.start),
        ("s < ?", q.end),
        ("app = ?", q.app),
        ("session_id = ?", q.session_id),
        ("status = ?", q.status),
        ("(epoch_us(e) - epoch_us(s)) // 1000 >= ?", q.min_duration_ms),
    ):
        if value is not None:
            where.append(sql)
            params.append(value)
    if q.has_error is not None:
        where.append("errors > 0" if q.has_error else "errors = 0")
    if q.cursor:
        micros, trace_id = decode_cursor(q.cursor)
        where.append("(epoch_us(s), trace_id) < (?, ?)")
        params += [micros, trace_id]
    return " AND ".join(where), params


def _loads(text: str | None) -> Any:
    return None if text is None else orjson.loads(text)


def _time(micros: int) -> datetime:
    return EPOCH + timedelta(microseconds=micros)


def _us(value: datetime) -> int:
    return (value - EPOCH) // timedelta(microseconds=1)


def _span(row: dict[str, Any]) -> Span:
    has_error = any(
        row[k] is not None for k in ("error_type", "error_message", "error_stack_trace")
    )
    return Span(
        trace_id=row["trace_id"],
        span_id=row["span_id"],
        parent_span_id=row["parent_span_id"],
        kind=row["kind"],
        name=row["name"],
        start=_time(row["start_time"]),
        end=_time(row["end_time"]),
        status=row["status"],
        error=(
            SpanError(row["error_type"], row["error_message"], row["error_stack_trace"])
            if has_error
            else None
        ),
        input=_loads(row["input"]),
        output=_loads(row["output"]),
        attributes=_loads(row["attributes"]) or {},
        tags=tuple(_loads(row["tags"]) or ()),
        session_id=row["session_id"],
        app=row["app"],
        workspace=row["workspace"],
        source=row["source"],
    )


def _summary(row: tuple[Any, ...], workspace: str) -> TraceSummary:
    trace_id, name, status, start, end, n, llm, errors, tin, tout, session_id, app = row
    return TraceSummary(
        trace_id=trace_id,
        workspace=workspace,
        name=name,
        start=_time(start),
        end=_time(end),
        status=status,
        span_count=int(n),
        llm_calls=int(llm),
        error_count=int(errors),
        input_tokens=int(tin),
        output_tokens=int(tout),
        session_id=session_id,
        app=app,
    )
