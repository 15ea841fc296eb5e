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
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa
from rich import box
from rich.console import Console, RenderableType
from rich.table import Table

import engines_data
import metrics
import metrics_data
import query
import query_data
from llmtrail.analytics.insights import QueryRunner
from llmtrail.metrics.service import MetricsService
from llmtrail.query import compile_query
from llmtrail.record import InvocationRecord
from llmtrail.store.clickhouse import (
    ClickHouseDatabase,
    ClickHouseMetricStore,
    ClickHouseQueryEngine,
    ClickHouseRecordStore,
    connect,
)
from llmtrail.store.clickhouse.columns import arrow_table, note_empty_maps
from llmtrail.store.clickhouse.metrics import VIEWS
from llmtrail.store.duckdb import Database, DuckDBRecordStore
from llmtrail.store.duckdb.metric_store import DuckDBMetricStore
from llmtrail.store.duckdb.metrics import DuckDBRollups
from llmtrail.store.duckdb.query import DuckDBQueryEngine
from llmtrail.store.duckdb.records import arrow_schema
from llmtrail.store.interfaces import QueryEngine
from llmtrail.store.rows import to_columns

CACHE = Path(__file__).resolve().parent / ".cache"
CHDB_PATH = CACHE / "engines-chdb"
BATCH = 5_000
GOALS = {"duckdb": 5.0, "chdb": 10.0}  # NDJSON bytes / engine bytes, at least
ENGINES = ("duckdb", "chdb")
WAYS = query.WAYS
Log = Callable[[str], None]


@dataclass(frozen=True)
class Plan:
    ingest: int  # records through RecordStore.append (with bodies)
    query_rows: int  # records for the Logs Insights queries
    metric_rows: int  # records for the metric questions (both engines)
    rounds: int
    reps: int


FULL = Plan(ingest=100_000, query_rows=10_000_000, metric_rows=200_000, rounds=10, reps=10)
QUICK = Plan(ingest=20_000, query_rows=1_000_000, metric_rows=50_000, rounds=3, reps=3)


@dataclass
class Rate:
    name: str
    records: int
    seconds: float
    note: str = ""


@dataclass
class Size:
    name: str
    engine: str  # "ndjson", "duckdb" or "chdb"
    records: int
    bytes: int
    note: str = ""
    reference: float | None = None  # NDJSON bytes/record compared with (None: with bodies)


@dataclass
class QueryTimes:
    engine: str
    query: query.BenchQuery
    seconds: dict[str, list[float]] = field(default_factory=lambda: {w: [] for w in WAYS})
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    same_rows: bool = False


@dataclass
class Result:
    plan: Plan
    load: list[str]
    ndjson_record_bytes: float = 0.0
    rates: list[Rate] = field(default_factory=list)
    sizes: list[Size] = field(default_factory=list)
    columns: list[tuple[str, str, int, int]] = field(default_factory=list)
    queries: list[QueryTimes] = field(default_factory=list)
    metric_times: dict[str, list[metrics.Timed]] = field(default_factory=dict)
    built: dict[str, float] = field(default_factory=dict)  # data set → seconds to build


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def chdb_url() -> str:
    CHDB_PATH.mkdir(parents=True, exist_ok=True)
    return f"chdb://{CHDB_PATH}"


def _parts_bytes(db: ClickHouseDatabase, tables: Sequence[str] | None = None) -> int:
    where = "database = {db:String} AND active"
    params: dict[str, Any] = {"db": db.database}
    if tables is not None:
        where += " AND table IN {t:Array(String)}"
        params["t"] = list(tables)
    rows = db.query(f"SELECT sum(bytes_on_disk) FROM system.parts WHERE {where}", params)
    return int(rows[0][0] or 0)


def _optimize(db: ClickHouseDatabase, tables: Sequence[str]) -> None:
    for table in tables:
        db.command(f"OPTIMIZE TABLE {db.table(table)} FINAL")


# -- I1 and I2: ingest and bytes ----------------------------------------------------------


