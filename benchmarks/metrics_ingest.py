"""What the rollups cost ingest: `DuckDBRecordStore.append` with them and without.

The same `InvocationRecord`s (`bench_records`, built beforehand) are appended into a fresh
DuckDB file per configuration, in batches of 1,000 and of 10,000, into one store with the rollups
staged in the append's transaction (`DuckDBRollups`, as the server runs) and one with a
rollups object that does nothing (the store as it was before metrics). The two take turns
batch by batch, so drift in the machine's load spreads over both. Staged rows are folded
into the rollups by the server's maintenance every 10 s, off the append; its cost is timed
once at the end.
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import bench_records
from llmtrail.record import InvocationRecord
from llmtrail.store.duckdb import Database
from llmtrail.store.duckdb.metric_store import DuckDBMetricStore
from llmtrail.store.duckdb.records import DuckDBRecordStore

BATCHES = (1_000, 10_000)
KEEP = {10: timedelta(hours=6), 60: timedelta(days=15), 3600: timedelta(days=455)}


class NoRollups:
    """The baseline: a store that keeps no rollups."""

    def write(self, conn: Any, batch: Any) -> None:
        pass

    def forget_admissions(self) -> None:
        pass


@dataclass(frozen=True)
class IngestRow:
    batch: int
    records: int
    without_s: float
    with_s: float
    fold_s: float


def _interleaved(
    records: list[InvocationRecord], batch: int, work: Path
) -> tuple[float, float, float]:
    """Seconds appending ``records`` without and with rollups (after a warm-up batch each;
    the two stores take turns batch by batch), and then folding the staged rows."""
    kept = []
    for name, rollups in (("without", NoRollups()), ("with", None)):
        db = Database(work / f"{name}-{batch}.duckdb")
        kept.append((db, DuckDBRecordStore(db, rollups)))  # type: ignore[arg-type]
    try:
        spent = [0.0, 0.0]
        for first in range(0, len(records), batch):
            for k in (0, 1) if first // batch % 2 else (1, 0):
                began = time.perf_counter()
                kept[k][1].append(records[first : first + batch])
                if first:  # the first batch is the warm-up
                    spent[k] += time.perf_counter() - began
        db, store = kept[1]
        began = time.perf_counter()
        DuckDBMetricStore(db, store.rollups).maintain(KEEP)
        return spent[0], spent[1], time.perf_counter() - began
    finally:
        for db, _ in kept:
            db.close()


def ingest_rows(total: int, cache: Path, log: Callable[[str], None]) -> list[IngestRow]:
    """Per batch size: ``total`` records appended (plus a warm-up batch), with and without
    rollups, each into a fresh file under ``cache``."""
    work = cache / f"metrics-ingest-{uuid.uuid4().hex[:8]}"
    work.mkdir(parents=True)
    try:
        run = uuid.uuid4().hex[:8]
        most = max(BATCHES)
        docs = (bench_records.make_record(run, i) for i in range(total + most))
        records = [InvocationRecord.from_dict(d, source="ingest") for d in docs]
        rows = []
        for batch in BATCHES:
            used = records[: total + batch]
            without, with_, fold = _interleaved(used, batch, work)
            rows.append(IngestRow(batch, total, without, with_, fold))
            log(f"ingest, batches of {batch:,}: {without:.2f} s without, {with_:.2f} s with")
        return rows
    finally:
        shutil.rmtree(work, ignore_errors=True)
