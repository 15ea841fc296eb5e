"""Part F: metrics (issue 11) — rollups over 10 million records against SQL over the records.

    .venv/bin/python benchmarks/metrics.py                        # 10M records over 30 days
    .venv/bin/python benchmarks/metrics.py --records 1000000      # a quicker check
    .venv/bin/python benchmarks/metrics.py --records 200000 --days 3 --reps 3
    .venv/bin/python benchmarks/metrics.py --explain              # also DuckDB's profiles

Issue 11: "Querying a metric over 30 days of 10 million records answers in under 100 ms".
The records are `query_data`'s (with costs, see `metrics_data`), in a DuckDB file with their
rollups from `DuckDBMetricStore.rebuild()` (cached under ``benchmarks/.cache/``; the rebuild is
timed once and its time kept beside the file; ``--rebuild`` times it again). Each query runs
through `MetricsService.get_metric_data` (or `MetricsService.search`), the public path the
``/api/metrics`` handler takes, and against a baseline measured in the same run: the SQL a
person would write over the ``records`` table for the same question (exact ``quantile_disc``
for percentiles). The two take turns, a warm-up each, then ``--reps`` measured runs; every
answer is checked against the baseline's (percentiles within 1 %, the sketch's error).

Ingest cost: records/s of `DuckDBRecordStore.append` into a fresh file, with the rollups
staged in its transaction and without (a rollups object that does nothing), at batches of
1,000 and 10,000 records; and what folding the staged rows afterwards costs.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from rich import box
from rich.console import Console, RenderableType
from rich.table import Table

import metrics_data
import query_data
from llmtrail.metrics.model import MetricDataQuery, MetricDataResult, MetricStat
from llmtrail.metrics.service import MetricsService
from llmtrail.store.duckdb import Database, metric_reads
from llmtrail.store.duckdb.metric_store import DuckDBMetricStore
from llmtrail.store.duckdb.metrics import DuckDBRollups
from llmtrail.store.interfaces import SeriesRead, SeriesTotals
from metrics_ingest import IngestRow, ingest_rows

GOAL_MS = 100.0
PERCENTILE_TOLERANCE = 0.01
SONNET = query_data.MODELS[0][0]
APP = query_data.APPS[0]
Log = Callable[[str], None]
Answer = dict[tuple[str, int], float]  # (series label, period start epoch s) → value


@dataclass(frozen=True)
class Case:
    """One question: how the service is asked, and the SQL over ``records`` answering it
    (columns: series label, period start in epoch seconds, value)."""

    name: str
    ask: Callable[[MetricsService, datetime, datetime], list[MetricDataResult]]
    baseline: str
    percentile: bool = False
    search: bool = False


def _stat(metric: str, stat: str, period: int, *dims: tuple[str, str]) -> Callable[..., Any]:
    query = MetricDataQuery("m", MetricStat(metric, stat, period, tuple(dims)))
    return lambda service, start, end: service.get_metric_data([query], start, end)


def _search(expression: str, stat: str, period: int) -> Callable[..., Any]:
    return lambda service, start, end: service.search(expression, stat, period, start, end)


def _sql(value: str, period: int, where: str = "", label: str = "''") -> str:
    us = period * 1_000_000
    group = "1, 2" if label != "''" else "2"
    return (
        f'SELECT {label} AS s, epoch_us("timestamp") // {us} * {period} AS p, {value} '
        f"FROM records WHERE workspace = 'default' AND \"timestamp\" >= $start "
        f'AND "timestamp" < $end {where} GROUP BY {group} ORDER BY 1, 2'
    )


CASES = (
    Case(
        "Invocations Sum, hourly, total",
        _stat("Invocations", "Sum", 3600),
        _sql("count(*)", 3600),
    ),
    Case(
        f"InputTokenCount Sum, daily, ApplicationName={APP}",
        _stat("InputTokenCount", "Sum", 86400, ("ApplicationName", APP)),
        _sql("sum(input_token_count)", 86400, f"AND meta_application_name = '{APP}'"),
    ),
    Case(
        "InvocationLatency p99, hourly, total",
        _stat("InvocationLatency", "p99", 3600),
        _sql("quantile_disc(latency_ms, 0.99)", 3600),
        percentile=True,
    ),
    Case(
        "InvocationLatency p99, 5 min, ModelId=<sonnet 4.5 on Bedrock>",
        _stat("InvocationLatency", "p99", 300, ("ModelId", SONNET)),
        _sql("quantile_disc(latency_ms, 0.99)", 300, f"AND model_id = '{SONNET}'"),
        percentile=True,
    ),
    Case(
        f"CostUsd Sum, daily, ModelId=<sonnet> + ApplicationName={APP}",
        _stat("CostUsd", "Sum", 86400, ("ModelId", SONNET), ("ApplicationName", APP)),
        _sql(
            "coalesce(sum(cost_total_usd), 0)::DOUBLE",
            86400,
            f"AND model_id = '{SONNET}' AND meta_application_name = '{APP}'",
        ),
    ),
    Case(
        "SEARCH {AWS/Bedrock,ApplicationName} Invocations Sum, hourly",
        _search('{AWS/Bedrock,ApplicationName} MetricName="Invocations"', "Sum", 3600),
        _sql("count(*)", 3600, label="meta_application_name"),
        search=True,
    ),
)


@dataclass
class Timed:
    case: Case
    service_s: list[float] = field(default_factory=list)
    baseline_s: list[float] = field(default_factory=list)
    periods: int = 0
    series: int = 0
    mismatches: list[str] = field(default_factory=list)
    worst_error: float = 0.0  # largest relative difference seen


@dataclass
class MetricsBenchResult:
    built: metrics_data.Built
    timed: list[Timed]
    ingest: list[IngestRow]
    load: tuple[str, str]
    reps: int
    explain: dict[str, str] = field(default_factory=dict)


def service_answer(results: list[MetricDataResult], search: bool) -> Answer:
    out: Answer = {}
    for result in results:
        label = result.label if search else ""
        for ts, value in zip(result.timestamps, result.values, strict=True):
            out[(label, int(ts.timestamp()))] = float(value)
    return out


def compare(timed: Timed, mine: Answer, theirs: Answer) -> None:
    """Record every difference between the service's answer and the baseline's."""
    tolerance = PERCENTILE_TOLERANCE if timed.case.percentile else 1e-9
    for key in sorted(set(mine) | set(theirs)):
        a, b = mine.get(key), theirs.get(key)
        if a is None or b is None:
            timed.mismatches.append(f"{key}: service {a}, baseline {b}")
            continue
        error = abs(a - b) / max(abs(b), 1e-12) if a != b else 0.0
        timed.worst_error = max(timed.worst_error, error)
        if error > tolerance + 1e-9:
            timed.mismatches.append(f"{key}: service {a}, baseline {b} ({error:+.2%})")
    timed.periods = len(theirs)
    timed.series = len({label for label, _ in theirs})


def _baseline(db: Database, sql: str, start: datetime, end: datetime) -> Answer:
    rows = db.read(lambda c: c.execute(sql, {"start": start, "end": end}).fetchall())
    return {(str(s), int(p)): float(v) for s, p, v in rows if v is not None}


def run_queries(
    path: Path, days: int, reps: int, log: Log, explain: bool
) -> tuple[list[Timed], dict[str, str]]:
    end = query_data.END
    start = end - timedelta(days=days)
    db = Database(path)
    try:
        service = MetricsService(DuckDBMetricStore(db, DuckDBRollups(db.schema)))
        timed = [Timed(case) for case in CASES]
        for t in timed:  # warm-up, and the check
            compare(
                t,
                service_answer(t.case.ask(service, start, end), t.case.search),
                _baseline(db, t.case.baseline, start, end),
            )
            if t.mismatches:
                log(f"MISMATCH in {t.case.name}: {len(t.mismatches)} periods differ")
        for rep in range(reps):
            for t in timed:
                order = ("service", "baseline") if rep % 2 == 0 else ("baseline", "service")
                for way in order:
                    began = time.perf_counter()
                    if way == "service":
                        t.case.ask(service, start, end)
                        t.service_s.append(time.perf_counter() - began)
                    else:
                        _baseline(db, t.case.baseline, start, end)
                        t.baseline_s.append(time.perf_counter() - began)
            log(f"rep {rep + 1}/{reps}")
        plans = _profiles(db, start, end) if explain else {}
        return timed, plans
    finally:
        db.close()


class _RecordingStore:
    """A `MetricStore` passing reads through and keeping each `SeriesRead` asked."""

    def __init__(self, inner: DuckDBMetricStore) -> None:
        self.inner = inner
        self.reads: list[tuple[SeriesRead, str | None]] = []

    def measures(self, read: SeriesRead) -> list[tuple[datetime, dict[str, Any]]]:
        self.reads.append((read, None))
        return self.inner.measures(read)

    def percentile(self, read: SeriesRead, metric: str, q: float) -> list[tuple[datetime, int]]:
        self.reads.append((read, f"{metric}:{q}"))
        return self.inner.percentile(read, metric, q)

    def totals(self, read: SeriesRead) -> list[SeriesTotals]:
        self.reads.append((read, "totals"))
        return self.inner.totals(read)

    def series(self, *args: Any) -> list[tuple[str, ...]]:
        return self.inner.series(*args)


class _Statement:
    """Stands in for a cursor: keeps the statement a read method runs, answers nothing."""

    text = ""
    params: Any = None

    def execute(self, text: str, params: Any = None) -> _Statement:
        self.text, self.params = text, params
        return self

    def sql(self, text: str, params: Any = None) -> _Statement:
        return self.execute(text, params)

    def fetchall(self) -> list[Any]:
        return []

    def to_arrow_table(self) -> pa.Table:
        raise _Kept  # the statement is what was wanted; the read stops here


class _Kept(Exception):
    """A read stopped once its statement was kept."""


def _profiles(db: Database, start: datetime, end: datetime) -> dict[str, str]:
    """DuckDB's ``EXPLAIN ANALYZE`` of the (first) rollup read each service query runs."""
    rollups = DuckDBRollups(db.schema)
    out: dict[str, str] = {}
    for case in CASES:
        store = _RecordingStore(DuckDBMetricStore(db, rollups))
        case.ask(MetricsService(store), start, end)  # type: ignore[arg-type]
        read, metric = store.reads[0]
        statement = _Statement()
        with contextlib.suppress(_Kept):
            if metric is None:
                metric_reads.measures(statement, read)  # type: ignore[arg-type]
            elif metric == "totals":
                metric_reads.totals(statement, read)  # type: ignore[arg-type]
            else:
                name, q = metric.split(":")
                metric_reads.percentile(statement, read, name, float(q))  # type: ignore[arg-type]
        profile = functools.partial(_explain, statement.text, statement.params)
        rows = db.read(profile)
        out[case.name] = "\n".join(str(r[-1]) for r in rows)
    return out


