"""Reads of the DuckDB metric rollups (`MetricStore`'s reads): every read adds the rows
still staged to the folded ones, so a figure never waits for a fold. Results are fetched as
Arrow columns where a range holds many periods: DuckDB's row-by-row conversion of timestamps,
HUGEINT sums and decimals to Python objects costs more than the query."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import duckdb

from llmtrail.store.duckdb.metrics import DIM_COLUMNS, MEASURES, floor_bucket
from llmtrail.store.interfaces import SeriesRead, SeriesTotals


def measures(
    conn: duckdb.DuckDBPyConnection, read: SeriesRead
) -> list[tuple[datetime, dict[str, Any]]]:
    """Per period (ascending), every measure merged over the period's buckets, staged
    rows included."""
    chosen = wanted(read)
    names = [m[0] for m in chosen]
    cols = ", ".join(f'"{n}"' for n in names)
    select = ", ".join(f'{m[3]}("{m[0]}")' for m in chosen)
    rollups, params = _where(read, staged=False)
    staged, staged_params = _where(read, staged=True)
    us = read.period * 1_000_000
    rows = conn.execute(
        f"""SELECT make_timestamptz((epoch_us(bucket) // {us}) * {us}) AS p, {select}
        FROM (SELECT bucket, {cols} FROM metric_rollups {rollups}
              UNION ALL SELECT bucket, {cols} FROM metric_staging {staged})
        GROUP BY p ORDER BY p""",
        params + staged_params,
    ).fetchall()
    return [(row[0], dict(zip(names, row[1:], strict=True))) for row in rows]


def histogram(
    conn: duckdb.DuckDBPyConnection, read: SeriesRead, metric: str
) -> dict[datetime, dict[int, int]]:
    """Per period, the merged latency buckets of ``metric`` (``latency`` or ``ttft``)."""
    rollups, params = _where(read, staged=False)
    staged, staged_params = _where(read, staged=True)
    us = read.period * 1_000_000
    # Periods as integers and counts as BIGINT, fetched as Arrow: a range holds hundreds
    # of thousands of (period, bucket) rows, and DuckDB's row-by-row conversion of
    # TIMESTAMPTZ (or HUGEINT, sum's type) into Python objects is several times slower.
    columns = conn.sql(
        f"""SELECT epoch_us(bucket) // {us} AS p, idx, sum(n)::BIGINT AS n
        FROM (SELECT bucket, idx, n FROM metric_histograms {rollups} AND metric = ?
              UNION ALL SELECT bucket, idx, n FROM metric_staging_histograms {staged}
              AND metric = ?)
        GROUP BY p, idx ORDER BY p, idx""",
        params=[*params, metric, *staged_params, metric],
    ).to_arrow_table()
    periods, idx, n = (columns.column(c).to_pylist() for c in ("p", "idx", "n"))
    out: dict[datetime, dict[int, int]] = {}
    first = 0
    for last in range(1, len(periods) + 1):
        if last == len(periods) or periods[last] != periods[first]:
            moment = datetime.fromtimestamp(periods[first] * read.period, UTC)
            out[moment] = dict(zip(idx[first:last], n[first:last], strict=True))
            first = last
    return out


def percentile(
    conn: duckdb.DuckDBPyConnection, read: SeriesRead, metric: str, q: float
) -> list[tuple[datetime, int]]:
    """Per period (ascending), the latency bucket holding the ``q``-th percentile by
    nearest rank: the first bucket whose running count reaches ``ceil(q/100 * n)``."""
    rollups, params = _where(read, staged=False)
    staged, staged_params = _where(read, staged=True)
    us = read.period * 1_000_000
    rows = conn.execute(
        f"""WITH cells AS (
            SELECT epoch_us(bucket) // {us} AS p, idx, sum(n) AS n
            FROM (SELECT bucket, idx, n FROM metric_histograms {rollups} AND metric = ?
                  UNION ALL SELECT bucket, idx, n FROM metric_staging_histograms {staged}
                  AND metric = ?)
            GROUP BY p, idx),
        running AS (
            SELECT p, idx, sum(n) OVER (PARTITION BY p ORDER BY idx
                                        ROWS UNBOUNDED PRECEDING) AS seen,
                   sum(n) OVER (PARTITION BY p) AS total
            FROM cells)
        SELECT p, min(idx) FROM running
        WHERE seen >= greatest(1, ceil(? / 100 * total)) GROUP BY p ORDER BY p""",
        [*params, metric, *staged_params, metric, q],
    ).fetchall()
    return [(datetime.fromtimestamp(p * read.period, UTC), int(idx)) for p, idx in rows]


def totals(conn: duckdb.DuckDBPyConnection, read: SeriesRead) -> list[SeriesTotals]:
    """Per series of the read's set: its figures per period, and its latency buckets
    over the range (fetched as Arrow columns: thousands of periods of many series)."""
    cols = [c for i, c in enumerate(DIM_COLUMNS) if read.dimset >> i & 1]
    keys = ", ".join(cols) if cols else "NULL AS none"
    chosen = wanted(read)
    names = [m[0] for m in chosen]
    plain = ", ".join(f'"{n}"' for n in names)
    merged = ", ".join(
        f'{m[3]}("{m[0]}")::{"DOUBLE" if m[1].startswith("DECIMAL") else m[1]} AS "{m[0]}"'
        for m in chosen
    )
    rollups, params = _where(read, staged=False)
    staged, staged_params = _where(read, staged=True)
    us = read.period * 1_000_000
    table = conn.sql(
        f"""SELECT {keys}, epoch_us(bucket) // {us} AS p, {merged} FROM (
            SELECT {keys}, bucket, {plain} FROM metric_rollups {rollups}
            UNION ALL SELECT {keys}, bucket, {plain} FROM metric_staging {staged})
        GROUP BY ALL ORDER BY ALL""",
        params=params + staged_params,
    ).to_arrow_table()
    key_columns = [table.column(c).to_pylist() for c in cols]
    periods = table.column("p").to_pylist()
    values = {n: table.column(n).to_pylist() for n in names}
    out: dict[tuple[str, ...], SeriesTotals] = {}
    for i, p in enumerate(periods):
        key = tuple(column[i] for column in key_columns)
        moment = datetime.fromtimestamp(p * read.period, UTC)
        measures = {n: values[n][i] for n in names}
        out.setdefault(key, SeriesTotals(key)).periods.append((moment, measures))
    if read.measures:
        return list(out.values())
    buckets = conn.execute(
        f"""SELECT {keys}, metric, idx, sum(n)::BIGINT FROM (
            SELECT {keys}, metric, idx, n FROM metric_histograms {rollups}
            UNION ALL SELECT {keys}, metric, idx, n FROM metric_staging_histograms {staged})
        GROUP BY ALL""",
        params + staged_params,
    ).fetchall()
    skip = max(1, len(cols))
    for row in buckets:
        key = tuple(row[: len(cols)])
        metric, idx, n = row[skip:]
        if key in out:
            out[key].histograms.setdefault(metric, {})[int(idx)] = int(n)
    return list(out.values())


def series_values(
    conn: duckdb.DuckDBPyConnection,
    workspace: str,
    dimset: int,
    start: datetime | None,
    end: datetime | None,
) -> list[tuple[str, ...]]:
    """The value tuples of every series of a dimension set with data in the range."""
    cols = [c for i, c in enumerate(DIM_COLUMNS) if dimset >> i & 1]
    where = ["workspace = ?"]
    params: list[Any] = [workspace]
    if start is not None:
        where.append("bucket >= ?")
        params.append(floor_bucket(start, 3600))
    if end is not None:
        where.append("bucket < ?")
        params.append(end)
    cond = " AND ".join(where)
    select = ", ".join(cols) if cols else "1"
    rows = conn.execute(
        f"""SELECT DISTINCT {select} FROM (
            SELECT {select} FROM metric_rollups WHERE width_s = 3600 AND dimset = ?
                AND {cond}
            UNION ALL SELECT {select} FROM metric_staging WHERE {cond}) ORDER BY ALL""",
        [dimset, *params, *params],
    ).fetchall()
    if not cols:
        return [()] if rows else []
    return [tuple(str(v) for v in row) for row in rows]


def wanted(read: SeriesRead) -> list[tuple[str, str, str, str]]:
    """The `MEASURES` a read asks for (all when it names none)."""
    if not read.measures:
        return list(MEASURES)
    return [m for m in MEASURES if m[0] in read.measures]


def _where(read: SeriesRead, staged: bool) -> tuple[str, list[Any]]:
    where = ["workspace = ?", "bucket >= ?", "bucket < ?"]
    params: list[Any] = [read.workspace, read.start, read.end]
    if not staged:
        where += ["width_s = ?", "dimset = ?"]
        params += [read.width, read.dimset]
    for column, value in read.values:
        if column not in DIM_COLUMNS:
            raise ValueError(column)
        where.append(f'"{column}" = ?')
        params.append(value)
    return "WHERE " + " AND ".join(where), params