def _ndjson(records: list[InvocationRecord], path: Path) -> float:
    """Write ``records`` as Bedrock JSON lines, a batch at a time; seconds (fsync included)."""
    began = time.perf_counter()
    with path.open("wb") as out:
        for i in range(0, len(records), BATCH):
            out.write(
                b"".join(orjson.dumps(r.to_dict("bedrock")) + b"\n" for r in records[i : i + BATCH])
            )
        out.flush()
        os.fsync(out.fileno())
    return time.perf_counter() - began


def _without_bodies(record: InvocationRecord) -> dict[str, Any]:
    doc = dict(record.to_dict("bedrock"))
    for part, key in (("input", "inputBodyJson"), ("output", "outputBodyJson")):
        if isinstance(doc.get(part), dict):
            doc[part] = {k: v for k, v in doc[part].items() if k != key}
    return doc


def _zstd_size(path: Path, level: int) -> int:
    """Bytes of ``path`` compressed by zstd at ``level``, 1 MB at a time (as a store's blocks)."""
    codec = pa.Codec("zstd", compression_level=level)
    total = 0
    with path.open("rb") as f:
        while block := f.read(2**20):
            total += codec.compress(block).size
    return total


def _duckdb_append(records: list[InvocationRecord], path: Path) -> float:
    db = Database(path)
    try:
        store = DuckDBRecordStore(db, DuckDBRollups(db.schema))
        began = time.perf_counter()
        for i in range(0, len(records), BATCH):
            store.append(records[i : i + BATCH], f"1:{i}")
        return time.perf_counter() - began
    finally:
        db.close()  # checkpoints


# Proposed for DuckDB, tried on a copy: the body columns compressed by zstd (DuckDB's own
# choice for them, dictionary + FSST, keeps long JSON text almost whole).
DUCKDB_ZSTD_BODIES = (
    "DROP TABLE bodies",
    "CREATE TABLE bodies (record_id VARCHAR, input_body_json VARCHAR USING COMPRESSION zstd, "
    "output_body_json VARCHAR USING COMPRESSION zstd)",
)


def _duckdb_plain(
    records: list[InvocationRecord], path: Path, with_bodies: bool = True, zstd: bool = False
) -> float:
    """The same rows as Arrow tables built beforehand, inserted into llmtrail's tables by hand
    SQL (no conversion, no rollups), each batch in a transaction; then ``CHECKPOINT``. With
    ``zstd``, into a ``bodies`` table made by `DUCKDB_ZSTD_BODIES` instead."""
    db = Database(path)  # llmtrail's migrations
    try:
        store, now = DuckDBRecordStore(db), datetime.now(UTC)
        batches = [
            store.arrow_tables(records[i : i + BATCH], now) for i in range(0, len(records), BATCH)
        ]
    finally:
        db.close()
    conn = duckdb.connect(str(path))
    try:
        for statement in DUCKDB_ZSTD_BODIES if zstd else ():
            conn.execute(statement)
        began = time.perf_counter()
        for batch_rows, batch_bodies in batches:  # noqa: B007 - named in the SQL
            conn.execute("BEGIN")
            conn.execute("INSERT INTO records BY NAME SELECT * FROM batch_rows")
            if with_bodies:
                conn.execute("INSERT INTO bodies BY NAME SELECT * FROM batch_bodies")
            conn.execute("COMMIT")
        conn.execute("CHECKPOINT")
        return time.perf_counter() - began
    finally:
        conn.close()


def _chdb_append(records: list[InvocationRecord], database: str) -> tuple[float, float]:
    """Seconds of the appends, and of merging each table into one part afterwards."""
    db = ClickHouseDatabase.open(chdb_url(), database)
    try:
        store = ClickHouseRecordStore(db, spool="bench")
        began = time.perf_counter()
        for i in range(0, len(records), BATCH):
            store.append(records[i : i + BATCH], f"1:{i}")
        appended = time.perf_counter() - began
        began = time.perf_counter()
        _optimize(db, ("records", "bodies", *VIEWS))
        return appended, time.perf_counter() - began
    finally:
        db.close()


