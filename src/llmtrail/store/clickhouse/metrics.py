"""Metric rollups on ClickHouse, maintained by ClickHouse itself.

DuckDB writes a batch's rollups in the transaction that stores it. ClickHouse has no such
transaction; what it has is materialized views, which run on every block inserted into
``records`` and insert what they select into the rollup tables as part of that insert. Two
views (`view_statements`) fill ``metric_rollups`` and ``metric_histograms`` with the same
columns, the same dimension values (`DuckDBRollups.dimension_sql`), the same measures
(`MEASURES`), widths (10 s, 1 min, 5 min, 1 h) and dimension sets (each record joined to every
(width, set) pair, then one ``GROUP BY``) and the same latency buckets
(``ceil(ln(v) / ln(GAMMA))``, 0 → `ZERO_BUCKET`) as DuckDB, so reads are alike. The
tables are ``AggregatingMergeTree``: the rows each insert adds are deltas, merged on read by
sum/min/max and folded by ClickHouse's own merges.

Counted once: an insert of records dropped by its ``insert_deduplication_token`` (a retried
spool batch, see `replay`) is dropped in the views' tables as well. On ClickHouse 26 the view
still runs for the dropped block, but with ``deduplicate_blocks_in_dependent_materialized_views``
(which the record store sets on every tokened insert) each view's insert carries a token
derived from the records' token and is de-duplicated by the rollup table, which therefore
remembers insert blocks (``non_replicated_deduplication_window``). Records a replay finds
already stored are left out of the insert before it, so the views never see them.

Cost: the views make an insert of records about 5x slower on chdb (500 records: ~0.05 s →
~0.2 s; 5,000: ~1.1 s on 2 shared cores), the records being joined to all 63 series they
count in. A chained view pre-aggregating by 10 s and every dimension (what DuckDB stages)
would cut that where traffic repeats dimensions within 10 s.

Not on ClickHouse: capping a dimension's values at the top N (`metric_dimension_values`
stays empty; every value is its own series) and the staging tables (nothing is staged).
`rebuild` is a delete and an ``INSERT … SELECT`` of the views' own query over ``records``;
records inserted while it runs may be counted twice (it is for repairs, such as after
costs are recomputed). Promoting a dimension's ``requestMetadata`` key re-points the views at
its column (``ALTER TABLE … MODIFY QUERY``, see `migrations`); a record inserted by another
replica between the promotion and that statement can miss the key's dimension until a rebuild.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from llmtrail.metrics.dimensions import DIMENSION_SETS, DIMENSIONS
from llmtrail.metrics.sketch import LOG_GAMMA, ZERO_BUCKET
from llmtrail.schema import RecordSchema, metadata_column_name
from llmtrail.store.clickhouse.database import ClickHouseDatabase
from llmtrail.store.clickhouse.migrations import table_name
from llmtrail.store.duckdb.metric_reads import wanted
from llmtrail.store.duckdb.metrics import (
    DIM_COLUMNS,
    HISTOGRAMS,
    MEASURES,
    WIDTHS,
    DuckDBRollups,
)
from llmtrail.store.interfaces import SeriesRead, SeriesTotals
from llmtrail.store.paging import epoch_us

VIEWS = {"metric_rollups": "metric_rollups_view", "metric_histograms": "metric_histograms_view"}
ROLLUP_OUTPUT = (
    "width_s",
    "bucket",
    "workspace",
    "dimset",
    *DIM_COLUMNS,
    *(m[0] for m in MEASURES),
)
HISTOGRAM_OUTPUT = ("width_s", "bucket", "workspace", "dimset", *DIM_COLUMNS, "metric", "idx", "n")
_MUTATION = {"mutations_sync": 2}


def _records(database: str, columns: Collection[str], since: str | None) -> str:
    """Each record of ``records`` (as ``r``) with its workspace (``ws``) and dimension values
    (``dim_…``); from ``since`` on when given."""
    promoted = [
        d.metadata_key
        for d in DIMENSIONS
        if d.metadata_key and metadata_column_name(d.metadata_key) in columns
    ]
    expressions = DuckDBRollups(RecordSchema(tuple(promoted)))
    dims = ", ".join(f"{expressions.dimension_sql(d)} AS dim_{d.column}" for d in DIMENSIONS)
    where = "r.timestamp IS NOT NULL"
    if since is not None:
        where += f" AND r.timestamp >= {since}"
    return (
        f"SELECT r.*, assumeNotNull(r.workspace) AS ws, {dims} "
        f"FROM {table_name(database, 'records')} AS r WHERE {where}"
    )


# every (width, dimension set) a record is counted in
_SERIES_OF_A_RECORD = ", ".join(f"({w}, {mask})" for w in WIDTHS for mask in DIMENSION_SETS)


def _in_every_series(source: str) -> str:
    """``source``'s rows (as ``r``), each once per width and dimension set: ``s_width``,
    ``s_set``, ``s_bucket`` and the series' dimension values ``s_…`` ('' outside the set).

    One row per series and a plain ``GROUP BY`` rather than ``GROUPING SETS``: ClickHouse
    takes about a second to plan 63 grouping sets, and a view plans its query on every
    insert."""
    micros = "toUnixTimestamp64Micro(assumeNotNull(r.timestamp))"
    bucket = f"fromUnixTimestamp64Micro(intDiv({micros}, s.1 * 1000000) * s.1 * 1000000, 'UTC')"
    dims = ", ".join(
        f"if(bitAnd(s.2, {1 << i}) = 0, '', r.dim_{c}) AS s_{c}" for i, c in enumerate(DIM_COLUMNS)
    )
    return (
        f"SELECT r.*, s.1 AS s_width, s.2 AS s_set, {bucket} AS s_bucket, {dims} "
        f"FROM ({source}) AS r ARRAY JOIN [{_SERIES_OF_A_RECORD}] AS s"
    )


def _series_columns(extra: tuple[str, ...] = ()) -> tuple[str, str]:
    """``(key columns as the rollup tables name them, GROUP BY clause)``; ``extra`` are
    further ``(source, name)`` keys."""
    keys = [
        ("r.s_width", "width_s"),
        ("r.s_bucket", "bucket"),
        ("r.ws", "workspace"),
        ("r.s_set", "dimset"),
        *((f"r.s_{c}", c) for c in DIM_COLUMNS),
        *((f"r.{e}", e.removeprefix("h_")) for e in extra),
    ]
    select = ", ".join(f"{source} AS {name}" for source, name in keys)
    return select, "GROUP BY " + ", ".join(source for source, _ in keys)


def rollup_select(database: str, columns: Collection[str], since: str | None = None) -> str:
    """The ``metric_rollups`` rows (`ROLLUP_OUTPUT`) of the records."""
    keys, group_by = _series_columns()
    measures = ", ".join(f"{agg} AS {name}" for name, _, agg, _ in MEASURES)
    source = _in_every_series(_records(database, columns, since))
    return f"SELECT {keys}, {measures} FROM ({source}) AS r {group_by}"


def histogram_select(database: str, columns: Collection[str], since: str | None = None) -> str:
    """The ``metric_histograms`` rows (`HISTOGRAM_OUTPUT`) of the records."""
    values = ", ".join(f"('{name}', r.{column})" for name, column in HISTOGRAMS.items())
    idx = f"if(h.2 <= 0, {ZERO_BUCKET}, toInt32(ceil(ln(assumeNotNull(h.2)) / {LOG_GAMMA!r})))"
    unpivoted = (
        f"SELECT r.*, h.1 AS h_metric, {idx} AS h_idx FROM "
        f"({_records(database, columns, since)}) AS r ARRAY JOIN [{values}] AS h "
        "WHERE h.2 IS NOT NULL"
    )
    keys, group_by = _series_columns(("h_metric", "h_idx"))
    source = _in_every_series(unpivoted)
    return f"SELECT {keys}, count() AS n FROM ({source}) AS r {group_by}"


def view_statements(database: str, columns: Collection[str]) -> list[str]:
    """Create each view if missing, then point it at the query for ``records``' current
    ``columns`` (both can run twice; re-pointing is atomic)."""
    out = []
    for target, select in (
        ("metric_rollups", rollup_select(database, columns)),
        ("metric_histograms", histogram_select(database, columns)),
    ):
        view = table_name(database, VIEWS[target])
        out.append(
            f"CREATE MATERIALIZED VIEW IF NOT EXISTS {view} "
            f"TO {table_name(database, target)} AS {select}"
        )
        out.append(f"ALTER TABLE {view} MODIFY QUERY {select}")
    return out


class ClickHouseMetricStore:
    """`MetricStore` over the rollup tables of a `ClickHouseDatabase`."""

    def __init__(
        self,
        db: ClickHouseDatabase,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.db = db
        self.clock = clock  # retention's "now"
        self._ttl = ""  # the TTL rules this process set

    def measures(self, read: SeriesRead) -> list[tuple[datetime, dict[str, Any]]]:
        chosen = wanted(read)
        names = [m[0] for m in chosen]
        merged = ", ".join(f"{m[3]}({m[0]})" for m in chosen)
        where, params = _where(read)
        rows = self.db.query(
            f"SELECT intDiv(toUnixTimestamp64Micro(bucket), {read.period * 1_000_000}) AS p, "
            f"{merged} FROM {self.db.table('metric_rollups')} WHERE {where} "
            "GROUP BY p ORDER BY p",
            params,
        )
        return [
            (_moment(row[0], read.period), dict(zip(names, row[1:], strict=True))) for row in rows
        ]

    def histogram(self, read: SeriesRead, metric: str) -> dict[datetime, dict[int, int]]:
        where, params = _where(read)
        rows = self.db.query(
            f"SELECT intDiv(toUnixTimestamp64Micro(bucket), {read.period * 1_000_000}) AS p, "
            f"idx, sum(n) FROM {self.db.table('metric_histograms')} "
            f"WHERE {where} AND metric = {{metric:String}} GROUP BY p, idx ORDER BY p, idx",
            {**params, "metric": metric},
        )
        out: dict[datetime, dict[int, int]] = {}
        for period, idx, n in rows:
            out.setdefault(_moment(period, read.period), {})[int(idx)] = int(n)
        return out

    def percentile(self, read: SeriesRead, metric: str, q: float) -> list[tuple[datetime, int]]:
        where, params = _where(read)
        rows = self.db.query(
            f"""SELECT p, min(idx) FROM (
                SELECT p, idx,
                       sum(n) OVER (PARTITION BY p ORDER BY idx ROWS UNBOUNDED PRECEDING) AS seen,
                       sum(n) OVER (PARTITION BY p) AS total
                FROM (SELECT intDiv(toUnixTimestamp64Micro(bucket), {read.period * 1_000_000})
                             AS p, idx, sum(n) AS n
                      FROM {self.db.table("metric_histograms")}
                      WHERE {where} AND metric = {{metric:String}} GROUP BY p, idx))
            WHERE seen >= greatest(1, ceil({{q:Float64}} / 100 * total)) GROUP BY p ORDER BY p""",
            {**params, "metric": metric, "q": q},
        )
        return [(_moment(p, read.period), int(idx)) for p, idx in rows]

    def totals(self, read: SeriesRead) -> list[SeriesTotals]:
        cols = [c for i, c in enumerate(DIM_COLUMNS) if read.dimset >> i & 1]
        keys = ", ".join(cols) if cols else "NULL"
        chosen = wanted(read)
        names = [m[0] for m in chosen]
        merged = ", ".join(f"{m[3]}({m[0]})" for m in chosen)
        where, params = _where(read)
        period = f"intDiv(toUnixTimestamp64Micro(bucket), {read.period * 1_000_000})"
        rows = self.db.query(
            f"SELECT {keys}, {period} AS p, {merged} FROM {self.db.table('metric_rollups')} "
            f"WHERE {where} GROUP BY {', '.join([*cols, 'p'])} ORDER BY {', '.join([*cols, 'p'])}",
            params,
        )
        skip = max(1, len(cols))
        out: dict[tuple[str, ...], SeriesTotals] = {}
        for row in rows:
            key = tuple(row[: len(cols)])
            measures = dict(zip(names, row[skip + 1 :], strict=True))
            moment = _moment(row[skip], read.period)
            out.setdefault(key, SeriesTotals(key)).periods.append((moment, measures))
        buckets = self.db.query(
            f"SELECT {keys}, metric, idx, sum(n) FROM {self.db.table('metric_histograms')} "
            f"WHERE {where} GROUP BY {', '.join([*cols, 'metric', 'idx'])}",
            params,
        )
        for row in buckets:
            key = tuple(row[: len(cols)])
            metric, idx, n = row[skip:]
            if key in out:
                out[key].histograms.setdefault(str(metric), {})[int(idx)] = int(n)
        return list(out.values())

    def series(
        self, workspace: str, dimset: int, start: datetime | None, end: datetime | None
    ) -> list[tuple[str, ...]]:
        cols = [c for i, c in enumerate(DIM_COLUMNS) if dimset >> i & 1]
        where = ["width_s = 3600", "dimset = {dimset:Int32}", "workspace = {workspace:String}"]
        params: dict[str, Any] = {"dimset": dimset, "workspace": workspace}
        if start is not None:
            where.append("bucket >= fromUnixTimestamp64Micro({start:Int64}, 'UTC')")
            params["start"] = epoch_us(_floor(start, 3600))
        if end is not None:
            where.append("bucket < fromUnixTimestamp64Micro({end:Int64}, 'UTC')")
            params["end"] = epoch_us(end)
        select = ", ".join(cols) if cols else "1"
        order = f" ORDER BY {select}" if cols else " LIMIT 1"
        rows = self.db.query(
            f"SELECT DISTINCT {select} FROM {self.db.table('metric_rollups')} "
            f"WHERE {' AND '.join(where)}{order}",
            params,
        )
        if not cols:
            return [()] if rows else []
        return [tuple(str(v) for v in row) for row in rows]

    def rebuild(self, since: datetime | None = None) -> None:
        """Delete the rollups from ``since``'s hour on (all of them when None) and insert
        them again from ``records`` by the views' own query."""
        start = None if since is None else _floor(since, max(WIDTHS))
        params: dict[str, Any] = {}
        for table in VIEWS:
            if start is None:
                self.db.command(f"TRUNCATE TABLE {self.db.table(table)}")
            else:
                params = {"since": epoch_us(start)}
                self.db.command(
                    f"ALTER TABLE {self.db.table(table)} DELETE "
                    "WHERE bucket >= fromUnixTimestamp64Micro({since:Int64}, 'UTC')",
                    params,
                    _MUTATION,
                )
        columns = {c.name for c in self.db.schema.record_columns}
        since_sql = None if start is None else "fromUnixTimestamp64Micro({since:Int64}, 'UTC')"
        database = self.db.database
        for table, output, select in (
            ("metric_rollups", ROLLUP_OUTPUT, rollup_select(database, columns, since_sql)),
            ("metric_histograms", HISTOGRAM_OUTPUT, histogram_select(database, columns, since_sql)),
        ):
            self.db.command(
                f"INSERT INTO {self.db.table(table)} ({', '.join(output)}) {select}",
                params,
                {"insert_deduplicate": 0},  # a rebuild is never a duplicate of an insert
            )

    def maintain(self, keep: Mapping[int, timedelta]) -> None:
        """Keep each width's buckets for its retention (ClickHouse folds rows by itself).

        The tables carry the retention as their TTL (one ``DELETE WHERE width_s = …`` rule a
        width), so ClickHouse drops old buckets as it merges parts, with no mutation; the
        TTL is set without rewriting the parts (a metadata change, again only when the
        retention changes). Buckets the merges have not reached yet are then deleted here:
        a table with nothing to drop costs one look-up, not a mutation."""
        self._set_ttl(keep)
        now = self.clock()
        for width, age in keep.items():
            params = {"width": int(width), "before": epoch_us(now - age)}
            where = (
                "width_s = {width:Int32} "
                "AND bucket < fromUnixTimestamp64Micro({before:Int64}, 'UTC')"
            )
            for table in VIEWS:
                target = self.db.table(table)
                if self.db.query(f"SELECT 1 FROM {target} WHERE {where} LIMIT 1", params):
                    self.db.command(f"ALTER TABLE {target} DELETE WHERE {where}", params, _MUTATION)

    def _set_ttl(self, keep: Mapping[int, timedelta]) -> None:
        rules = ", ".join(
            f"toDateTime(bucket) + toIntervalSecond({int(age.total_seconds())}) "
            f"DELETE WHERE width_s = {int(width)}"
            for width, age in sorted(keep.items())
        )
        if not rules or rules == self._ttl:
            return
        for table in VIEWS:
            self.db.command(
                f"ALTER TABLE {self.db.table(table)} MODIFY TTL {rules}",
                settings={"materialize_ttl_after_modify": 0},
            )
        self._ttl = rules

    def close(self) -> None:
        self.db.close()


def _where(read: SeriesRead) -> tuple[str, dict[str, Any]]:
    where = [
        "workspace = {workspace:String}",
        "width_s = {width:Int32}",
        "dimset = {dimset:Int32}",
        "bucket >= fromUnixTimestamp64Micro({start:Int64}, 'UTC')",
        "bucket < fromUnixTimestamp64Micro({end:Int64}, 'UTC')",
    ]
    params: dict[str, Any] = {
        "workspace": read.workspace,
        "width": read.width,
        "dimset": read.dimset,
        "start": epoch_us(read.start),
        "end": epoch_us(read.end),
    }
    for i, (column, value) in enumerate(read.values):
        if column not in DIM_COLUMNS:
            raise ValueError(column)
        where.append(f"{column} = {{v{i}:String}}")
        params[f"v{i}"] = value
    return " AND ".join(where), params


def _moment(period_index: int, period: int) -> datetime:
    return datetime.fromtimestamp(int(period_index) * period, UTC)


def _floor(moment: datetime, width: int) -> datetime:
    seconds = int(moment.timestamp())
    return datetime.fromtimestamp(seconds - seconds % width, UTC)
