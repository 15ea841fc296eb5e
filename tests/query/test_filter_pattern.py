"""JSON filter patterns select the same records a Python predicate over the record JSON
does; the full select gives rows the store turns back into the very records."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from llmtrail.query import QueryError, compile_filter_pattern, filter_pattern_query
from llmtrail.record import InvocationRecord
from llmtrail.store.duckdb import DuckDBRecordStore
from llmtrail.store.rows import from_row
from tests.query.conftest import Loaded
from tests.query.corpus import END, START, WORKSPACE, get, in_range, newest_first

MISSING = object()


def lookup(record: InvocationRecord, dotted: str) -> Any:
    cur: Any = record.data
    for part in dotted.split("."):
        if isinstance(cur, list) and part.isdigit():
            cur = cur[int(part)] if int(part) < len(cur) else MISSING
        elif isinstance(cur, dict) and part in cur:
            cur = cur[part]
        else:
            return MISSING
    return cur


def matching(loaded: Loaded, pattern: str) -> list[str]:
    compiled = filter_pattern_query(
        pattern, dialect="duckdb", schema=loaded.schema, workspace=WORKSPACE, start=START, end=END
    )
    rows = loaded.db.read(lambda c: c.execute(compiled.sql).fetchall())
    index = compiled.fields.index("request_id")
    return [row[index] for row in rows]


Pred = Callable[[InvocationRecord], bool]
CASES: list[tuple[str, Pred]] = [
    ('{ $.modelId = "llama3" }', lambda r: get(r, "modelId") == "llama3"),
    ("{ $.modelId = llama3 }", lambda r: get(r, "modelId") == "llama3"),
    ('{ $.modelId = "anthropic.*" }', lambda r: get(r, "modelId").startswith("anthropic.")),
    ('{ $.modelId = "*nova*" }', lambda r: "nova" in get(r, "modelId")),
    ('{ $.modelId != "llama3" }', lambda r: get(r, "modelId") != "llama3"),
    (
        "{ $.errorCode != ThrottlingException }",
        lambda r: get(r, "errorCode") not in (None, "ThrottlingException"),
    ),
    ("{ $.input.inputTokenCount > 1500 }", lambda r: get(r, "input.inputTokenCount") > 1500),
    ("{ $.latencyMs <= 500 }", lambda r: (get(r, "latencyMs") or 10**9) <= 500),
    ("{ $.error.httpStatus = 429 }", lambda r: get(r, "error.httpStatus") == 429),
    ("{ $.custom.score >= 8 }", lambda r: get(r, "custom.score") >= 8),
    ("{ $.cost.totalUsd < 0.1 }", lambda r: get(r, "cost.totalUsd") < 0.1),
    (
        '{ ($.modelId = "llama3" || $.modelId = "gpt-4o-mini") && $.latencyMs > 2000 }',
        lambda r: (
            get(r, "modelId") in ("llama3", "gpt-4o-mini") and (get(r, "latencyMs") or 0) > 2000
        ),
    ),
    (
        '{ $.modelId = "llama3" || $.modelId = "gpt-4o-mini" && $.latencyMs > 2000 }',
        lambda r: (
            get(r, "modelId") == "llama3"
            or (get(r, "modelId") == "gpt-4o-mini" and (get(r, "latencyMs") or 0) > 2000)
        ),
    ),
    ("{ $.latencyMs NOT EXISTS }", lambda r: "latencyMs" not in r.data),
    ("{ $.errorCode EXISTS }", lambda r: "errorCode" in r.data),
    (
        "{ $.requestMetadata.user_id NOT EXISTS }",
        lambda r: get(r, "requestMetadata.user_id") is None,
    ),
    ("{ $.custom.nothing IS NULL }", lambda r: lookup(r, "custom.nothing") is None),
    ("{ $.custom.nothing EXISTS }", lambda r: lookup(r, "custom.nothing") is not MISSING),
    (
        "{ $.custom.label = %u[12],% }",
        lambda r: re.search("u[12],", get(r, "custom.label")) is not None,
    ),
    (
        '{ $.requestMetadata.project = "zeus" }',
        lambda r: get(r, "requestMetadata.project") == "zeus",
    ),
    (
        "{ $.requestMetadata.tenant_id = t-2 }",
        lambda r: get(r, "requestMetadata.tenant_id") == "t-2",
    ),
    (
        "{ $.input.inputBodyJson.messages[1].role = assistant }",
        lambda r: lookup(r, "input.inputBodyJson.messages.1.role") == "assistant",
    ),
    (
        '{ $.output.outputBodyJson.stopReason = "max_tokens" }',
        lambda r: get(r, "output.outputBodyJson.stopReason") == "max_tokens",
    ),
    ("", lambda r: True),
]


@pytest.mark.parametrize(("pattern", "predicate"), CASES, ids=[c[0] or "empty" for c in CASES])
def test_pattern_selects_what_the_predicate_does(
    loaded: Loaded, pattern: str, predicate: Pred
) -> None:
    expected = [
        r.request_id
        for r in newest_first([r for r in loaded.records if in_range(r)])
        if predicate(r)
    ]
    assert matching(loaded, pattern) == expected


def test_boolean_values(loaded: Loaded) -> None:
    assert matching(loaded, "{ $.requestMetadataTruncated IS TRUE }") == []
    assert matching(loaded, "{ $.requestMetadataTruncated IS FALSE }") == []


def test_rows_rebuild_the_records(loaded: Loaded) -> None:
    compiled = filter_pattern_query(
        '{ $.modelId = "llama3" }',
        dialect="duckdb",
        schema=loaded.schema,
        workspace=WORKSPACE,
        start=START,
        end=END,
    )
    rows = loaded.db.read(lambda c: c.execute(compiled.sql).fetchall())
    store = DuckDBRecordStore(loaded.db)
    columns = len(loaded.schema.record_columns)
    assert rows
    for row in rows:
        values = dict(zip(compiled.fields[:columns], row[:columns], strict=True))
        body = dict(zip(compiled.fields[columns:], row[columns:], strict=True))
        body["record_id"] = values["record_id"]
        rebuilt = from_row(values, body, loaded.schema)
        stored = store.get(rebuilt.request_id)  # the records as the store itself reads them
        assert stored is not None and rebuilt.data == stored.data


def test_condition_for_a_where_clause() -> None:
    from llmtrail.schema import RecordSchema

    pattern = compile_filter_pattern('{ $.modelId = "x" }', dialect="duckdb", schema=RecordSchema())
    assert pattern.condition.sql(dialect="duckdb") == '("r"."model_id" = \'x\')'
    assert not pattern.needs_bodies
    body = compile_filter_pattern(
        "{ $.output.outputBodyJson.a = 1 }", dialect="clickhouse", schema=RecordSchema()
    )
    assert body.needs_bodies


@pytest.mark.parametrize(
    ("pattern", "column", "reason"),
    [
        ("$.modelId = x", 1, "expected { to start a JSON filter pattern"),
        ("{ $.modelId = x", 16, "expected &&, || or }"),
        ("{ modelId = x }", 3, "expected a selector"),
        ("{ $.modelId ~ x }", 13, "expected = != < <= > >=, IS, EXISTS or NOT EXISTS"),
        ("{ $.modelId = x ! }", 17, "unexpected character '!'"),
        ("{ $.modelId > abc }", 15, "> needs a number"),
        ("{ $.modelId IS MAYBE }", 16, "expected NULL, TRUE or FALSE"),
        ("{ $.modelId NOT THERE }", 17, "expected EXISTS after NOT"),
        ("{ ($.a = 1 }", 12, "expected &&, || or )"),
        ("{ $.a = 1 } extra", 13, "expected the end of the pattern"),
        ("{ $.a > %x% }", 9, "a %regex% goes with = or !="),
    ],
)
def test_pattern_errors(pattern: str, column: int, reason: str) -> None:
    from llmtrail.schema import RecordSchema

    with pytest.raises(QueryError) as caught:
        compile_filter_pattern(pattern, dialect="duckdb", schema=RecordSchema())
    error = caught.value
    assert error.field == "filterPattern"
    assert reason in error.reason
    assert error.column == column, error.message
    assert error.message.splitlines()[1] == "  " + pattern