def _chdb_plain(records: list[InvocationRecord], database: str) -> float:
    """The rows as Arrow tables built beforehand, inserted into tables of llmtrail's layout
    without the metric views (``CREATE TABLE … AS``)."""
    db = ClickHouseDatabase.open(chdb_url(), database)
    try:
        schema = db.schema
        for table in ("records", "bodies"):
            db.command(f"CREATE TABLE {db.table(table + '_plain')} AS {db.table(table)}")
        now = datetime.now(UTC)
        batches = []
        for i in range(0, len(records), BATCH):
            cols, bodies = to_columns(records[i : i + BATCH], schema, now)
            note_empty_maps(cols, schema)
            batches.append(
                (
                    arrow_table(cols, arrow_schema(schema.record_columns)),
                    arrow_table(bodies, arrow_schema(schema.body_columns)),
                )
            )
        began = time.perf_counter()
        for rows, bodies in batches:
            db.insert_arrow("records_plain", rows, {"insert_deduplicate": 0})
            db.insert_arrow("bodies_plain", bodies, {"insert_deduplicate": 0})
        return time.perf_counter() - began
    finally:
        db.close()


# Proposed: what `clickhouse/migrations.py` could give ``records`` and ``bodies``, tried on a
# copy of the same rows. ZSTD on every column (LZ4 is the default), Delta for times.
ALT_CODECS = {
    "DateTime64": "CODEC(Delta, ZSTD(3))",
    "Int64": "CODEC(T64, ZSTD(3))",
    "": "CODEC(ZSTD(3))",
}
ALT_BODY_CODEC = "CODEC(ZSTD(9))"


def _alternative(db: ClickHouseDatabase, source: str, target: str, body: bool) -> None:
    """``target``: ``source``'s columns, sort key and partitions, with `ALT_CODECS`."""
    rows = db.query(
        "SELECT name, type FROM system.columns WHERE database = {db:String} "
        "AND table = {t:String} ORDER BY position",
        {"db": db.database, "t": source},
    )
    parts = []
    for name, type_ in rows:
        if body and name != "record_id":
            codec = ALT_BODY_CODEC
        else:
            codec = next(c for k, c in ALT_CODECS.items() if k in type_)
        parts.append(f"`{name}` {type_} {codec}")
    create = db.query(
        "SELECT engine_full FROM system.tables WHERE database = {db:String} AND name = {t:String}",
        {"db": db.database, "t": source},
    )[0][0]
    db.command(f"CREATE TABLE {db.table(target)} ({', '.join(parts)}) ENGINE = {create}")
    db.command(
        f"INSERT INTO {db.table(target)} SELECT * FROM {db.table(source)}",
        settings={"insert_deduplicate": 0},
    )
    _optimize(db, (target,))


def _column_sizes(db: ClickHouseDatabase, tables: Sequence[str]) -> list[tuple[str, str, int, int]]:
    rows = db.query(
        "SELECT table, column, sum(column_data_compressed_bytes) AS c, "
        "sum(column_data_uncompressed_bytes) FROM system.parts_columns "
        "WHERE database = {db:String} AND table IN {t:Array(String)} AND active "
        "GROUP BY table, column ORDER BY c DESC LIMIT 12",
        {"db": db.database, "t": list(tables)},
    )
    return [(str(t), str(n), int(c), int(u)) for t, n, c, u in rows]


