"""Part I, I3 and I4: the 10M-record Logs Insights queries and the 30-day metric questions on
both engines, against hand SQL (`engines`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import metrics
import metrics_data
import query
import query_data
from engines_ingest import parts_bytes
from engines_result import (
    BATCH,
    CHDB_PATH,
    WAYS,
    Log,
    Plan,
    QueryTimes,
    Result,
    Size,
    chdb_url,
)
from llmtrail.analytics.insights import QueryRunner
from llmtrail.metrics.service import MetricsService
from llmtrail.query import compile_query
from llmtrail.store.clickhouse import (
    ClickHouseDatabase,
    ClickHouseMetricStore,
    ClickHouseQueryEngine,
    connect,
)
from llmtrail.store.clickhouse.metrics import VIEWS
from llmtrail.store.duckdb import Database
from llmtrail.store.duckdb.metric_store import DuckDBMetricStore
from llmtrail.store.duckdb.metrics import DuckDBRollups
from llmtrail.store.duckdb.query import DuckDBQueryEngine
from llmtrail.store.interfaces import QueryEngine


def _ch_range() -> str:
    start, end = (t.strftime("%Y-%m-%d %H:%M:%S") for t in (query.START, query.END))
    return (
        f"workspace = 'default' AND timestamp >= toDateTime64('{start}', 6, 'UTC') "
        f"AND timestamp < toDateTime64('{end}', 6, 'UTC')"
    )


def clickhouse_hand_sql(database: str) -> list[str]:
    """The hand SQL of `query.QUERIES` in ClickHouse's words, over ``database``."""
    t, r = f"`{database}`.records", _ch_range()
    return [
        "SELECT meta_application_name, sum(input_token_count + output_token_count) "
        f"FROM {t} WHERE {r} GROUP BY meta_application_name "
        "ORDER BY meta_application_name NULLS LAST",
        "SELECT toStartOfInterval(timestamp, INTERVAL 5 MINUTE) AS t, count() "
        f"FROM {t} WHERE {r} AND status = 'ERROR' GROUP BY t ORDER BY t",
        "SELECT meta_application_name, count(DISTINCT meta_user_id) "
        f"FROM {t} WHERE {r} GROUP BY meta_application_name "
        "ORDER BY meta_application_name NULLS LAST",
    ]


