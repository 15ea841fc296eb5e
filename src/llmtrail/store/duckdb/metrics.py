"""Metric rollups on DuckDB, written in the transaction that stores their records.

Two tables: ``metric_rollups`` holds per bucket and series the counts, sums, minima and
maxima; ``metric_histograms`` holds the latency buckets (`llmtrail.metrics.sketch`) as rows
``(…series…, metric, idx, n)``. Each batch adds rows for four bucket widths (10 s, 1 min,
5 min, 1 h) and every dimension set, from one ``GROUPING SETS`` statement per table over the batch.
Rows are deltas: several rows of one series and bucket add up on read, and `compact` folds
them into one (plain ``GROUP BY``), so every merge is a sum — which is also what makes a
rebuild (`rebuild`) the same code run over the ``records`` table.

Caller-chosen dimension values are capped per workspace and dimension: the first ``top_n``
values seen are admitted (``metric_dimension_values``, written in the same transaction),
later new ones are counted as ``other``; a full rebuild admits the top N by invocations.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import duckdb

from llmtrail.metrics.dimensions import BY_NAME, DIMENSION_SETS, DIMENSIONS, OTHER, Dimension
from llmtrail.metrics.sketch import LOG_GAMMA, ZERO_BUCKET
from llmtrail.record import MONEY_MAX_USD
from llmtrail.schema import RecordSchema, metadata_column_name

if TYPE_CHECKING:
    import pyarrow as pa

WIDTHS: tuple[int, ...] = (10, 60, 300, 3600)  # kept 6 h, 15 d, 63 d, 455 d by default
DIM_COLUMNS = tuple(d.column for d in DIMENSIONS)
THROTTLE = "coalesce(r.error_code = 'ThrottlingException' OR r.error_http_status = 429, false)"
ERROR = "r.status = 'ERROR'"

_BOUNDED_COST = (  # least/greatest skip NULLs: a record with no cost must stay NULL
    f"CASE WHEN r.cost_total_usd IS NOT NULL THEN least(greatest(r.cost_total_usd, "
    f"-{MONEY_MAX_USD}), {MONEY_MAX_USD})::DECIMAL(38, 9) END"
)
# (column, DuckDB type, aggregate over a batch of records, how deltas merge)
MEASURES: tuple[tuple[str, str, str, str], ...] = (
    ("invocations", "BIGINT", "count(*)", "sum"),
    (
        "client_errors",
        "BIGINT",
        f"count(*) FILTER (WHERE {ERROR} AND r.error_http_status BETWEEN 400 AND 499"
        f" AND NOT {THROTTLE})",
        "sum",
    ),
    (
        "server_errors",
        "BIGINT",
        f"count(*) FILTER (WHERE {ERROR} AND r.error_http_status >= 500)",
        "sum",
    ),
    ("throttles", "BIGINT", f"count(*) FILTER (WHERE {THROTTLE})", "sum"),
    ("errors", "BIGINT", f"count(*) FILTER (WHERE {ERROR})", "sum"),
    ("input_tokens", "BIGINT", "coalesce(sum(r.input_token_count), 0)", "sum"),
    ("output_tokens", "BIGINT", "coalesce(sum(r.output_token_count), 0)", "sum"),
    ("cache_read_tokens", "BIGINT", "coalesce(sum(r.cache_read_input_token_count), 0)", "sum"),
    ("cache_write_tokens", "BIGINT", "coalesce(sum(r.cache_write_input_token_count), 0)", "sum"),
    # a record's cost counts at most MONEY_MAX_USD either way (what ingest accepts), so a sum
    # stays within DECIMAL(38, 9) over records stored before money was bounded, too
    ("cost_usd", "DECIMAL(38, 9)", f"coalesce(sum({_BOUNDED_COST}), 0)", "sum"),
    ("cost_count", "BIGINT", "count(r.cost_total_usd)", "sum"),
    ("latency_count", "BIGINT", "count(r.latency_ms)", "sum"),
    ("latency_sum", "BIGINT", "coalesce(sum(r.latency_ms), 0)", "sum"),
    ("latency_min", "BIGINT", "min(r.latency_ms)", "min"),
    ("latency_max", "BIGINT", "max(r.latency_ms)", "max"),
    ("ttft_count", "BIGINT", "count(r.time_to_first_token_ms)", "sum"),
    ("ttft_sum", "BIGINT", "coalesce(sum(r.time_to_first_token_ms), 0)", "sum"),
    ("ttft_min", "BIGINT", "min(r.time_to_first_token_ms)", "min"),
    ("ttft_max", "BIGINT", "max(r.time_to_first_token_ms)", "max"),
)
HISTOGRAMS = {"latency": "latency_ms", "ttft": "time_to_first_token_ms"}
# the record columns the measures and histograms read (``r.column`` in their expressions)
_MEASURED_COLUMNS = tuple(
    sorted(
        {c for m in MEASURES for c in re.findall(r"\br\.(\w+)", m[2])} | set(HISTOGRAMS.values())
    )
)

_KEY = (("width_s", "INTEGER"), ("workspace", "VARCHAR"), ("bucket", "TIMESTAMPTZ"))
_SERIES = (("dimset", "INTEGER"), *((c, "VARCHAR") for c in DIM_COLUMNS))
ROLLUP_COLUMNS: tuple[tuple[str, str], ...] = (*_KEY, *_SERIES, *((m[0], m[1]) for m in MEASURES))
STAGING_COLUMNS: tuple[tuple[str, str], ...] = (
    ("workspace", "VARCHAR"),
    ("bucket", "TIMESTAMPTZ"),
    *((c, "VARCHAR") for c in DIM_COLUMNS),
    *((m[0], m[1]) for m in MEASURES),
)
STAGING_HISTOGRAM_COLUMNS: tuple[tuple[str, str], ...] = (
    ("workspace", "VARCHAR"),
    ("bucket", "TIMESTAMPTZ"),
    *((c, "VARCHAR") for c in DIM_COLUMNS),
    ("metric", "VARCHAR"),
    ("idx", "INTEGER"),
    ("n", "BIGINT"),
)
HISTOGRAM_COLUMNS: tuple[tuple[str, str], ...] = (
    *_KEY,
    *_SERIES,
    ("metric", "VARCHAR"),
    ("idx", "INTEGER"),
    ("n", "BIGINT"),
)
VALUE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("workspace", "VARCHAR"),
    ("dimension", "VARCHAR"),
    ("value", "VARCHAR"),
)


def _bucket(width: int) -> str:
    us = width * 1_000_000
    return f'make_timestamptz((epoch_us(r."timestamp") // {us}) * {us})'


class DuckDBRollups:
    """The rollup tables of one `Database`; ``write`` runs inside its writer's transaction."""

    def __init__(self, schema: RecordSchema, top_n: int = 100) -> None:
        self.schema = schema
        self.top_n = top_n
        self._admitted: dict[tuple[str, str], set[str]] | None = None
        self._lock = threading.Lock()
        self.staged = 0  # records staged since the last fold
        self.dirty_since: datetime | None = None  # the oldest record staged since compaction

    # -- the expressions over a record row ``r`` ------------------------------------------

    def dimension_sql(self, dim: Dimension) -> str:
        if dim.metadata_key is not None:
            if dim.metadata_key in self.schema.promoted_keys:
                expr = f'r."{metadata_column_name(dim.metadata_key)}"'
            else:
                expr = f"r.request_metadata['{dim.metadata_key}']"
        elif dim.column == "inference_profile":
            expr = "coalesce(r.inference_profile_name, r.inference_profile_arn)"
        elif dim.column == "error_type":
            expr = "CASE WHEN r.status = 'ERROR' THEN coalesce(r.error_type, r.error_code) END"
        else:
            expr = f"r.{dim.column}"
        return f"coalesce({expr}, '')"

    def _dimensions(self, refused: dict[str, list[str]]) -> list[str]:
        """The series columns over a record row ``r``; values in ``refused`` (per dimension,
        ``workspace + NUL + value``) count as `OTHER`."""
        out = []
        for dim in DIMENSIONS:
            expr = self.dimension_sql(dim)
            if refused.get(dim.name):
                expr = (
                    f"CASE WHEN list_contains($refused_{dim.column}, r.workspace || chr(0) || "
                    f"{expr}) THEN '{OTHER}' ELSE {expr} END"
                )
            out.append(f'{expr} AS "dim_{dim.column}"')  # beside the record's own columns
        return out

    def _stage_sql(self, source: str, refused: dict[str, list[str]], ranged: bool) -> list[str]:
        """Statements adding ``source``'s records to the staging tables (10 s buckets, every
        dimension). Each reads only the columns the measures use; the histograms pair each
        record with each histogram's name in a cross join (one scan, not one per histogram)."""
        where = 'WHERE r."timestamp" >= $since AND r."timestamp" < $until' if ranged else ""
        used = ", ".join(f"r.{c}" for c in _MEASURED_COLUMNS)
        rows = (
            f"SELECT r.workspace, {used}, {', '.join(self._dimensions(refused))}, "
            f"{_bucket(10)} AS bucket FROM {source} r {where}"
        )
        dims = ", ".join(f"r.dim_{c} AS {c}" for c in DIM_COLUMNS)
        measures = ", ".join(f"{agg} AS {name}" for name, _, agg, _ in MEASURES)
        staging = f"""
            INSERT INTO metric_staging BY NAME
            SELECT r.workspace, r.bucket, {dims}, {measures}
            FROM ({rows}) r GROUP BY ALL"""
        names = ", ".join(f"('{name}')" for name in HISTOGRAMS)
        value = " ".join(f"WHEN '{name}' THEN r.{col}" for name, col in HISTOGRAMS.items())
        histograms = f"""
            INSERT INTO metric_staging_histograms BY NAME
            SELECT r.workspace, r.bucket, {dims}, r.metric,
                   CASE WHEN r.v <= 0 THEN {ZERO_BUCKET}
                        ELSE ceil(ln(r.v) / {LOG_GAMMA!r})::INTEGER END AS idx,
                   count(*) AS n
            FROM (SELECT r.*, m.metric, CASE m.metric {value} END AS v
                  FROM ({rows}) r CROSS JOIN (VALUES {names}) m(metric)) r
            WHERE r.v IS NOT NULL GROUP BY ALL"""
        return [staging, histograms]

    def _fold_sql(self) -> list[str]:
        """Statements moving the staging rows into the rollups of every width and set.

        Each staging row meets every (width, set) pair in a cross join, and one ``GROUP BY``
        sums them: what ``GROUPING SETS`` over the 84 pairs computes, without its hash table
        per set (a fixed ~0.3 s of CPU a fold, however few rows were staged)."""
        pairs = ", ".join(f"({w}, {mask})" for w in WIDTHS for mask in DIMENSION_SETS)
        dims = ", ".join(
            f"CASE WHEN k.dimset & {1 << i} <> 0 THEN s.{c} END AS {c}"
            for i, c in enumerate(DIM_COLUMNS)
        )
        bucket = (
            "make_timestamptz((epoch_us(s.bucket) // (k.width_s * 1000000)) * "
            "(k.width_s * 1000000)) AS bucket"
        )
        series = f"k.width_s, {bucket}, s.workspace, k.dimset, {dims}"
        merged = ", ".join(f'{m[3]}(s."{m[0]}") AS "{m[0]}"' for m in MEASURES)
        source = (
            f"FROM metric_staging s CROSS JOIN (SELECT width_s::BIGINT AS width_s, dimset FROM "
            f"(VALUES {pairs}) v(width_s, dimset)) k"
        )
        rollups = f"""
            INSERT INTO metric_rollups BY NAME
            SELECT {series}, {merged} {source} GROUP BY ALL"""
        histograms = f"""
            INSERT INTO metric_histograms BY NAME
            SELECT {series}, s.metric, s.idx, sum(s.n) AS n
            {source.replace("metric_staging", "metric_staging_histograms")} GROUP BY ALL"""
        return [
            rollups,
            histograms,
            "DELETE FROM metric_staging",
            "DELETE FROM metric_staging_histograms",
        ]

    # -- writing ------------------------------------------------------------------------

    def staging(
        self, conn: duckdb.DuckDBPyConnection, batch: pa.Table, deltas: bool = False
    ) -> list[tuple[str, dict[str, Any] | None]]:
        """The statements (with their parameters) that stage the rollups of ``batch``
        (registered as ``_batch_records``), for the caller to run in its transaction; new
        dimension values are admitted first, at once. With ``deltas``, the batch's staging
        rows are registered too (`batch_deltas`: ``_batch_deltas`` and
        ``_batch_delta_histograms``), and the statements insert them."""
        if batch.num_rows == 0:
            return []
        refused = self._admit(conn, batch)
        params = {f"refused_{BY_NAME[name].column}": v for name, v in refused.items()}
        self.staged += batch.num_rows
        oldest = _oldest(batch)
        if self.dirty_since is None or oldest < self.dirty_since:
            self.dirty_since = oldest
        if deltas:
            statements = self._delta_sql(refused)
        else:
            statements = self._stage_sql("_batch_records", refused, False)
        return [(sql, params or None) for sql in statements]

    def _delta_sql(self, refused: dict[str, list[str]]) -> list[str]:
        """Statements inserting a batch's staging rows computed elsewhere (`batch_deltas`),
        the values ``refused`` counted as `OTHER`: a series may then have several rows in a
        batch, which add up as every staging row does."""
        dims = []
        for dim in DIMENSIONS:
            if refused.get(dim.name):
                dims.append(
                    f"CASE WHEN list_contains($refused_{dim.column}, d.workspace || chr(0) || "
                    f"d.{dim.column}) THEN '{OTHER}' ELSE d.{dim.column} END AS {dim.column}"
                )
            else:
                dims.append(f"d.{dim.column}")
        series = f"d.workspace, d.bucket, {', '.join(dims)}"
        measures = ", ".join(f"d.{name}" for name, *_ in MEASURES)
        return [
            f"INSERT INTO metric_staging BY NAME SELECT {series}, {measures} FROM _batch_deltas d",
            f"INSERT INTO metric_staging_histograms BY NAME SELECT {series}, d.metric, d.idx, d.n "
            "FROM _batch_delta_histograms d",
        ]

    def forget_admissions(self) -> None:
        """After a rolled-back transaction: reload the admitted values on the next write."""
        with self._lock:
            self._admitted = None

    def _admit(self, conn: duckdb.DuckDBPyConnection, batch: pa.Table) -> dict[str, list[str]]:
        """Admit the batch's new values while each (workspace, dimension) has room; the
        values refused, per dimension, as ``workspace + NUL + value``."""
        with self._lock:
            if self._admitted is None:
                self._admitted = {}
                for ws, dim, value in conn.execute(
                    "SELECT workspace, dimension, value FROM metric_dimension_values"
                ).fetchall():
                    self._admitted.setdefault((ws, dim), set()).add(value)
            admitted = self._admitted
            refused: dict[str, list[str]] = {}
            new: list[tuple[str, str, str]] = []
            for dim in DIMENSIONS:
                if not dim.capped:
                    continue
                for ws, value in _distinct(batch, self._arrow_columns(dim)):
                    seen = admitted.setdefault((ws, dim.name), set())
                    if value in seen:
                        continue
                    if len(seen) >= self.top_n:
                        refused.setdefault(dim.name, []).append(f"{ws}\x00{value}")
                        continue
                    seen.add(value)
                    new.append((ws, dim.name, value))
            if new:
                conn.executemany("INSERT INTO metric_dimension_values VALUES (?, ?, ?)", new)
            return refused

    def _arrow_columns(self, dim: Dimension) -> tuple[str, ...]:
        """The batch columns a dimension's value comes from (the first that is set)."""
        if dim.metadata_key is not None:
            if dim.metadata_key in self.schema.promoted_keys:
                return (metadata_column_name(dim.metadata_key),)
            return ()  # in the map: not capped at write (rare; a rebuild caps it)
        if dim.column == "inference_profile":
            return ("inference_profile_name", "inference_profile_arn")
        if dim.column == "error_type":
            return ("error_type", "error_code")
        return (dim.column,)

    def fold(self, conn: duckdb.DuckDBPyConnection) -> None:
        """Move the staged rows into the rollups (in the caller's transaction)."""
        for sql in self._fold_sql():
            conn.execute(sql)
        self.staged = 0

    def rebuild(self, conn: duckdb.DuckDBPyConnection, since: datetime | None) -> None:
        """Recompute the rollups from the records (of buckets from ``since`` on, rounded
        down to the hour; all of them when None). A full rebuild admits each dimension's top
        N values by invocations afresh. Runs its own transactions on the writer's connection,
        so no batch is stored meanwhile: one clears, then one per day of records stages and
        folds that day (folding millions of records at once runs out of memory); a read
        meanwhile sees the days not yet rebuilt missing."""
        start = None if since is None else floor_bucket(since, max(WIDTHS))
        _transaction(conn, lambda: self._clear(conn, start))
        self.forget_admissions()
        refused = self._refused_in_store(conn)
        params: dict[str, Any] = {
            f"refused_{BY_NAME[name].column}": v for name, v in refused.items()
        }
        row = conn.execute(
            'SELECT min("timestamp"), max("timestamp") FROM records WHERE "timestamp" >= ?',
            [start or datetime(1, 1, 2, tzinfo=UTC)],
        ).fetchone()
        if row is None or row[0] is None:
            return
        day = start or row[0]  # then whole days: never before start, which was kept
        statements = self._stage_sql("records", refused, True)
        while day <= row[1]:
            until = floor_bucket(day, 86400) + timedelta(days=1)

            def one_day(since: datetime = day, until: datetime = until) -> None:
                for sql in statements:
                    conn.execute(sql, {**params, "since": since, "until": until})
                self.fold(conn)

            _transaction(conn, one_day)
            following = conn.execute(  # the next day with records: skip empty ones
                'SELECT min("timestamp") FROM records WHERE "timestamp" >= ?', [until]
            ).fetchone()
            if following is None or following[0] is None:
                break
            day = following[0]

    def _clear(self, conn: duckdb.DuckDBPyConnection, start: datetime | None) -> None:
        """Fold what is staged, then drop the rollups from ``start`` (all when None); with
        None, admit each capped dimension's top N values by invocations afresh."""
        self.fold(conn)
        if start is not None:
            conn.execute("DELETE FROM metric_rollups WHERE bucket >= ?", [start])
            conn.execute("DELETE FROM metric_histograms WHERE bucket >= ?", [start])
            return
        for table in ("metric_rollups", "metric_histograms", "metric_dimension_values"):
            conn.execute(f"DELETE FROM {table}")
        for dim in DIMENSIONS:
            if not dim.capped:
                continue
            expr = self.dimension_sql(dim)
            conn.execute(
                f"""INSERT INTO metric_dimension_values
                SELECT workspace, '{dim.name}', value FROM (
                    SELECT workspace, value, row_number() OVER (
                        PARTITION BY workspace ORDER BY n DESC, value) AS rank
                    FROM (SELECT r.workspace, {expr} AS value, count(*) AS n
                          FROM records r WHERE {expr} <> '' GROUP BY 1, 2))
                WHERE rank <= ?""",
                [self.top_n],
            )

    def _refused_in_store(self, conn: duckdb.DuckDBPyConnection) -> dict[str, list[str]]:
        """Per capped dimension, the stored values that are not admitted."""
        refused: dict[str, list[str]] = {}
        for dim in DIMENSIONS:
            if not dim.capped:
                continue
            expr = self.dimension_sql(dim)
            rows = conn.execute(
                f"""SELECT DISTINCT r.workspace || chr(0) || {expr} FROM records r
                WHERE {expr} <> '' AND NOT EXISTS (SELECT 1 FROM metric_dimension_values v
                    WHERE v.workspace = r.workspace AND v.dimension = ? AND v.value = {expr})""",
                [dim.name],
            ).fetchall()
            if rows:
                refused[dim.name] = [str(r[0]) for r in rows]
        return refused

    def compact(self, conn: duckdb.DuckDBPyConnection, since: datetime) -> int:
        """Fold the delta rows of buckets from ``since`` on into one row per series and
        bucket; returns the rollup rows removed."""
        removed = 0
        for width in WIDTHS:
            start = floor_bucket(since, width)
            removed += self._merge(conn, "metric_rollups", ROLLUP_COLUMNS, width, start)
            self._merge(conn, "metric_histograms", HISTOGRAM_COLUMNS, width, start)
        return removed

    def _merge(
        self,
        conn: duckdb.DuckDBPyConnection,
        table: str,
        columns: Sequence[tuple[str, str]],
        width: int,
        since: datetime,
    ) -> int:
        merge = {m[0]: m[3] for m in MEASURES} | {"n": "sum"}
        keys = [c for c, _ in columns if c not in merge]
        where = "WHERE width_s = ? AND bucket >= ?"
        before = conn.execute(f"SELECT count(*) FROM {table} {where}", [width, since]).fetchone()
        key_list = ", ".join(f'"{k}"' for k in keys)
        merged = ", ".join(f'{merge[c]}("{c}") AS "{c}"' for c, _ in columns if c in merge)
        conn.execute(
            f"CREATE OR REPLACE TEMP TABLE _folded AS SELECT {key_list}, {merged} "
            f"FROM {table} {where} GROUP BY {key_list}",
            [width, since],
        )
        conn.execute(f"DELETE FROM {table} {where}", [width, since])
        conn.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _folded")
        after = conn.execute("SELECT count(*) FROM _folded").fetchone()
        conn.execute("DROP TABLE _folded")
        return int(before[0] if before else 0) - int(after[0] if after else 0)

    def prune(self, conn: duckdb.DuckDBPyConnection, keep: dict[int, timedelta]) -> None:
        """Remove buckets older than each width's retention."""
        now = datetime.now(UTC)
        for width, age in keep.items():
            for table in ("metric_rollups", "metric_histograms"):
                conn.execute(
                    f"DELETE FROM {table} WHERE width_s = ? AND bucket < ?", [width, now - age]
                )


