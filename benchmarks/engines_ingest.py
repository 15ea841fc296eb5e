"""Part I, I1 and I2: ingest through each engine's record store, and bytes on disk per
record against the NDJSON (`engines`)."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa

import engines_data
from engines_result import (
    BATCH,
    CACHE,
    Log,
    Plan,
    Rate,
    Result,
    Size,
    chdb_url,
)
from llmtrail.record import InvocationRecord
from llmtrail.store.arrow import arrow_schema
from llmtrail.store.clickhouse import (
    ClickHouseDatabase,
    ClickHouseRecordStore,
)
from llmtrail.store.clickhouse.columns import arrow_table, note_empty_maps
from llmtrail.store.clickhouse.metrics import VIEWS
from llmtrail.store.duckdb import Database, DuckDBRecordStore
from llmtrail.store.duckdb.metrics import DuckDBRollups
from llmtrail.store.rows import to_columns


def parts_bytes(db: ClickHouseDatabase, tables: Sequence[str] | None = None) -> int:
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
            data = parts_bytes(db, ("records", "bodies"))
            result.sizes.append(
                Size("chdb records + bodies (system.parts)", "chdb", n, data, "OPTIMIZE FINAL")
            )
            everything = parts_bytes(db, ("records", "bodies", *VIEWS))
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
                    parts_bytes(db, ("records",)),
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
                    Size("chdb proposed: " + note, "chdb", n, parts_bytes(db, tables))
                )
        finally:
            db.command(f"DROP DATABASE IF EXISTS `{database}`")
            db.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


# -- I3: the Logs Insights queries on 10M records -------------------------------------------