def run_ingest(plan: Plan, result: Result, log: Log) -> None:
    n = plan.ingest
    log(f"I1: making {n:,} records with bodies …")
    records = engines_data.make_records(n)
    work = Path(tempfile.mkdtemp(prefix="engines-", dir=CACHE))
    database = f"ingest_{os.getpid()}"
    try:
        log("I1: NDJSON …")
        ndjson = work / "records.ndjson"
        seconds = _ndjson(records, ndjson)
        size = ndjson.stat().st_size
        result.ndjson_record_bytes = size / n
        result.rates.append(Rate("NDJSON to a file (Bedrock JSON, orjson, fsync)", n, seconds))
        result.sizes.append(Size("NDJSON (Bedrock JSON, as exported)", "ndjson", n, size))
        bare = sum(len(orjson.dumps(_without_bodies(r))) + 1 for r in records)
        result.sizes.append(
            Size("NDJSON without the two bodies", "ndjson", n, bare, reference=bare / n)
        )
        for level in (3, 19):
            result.sizes.append(
                Size(
                    f"NDJSON file, zstd {level}, 1 MB blocks",
                    "ref",
                    n,
                    _zstd_size(ndjson, level),
                    "what general compression gets of it",
                )
            )
        log("I1: DuckDB …")
        path = work / "ingest.duckdb"
        seconds = _duckdb_append(records, path)
        result.rates.append(Rate("DuckDB: DuckDBRecordStore.append", n, seconds, "with rollups"))
        result.sizes.append(
            Size(
                "DuckDB file after CHECKPOINT",
                "duckdb",
                n,
                path.stat().st_size,
                "records + bodies + rollups",
            )
        )
        plain = work / "plain.duckdb"
        seconds = _duckdb_plain(records, plain)
        result.rates.append(
            Rate("DuckDB: hand SQL, Arrow built beforehand", n, seconds, "no rollups")
        )
        records_only = work / "records-only.duckdb"
        _duckdb_plain(records, records_only, with_bodies=False)
        result.sizes.append(
            Size(
                "DuckDB file, records only (no bodies)",
                "duckdb",
                n,
                records_only.stat().st_size,
                "against NDJSON without bodies",
                bare / n,
            )
        )
        result.sizes.append(
            Size(
                "DuckDB file, records + bodies only",
                "duckdb",
                n,
                plain.stat().st_size,
                "the hand-SQL baseline's file",
            )
        )
        zstd = work / "zstd-bodies.duckdb"
        _duckdb_plain(records, zstd, zstd=True)
        result.sizes.append(
            Size(
                "DuckDB proposed: records + bodies, bodies USING COMPRESSION zstd",
                "duckdb",
                n,
                zstd.stat().st_size,
            )
        )
        log("I1: chdb …")
        seconds, merge_s = _chdb_append(records, database)
        result.rates.append(
            Rate(
                "chdb: ClickHouseRecordStore.append",
                n,
                seconds,
                f"rollups by the views; then OPTIMIZE FINAL {merge_s:.1f} s",
            )
        )
        seconds = _chdb_plain(records, database)
        result.rates.append(
            Rate(
                "chdb: insert_arrow, Arrow built beforehand",
                n,
                seconds,
                "llmtrail's tables, no views",
            )
        )
        db = ClickHouseDatabase.open(chdb_url(), database)
        try:
            _optimize(db, ("records_plain", "bodies_plain"))
            data = _parts_bytes(db, ("records", "bodies"))
            result.sizes.append(
                Size("chdb records + bodies (system.parts)", "chdb", n, data, "OPTIMIZE FINAL")
            )
            everything = _parts_bytes(db, ("records", "bodies", *VIEWS))
            result.sizes.append(
                Size(
                    "chdb whole database",
                    "chdb",
                    n,
                    everything,
                    "+ metric_rollups, metric_histograms",
                )
            )
            result.sizes.append(
                Size(
                    "chdb records table only (no bodies)",
                    "chdb",
                    n,
                    _parts_bytes(db, ("records",)),
                    "against NDJSON without bodies",
                    bare / n,
                )
            )
            result.columns = _column_sizes(db, ("records", "bodies"))
            log("I2: alternative ClickHouse layout …")
            _alternative(db, "records", "records_alt", body=False)
            _alternative(db, "bodies", "bodies_alt", body=True)
            for tables, note in (
                (("records_alt", "bodies"), "records: ZSTD(3) all columns, Delta/T64 on numbers"),
                (("records_alt", "bodies_alt"), "… and bodies ZSTD(9)"),
            ):
                result.sizes.append(
                    Size("chdb proposed: " + note, "chdb", n, _parts_bytes(db, tables))
                )
        finally:
            db.command(f"DROP DATABASE IF EXISTS `{database}`")
            db.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


# -- I3: the Logs Insights queries on 10M records -------------------------------------------


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
                _parts_bytes(house, ("records",)),
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