def _explain(text: str, params: Any, cursor: duckdb.DuckDBPyConnection) -> list[Any]:
    return cursor.execute("EXPLAIN ANALYZE " + text, params).fetchall()


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def _ms(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))] * 1000


def tables(result: MetricsBenchResult) -> list[RenderableType]:
    b = result.built
    t = Table(
        title=f"F1. GetMetricData over {b.days} days of {b.records:,} records (DuckDB, "
        f"rollups) against SQL over the records; {result.reps} runs each after a warm-up; ms",
        box=box.MARKDOWN,
        title_justify="left",
    )
    for name, justify in (
        ("query", "left"),
        ("periods (series)", "right"),
        ("service p50 / max", "right"),
        ("records SQL p50 / max", "right"),
        ("speed-up p50", "right"),
        ("same answer", "left"),
        (f"goal p50 < {GOAL_MS:.0f} ms", "left"),
    ):
        t.add_column(name, justify=justify)  # type: ignore[arg-type]
    for timed in result.timed:
        mine, theirs = _ms(timed.service_s, 50), _ms(timed.baseline_s, 50)
        if timed.mismatches:
            same = f"NO: {len(timed.mismatches)} DIFFER"
        elif timed.case.percentile:
            same = f"yes (≤ {timed.worst_error:.2%})"
        else:
            same = "yes"
        t.add_row(
            timed.case.name,
            f"{timed.periods:,} ({timed.series})",
            f"{mine:.1f} / {max(timed.service_s) * 1000:.1f}",
            f"{theirs:.1f} / {max(timed.baseline_s) * 1000:.1f}",
            f"{theirs / mine:.1f}×",
            same,
            "PASS" if mine < GOAL_MS else "MISS",
        )
    t.caption = (
        f"Rollups: {b.rollup_rows:,} rows + {b.histogram_rows:,} histogram rows (10 s, 1 min, "
        f"5 min, 1 h; file {b.file_mb:,.0f} MB); records written in {b.generate_s:.0f} s; "
        f"{_method(b)} took {b.rebuild_s:.1f} s ({b.records / b.rebuild_s:,.0f} records/s). "
        f"{os.cpu_count()} CPUs; load average "
        f"{result.load[0]} at start, {result.load[1]} at end."
    )
    out: list[RenderableType] = [t]
    for timed in result.timed:
        if timed.mismatches:
            shown = "\n".join(f"  {m}" for m in timed.mismatches[:10])
            out.append(f"MISMATCH: {timed.case.name}: {len(timed.mismatches)} periods\n{shown}")
    i = Table(
        title="F2. DuckDBRecordStore.append into a fresh file, with and without rollups",
        box=box.MARKDOWN,
        title_justify="left",
    )
    for name in ("batch", "records", "without rollups rec/s", "with rollups rec/s",
                 "rollups' cost", "fold afterwards s", "with rollups + fold rec/s"):  # fmt: skip
        i.add_column(name, justify="left" if name == "batch" else "right")
    for row in result.ingest:
        i.add_row(
            f"{row.batch:,}",
            f"{row.records:,}",
            f"{row.records / row.without_s:,.0f}",
            f"{row.records / row.with_s:,.0f}",
            f"{row.with_s / row.without_s - 1:+.0%}",
            f"{row.fold_s:.2f}",
            f"{row.records / (row.with_s + row.fold_s):,.0f}",
        )
    i.caption = (
        "Records: benchmarks/bench_records.py (InvocationRecord objects built beforehand); "
        "append = Arrow conversion + INSERT (+ staging the rollups) in one transaction, on "
        "the writer thread; one warm-up batch first. Fold: DuckDBMetricStore.maintain() once "
        "at the end (the server folds every 10 s)."
    )
    out.append(i)
    return out


