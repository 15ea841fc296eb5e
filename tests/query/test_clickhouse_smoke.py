"""The ClickHouse SQL runs: every golden query and the docs' examples, on the real ClickHouse
engine (chdb, or ``CLICKHOUSE_URL``) loaded through the ClickHouse store with the very
records of the DuckDB tests (ids included, so ties break alike), and a few results agree
with DuckDB's.

A smoke test only; the differential test of many generated queries lives with the
executor.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest

from llmtrail.query import compile_query, filter_pattern_query
from tests.query.conftest import Loaded
from tests.query.corpus import END, START, WORKSPACE
from tests.query.test_docs import examples
from tests.query.test_golden import FILES, read_cases

pytest.importorskip("chdb")


@pytest.fixture(scope="module")
def clickhouse(clickhouse_url: str, loaded: Loaded) -> Iterator[Any]:
    from llmtrail.store.clickhouse import ClickHouseDatabase, ClickHouseRecordStore

    db = ClickHouseDatabase.open(clickhouse_url, "query_smoke")
    ClickHouseRecordStore(db).append(loaded.records)  # the same records, ids included
    yield db
    db.command("DROP DATABASE IF EXISTS `query_smoke`")
    db.close()


def run(db: Any, query: str, **options: Any) -> list[tuple[Any, ...]]:
    compiled = compile_query(
        query,
        dialect="clickhouse",
        schema=db.schema,
        workspace=WORKSPACE,
        start=options.get("start", START),
        end=options.get("end", END),
        database=db.database,
    )
    return [tuple(row) for row in db.client.query(compiled.sql).result_rows]


GOLDEN_QUERIES = [
    (name, query)
    for path in FILES
    if path.stem != "errors"
    for name, query in read_cases(path.read_bytes().decode())
]


@pytest.mark.parametrize(("name", "query"), GOLDEN_QUERIES, ids=[n for n, _ in GOLDEN_QUERIES])
def test_golden_queries_run(clickhouse: Any, name: str, query: str) -> None:
    run(clickhouse, query)


def test_docs_examples_run(clickhouse: Any) -> None:
    for query in examples():
        run(clickhouse, query)


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float | Decimal) or isinstance(b, float | Decimal):
        return a is not None and b is not None and math.isclose(float(a), float(b))
    if isinstance(a, datetime) and isinstance(b, datetime):
        return a.replace(tzinfo=None) == b.replace(tzinfo=None)
    return bool(a == b)


@pytest.mark.parametrize(
    "query",
    [
        "stats sum(input.inputTokenCount + output.outputTokenCount) "
        "by requestMetadata.application_name",
        'filter status = "ERROR" | stats count(*) by bin(5m)',
        "stats count_distinct(requestMetadata.user_id), pct(latencyMs, 95), stddev(latencyMs), "
        "sum(cost.totalUsd), earliest(@requestId) by modelId",
        "fields @requestId, latencyMs | sort latencyMs desc | limit 25",
        "fields @requestId, modelId | sort latencyMs desc | dedup modelId",
        "unnest input.inputBodyJson.messages into m | stats count(*) by m.role, bin(1d)",
        'parse custom.label "user=*, method:*" as user, method | stats count(*) by user',
        "fields @requestId, substr(modelId, 2, 3), 10 / 0, isblank(errorCode) | limit 30",
    ],
)
def test_results_agree_with_duckdb(clickhouse: Any, loaded: Loaded, query: str) -> None:
    mine, theirs = loaded.rows(query), run(clickhouse, query)
    assert len(mine) == len(theirs) > 0
    for left, right in zip(mine, theirs, strict=True):
        assert all(same(a, b) for a, b in zip(left, right, strict=True)), (left, right)


def test_message_holds_the_same_json(clickhouse: Any, loaded: Loaded) -> None:
    query = "fields @requestId, @message | filter @message like 'Throttling'"
    mine, theirs = loaded.rows(query), run(clickhouse, query)
    assert [r[0] for r in mine] == [r[0] for r in theirs] and mine
    for (_, left), (_, right) in zip(mine, theirs, strict=True):
        assert without_nulls(json.loads(left)) == without_nulls(json.loads(right))


def without_nulls(value: Any) -> Any:
    """The JSON without explicit nulls (DuckDB's merge-patch drops them)."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    return value


def test_filter_pattern_runs(clickhouse: Any, loaded: Loaded) -> None:
    pattern = '{ $.modelId = "*claude*" && ($.input.inputTokenCount > 500 || $.errorCode EXISTS) }'
    options: dict[str, Any] = {"workspace": WORKSPACE, "start": START, "end": END}
    compiled = filter_pattern_query(
        pattern,
        dialect="clickhouse",
        schema=clickhouse.schema,
        database=clickhouse.database,
        **options,
    )
    rows = clickhouse.client.query(compiled.sql).result_rows
    duck = filter_pattern_query(pattern, dialect="duckdb", schema=loaded.schema, **options)
    expected = loaded.db.read(lambda c: c.execute(duck.sql).fetchall())
    index = compiled.fields.index("request_id")
    assert [r[index] for r in rows] == [r[index] for r in expected]
    assert rows
