"""The `record_store` and `state_store` fixtures yield every backend; the contract tests see
only the interface. ClickHouse runs on the session's engine (chdb, or ``CLICKHOUSE_URL``),
one database per test."""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmtrail.store.duckdb import Database, DuckDBRecordStore, DuckDBStateStore
from llmtrail.store.interfaces import RecordStore, StateStore
from llmtrail.store.memory import MemoryRecordStore, MemoryStateStore

BACKENDS = ["memory", "duckdb", "clickhouse"]
PASSWORD_VARIABLE = "LLMTRAIL_TEST_CLICKHOUSE_PASSWORD"


def store_url(clickhouse_url: str, database: str) -> tuple[str, dict[str, str]]:
    """``[store] url`` for ``database`` on the session's ClickHouse (``chdb:///…`` or the
    ``CLICKHOUSE_URL`` server), and the environment a server then needs (the password)."""
    if clickhouse_url.startswith("chdb:"):
        return f"{clickhouse_url}?database={database}", {}
    server = urllib.parse.urlsplit(clickhouse_url)
    scheme = "clickhouses" if server.scheme == "https" else "clickhouse"
    url = f"{scheme}://{server.username or 'default'}@{server.hostname}"
    url += f":{server.port}" if server.port else ""
    env = {
        "LLMTRAIL_STORE__PASSWORD_ENV": PASSWORD_VARIABLE,
        PASSWORD_VARIABLE: urllib.parse.unquote(server.password or ""),
    }
    return f"{url}/{database}", env


def _clickhouse(request: pytest.FixtureRequest) -> tuple[str, str]:
    """(url, database) of this test's ClickHouse database."""
    url = request.getfixturevalue("clickhouse_url")
    return url, request.getfixturevalue("clickhouse_database")


@pytest.fixture(params=BACKENDS)
def record_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RecordStore]:
    store: RecordStore
    if request.param == "memory":
        store = MemoryRecordStore()
    elif request.param == "clickhouse":
        from llmtrail.store.clickhouse import ClickHouseDatabase, ClickHouseRecordStore

        store = ClickHouseRecordStore(ClickHouseDatabase.open(*_clickhouse(request)))
    else:
        store = DuckDBRecordStore(Database(tmp_path / "llmtrail.duckdb"))
    yield store
    store.close()


@pytest.fixture(params=BACKENDS)
def state_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateStore]:
    store: StateStore
    if request.param == "memory":
        store = MemoryStateStore()
    elif request.param == "clickhouse":
        from llmtrail.store.clickhouse import ClickHouseDatabase, ClickHouseStateStore

        store = ClickHouseStateStore(ClickHouseDatabase.open(*_clickhouse(request)))
    else:
        store = DuckDBStateStore(Database(tmp_path / "llmtrail.duckdb"))
    yield store
    store.close()
