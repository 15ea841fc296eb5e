"""The query benchmarks' synthetic data, checked small: valid records that read back through
both stores alike, the promised shape, and the same rows for the same seed."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from benchmarks.query_data import APPS, END, generate, write

from llmtrail.store.clickhouse import ClickHouseDatabase, ClickHouseRecordStore
from llmtrail.store.duckdb import Database, DuckDBRecordStore
from llmtrail.store.interfaces import RecordQuery

ROWS = 20_000


def test_both_stores_hold_the_same_valid_records(
    tmp_path: Path, clickhouse_url: str, clickhouse_database: str
) -> None:
    path = tmp_path / "q.duckdb"
    write(
        ROWS,
        seed=7,
        chunk_rows=8_000,
        duckdb_path=path,
        clickhouse_url=clickhouse_url,
        database=clickhouse_database,
    )
    duck = DuckDBRecordStore(Database(path))
    house = ClickHouseRecordStore(ClickHouseDatabase.open(clickhouse_url, clickhouse_database))
    try:
        stats = duck.db.read(
            lambda c: c.execute(
                "SELECT count(*), count(DISTINCT record_id), avg((status = 'ERROR')::INT), "
                "min(timestamp), max(timestamp), count(DISTINCT meta_application_name), "
                "count(DISTINCT model_id), count(*) FILTER (WHERE request_metadata IS NULL) "
                "FROM records"
            ).fetchone()
        )
        assert stats is not None
        count, ids, error_rate, first, last, apps, models, no_map = stats
        assert count == ids == ROWS
        assert 0.01 < error_rate < 0.03
        assert END - timedelta(days=30) <= first < last < END
        assert apps == len(APPS) and models == 10
        assert 0.8 < no_map / ROWS < 0.95

        by_app = (
            "SELECT meta_application_name, count(), sum(input_token_count), "
            "sum(output_token_count), sum(latency_ms) FROM {t} "
            "WHERE status = 'ERROR' OR meta_tenant_id = 'tenant-0001' "
            "GROUP BY meta_application_name ORDER BY meta_application_name"
        )
        in_duckdb = duck.db.read(lambda c: c.execute(by_app.format(t="records")).fetchall())
        in_clickhouse = house.db.query(by_app.format(t=house.db.table("records")))
        assert [tuple(r) for r in in_clickhouse] == in_duckdb and len(in_duckdb) == len(APPS)

        page = duck.find(RecordQuery(limit=50))
        assert len(page.records) == 50
        assert page.records[0].timestamp > page.records[-1].timestamp
        for record in page.records:
            assert record.data["status"] in ("OK", "ERROR")
            assert record.data["requestMetadata"]["application_name"] in APPS
            again = house.get(record.request_id)
            assert again is not None and again.data == record.data
    finally:
        duck.close()
        house.close()


def test_the_same_seed_gives_the_same_rows() -> None:
    first = list(generate(3_000, seed=3, chunk_rows=1_000))
    assert [t.num_rows for t in first] == [1_000, 1_000, 1_000]
    again = list(generate(3_000, seed=3, chunk_rows=1_000))
    assert all(a.equals(b) for a, b in zip(first, again, strict=True))
    assert not first[0].equals(next(generate(3_000, seed=4, chunk_rows=1_000)))
    stamps = [s for t in first for s in t.column("timestamp").to_pylist()]
    assert stamps == sorted(stamps)  # in time order, across chunks too
