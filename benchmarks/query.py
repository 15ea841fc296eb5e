"""Part E: Logs Insights queries on 10 million synthetic records in DuckDB.

    .venv/bin/python benchmarks/query.py             # 10M records, 25 measured rounds
    .venv/bin/python benchmarks/query.py --quick     # 1M records, 5 rounds
    .venv/bin/python benchmarks/query.py --explain   # also DuckDB's profile of each query

The three queries of issue 4 run against a DuckDB file built by `query_data` (cached under
``benchmarks/.cache/``, built once: about two minutes for 10M rows) and opened with
llmtrail's own `Database`. Each runs three ways, interleaved round by round in a rotating
order so that noise on the shared machine spreads over all of them:

* ``hand SQL``: SQL a person would write for the question on the same tables and columns,
  with the same workspace and time-range filter, run through the same engine call;
* ``language``: `compile_query` on the query text, then the engine runs its SQL — what the
  language layer costs over the hand SQL (compiling included);
* ``runner``: `QueryRunner.run`, as ``POST /api/query`` runs it: compile, execute, count
  recordsMatched and recordsScanned, 1,000-row page.

Both SQL forms must return the same rows, or the run says so. The overhead is the language
p50 over the hand-SQL p50, and (less sensitive to drift in the machine's load) the median of
the per-round ratios of the two, which ran back to back.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from rich import box
from rich.console import Console, RenderableType
from rich.table import Table

import query_data
from llmtrail.analytics.insights import QueryRunner
from llmtrail.query import compile_query
from llmtrail.store.duckdb import Database
from llmtrail.store.duckdb.query import DuckDBQueryEngine

CACHE = Path(__file__).resolve().parent / ".cache"
START = query_data.END - timedelta(days=query_data.DAYS)
END = query_data.END
OVERHEAD_GOAL = 0.20
_RANGE = (
    f"workspace = 'default' AND timestamp >= TIMESTAMPTZ '{START.isoformat()}' "
    f"AND timestamp < TIMESTAMPTZ '{END.isoformat()}'"
)
WAYS = ("hand SQL", "language", "runner")
Log = Callable[[str], None]


@dataclass(frozen=True)
class BenchQuery:
    name: str
    text: str
    hand: str
    target_ms: float


QUERIES = (
    BenchQuery(
        "tokens by application",
        "stats sum(input.inputTokenCount + output.outputTokenCount) "
        "by requestMetadata.application_name",
        "SELECT meta_application_name, sum(input_token_count + output_token_count) "
        f"FROM records WHERE {_RANGE} GROUP BY meta_application_name "
        "ORDER BY meta_application_name NULLS LAST",
        50,
    ),
    BenchQuery(
        "errors per 5 minutes",
        'filter status = "ERROR" | stats count() by bin(5m)',
        "SELECT time_bucket(INTERVAL 5 MINUTE, timestamp) AS t, count(*) FROM records "
        f"WHERE {_RANGE} AND status = 'ERROR' GROUP BY t ORDER BY t",
        100,
    ),
    BenchQuery(
        "distinct users by application",
        "stats count_distinct(requestMetadata.user_id) by requestMetadata.application_name",
        "SELECT meta_application_name, count(DISTINCT meta_user_id) "
        f"FROM records WHERE {_RANGE} GROUP BY meta_application_name "
        "ORDER BY meta_application_name NULLS LAST",
        600,
    ),
)


@dataclass(frozen=True)
class Plan:
    rows: int
    rounds: int
    warmup: int


FULL = Plan(10_000_000, rounds=25, warmup=2)
QUICK = Plan(1_000_000, rounds=5, warmup=1)


@dataclass
class Timings:
    """Seconds per measured round, by way; compile alone; whether the SQL forms agree."""

    query: BenchQuery
    seconds: dict[str, list[float]] = field(default_factory=lambda: {w: [] for w in WAYS})
    compile_s: list[float] = field(default_factory=list)
    cpu_share: list[float] = field(default_factory=list)  # language: process CPU / wall
    rows: int = 0
    same_rows: bool = False


@dataclass
class QueryBenchResult:
    plan: Plan
    path: Path
    threads: str
    timings: list[Timings]
    load: tuple[str, str]
    explain: dict[str, str] = field(default_factory=dict)


def data_file(rows: int, seed: int, log: Log) -> Path:
    """The cached DuckDB file of ``rows`` synthetic records, built when missing."""
    path = CACHE / f"query-{rows}-seed{seed}.duckdb"
    if path.exists():
        return path
    CACHE.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    for stale in (partial, Path(f"{partial}.wal")):
        stale.unlink(missing_ok=True)
    log(f"building {path.name}: {rows:,} records (once; cached in {CACHE}) …")
    spent = query_data.write(rows, seed=seed, duckdb_path=partial)
    partial.rename(path)
    log(f"built in {spent['total']:.0f} s")
    return path


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def run(plan: Plan, log: Log, *, explain: bool = False, seed: int = 1) -> QueryBenchResult:
    path = data_file(plan.rows, seed, log)
    db = Database(path)
    try:
        engine = DuckDBQueryEngine(db)
        runner = QueryRunner(engine, db.schema)
        threads = str(engine.execute("SELECT current_setting('threads')", "threads").rows[0][0])
        timings = [Timings(q) for q in QUERIES]
        load_start = load_average()
        for t in timings:
            t.same_rows, t.rows = _agree(engine, t.query)
        total = plan.warmup + plan.rounds
        for round_ in range(total):
            measured = round_ >= plan.warmup
            for offset, t in enumerate(timings):
                ways = _rotated(WAYS, round_ + offset)
                for way in ways:
                    cpu = time.process_time()
                    seconds, compiling = _once(way, t.query, engine, runner, db)
                    cpu = time.process_time() - cpu
                    if measured:
                        t.seconds[way].append(seconds)
                        if way == "language":
                            t.compile_s.append(compiling)
                            t.cpu_share.append(cpu / seconds)
            if round_ in (plan.warmup - 1, total - 1) or round_ % 5 == 4:
                log(f"round {round_ + 1}/{total}{'' if measured else ' (warm-up)'}")
        plans = {q.name: _explain(engine, q) for q in QUERIES} if explain else {}
        return QueryBenchResult(plan, path, threads, timings, (load_start, load_average()), plans)
    finally:
        db.close()


def _compiled(db: Database, text: str) -> str:
    return compile_query(
        text, dialect="duckdb", schema=db.schema, workspace="default", start=START, end=END
    ).sql


def _once(
    way: str, query: BenchQuery, engine: DuckDBQueryEngine, runner: QueryRunner, db: Database
) -> tuple[float, float]:
    """Seconds for one run of ``query`` the ``way`` given, and (language) compiling's share."""
    began = time.perf_counter()
    if way == "hand SQL":
        engine.execute(query.hand, "bench")
        return time.perf_counter() - began, 0.0
    if way == "language":
        sql = _compiled(db, query.text)
        compiled = time.perf_counter()
        engine.execute(sql, "bench")
        return time.perf_counter() - began, compiled - began
    result = runner.run(query.text, START, END)
    assert result.status == "Complete", result.status
    return time.perf_counter() - began, 0.0


