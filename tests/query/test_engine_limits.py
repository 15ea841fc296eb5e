"""What one query may use, on DuckDB and on ClickHouse, through `QueryRunner`: a query past
its time, a result past its size and a query the engine refuses all end in a
`ValidationError` on ``queryString`` that names the limit, and the same engine answers the
next query.

The query that runs past its time is the cross join of ``test_cancel`` (1.6·10⁹ rows per
record): it cannot finish within any limit a test would wait for, so the timeout answer can
only come from the limit.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from llmtrail.analytics.insights import QueryRunner
from llmtrail.errors import ValidationError
from llmtrail.query import QueryError
from llmtrail.record import InvocationRecord
from llmtrail.store.query_bounds import QueryLimits
from tests.query.engines import query_runner
from tests.query.test_cancel import CROSS_JOIN, END, START, documents

LIMITS = QueryLimits(timeout_s=0.5, result_bytes=20_000)
LONG_MESSAGE = "overloaded " * 1000  # 11,000 characters


def records() -> list[InvocationRecord]:
    docs = documents()
    docs[0]["error"] = {"type": "server", "message": LONG_MESSAGE}
    return [InvocationRecord.from_dict(doc) for doc in docs]


@pytest.fixture(params=["duckdb", "clickhouse"])
def runner(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[QueryRunner]:
    yield from query_runner(request, tmp_path_factory, records(), LIMITS)


def still_answers(runner: QueryRunner) -> None:
    result = runner.run("stats count(*) as n", START, END)
    assert result.status == "Complete" and result.rows == [(3,)]


def test_a_query_past_its_time_is_stopped(runner: QueryRunner) -> None:
    with pytest.raises(ValidationError) as info:
        runner.run(CROSS_JOIN, START, END)
    assert info.value.field == "queryString"
    assert "longer than the limit of 0.5 seconds" in info.value.message
    still_answers(runner)


def test_a_result_past_its_size_is_refused(runner: QueryRunner) -> None:
    # three rows of the long message: 33,000 characters, over the 20,000 bytes allowed
    query = (
        "fields error.message | filter ispresent(error.message) "
        "| unnest input.inputBodyJson.items into i | limit 3"
    )
    with pytest.raises(ValidationError) as info:
        runner.run(query, START, END)
    assert info.value.field == "queryString"
    assert "larger than the limit of 20000 bytes" in info.value.message
    one = runner.run("fields error.message | filter ispresent(error.message)", START, END)
    assert one.rows == [(LONG_MESSAGE,)]  # within the limit: whole
    still_answers(runner)


def test_a_query_the_engine_refuses_names_the_query(runner: QueryRunner) -> None:
    """RE2 has no repetition above 1000; the language leaves that to the engine."""
    with pytest.raises(ValidationError) as info:
        runner.run("filter modelId like /a{1001}/", START, END)
    assert info.value.field == "queryString"
    assert "the engine refused the query" in info.value.message
    assert "1001" in info.value.message
    still_answers(runner)


def test_nested_aggregates_are_refused_by_the_compiler(runner: QueryRunner) -> None:
    with pytest.raises(QueryError) as info:
        runner.run("stats sum(count(*))", START, END)
    assert (info.value.line, info.value.column) == (1, 11)
    assert "an aggregate function cannot contain another" in info.value.reason


def test_positions_beyond_any_text_mean_the_same_on_both(runner: QueryRunner) -> None:
    result = runner.run(
        "fields substr(modelId, 99999999999, 1) as a, substr(modelId, 0, 99999999999) as b"
        " | limit 1",
        START,
        END,
    )
    assert result.rows == [("", "amazon.nova-lite-v1:0")]
