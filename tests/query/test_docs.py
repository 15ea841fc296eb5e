"""Every example in docs/query.md compiles and runs on DuckDB, and every command and
function of the language has one."""

from __future__ import annotations

import re
from pathlib import Path

from llmtrail.query import filter_pattern_query
from llmtrail.query.expressions import AGGREGATES, SCALARS
from llmtrail.query.parser import COMMANDS
from tests.query.conftest import Loaded
from tests.query.corpus import END, START, WORKSPACE

DOC = Path(__file__).resolve().parents[2] / "docs" / "query.md"


def blocks(language: str) -> list[str]:
    text = DOC.read_text()
    return [m.group(1) for m in re.finditer(rf"```{language}\n(.*?)```", text, re.DOTALL)]


def examples() -> list[str]:
    """The ``insights`` examples of the query docs."""
    return blocks("insights")


def test_every_example_runs(loaded: Loaded) -> None:
    found = examples()
    assert len(found) > 20
    for query in found:
        loaded.rows(query)


def test_every_filter_pattern_example_runs(loaded: Loaded) -> None:
    patterns = blocks("filter-pattern")
    assert len(patterns) >= 5
    for pattern in patterns:
        compiled = filter_pattern_query(
            pattern.strip(),
            dialect="duckdb",
            schema=loaded.schema,
            workspace=WORKSPACE,
            start=START,
            end=END,
        )
        sql = compiled.sql
        loaded.db.read(lambda c: c.execute(sql).fetchall())  # noqa: B023


def test_every_command_and_function_has_an_example() -> None:
    words = set(re.findall(r"[A-Za-z_]+", " ".join(examples()).lower()))
    missing = sorted((set(COMMANDS) | set(SCALARS) | set(AGGREGATES)) - words)
    assert missing == []
