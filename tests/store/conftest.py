"""The `record_store` and `state_store` fixtures yield every backend; the contract tests see
only the interface. A ClickHouse backend adds one parameter here."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from llmtrail.store.duckdb import Database, DuckDBRecordStore, DuckDBStateStore
from llmtrail.store.interfaces import RecordStore, StateStore
from llmtrail.store.memory import MemoryRecordStore, MemoryStateStore

BACKENDS = ["memory", "duckdb"]


@pytest.fixture(params=BACKENDS)
def record_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RecordStore]:
    store: RecordStore
    if request.param == "memory":
        store = MemoryRecordStore()
    else:
        store = DuckDBRecordStore(Database(tmp_path / "llmtrail.duckdb"))
    yield store
    store.close()


@pytest.fixture(params=BACKENDS)
def state_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateStore]:
    store: StateStore
    if request.param == "memory":
        store = MemoryStateStore()
    else:
        store = DuckDBStateStore(Database(tmp_path / "llmtrail.duckdb"))
    yield store
    store.close()
