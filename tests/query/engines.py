"""A `QueryRunner` over each engine, loaded with a test's records: DuckDB on a file of the
test's own, ClickHouse (chdb, or ``CLICKHOUSE_URL``) in a database of the test's own."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from llmtrail.analytics.insights import QueryRunner
from llmtrail.record import InvocationRecord
from llmtrail.store.duckdb import Database, DuckDBRecordStore
from llmtrail.store.duckdb.query import DuckDBQueryEngine
from llmtrail.store.query_bounds import QueryLimits


def query_runner(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    records: list[InvocationRecord],
    limits: QueryLimits | None = None,
) -> Iterator[QueryRunner]:
    """For a fixture parametrized by ``"duckdb"`` / ``"clickhouse"``: yields the runner,
    then drops what it made."""
    if request.param == "duckdb":
        db = Database(tmp_path_factory.mktemp("engine") / "llmtrail.duckdb", limits=limits)
        DuckDBRecordStore(db).append(records)
        yield QueryRunner(DuckDBQueryEngine(db), db.schema)
        db.close()
        return
    pytest.importorskip("chdb")
    from llmtrail.store.clickhouse import ClickHouseDatabase, ClickHouseRecordStore
    from llmtrail.store.clickhouse.query import ClickHouseQueryEngine

    url = request.getfixturevalue("clickhouse_url")
    click = ClickHouseDatabase.open(url, f"engine_{uuid.uuid4().hex[:12]}")
    ClickHouseRecordStore(click).append(records)
    engine = ClickHouseQueryEngine(click, limits)
    yield QueryRunner(engine, click.schema)
    engine.close()
    click.command(f"DROP DATABASE IF EXISTS `{click.database}`")
    click.close()
