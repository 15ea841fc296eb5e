"""The differential test of issue 4: the same generated records in DuckDB and in ClickHouse
(the embedded chdb engine through clickhouse-connect, or ``CLICKHOUSE_URL``), a few hundred
generated queries run through `QueryRunner` on both, and the same answers from both.

Both stores are loaded through their own `RecordStore` with the very same records (ids
included, so ties in time break alike). Each query runs with the runner's row limit, so the
total order the compiler promises decides which rows come back; results are compared value
by value in their kinds: integers and decimals exactly, floats within 1e-9 (relative), times
as instants, JSON values (``any``) as parsed JSON, ``@message`` as parsed JSON without
explicit nulls (see docs/query.md: DuckDB drops them). Statistics must agree too. A query
that cannot compile must fail alike on both, with the same message.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from llmtrail.analytics.insights import QueryResult, QueryRunner
from llmtrail.errors import LlmtrailError
from llmtrail.query import QueryError
from llmtrail.record import InvocationRecord
from llmtrail.store.duckdb import Database, DuckDBRecordStore
from llmtrail.store.duckdb.query import DuckDBQueryEngine
from tests.query.differential_records import END, START, WORKSPACE, generated_records
from tests.query.query_grammar import generate_queries

pytest.importorskip("chdb")

QUERIES = generate_queries(300, seed=4)
ROW_LIMIT = 150
# each query runs over one of these ranges: the whole data set, or hours with odd edges
RANGES = (
    (START, END),
    (START + timedelta(hours=7, minutes=30), START + timedelta(days=1, hours=2, seconds=1)),
    (START - timedelta(days=1), START + timedelta(days=2, microseconds=3)),
)


@dataclass
class Engines:
    duckdb: QueryRunner
    clickhouse: QueryRunner
    answers: dict[int, QueryResult | str]  # DuckDB's, kept for the check of the queries


@pytest.fixture(scope="module")
def records() -> list[InvocationRecord]:
    return generated_records()


@pytest.fixture(scope="module")
def engines(
    tmp_path_factory: pytest.TempPathFactory, clickhouse_url: str, records: list[InvocationRecord]
) -> Iterator[Engines]:
    from llmtrail.store.clickhouse import ClickHouseDatabase, ClickHouseRecordStore
    from llmtrail.store.clickhouse.query import ClickHouseQueryEngine

    duck = Database(tmp_path_factory.mktemp("differential") / "llmtrail.duckdb")
    DuckDBRecordStore(duck).append(records)
    name = f"differential_{uuid.uuid4().hex[:12]}"
    click = ClickHouseDatabase.open(clickhouse_url, name)
    ClickHouseRecordStore(click).append(records)
    engine = ClickHouseQueryEngine(click)
    try:
        yield Engines(
            QueryRunner(DuckDBQueryEngine(duck), duck.schema, WORKSPACE),
            QueryRunner(engine, click.schema, WORKSPACE),
            {},
        )
    finally:
        engine.close()
        click.command(f"DROP DATABASE IF EXISTS `{name}`")
        click.close()
        duck.close()


def answer(runner: QueryRunner, query: str, index: int) -> QueryResult | str:
    """The runner's result, or the error it raised as text."""
    start, end = RANGES[index % len(RANGES)]
    try:
        return runner.run(query, start, end, limit=ROW_LIMIT)
    except QueryError as exc:
        return f"QueryError: {exc}"
    except LlmtrailError as exc:  # an engine failed on the SQL: never the same on both
        return f"{type(exc).__name__} ({runner.engine.dialect}): {exc}"


@pytest.mark.parametrize(
    "index", range(len(QUERIES)), ids=[f"q{i:03d}" for i in range(len(QUERIES))]
)
def test_both_engines_answer_alike(engines: Engines, index: int) -> None:
    query = QUERIES[index]
    duck, click = answer(engines.duckdb, query, index), answer(engines.clickhouse, query, index)
    engines.answers[index] = duck
    if isinstance(duck, str) or isinstance(click, str):
        assert isinstance(duck, str) and duck.startswith("QueryError"), (query, duck, click)
        assert duck == click, query
        return
    assert (click.status, click.fields, click.kinds) == (duck.status, duck.fields, duck.kinds)
    assert click.statistics == duck.statistics, query
    assert (click.next_token is None) == (duck.next_token is None), query
    assert len(click.rows) == len(duck.rows), (query, duck.rows[:5], click.rows[:5])
    for number, (left, right) in enumerate(zip(duck.rows, click.rows, strict=True)):
        for name, kind, a, b in zip(duck.fields, duck.kinds, left, right, strict=True):
            assert same(kind, name, a, b), f"{query}\nrow {number}, {name}: {a!r} != {b!r}"


def test_paging_reads_the_same_pages(engines: Engines) -> None:
    """The second page of a query cut by the row limit holds the same rows on both."""
    query = "fields @requestId, latencyMs, modelId | sort latencyMs desc"
    pages = []
    for runner in (engines.duckdb, engines.clickhouse):
        first = runner.run(query, START, END, limit=100)
        assert first.next_token is not None
        second = runner.run(query, START, END, limit=100, next_token=first.next_token)
        pages.append([row[0] for row in first.rows + second.rows])
    assert pages[0] == pages[1]
    assert len(set(pages[0])) == 200


def test_the_generated_queries_mean_something(engines: Engines) -> None:
    """Not a vacuous comparison: nearly every query compiles, most select rows, and every
    command and aggregate appears."""
    results = [
        engines.answers[i] if i in engines.answers else answer(engines.duckdb, q, i)
        for i, q in enumerate(QUERIES)
    ]
    valid = [r for r in results if isinstance(r, QueryResult)]
    assert len(valid) >= 0.95 * len(QUERIES)
    assert sum(bool(r.rows) for r in valid) >= 0.75 * len(valid)
    assert sum(r.next_token is not None for r in valid) >= 10  # cut by the row limit
    text = " ".join(QUERIES)
    for word in (
        "fields", "display", "filter", "stats", "sort", "limit", "dedup", "parse", "unnest",
        "count(", "count_distinct(", "sum(", "avg(", "min(", "max(", "pct(", "stddev(",
        "earliest(", "latest(", "bin(", "datefloor(", " like /", " =~ ", " in [", "not ",
        "@message", "requestMetadata.feature", "outputBodyJson", "cost.totalUsd",
    ):  # fmt: skip
        assert word in text, word


def same(kind: str, name: str, a: Any, b: Any) -> bool:
    """Whether two values of one result column agree (see the module docstring)."""
    if a is None or b is None:
        return a is None and b is None
    if name == "@message":
        return bool(without_nulls(json.loads(a)) == without_nulls(json.loads(b)))
    if kind == "any" and isinstance(a, str) and isinstance(b, str) and a != b:
        try:
            return close(json.loads(a), json.loads(b))
        except ValueError:
            return False
    return close(a, b)


def close(a: Any, b: Any) -> bool:
    """Equal, floats within 1e-9 relative, at any depth of JSON."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a == b
    if isinstance(a, float) or isinstance(b, float):
        if not isinstance(a, int | float | Decimal) or not isinstance(b, int | float | Decimal):
            return False
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, datetime) and isinstance(b, datetime):
        return a.tzinfo is not None and b.tzinfo is not None and a == b
    return bool(a == b)


def without_nulls(value: Any) -> Any:
    """The JSON without explicit nulls, at any depth."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value
