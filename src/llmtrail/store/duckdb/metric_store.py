"""`MetricStore` on DuckDB: reads on the caller's cursor, rebuilds and maintenance on the
writer thread (so they never interleave with a batch's rollups)."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import duckdb

from llmtrail.store.duckdb import metric_reads
from llmtrail.store.duckdb.database import Database
from llmtrail.store.duckdb.metrics import DuckDBRollups
from llmtrail.store.interfaces import SeriesRead, SeriesTotals


class DuckDBMetricStore:
    def __init__(self, db: Database, rollups: DuckDBRollups) -> None:
        self.db = db
        self.rollups = rollups

    def measures(self, read: SeriesRead) -> list[tuple[datetime, dict[str, Any]]]:
        return self.db.read(functools.partial(metric_reads.measures, read=read))

    def histogram(self, read: SeriesRead, metric: str) -> dict[datetime, dict[int, int]]:
        return self.db.read(functools.partial(metric_reads.histogram, read=read, metric=metric))

    def series(
        self, workspace: str, dimset: int, start: datetime | None, end: datetime | None
    ) -> list[tuple[str, ...]]:
        return self.db.read(
            functools.partial(
                metric_reads.series_values,
                workspace=workspace,
                dimset=dimset,
                start=start,
                end=end,
            )
        )

    def percentile(self, read: SeriesRead, metric: str, q: float) -> list[tuple[datetime, int]]:
        return self.db.read(
            functools.partial(metric_reads.percentile, read=read, metric=metric, q=q)
        )

    def totals(self, read: SeriesRead) -> list[SeriesTotals]:
        return self.db.read(functools.partial(metric_reads.totals, read=read))

    def rebuild(self, since: datetime | None = None) -> None:
        self.db.write(functools.partial(self.rollups.rebuild, since=since))

    def maintain(self, keep: Mapping[int, timedelta]) -> None:
        def run(conn: duckdb.DuckDBPyConnection) -> None:
            since = self.rollups.dirty_since
            self.rollups.fold(conn)
            if since is not None:
                self.rollups.compact(conn, since)
                self.rollups.dirty_since = None
            self.rollups.prune(conn, dict(keep))

        self.db.write(functools.partial(_in_transaction, lambda conn, _: run(conn), None))


def _in_transaction(fn: Any, arg: Any, conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute("BEGIN")
    try:
        fn(conn, arg)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
