"""Keys over long text (`llmtrail.query.keys`): ``stats … by``, ``dedup`` and ``sort`` on
values far longer than a key may be give exact groups, show each value whole, and agree
between DuckDB and ClickHouse.

Four records hold error messages of 3,000 characters or more; three of them share their
first 2,500 characters and differ only after them, two are equal, and one is multi-byte
text (so characters, not bytes, are counted alike on both engines)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from llmtrail.analytics.insights import QueryRunner
from llmtrail.query.keys import KEY_CHARS
from llmtrail.record import InvocationRecord, format_timestamp
from tests.query.engines import query_runner

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
START, END = NOW - timedelta(hours=1), NOW + timedelta(hours=1)
PREFIX = "x" * 2500
MESSAGES = [PREFIX + "-first", PREFIX + "-second", PREFIX + "-first", "é" * 3000, "short"]


def records() -> list[InvocationRecord]:
    return [
        InvocationRecord.from_dict(
            {
                "requestId": f"long-{i}",
                "timestamp": format_timestamp(NOW - timedelta(minutes=i)),
                "modelId": "m",
                "error": {"type": "server", "message": message},
            }
        )
        for i, message in enumerate(MESSAGES)
    ]


@pytest.fixture(scope="module", params=["duckdb", "clickhouse"])
def runner(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[QueryRunner]:
    yield from query_runner(request, tmp_path_factory, records())


def test_the_messages_are_longer_than_a_key() -> None:
    assert sum(len(m) > KEY_CHARS for m in MESSAGES) == 4
    assert len(PREFIX) > KEY_CHARS


def test_groups_over_long_text_are_exact_and_show_the_value_whole(runner: QueryRunner) -> None:
    result = runner.run("stats count(*) as n by error.message", START, END)
    counts = {message: int(n) for message, n in result.rows}
    assert counts == {PREFIX + "-first": 2, PREFIX + "-second": 1, "é" * 3000: 1, "short": 1}


def test_dedup_over_long_text_keeps_one_record_per_value(runner: QueryRunner) -> None:
    result = runner.run("fields @requestId, error.message | dedup error.message", START, END)
    kept = {message: request_id for request_id, message in result.rows}
    # the newest record of each value (records are a minute apart, newest first)
    assert kept == {
        PREFIX + "-first": "long-0",
        PREFIX + "-second": "long-1",
        "é" * 3000: "long-3",
        "short": "long-4",
    }
    assert len(result.rows) == 4


def test_sort_over_long_text_orders_by_its_first_characters(runner: QueryRunner) -> None:
    """Values that agree on the first KEY_CHARS characters are ordered by the tie-breakers
    (newest first), not by the rest of their text: ``-second`` is older than the first
    ``-first`` and newer than the second, and stays between them."""
    result = runner.run("fields @requestId | sort error.message asc", START, END)
    assert [row[0] for row in result.rows] == ["long-4", "long-0", "long-1", "long-2", "long-3"]
