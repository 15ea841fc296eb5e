"""One DuckDB store of generated records shared by the report tests (they only read it)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import pytest

from llmtrail.reports import ReportScope
from llmtrail.store.duckdb import Database

from .dataset import Generated, generate, write

TZ = "America/New_York"


@dataclass(frozen=True)
class Dataset:
    db: Database
    rows: list[Generated]
    scope: ReportScope  # 2026-02-01 to 2026-03-15 in New York


@pytest.fixture(scope="session")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dataset]:
    db = Database(tmp_path_factory.mktemp("reports") / "llmtrail.duckdb")
    rows = generate()
    write(db, rows)
    scope = ReportScope(datetime(2026, 2, 1), datetime(2026, 3, 15), tz=TZ)
    yield Dataset(db, rows, scope)
    db.close()


NOW = datetime.fromisoformat("2026-03-20T12:00:00+00:00")