def _agree(engine: DuckDBQueryEngine, query: BenchQuery) -> tuple[bool, int]:
    """Whether the compiled SQL and the hand SQL return the same rows, and how many."""
    db: Database = engine.db
    mine = engine.execute(_compiled(db, query.text), "check").rows
    theirs = engine.execute(query.hand, "check").rows
    return [tuple(r) for r in mine] == [tuple(r) for r in theirs], len(mine)


def _explain(engine: DuckDBQueryEngine, query: BenchQuery) -> str:
    """DuckDB's profile (``EXPLAIN ANALYZE``) of the compiled query."""
    rows = engine.execute("EXPLAIN ANALYZE " + _compiled(engine.db, query.text), "explain").rows
    return "\n".join(str(row[-1]) for row in rows)


def _rotated(items: tuple[str, ...], by: int) -> tuple[str, ...]:
    k = by % len(items)
    return items[k:] + items[:k]


def _ms(values: list[float], p: float) -> float:
    """The nearest-rank ``p``th percentile of ``values`` (seconds), in milliseconds."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))] * 1000


def tables(result: QueryBenchResult) -> list[RenderableType]:
    plan = result.plan
    t = Table(
        title=f"E. Logs Insights on {plan.rows:,} synthetic records, DuckDB "
        f"(threads={result.threads}), {plan.rounds} interleaved rounds after {plan.warmup} "
        "warm-up; ms",
        box=box.MARKDOWN,
        title_justify="left",
    )
    for name, justify in (
        ("query", "left"),
        ("hand SQL p50 / p95", "right"),
        ("language p50 / p95", "right"),
        ("of which compile p50", "right"),
        ("overhead p50 / paired", "right"),
        ("runner p50 / p95", "right"),
        ("CPU / wall", "right"),
        ("target p50 (language)", "left"),
        ("rows", "right"),
    ):
        t.add_column(name, justify=justify)  # type: ignore[arg-type]
    for timing in result.timings:
        hand, lang, full = (timing.seconds[w] for w in WAYS)
        overhead = _ms(lang, 50) / _ms(hand, 50) - 1
        paired = statistics.median(a / b for a, b in zip(lang, hand, strict=True)) - 1
        target = timing.query.target_ms
        met = "met" if _ms(lang, 50) <= target else "MISSED"
        goal = "≤ 20 %" if max(overhead, paired) <= OVERHEAD_GOAL else "> 20 % (goal ≤ 20 %)"
        t.add_row(
            timing.query.name,
            f"{_ms(hand, 50):.1f} / {_ms(hand, 95):.1f}",
            f"{_ms(lang, 50):.1f} / {_ms(lang, 95):.1f}",
            f"{_ms(timing.compile_s, 50):.2f}",
            f"{overhead:+.1%} / {paired:+.1%} {goal}",
            f"{_ms(full, 50):.1f} / {_ms(full, 95):.1f}",
            f"{statistics.median(timing.cpu_share):.2f}",
            f"≤ {target:.0f}: {met}",
            f"{timing.rows:,}{'' if timing.same_rows else ' (DIFFER from hand SQL)'}",
        )
    t.caption = (
        f"{os.cpu_count()} CPUs; load average {result.load[0]} at start, {result.load[1]} at end. "
        "runner = QueryRunner.run: compile, execute, recordsMatched and recordsScanned, "
        "1,000-row page. CPU / wall: this process's CPU time over the wall time of a language "
        "run (median): 2.0 would be both cores busy for the query the whole time."
    )
    lines = ["E. The queries (hand SQL: <range> is the workspace and time-range filter)"]
    for query in QUERIES:
        sql = query.hand.replace(_RANGE, "<range>")
        lines.append(f"* {query.name}: `{query.text}`; hand SQL: `{sql}`")
    return [t, "\n".join(lines)]


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="1M records, 5 rounds")
    parser.add_argument("--rows", type=int, help="records in the data set")
    parser.add_argument("--rounds", type=int, help="measured rounds")
    parser.add_argument("--explain", action="store_true", help="print DuckDB's profiles")
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    plan = Plan(args.rows or plan.rows, args.rounds or plan.rounds, plan.warmup)
    if plan.rows < 1 or plan.rounds < 1:
        parser.error("--rows and --rounds must be positive")
    console = Console(color_system=None, highlight=False, soft_wrap=True, width=220)
    result = run(plan, _log, explain=args.explain)
    for table in tables(result):
        console.print(table)
    if args.explain:
        for name, profile in result.explain.items():
            console.print(f"\n{name}:\n{profile}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
