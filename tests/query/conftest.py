"""A real DuckDB store loaded with the query corpus, shared by the module's tests.

Queries only read, so one database per test session is enough; it is built with the
store's own `Database` and `DuckDBRecordStore`, exactly as the server builds it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest

from llmtrail.query import CompiledQuery, compile_query
from llmtrail.record import InvocationRecord
from llmtrail.schema import RecordSchema
from llmtrail.store.duckdb import Database, DuckDBRecordStore
from tests.query.corpus import END, START, WORKSPACE, load_records


@dataclass
class Loaded:
    """The loaded store and the records in it."""

    db: Database
    records: list[InvocationRecord]

    @property
    def schema(self) -> RecordSchema:
        return self.db.schema

    def compile(
        self,
        query: str,
        *,
        start: datetime = START,
        end: datetime = END,
        workspace: str = WORKSPACE,
        limit: int = 10_000,
        offset: int = 0,
    ) -> CompiledQuery:
        return compile_query(
            query,
            dialect="duckdb",
            schema=self.schema,
            workspace=workspace,
            start=start,
            end=end,
            limit=limit,
            offset=offset,
        )

    def rows(self, query: str, **options: Any) -> list[tuple[Any, ...]]:
        """Compile ``query`` for DuckDB and run it."""
        sql = self.compile(query, **options).sql
        return self.db.read(lambda c: c.execute(sql).fetchall())

    def column(self, query: str, **options: Any) -> list[Any]:
        return [row[0] for row in self.rows(query, **options)]


@pytest.fixture(scope="session")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    db = Database(tmp_path_factory.mktemp("query") / "llmtrail.duckdb")
    records = load_records()
    DuckDBRecordStore(db).append(records)
    yield Loaded(db, records)
    db.close()
