"""The metrics benchmark's data: `query_data`'s synthetic records with costs, and rollups.

Ten million records go into a DuckDB file the way `query_data` writes them (numpy and Arrow,
one chunk at a time, llmtrail's migrations), over ``days`` days ending at `query_data.END`,
with one thing added: ``cost_total_usd`` (the query benchmark leaves it empty, and CostUsd is
one of the metrics asked for), priced per model from the token counts, none on errors. Then
`DuckDBMetricStore.rebuild()` computes the rollups from the ``records`` table, timed. Both
are cached in ``benchmarks/.cache/metrics-<records>-<days>d-seed<seed>.duckdb``, with the
build's timings beside it in a ``.json`` file, so the queries can be run again at once.
"""

from __future__ import annotations

import contextlib
import functools
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

import query_data
from llmtrail.schema import RecordSchema
from llmtrail.store.duckdb import Database
from llmtrail.store.duckdb.metric_store import DuckDBMetricStore
from llmtrail.store.duckdb.metrics import DuckDBRollups
from llmtrail.store.query_bounds import QueryLimits

CACHE = Path(__file__).resolve().parent / ".cache"
# the rebuild spills past this rather than take most of a shared machine's memory
MEMORY = QueryLimits(database_memory_bytes=6 * 2**30)
Log = Callable[[str], None]

# $ per million tokens, input and output, by query_data.MODELS' model id
PRICES = {
    "us.anthropic.claude-sonnet-4-5-20250929-v1:0": (3.0, 15.0),
    "anthropic.claude-3-haiku-20240307-v1:0": (0.25, 1.25),
    "amazon.nova-lite-v1:0": (0.06, 0.24),
    "meta.llama3-1-70b-instruct-v1:0": (0.72, 0.72),
    "openai/gpt-4o": (2.5, 10.0),
    "openai/gpt-4o-mini": (0.15, 0.6),
    "openai/text-embedding-3-small": (0.02, 0.0),
    "anthropic/claude-sonnet-4-5": (3.0, 15.0),
    "anthropic/claude-haiku-4-5": (1.0, 5.0),
    "sim/echo": (0.0, 0.0),
}


@dataclass(frozen=True)
class Built:
    """A cached data file and what building it took (seconds)."""

    path: Path
    records: int
    days: int
    generate_s: float  # generating and inserting the records
    rebuild_s: float  # DuckDBMetricStore.rebuild() over them, or the rollups in slices
    rollup_rows: int
    histogram_rows: int
    file_mb: float
    method: str = "rebuild"  # or "slices of N": staged and folded a slice at a time


@contextlib.contextmanager
def _days(days: int) -> Iterator[None]:
    """`query_data` spreads its records over its module's ``DAYS``: a smaller span for a
    quick run (restored afterwards)."""
    saved = query_data.DAYS
    query_data.DAYS = days
    try:
        yield
    finally:
        query_data.DAYS = saved


def with_costs(table: pa.Table) -> pa.Table:
    """``table`` with ``cost_total_usd`` priced from its model and token counts (none where
    the call failed), as a capture with a price table would have stored it."""
    models = table.column("model_id").combine_chunks()
    if isinstance(models, pa.DictionaryArray):
        words, index = models.dictionary.to_pylist(), models.indices.to_numpy()
    else:
        words, index = np.unique(models.to_numpy(zero_copy_only=False), return_inverse=True)
        words = list(words)
    nano_in = np.array([PRICES[w][0] * 1000 for w in words], dtype=np.int64)[index]
    nano_out = np.array([PRICES[w][1] * 1000 for w in words], dtype=np.int64)[index]
    tokens_in = table.column("input_token_count").to_numpy()
    tokens_out = table.column("output_token_count").fill_null(0).to_numpy()
    nano = tokens_in * nano_in + tokens_out * nano_out
    failed = table.column("status").combine_chunks().cast(pa.string()).to_numpy(False) == "ERROR"
    cost = pa.array(nano / 1e9, mask=failed).cast(pa.decimal128(38, 9))
    at = table.schema.get_field_index("cost_total_usd")
    return table.set_column(at, pa.field("cost_total_usd", cost.type), cost)


