from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

LOCAL_FIXTURES = Path(__file__).resolve().parent / "fixtures"


def bedrock_fixture_lines() -> list[str]:
    """The Bedrock invocation-log fixture (a copy ships in tests/fixtures for clean clones)."""
    path = LOCAL_FIXTURES / "bedrock-invocation-logs.jsonl"
    return [line for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture
def bedrock_docs() -> list[dict]:
    return [json.loads(line) for line in bedrock_fixture_lines()]


@pytest.fixture(scope="session")
def clickhouse_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Where ClickHouse tests connect: ``CLICKHOUSE_URL`` when set, else the embedded chdb
    engine on one session-wide data path (chdb hosts one path per process, so every test in
    the session shares it and tells its data apart by database: `clickhouse_database`). A
    client stays open for the session, so the engine starts once."""
    from llmtrail.store.clickhouse import connect

    url = os.environ.get("CLICKHOUSE_URL")
    if url:
        yield url
        return
    url = f"chdb://{tmp_path_factory.mktemp('chdb')}"
    keeper = connect(url)
    yield url
    keeper.close()


@pytest.fixture
def clickhouse_database(clickhouse_url: str) -> Iterator[str]:
    """A database name of this test's own on the session's ClickHouse, dropped afterwards."""
    from llmtrail.store.clickhouse import connect

    name = f"test_{uuid.uuid4().hex[:16]}"
    yield name
    client = connect(clickhouse_url)
    try:
        client.command(f"DROP DATABASE IF EXISTS `{name}`")
    finally:
        client.close()
