"""The query compiler keeps a query inside its workspace and away from bodies it may not read.

In the query tests' style: the query corpus (default-workspace records, and ``other``'s with
the same shapes, request-id prefix ``other``) in a real DuckDB file, queries compiled for
DuckDB and run. Every construct that makes subqueries or joins — ``SOURCE``, ``filter`` on
``workspace``, ``stats``/``dedup``/``parse``/``unnest``/``limit`` stages, the ``bodies``
join of ``@message`` and body fields — is tried for a way to reach ``other``'s rows; the
expected rows are computed here from the corpus. Then the ``bodies`` permission: every field
that reads a body is refused with `Forbidden` naming it, and what is not refused never joins
the ``bodies`` table.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from llmtrail.errors import Forbidden
from llmtrail.query import compile_query, filter_pattern_query
from llmtrail.schema import RecordSchema
from llmtrail.store.duckdb import Database, DuckDBRecordStore
from tests.query.corpus import (
    END,
    OTHER_WORKSPACE,
    START,
    WIDE_END,
    WIDE_START,
    WORKSPACE,
    load_records,
)


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    database = Database(tmp_path_factory.mktemp("principal-query") / "llmtrail.duckdb")
    DuckDBRecordStore(database).append(load_records())
    yield database
    database.close()


def run(db: Database, text: str, *, bodies: bool = True) -> list[dict[str, Any]]:
    compiled = compile_query(
        text,
        dialect="duckdb",
        schema=db.schema,
        workspace=WORKSPACE,
        start=WIDE_START,
        end=WIDE_END,
        bodies_allowed=bodies,
    )
    rows = db.read(lambda c: c.execute(compiled.sql).fetchall())
    return [dict(zip(compiled.fields, row, strict=True)) for row in rows]


def own_count() -> int:
    return sum(1 for r in load_records() if r.workspace == WORKSPACE)


def test_the_corpus_holds_another_workspace() -> None:
    assert {r.workspace for r in load_records()} == {WORKSPACE, OTHER_WORKSPACE}


ESCAPES = [
    f'fields @requestId, workspace | filter workspace = "{OTHER_WORKSPACE}"',
    f'fields @requestId, workspace | filter workspace != "{WORKSPACE}"',
    "fields @requestId, workspace | filter workspace like /oth/ or 1 = 1",
    "SOURCE '/aws/bedrock/modelinvocations' | fields @requestId, workspace",
    "SOURCE logGroups(namePrefix: ['/aws']) | fields @requestId, workspace",
    "SOURCE '/aws/bedrock/modelinvocations' | SOURCE '/llmtrail/invocations' "
    "| fields @requestId, workspace",
    "fields @requestId, workspace | dedup workspace",
    "fields @requestId, workspace | limit 5 | filter workspace = 'other' or 1 = 1",
    "fields @requestId, workspace | sort workspace asc | limit 1",
    'parse @requestId "*-*" as prefix, n | fields @requestId, workspace, prefix '
    '| filter prefix = "other"',
    "fields @requestId, workspace, @message | filter @message like /other/",
    'fields @requestId, workspace, input.inputBodyJson | filter workspace = "other"',
    "fields @requestId, workspace | unnest input.inputBodyJson.messages into m "
    "| filter workspace = 'other'",
    "stats count(*) as n by workspace | filter workspace = 'other'",
    "stats count(*) as n by workspace, bin(1h) | stats sum(n) as total by workspace",
]


@pytest.mark.parametrize("text", ESCAPES)
def test_no_construct_reaches_another_workspace(db: Database, text: str) -> None:
    found = run(db, text)
    assert all(row.get("workspace") in (None, WORKSPACE) for row in found), found[:3]
    assert not [r for r in found if str(r.get("@requestId") or "").startswith("other")]


def test_counts_are_the_workspaces_own(db: Database) -> None:
    assert run(db, "stats count(*) as n") == [{"n": own_count()}]
    assert run(db, "stats count(*) as n by workspace") == [
        {"workspace": WORKSPACE, "n": own_count()}
    ]


def test_the_other_workspace_sees_only_its_own(db: Database) -> None:
    compiled = compile_query(
        "stats count(*) as n by workspace",
        dialect="duckdb",
        schema=db.schema,
        workspace=OTHER_WORKSPACE,
        start=WIDE_START,
        end=WIDE_END,
    )
    others = sum(1 for r in load_records() if r.workspace == OTHER_WORKSPACE)
    assert db.read(lambda c: c.execute(compiled.sql).fetchall()) == [(OTHER_WORKSPACE, others)]


@pytest.mark.parametrize(
    "pattern",
    [f'{{ $.workspace = "{OTHER_WORKSPACE}" }}', '{ $.workspace = "*" }', "{ $.workspace EXISTS }"],
)
def test_no_filter_pattern_reaches_another_workspace(db: Database, pattern: str) -> None:
    compiled = filter_pattern_query(
        pattern, dialect="duckdb", schema=db.schema, workspace=WORKSPACE, start=START, end=END
    )
    rows = db.read(lambda c: c.execute(compiled.sql).fetchall())
    at = compiled.fields.index("workspace")
    assert {row[at] for row in rows} <= {WORKSPACE}


# -- bodies ---------------------------------------------------------------------------------------
REFUSED = [
    ("fields input.inputBodyJson", "input.inputBodyJson"),
    ("fields output.outputBodyJson.stopReason", "output.outputBodyJson.stopReason"),
    ("fields modelId | filter input.inputBodyJson.messages.0.role = 'user'", None),
    ("fields @message", "@message"),
    ("fields modelId | sort @message", "@message"),
    ("fields modelId | dedup output.outputBodyJson.stopReason", None),
    ("stats count(*) by output.outputBodyJson.stopReason", None),
    ("fields modelId | unnest input.inputBodyJson.messages into m", None),
    ('parse "*" as everything | fields everything', "@message"),
    ("fields input", "input"),
    ("fields modelId | filter output like /end_turn/", "output"),
    ('filter modelId = "llama3"', "@message"),  # the default output is @message
    ("SOURCE '/aws/bedrock/modelinvocations' | limit 3", "@message"),
]


@pytest.mark.parametrize(("text", "named"), REFUSED)
def test_a_body_field_is_forbidden_without_bodies(
    db: Database, text: str, named: str | None
) -> None:
    with pytest.raises(Forbidden) as caught:
        run(db, text, bodies=False)
    assert caught.value.status == 403 and caught.value.permission == "bodies"
    field = caught.value.field
    assert field == named if named else field.startswith(("input.", "output."))
    assert "line 1, column" in caught.value.message
    assert run(db, text, bodies=True) is not None  # the same query runs with the permission


ALLOWED = [
    "fields @timestamp, modelId, input.inputTokenCount, output.outputTokenCount",
    "stats count(*), sum(input.inputTokenCount) by modelId",
    "fields @requestId, input.inputBodyS3Path, cost.totalUsd | sort @timestamp desc",
    "display @requestId, requestMetadata.tenant_id",
    'fields `input.inputBodyJson` as looks_like_a_body | filter modelId = "llama3"',
]


@pytest.mark.parametrize("text", ALLOWED)
def test_a_query_without_bodies_never_joins_them(db: Database, text: str) -> None:
    compiled = compile_query(
        text,
        dialect="duckdb",
        schema=RecordSchema(),
        workspace=WORKSPACE,
        start=START,
        end=END,
        bodies_allowed=False,
    )
    assert '"bodies"' not in compiled.sql and "input_body_json" not in compiled.sql
    run(db, text, bodies=False)


def test_a_body_selector_is_forbidden_in_a_filter_pattern(db: Database) -> None:
    pattern = '{ $.output.outputBodyJson.stopReason = "end_turn" }'
    with pytest.raises(Forbidden) as caught:
        filter_pattern_query(
            pattern,
            dialect="duckdb",
            schema=db.schema,
            workspace=WORKSPACE,
            start=START,
            end=END,
            bodies_allowed=False,
        )
    assert caught.value.field == "output.outputBodyJson.stopReason"
    plain = filter_pattern_query(
        '{ $.modelId = "llama3" }',
        dialect="duckdb",
        schema=db.schema,
        workspace=WORKSPACE,
        start=START,
        end=END,
        bodies_allowed=False,
    )
    assert '"bodies"' not in plain.sql and "body_json" not in plain.sql