def chdb_records(rows: int, seed: int, log: Log, *, costs: bool, views: bool) -> str:
    """The chdb database of `query_data`'s ``rows`` records (with costs when ``costs``),
    built when missing: by Arrow inserts of 1M rows with the metric views detached, or (with
    ``views``) 5,000 rows at a time through them, as ingest builds the rollups."""
    name = f"{'m' if views else 'q'}_{rows}_seed{seed}"
    done = CHDB_PATH / f"{name}.done"
    if done.exists():
        return name
    log(f"building chdb database {name}: {rows:,} records (once; cached in {CHDB_PATH}) …")
    began = time.perf_counter()
    client = connect(chdb_url())
    client.command(f"DROP DATABASE IF EXISTS `{name}`")  # a build cut short starts again
    client.close()
    db = ClickHouseDatabase.open(chdb_url(), name)
    try:
        if not views:
            for view in VIEWS.values():
                db.command(f"DETACH TABLE {db.table(view)}")
        for i, table in enumerate(query_data._prefetched(query_data.generate(rows, seed))):
            table = metrics_data.with_costs(table) if costs else table
            step = BATCH if views else table.num_rows
            for at in range(0, table.num_rows, step):
                db.insert_arrow("records", table.slice(at, step), {"insert_deduplicate": 0})
                if views and (at // step) % 20 == 19:
                    log(
                        f"  {i * query_data.DEFAULT_CHUNK + at + step:,} records: "
                        f"{time.perf_counter() - began:.0f} s"
                    )
            log(f"  chunk {i + 1}: {time.perf_counter() - began:.0f} s")
        if not views:
            for view in VIEWS.values():
                db.command(f"ATTACH TABLE {db.table(view)}")
        done.write_text(f"{time.perf_counter() - began:.1f}\n")
    finally:
        db.close()
    return name


@dataclass
class _Side:
    engine: str
    runner: QueryRunner
    engine_: QueryEngine
    hand: list[str]
    compile: Callable[[str], str]


def _rows(rows: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
    """Rows comparable across engines: times as epoch seconds, numbers as ints where whole."""
    out = []
    for row in rows:
        values: list[Any] = []
        for v in row:
            if isinstance(v, datetime):
                v = v.timestamp()
            elif isinstance(v, float) and v.is_integer():
                v = int(v)
            values.append(v)
        out.append(tuple(values))
    return out


def run_queries(plan: Plan, result: Result, log: Log) -> None:
    path = query.data_file(plan.query_rows, 1, log)
    began = time.perf_counter()
    name = chdb_records(plan.query_rows, 1, log, costs=False, views=False)
    result.built[f"chdb {name}"] = time.perf_counter() - began
    duck = Database(path)
    house = ClickHouseDatabase.open(chdb_url(), name)
    ch_engine = ClickHouseQueryEngine(house)
    try:
        d_engine = DuckDBQueryEngine(duck)
        sides = [
            _Side(
                "duckdb",
                QueryRunner(d_engine, duck.schema),
                d_engine,
                [q.hand for q in query.QUERIES],
                lambda text: query._compiled(duck, text),
            ),
            _Side(
                "chdb",
                QueryRunner(ch_engine, house.schema),
                ch_engine,
                clickhouse_hand_sql(name),
                lambda text: (
                    compile_query(
                        text,
                        dialect="clickhouse",
                        schema=house.schema,
                        workspace="default",
                        start=query.START,
                        end=query.END,
                        database=name,
                    ).sql
                ),
            ),
        ]
        sizes = (
            Size(
                f"DuckDB file, {plan.query_rows:,} query_data records",
                "duckdb",
                plan.query_rows,
                path.stat().st_size,
                "no bodies; no NDJSON measured",
            ),
            Size(
                f"chdb records, {plan.query_rows:,} query_data records",
                "chdb",
                plan.query_rows,
                parts_bytes(house, ("records",)),
                "no bodies",
            ),
        )
        result.sizes.extend(sizes)
        times = {(s.engine, q.name): QueryTimes(s.engine, q) for s in sides for q in query.QUERIES}
        for side in sides:
            for q, hand in zip(query.QUERIES, side.hand, strict=True):
                t = times[(side.engine, q.name)]
                mine = side.engine_.execute(side.compile(q.text), "check").rows
                theirs = side.engine_.execute(hand, "check").rows
                t.rows = _rows(mine)
                t.same_rows = t.rows == _rows(theirs)
        for round_ in range(plan.rounds + 1):  # the first is a warm-up
            for side in sides:
                for k, (q, hand) in enumerate(zip(query.QUERIES, side.hand, strict=True)):
                    for way in query._rotated(WAYS, round_ + k):
                        seconds = _once(way, q, hand, side)
                        if round_:
                            times[(side.engine, q.name)].seconds[way].append(seconds)
            log(f"I3: round {round_ + 1}/{plan.rounds + 1}{'' if round_ else ' (warm-up)'}")
        result.queries = list(times.values())
    finally:
        ch_engine.close()
        house.close()
        duck.close()


def _once(way: str, q: query.BenchQuery, hand: str, side: _Side) -> float:
    began = time.perf_counter()
    if way == "hand SQL":
        side.engine_.execute(hand, "bench")
    elif way == "language":
        side.engine_.execute(side.compile(q.text), "bench")
    else:
        answer = side.runner.run(q.text, query.START, query.END)
        assert answer.status == "Complete", answer.status
    return time.perf_counter() - began


# -- I4: metrics over 30 days --------------------------------------------------------------


def _ch_metric_sql(
    database: str, value: str, period: int, where: str = "", label: str = "''"
) -> str:
    us = period * 1_000_000
    group = "1, 2" if label != "''" else "2"
    return (
        f"SELECT {label} AS s, intDiv(toUnixTimestamp64Micro(timestamp), {us}) * {period} AS p, "
        f"{value} FROM `{database}`.records WHERE workspace = 'default' "
        "AND timestamp >= fromUnixTimestamp64Micro({start:Int64}, 'UTC') "
        f"AND timestamp < fromUnixTimestamp64Micro({{end:Int64}}, 'UTC') {where} "
        f"GROUP BY {group} ORDER BY 1, 2"
    )


def clickhouse_metric_sql(database: str) -> list[str]:
    """`metrics.CASES`' baselines in ClickHouse's words, in the same order. DuckDB's
    ``quantile_disc(x, q)`` is the value of rank ``ceil(q * n)``, written out here."""
    app = f"AND meta_application_name = '{metrics.APP}'"
    sonnet = f"AND model_id = '{metrics.SONNET}'"
    p99 = "arraySort(groupArray(latency_ms))[toUInt64(greatest(1, ceil(0.99 * count(latency_ms))))]"
    return [
        _ch_metric_sql(database, "count()", 3600),
        _ch_metric_sql(database, "sum(input_token_count)", 86400, app),
        _ch_metric_sql(database, p99, 3600),
        _ch_metric_sql(database, p99, 300, sonnet),
        _ch_metric_sql(
            database, "toFloat64(coalesce(sum(cost_total_usd), 0))", 86400, f"{sonnet} {app}"
        ),
        _ch_metric_sql(database, "count()", 3600, label="meta_application_name"),
    ]


def run_metrics(plan: Plan, result: Result, log: Log) -> None:
    days = query_data.DAYS
    end = query_data.END
    start = end - timedelta(days=days)
    built = metrics_data.data_file(plan.metric_rows, days, 1, log)
    began = time.perf_counter()
    name = chdb_records(plan.metric_rows, 1, log, costs=True, views=True)
    result.built[f"chdb {name}"] = time.perf_counter() - began
    duck = Database(built.path, limits=metrics_data.MEMORY)
    house = ClickHouseDatabase.open(chdb_url(), name)
    try:
        d_service = MetricsService(DuckDBMetricStore(duck, DuckDBRollups(duck.schema)))
        c_service = MetricsService(ClickHouseMetricStore(house))
        ch_sql = clickhouse_metric_sql(name)

        def d_base(case_i: int) -> metrics.Answer:
            return metrics._baseline(duck, metrics.CASES[case_i].baseline, start, end)

        def c_base(case_i: int) -> metrics.Answer:
            params = {"start": int(start.timestamp() * 1e6), "end": int(end.timestamp() * 1e6)}
            rows = house.query(ch_sql[case_i], params)
            return {(str(s), int(p)): float(v) for s, p, v in rows if v is not None}

        for engine, service, base in (("duckdb", d_service, d_base), ("chdb", c_service, c_base)):
            timed = [metrics.Timed(case) for case in metrics.CASES]
            for i, t in enumerate(timed):
                mine = metrics.service_answer(t.case.ask(service, start, end), t.case.search)
                metrics.compare(t, mine, base(i))
            for rep in range(plan.reps):
                for i, t in enumerate(timed):
                    for way in ("service", "baseline") if rep % 2 == 0 else ("baseline", "service"):
                        began = time.perf_counter()
                        if way == "service":
                            t.case.ask(service, start, end)
                            t.service_s.append(time.perf_counter() - began)
                        else:
                            base(i)
                            t.baseline_s.append(time.perf_counter() - began)
            result.metric_times[engine] = timed
            log(f"I4: {engine} done")
    finally:
        house.close()
        duck.close()