def data_file(
    records: int, days: int, seed: int, log: Log, *, rebuild: bool = False, slices: int = 0
) -> Built:
    """The cached file of ``records`` records over ``days`` days with their rollups, built
    when missing (or its rollups rebuilt and timed again when ``rebuild``). With ``slices``,
    the rollups are built as ingest builds them, a slice of the time range at a time, instead
    of by `DuckDBMetricStore.rebuild()` (which runs out of memory at 10M records)."""
    path = CACHE / f"metrics-{records}-{days}d-seed{seed}.duckdb"
    info = path.with_suffix(".json")
    if path.exists() and info.exists() and not rebuild:
        return Built(path=path, **json.loads(info.read_text()))
    CACHE.mkdir(parents=True, exist_ok=True)
    generate_s = json.loads(info.read_text())["generate_s"] if info.exists() else 0.0
    if not path.exists():
        partial = path.with_suffix(".partial")
        for stale in (partial, Path(f"{partial}.wal")):
            stale.unlink(missing_ok=True)
        log(f"building {path.name}: {records:,} records over {days} days (once) …")
        began = time.perf_counter()
        target = query_data.DuckDBTarget(partial, RecordSchema())
        try:
            with _days(days):
                for table in query_data._prefetched(query_data.generate(records, seed)):
                    target.insert(with_costs(table))
        finally:
            target.close()
        partial.rename(path)
        generate_s = time.perf_counter() - began
        log(f"records written in {generate_s:.0f} s")
    db = Database(path, limits=MEMORY)
    try:
        rollups = DuckDBRollups(db.schema)
        began = time.perf_counter()
        if slices:
            method = f"{slices} slices"
            _in_slices(db, rollups, days, slices, log)
        else:
            method = "rebuild"
            log("DuckDBMetricStore.rebuild() …")
            DuckDBMetricStore(db, rollups).rebuild()
        rebuild_s = time.perf_counter() - began
        log(f"rollups built ({method}) in {rebuild_s:.0f} s")
        db.checkpoint()
        rows = db.read(
            lambda c: c.execute(
                "SELECT (SELECT count(*) FROM metric_rollups), "
                "(SELECT count(*) FROM metric_histograms)"
            ).fetchone()
        )
    finally:
        db.close()
    assert rows is not None
    built = Built(
        path,
        records,
        days,
        generate_s,
        rebuild_s,
        int(rows[0]),
        int(rows[1]),
        path.stat().st_size / 2**20,
        method,
    )
    fields = {k: v for k, v in built.__dict__.items() if k != "path"}
    info.write_text(json.dumps(fields))
    return built


def _in_slices(db: Database, rollups: DuckDBRollups, days: int, slices: int, log: Log) -> None:
    """The rollups of the records, staged and folded one slice of the days at a time, each in
    a transaction, as `DuckDBRecordStore.append` and the server's fold build them."""
    start = query_data.END - timedelta(days=days)
    step = timedelta(days=days) / slices

    def one(lo: datetime, hi: datetime, conn: duckdb.DuckDBPyConnection) -> None:
        conn.execute("BEGIN")
        try:
            batch = conn.sql(
                'SELECT * FROM records WHERE "timestamp" >= ? AND "timestamp" < ?', params=[lo, hi]
            ).to_arrow_table()
            conn.register("_batch_records", batch)
            rollups.write(conn, batch)
            conn.unregister("_batch_records")
            rollups.fold(conn)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    db.write(lambda conn: conn.execute("DELETE FROM metric_rollups; DELETE FROM metric_histograms"))
    for i in range(slices):
        lo = start + step * i
        db.write(functools.partial(one, lo, lo + step))
        log(f"rollups: slice {i + 1}/{slices}")
