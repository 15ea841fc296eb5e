"""Golden files: each case shows a query, its AST, its output fields, and the SQL for DuckDB
and ClickHouse side by side (or the error it raises).

A case starts with ``=== name`` followed by the query text; the sections after it
(``--- ast``, ``--- fields``, ``--- duckdb``, ``--- clickhouse``, ``--- error``) are
generated. Run with ``LLMTRAIL_REGEN_GOLDEN=1`` to rewrite them after a deliberate change
(or to fill in a new case), then read the diff.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from llmtrail.query import QueryError, compile_query, parse_query
from llmtrail.query.ast import dump
from llmtrail.schema import RecordSchema

GOLDEN = Path(__file__).parent / "golden"
REGENERATE = os.environ.get("LLMTRAIL_REGEN_GOLDEN") == "1"
START, END = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 2, tzinfo=UTC)


def read_cases(text: str) -> list[tuple[str, str]]:
    """(name, query) of every case in a golden file."""
    cases = []
    for block in text.split("=== ")[1:]:
        header, _, rest = block.partition("\n")
        query = rest.split("\n--- ", 1)[0].strip("\n")
        cases.append((header.strip(), query))
    return cases


def render_case(name: str, query: str) -> str:
    out = [f"=== {name}", query]
    try:
        tree = parse_query(query)
        compiled = {
            d: compile_query(
                tree, dialect=d, schema=RecordSchema(), workspace="default", start=START, end=END
            )
            for d in ("duckdb", "clickhouse")
        }
    except QueryError as error:
        return "\n".join([*out, "--- error", error.message, ""])
    out += ["--- ast", dump(tree), "--- fields", " | ".join(compiled["duckdb"].fields)]
    for dialect, result in compiled.items():
        out += [f"--- {dialect}", result.tree.sql(dialect=dialect, pretty=True)]
    return "\n".join([*out, ""])


FILES = sorted(GOLDEN.glob("*.txt"))


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_golden(path: Path) -> None:
    text = path.read_bytes().decode()  # no newline translation: SQL may hold a \r
    expected = "\n".join(render_case(name, query) for name, query in read_cases(text))
    if REGENERATE:
        path.write_bytes(expected.encode())
        return
    assert text == expected, f"{path.name} is out of date: run with LLMTRAIL_REGEN_GOLDEN=1"


def test_only_errors_txt_holds_errors() -> None:
    for path in FILES:
        holds = "\n--- error\n" in path.read_bytes().decode()
        assert holds == (path.stem == "errors"), path.name


def test_every_golden_case_has_a_unique_name() -> None:
    names = [name for path in FILES for name, _ in read_cases(path.read_bytes().decode())]
    assert len(names) == len(set(names)) and len(names) > 40
