"""``SOURCE`` in the query language: what it parses to, which log groups name the records,
and that a query with it returns exactly what the same query without it returns, on DuckDB."""

from __future__ import annotations

import pytest

from llmtrail.query import QueryError, parse_query
from llmtrail.query.ast import Source, dump
from tests.query.conftest import Loaded, loaded  # noqa: F401  (the shared DuckDB store)

BEDROCK = "SOURCE '/aws/bedrock/modelinvocations'"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            f"{BEDROCK} | stats count(*)",
            "(source '/aws/bedrock/modelinvocations')\n(stats (count *))",
        ),
        ("source 'a' | SOURCE \"b\" | limit 1", "(source 'a')\n(source 'b')\n(limit 1)"),
        (
            "SOURCE logGroups(namePrefix: ['/aws/bedrock', '/llm'], class: 'STANDARD') | limit 1",
            "(source (prefix '/aws/bedrock' '/llm'))\n(limit 1)",
        ),
    ],
)
def test_trees(text: str, expected: str) -> None:
    assert dump(parse_query(text)) == expected


def test_log_class_is_kept() -> None:
    (source, _) = parse_query(
        "SOURCE logGroups(namePrefix: ['/aws'], class: 'INFREQUENT_ACCESS') | limit 1"
    ).commands
    assert isinstance(source, Source) and source.log_class == "INFREQUENT_ACCESS"


@pytest.mark.parametrize(
    ("text", "says", "at"),
    [
        (
            "fields modelId | SOURCE 'x'",
            "SOURCE must come before every other command",
            "SOURCE 'x'",
        ),
        ("SOURCE modelId", "expected a log group name in quotes", "modelId"),
        ("SOURCE logGroups(prefix: ['a'])", "expected namePrefix or class", "prefix"),
        (
            "SOURCE logGroups(class: 'COLD', namePrefix: ['a'])",
            "'STANDARD' or 'INFREQUENT_ACCESS'",
            "'COLD'",
        ),
        (
            "SOURCE logGroups(class: 'STANDARD')",
            "logGroups needs namePrefix",
            "SOURCE logGroups(class: 'STANDARD')",
        ),
    ],
)
def test_parse_errors_point_at_the_token(text: str, says: str, at: str) -> None:
    with pytest.raises(QueryError) as error:
        parse_query(text)
    assert says in error.value.message
    assert text[error.value.span.start : error.value.span.end] == at


def test_source_reads_the_records(loaded: Loaded) -> None:  # noqa: F811
    plain = "stats count(*) as n, sum(input.inputTokenCount) as tokens by modelId"
    expected = loaded.rows(plain)
    assert expected  # the corpus has records
    for source in (
        BEDROCK,
        "SOURCE 'aws/bedrock/modelinvocations'",
        "SOURCE '/llmtrail/invocations'",
        "SOURCE 'arn:aws:logs:us-east-1:123456789012:log-group:/aws/bedrock/modelinvocations:*'",
        f"{BEDROCK} | SOURCE '/llmtrail/invocations'",
        "SOURCE logGroups(namePrefix: ['/aws/bedrock'])",
    ):
        assert loaded.rows(f"{source} | {plain}") == expected, source
    assert loaded.rows(BEDROCK) == loaded.rows("fields @timestamp, @message")


@pytest.mark.parametrize(
    ("source", "says"),
    [
        ("SOURCE '/aws/lambda/checkout'", "unknown log group '/aws/lambda/checkout'"),
        (f"{BEDROCK} | SOURCE 'other'", "unknown log group 'other'"),
        ("SOURCE logGroups(namePrefix: ['/aws/lambda'])", "no log group starts with '/aws/lambda'"),
    ],
)
def test_unknown_groups_are_named(loaded: Loaded, source: str, says: str) -> None:  # noqa: F811
    with pytest.raises(QueryError) as error:
        loaded.compile(f"{source} | stats count(*)")
    assert says in error.value.message
    assert "/aws/bedrock/modelinvocations" in error.value.message or "starts with" in says