def _method(built: metrics_data.Built) -> str:
    if built.method == "rebuild":
        return "DuckDBMetricStore.rebuild()"
    return f"building them in {built.method} (stage + fold per slice, as ingest does)"


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--records", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--reps", type=int, default=10, help="measured runs per query")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--ingest-records", type=int, default=50_000)
    parser.add_argument("--rebuild", action="store_true", help="time the rollups' rebuild again")
    parser.add_argument(
        "--slices",
        type=int,
        default=0,
        help="build the rollups a slice of the range at a time (as ingest does) instead of "
        "DuckDBMetricStore.rebuild(), which runs out of memory at 10M records",
    )
    parser.add_argument("--explain", action="store_true", help="print DuckDB's profiles")
    args = parser.parse_args()
    if min(args.records, args.days, args.reps, args.ingest_records) < 1:
        parser.error("--records, --days, --reps and --ingest-records must be positive")
    console = Console(color_system=None, highlight=False, soft_wrap=True, width=220)
    load_start = load_average()
    built = metrics_data.data_file(
        args.records, args.days, args.seed, _log, rebuild=args.rebuild, slices=args.slices
    )
    timed, plans = run_queries(built.path, args.days, args.reps, _log, args.explain)
    _log("ingest …")
    ingest = ingest_rows(args.ingest_records, metrics_data.CACHE, _log)
    result = MetricsBenchResult(
        built, timed, ingest, (load_start, load_average()), args.reps, plans
    )
    for table in tables(result):
        console.print(table)
    for name, profile in result.explain.items():
        console.print(f"\n{name}:\n{profile}")
    return 1 if any(t.mismatches for t in timed) else 0


if __name__ == "__main__":
    sys.exit(main())
