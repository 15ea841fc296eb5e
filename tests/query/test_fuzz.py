"""Property tests: any text fails only with `QueryError`, and user text reaches the SQL only
inside string literals.

The injection check tokenizes the generated SQL with sqlglot's tokenizer for the dialect,
drops the string-literal tokens and looks for a marker that every user-supplied name, string
and regex carries. Identifiers in the SQL come from the schema and from generated aliases,
never from the query.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlglot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlglot.tokens import TokenType

from llmtrail.query import QueryError, compile_filter_pattern, compile_query, parse_query
from llmtrail.schema import RecordSchema
from tests.query.conftest import Loaded
from tests.query.test_docs import examples
from tests.query.test_golden import FILES, read_cases

SCHEMA = RecordSchema()
START, END = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 2, tzinfo=UTC)
DIALECTS = ("duckdb", "clickhouse")
SEEDS = [q for p in FILES for _, q in read_cases(p.read_bytes().decode())] + examples()
SYNTAX = [
    *"|()[],.=!<>~+-*/%^#`'\"@ \n\t",
    "and", "or", "not", "like", "in", "as", "by", "stats", "fields", "filter", "sort",
    "limit", "dedup", "parse", "unnest", "into", "display", "count(*)", "bin(5m)", "desc",
]  # fmt: skip
MARK = "ZQ"


def compile_all(text: str) -> list[str]:
    """The SQL of ``text`` for both dialects, or [] when it is not a valid query."""
    try:
        query = parse_query(text)
        return [
            compile_query(query, dialect=d, schema=SCHEMA, workspace="w", start=START, end=END).sql
            for d in DIALECTS
        ]
    except QueryError:
        return []


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_raises_only_query_error(text: str) -> None:
    compile_all(text)


@st.composite
def mutated(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, len(text)))
        action = draw(st.sampled_from(["insert", "delete", "duplicate"]))
        if action == "insert":
            piece = draw(st.sampled_from(SYNTAX) | st.text(max_size=3))
            text = text[:pos] + piece + text[pos:]
        elif action == "delete":
            text = text[:pos] + text[pos + draw(st.integers(1, 8)) :]
        else:
            end = min(len(text), pos + draw(st.integers(1, 12)))
            text = text[:end] + text[pos:end] + text[end:]
    return text


@settings(max_examples=400, deadline=None)
@given(mutated())
def test_mutated_queries_raise_only_query_error(text: str) -> None:
    compile_all(text)


ODD = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00`\n\r"),
    max_size=12,
)


def marked(text: str) -> str:
    return f"{MARK}{text}{MARK}"


def quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@st.composite
def injected_query(draw: st.DrawFn) -> str:
    name = "`" + marked(draw(ODD)) + "`"
    alias = "`" + marked(draw(ODD)) + "`"
    value = quoted(marked(draw(ODD)))
    regex = "/" + marked(draw(st.text(alphabet="abc.*+?[]^$|'\";-", max_size=8))) + "/"
    plain = draw(ODD).replace("*", "")
    glob = quoted(marked(plain) + "*" + marked(plain) + "*")
    templates = [
        f"fields {name} as {alias} | filter {alias} = {value}",
        f"filter {name} like {value} or modelId like {regex} | display {name}",
        f"stats count(*) as {alias} by {name} | sort {alias} desc",
        f"parse {name} {glob} as {alias}, other | stats count(*) by {alias}",
        f"filter requestMetadata.{name} in [{value}, {value}] | fields requestMetadata.{name}",
        f"unnest input.inputBodyJson.{name} into {alias} | display {alias}.{name}",
        f"fields concat({value}, {name}) as {alias} | dedup {alias}",
        f"filter output.outputBodyJson.{name} != {value} | stats pct({name}, 50) by bin(1h)",
    ]
    return draw(st.sampled_from(templates))


def outside_literals(sql: str, dialect: str) -> str:
    tokens = sqlglot.tokenize(sql, read=dialect)
    return " ".join(t.text for t in tokens if t.token_type is not TokenType.STRING)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(injected_query())
def test_user_text_only_inside_literals(query: str) -> None:
    for dialect in DIALECTS:
        try:
            sql = compile_query(
                query, dialect=dialect, schema=SCHEMA, workspace="w", start=START, end=END
            ).sql
        except QueryError as error:  # e.g. a regex RE2 cannot run
            assert "regex" in error.reason
            continue
        assert MARK.lower() not in outside_literals(sql, dialect).lower()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(injected_query())
def test_odd_literals_still_run_on_duckdb(loaded: Loaded, query: str) -> None:
    try:
        loaded.rows(query)
    except QueryError as error:
        assert "regex" in error.reason


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80), ODD)
def test_filter_patterns_fail_only_with_query_error(text: str, value: str) -> None:
    for pattern in (text, "{ $.modelId = " + quoted(marked(value)) + " }", "{ " + text + " }"):
        for dialect in DIALECTS:
            try:
                compiled = compile_filter_pattern(pattern, dialect=dialect, schema=SCHEMA)
            except QueryError as error:
                assert error.field == "filterPattern"
                continue
            sql = compiled.condition.sql(dialect=dialect)
            assert MARK.lower() not in outside_literals(sql, dialect).lower()