def _distinct(batch: pa.Table, columns: Sequence[str]) -> list[tuple[str, str]]:
    """The distinct non-empty ``(workspace, value)`` pairs of a batch, the value being the
    first of ``columns`` that is set, in the order they first occur. (Not pyarrow's group_by
    nor a Python scalar in a compute call: either imports pandas.)"""
    if not columns:
        return []
    import pyarrow.compute as pc  # a batch is Arrow, so pyarrow is loaded

    value = batch.column(columns[0])
    for other in columns[1:]:
        value = pc.coalesce(value, batch.column(other))
    workspaces = batch.column("workspace").unique().to_pylist()
    if len(workspaces) == 1:  # the common case, in Arrow: a batch's rows rarely reach Python
        return [(workspaces[0], v) for v in value.unique().to_pylist() if v]
    pairs = zip(batch.column("workspace").to_pylist(), value.to_pylist(), strict=True)
    return [(w, v) for w, v in dict.fromkeys(pairs) if v]


def _transaction(conn: duckdb.DuckDBPyConnection, work: Callable[[], None]) -> None:
    conn.execute("BEGIN")
    try:
        work()
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def floor_bucket(moment: datetime, width: int) -> datetime:
    """``moment`` rounded down to a multiple of ``width`` seconds (UTC)."""
    us = int(moment.timestamp() * 1_000_000)
    step = width * 1_000_000
    return datetime.fromtimestamp((us // step) * step / 1_000_000, UTC)


def _oldest(batch: pa.Table) -> datetime:
    """The batch's earliest ``timestamp`` (now when it has none), read in Arrow as an
    integer of microseconds (a timestamp scalar's conversion would import pandas)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    least = pc.min(batch.column("timestamp").cast(pa.int64()))
    if not least.is_valid:
        return datetime.now(UTC)
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=least.as_py())


def tables() -> Iterable[tuple[str, tuple[tuple[str, str], ...]]]:
    yield "metric_rollups", ROLLUP_COLUMNS
    yield "metric_histograms", HISTOGRAM_COLUMNS
    yield "metric_dimension_values", VALUE_COLUMNS
    yield "metric_staging", STAGING_COLUMNS
    yield "metric_staging_histograms", STAGING_HISTOGRAM_COLUMNS
