"""Part I: DuckDB and ClickHouse (embedded chdb) side by side, in one run (issue 14).

    .venv/bin/python benchmarks/engines.py            # 10M-record queries, 100k ingested
    .venv/bin/python benchmarks/engines.py --quick    # 1M-record queries, 20k ingested
    .venv/bin/python benchmarks/run.py --only engines

Four measures, each on both engines through llmtrail's own store classes and real files:

* I1 ingest: `engines_data` records (realistic bodies) through ``RecordStore.append`` in
  batches of 5,000 with a spool position, as the pipeline calls it (DuckDB: records, bodies and
  rollups in one transaction; ClickHouse: records and bodies with insert tokens, the
  rollups by its materialized views). Baselines in the same run: the same records written as
  NDJSON (Bedrock JSON, as ``llmtrail export`` writes them) to a file, and the same rows
  inserted by hand as Arrow tables built beforehand (no conversion, no rollups).
* I2 bytes on disk per record, for those records: DuckDB's file after ``CHECKPOINT``, chdb's
  ``system.parts`` after ``OPTIMIZE … FINAL``, against the NDJSON file; goals DuckDB ≤ 1/5
  and ClickHouse ≤ 1/10 of it. ClickHouse is also measured with the records' rows copied
  into an alternative layout (`ALT_CODECS`), the evidence for a proposed migration.
* I3 the three Logs Insights queries of `query` on `query_data`'s 10M records (cached: a
  DuckDB file, and a chdb database loaded by Arrow inserts with the metric views detached):
  hand SQL for each engine, the compiled SQL, and `QueryRunner.run`; the rows must agree
  between the SQL forms and between the engines.
* I4 the metric questions of `metrics` over 30 days through `MetricsService` on each engine's
  rollups, against SQL over the records. chdb builds its rollups with its views as records
  are inserted (5,000 a time), which is slow (see I1), so this part runs at ``--metric-records``
  (1M by default), on both engines alike.

chdb serves one data path per process: every chdb database of the run lives under
``benchmarks/.cache/engines-chdb``; the ingest ones are dropped at the end.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence

import duckdb
from rich import box
from rich.console import Console, RenderableType
from rich.table import Table

import metrics
import query
import query_data
from engines_ingest import run_ingest
from engines_reads import run_metrics, run_queries
from engines_result import (
    BATCH,
    FULL,
    GOALS,
    QUICK,
    WAYS,
    Log,
    Plan,
    QueryTimes,
    Result,
    load_average,
)

# -- tables ----------------------------------------------------------------------------------


def _ms(values: list[float], p: float) -> float:
    return query._ms(values, p)


def _table(title: str, columns: Sequence[tuple[str, str]]) -> Table:
    t = Table(title=title, box=box.MARKDOWN, title_justify="left")
    for name, justify in columns:
        t.add_column(name, justify=justify)  # type: ignore[arg-type]
    return t


def tables(result: Result) -> list[RenderableType]:
    plan = result.plan
    out: list[RenderableType] = []
    nd = result.ndjson_record_bytes
    g1 = _table(
        f"I1. Ingest: {plan.ingest:,} records with bodies ({nd:,.0f} B each as NDJSON), "
        f"batches of {BATCH:,}",
        [
            ("way", "left"),
            ("records/s", "right"),
            ("MB/s of NDJSON", "right"),
            ("seconds", "right"),
            ("note", "left"),
        ],
    )
    for r in result.rates:
        g1.add_row(
            r.name,
            f"{r.records / r.seconds:,.0f}",
            f"{r.records * nd / r.seconds / 1e6:,.1f}",
            f"{r.seconds:.2f}",
            r.note,
        )
    out.append(g1)
    g2 = _table(
        "I2. Bytes on disk per record (goal: NDJSON / engine ≥ 5 for DuckDB, ≥ 10 for ClickHouse)",
        [
            ("store", "left"),
            ("records", "right"),
            ("MB", "right"),
            ("bytes/record", "right"),
            ("NDJSON / this", "right"),
            ("goal", "left"),
            ("note", "left"),
        ],
    )
    for s in result.sizes:
        per = s.bytes / s.records
        reference = nd if s.reference is None else s.reference
        compared = s.engine != "ndjson" and "query_data" not in s.name
        ratio = reference / per if compared else None
        goal = GOALS.get(s.engine)
        verdict = ""
        if ratio is not None and goal is not None:
            verdict = f"≥ {goal:.0f}: {'PASS' if ratio >= goal else 'MISS'}"
        g2.add_row(
            s.name,
            f"{s.records:,}",
            f"{s.bytes / 1e6:,.1f}",
            f"{per:,.0f}",
            "" if ratio is None else f"{ratio:.1f}",
            verdict,
            s.note,
        )
    out.append(g2)
    if result.columns:
        lines = ["I2. chdb's largest columns (compressed / uncompressed bytes per record):"]
        for table, name, compressed, raw in result.columns:
            lines.append(
                f"  {table}.{name}: {compressed / plan.ingest:,.0f} / {raw / plan.ingest:,.0f}"
            )
        out.append("\n".join(lines))
    if result.queries:
        g3 = _table(
            f"I3. Logs Insights on {plan.query_rows:,} query_data records, {plan.rounds} "
            "interleaved rounds after a warm-up; ms",
            [
                ("engine", "left"),
                ("query", "left"),
                ("hand SQL p50 / p95", "right"),
                ("language p50 / p95", "right"),
                ("overhead p50", "right"),
                ("runner p50 / p95", "right"),
                ("rows", "right"),
                ("same rows", "left"),
            ],
        )
        by_query: dict[str, list[QueryTimes]] = {}
        for t in result.queries:
            by_query.setdefault(t.query.name, []).append(t)
        for t in result.queries:
            hand, lang, full = (t.seconds[w] for w in WAYS)
            others = [o for o in by_query[t.query.name] if o is not t]
            across = all(o.rows == t.rows for o in others)
            same = ("yes" if t.same_rows else "NO: hand SQL differs") + (
                ", = other engine" if across else ", ≠ OTHER ENGINE"
            )
            g3.add_row(
                t.engine,
                t.query.name,
                f"{_ms(hand, 50):.1f} / {_ms(hand, 95):.1f}",
                f"{_ms(lang, 50):.1f} / {_ms(lang, 95):.1f}",
                f"{_ms(lang, 50) / _ms(hand, 50) - 1:+.0%}",
                f"{_ms(full, 50):.1f} / {_ms(full, 95):.1f}",
                f"{len(t.rows):,}",
                same,
            )
        out.append(g3)
    if result.metric_times:
        g4 = _table(
            f"I4. GetMetricData over {query_data.DAYS} days of {plan.metric_rows:,} records "
            f"(rollups) against SQL over the records; {plan.reps} runs each; ms",
            [
                ("engine", "left"),
                ("query", "left"),
                ("periods (series)", "right"),
                ("service p50 / max", "right"),
                ("records SQL p50 / max", "right"),
                ("speed-up", "right"),
                ("same answer", "left"),
                ("goal p50 < 100 ms", "left"),
            ],
        )
        for engine, timed in result.metric_times.items():
            for m in timed:
                mine, theirs = _ms(m.service_s, 50), _ms(m.baseline_s, 50)
                if m.mismatches:
                    same = f"NO: {len(m.mismatches)} differ (worst {m.worst_error:.1%})"
                else:
                    same = f"yes (≤ {m.worst_error:.2%})" if m.case.percentile else "yes"
                g4.add_row(
                    engine,
                    m.case.name,
                    f"{m.periods:,} ({m.series})",
                    f"{mine:.1f} / {max(m.service_s) * 1000:.1f}",
                    f"{theirs:.1f} / {max(m.baseline_s) * 1000:.1f}",
                    f"{theirs / mine:.1f}×",
                    same,
                    "PASS" if mine < metrics.GOAL_MS else "MISS",
                )
        out.append(g4)
    built = "; ".join(f"{k} built in {v:.0f} s" for k, v in result.built.items() if v > 1)
    out.append(
        f"{os.cpu_count()} CPUs; load average {' → '.join(result.load)} (start → end of each "
        f"part). chdb {_chdb_version()}, DuckDB {duckdb.__version__}. {built}"
    )
    return out


def _chdb_version() -> str:
    import chdb

    return str(chdb.__version__)


def run(plan: Plan, log: Log, parts: Sequence[str] = ("ingest", "queries", "metrics")) -> Result:
    result = Result(plan, [load_average()])
    if "ingest" in parts:
        run_ingest(plan, result, log)
        result.load.append(load_average())
    if "queries" in parts:
        run_queries(plan, result, log)
        result.load.append(load_average())
    if "metrics" in parts:
        run_metrics(plan, result, log)
        result.load.append(load_average())
    return result


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="20k ingested, 1M queried")
    parser.add_argument("--ingest-records", type=int, help="records through append")
    parser.add_argument("--query-records", type=int, help="records for the queries")
    parser.add_argument("--metric-records", type=int, help="records for the metrics")
    parser.add_argument("--rounds", type=int, help="measured rounds (queries, metrics)")
    parser.add_argument(
        "--parts", default="ingest,queries,metrics", help="comma-separated: ingest,queries,metrics"
    )
    args = parser.parse_args()
    base = QUICK if args.quick else FULL
    plan = Plan(
        args.ingest_records or base.ingest,
        args.query_records or base.query_rows,
        args.metric_records or base.metric_rows,
        args.rounds or base.rounds,
        args.rounds or base.reps,
    )
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    if min(plan.ingest, plan.query_rows, plan.metric_rows, plan.rounds) < 1:
        parser.error("--ingest-records, --query-records, --metric-records, --rounds: positive")
    if not set(parts) <= {"ingest", "queries", "metrics"}:
        parser.error("--parts: ingest, queries and/or metrics")
    console = Console(color_system=None, highlight=False, soft_wrap=True, width=220)
    result = run(plan, _log, parts)
    for part in tables(result):
        console.print()
        console.print(part)
    failed = any(not t.same_rows for t in result.queries) or any(
        t.mismatches for timed in result.metric_times.values() for t in timed
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
