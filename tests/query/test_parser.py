"""The lexer and parser: what text becomes which tree, and where errors point."""

from __future__ import annotations

import pytest

import llmtrail.query
from llmtrail.errors import ValidationError
from llmtrail.query import QueryError, parse_query
from llmtrail.query.ast import Binary, Call, Field, Literal, Period, dump, render
from llmtrail.query.parser import MAX_QUERY_CHARS


def tree(text: str) -> str:
    return dump(parse_query(text))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("fields a + b * c ^ d", "(fields (+ (field a) (* (field b) (^ (field c) (field d)))))"),
        ("fields -2 ^ 2, - x", "(fields (neg (^ 2 2)) (neg (field x)))"),
        ("fields a - -1", "(fields (- (field a) -1))"),
        ("fields a / b / 2", "(fields (/ (/ (field a) (field b)) 2))"),
        (
            "filter not a = 1 and b = 2 or c",
            "(filter (or (and (not (= (field a) 1)) (= (field b) 2)) (field c)))",
        ),
        ("filter a =~ /x\\/y/", "(filter (like (field a) /x\\/y/))"),
        ("filter a =~ 'sub'", '(filter (like (field a) "sub"))'),
        (
            "filter a not like /b/ and c not in []",
            "(filter (and (not-like (field a) /b/) (not-in (field c) [])))",
        ),
        ('filter a in [1, "x", -2.5]', '(filter (in (field a) [1 "x" -2.5]))'),
        ("fields `a b`.c[2].`d.e`", "(fields (field `a b`.c.2.`d.e`))"),
        ("fields @timestamp, @message", "(fields (field @timestamp) (field @message))"),
        ("STATS Count(*) BY Bin(5M)", "(stats (count *) (by (bin 5M)))"),
        ("stats count() as n by x as y", "(stats (as (count) n) (by (as (field x) y)))"),
        ("sort a, b desc, c asc", "(sort (asc (field a)) (desc (field b)) (asc (field c)))"),
        ("fields a # a comment | filter b\n| limit 3", "(fields (field a))\n(limit 3)"),
        ('fields "it\\"s", \'x\\ty\'', '(fields "it\\"s" "x\ty")'),
        ("fields 1.5e3, 10", "(fields 1.5e3 10)"),
        ("parse /(?<a>x)(?<b>y)/", "(parse (field @message) regex '(?P<a>x)(?P<b>y)' (as a b))"),
        ("parse f 'k=*;' as v", "(parse (field f) glob '(?s)k=(.*?);' (as v))"),
        (
            "unnest a.b into c | dedup c.d, e",
            "(unnest (field a.b) (into c))\n(dedup (field c.d) (field e))",
        ),
        ("display a, b as c", "(display (field a) (as (field b) c))"),
    ],
)
def test_trees(text: str, expected: str) -> None:
    assert tree(text) == expected


def test_division_and_regex_are_told_apart_by_context() -> None:
    query = parse_query("filter a like /x/ and b / 2 > c / 3")
    condition = query.commands[0].condition  # type: ignore[union-attr]
    assert isinstance(condition, Binary) and condition.op == "and"
    assert render(condition) == "a like /x/ and b / 2 > c / 3"


def test_nodes_keep_their_spans() -> None:
    text = "stats sum(latencyMs) by bin(5m)"
    stats = parse_query(text).commands[0]
    agg = stats.aggregates[0]  # type: ignore[union-attr]
    assert (
        isinstance(agg.expr, Call)
        and text[agg.expr.span.start : agg.expr.span.end] == "sum(latencyMs)"
    )
    field = agg.expr.args[0]
    assert isinstance(field, Field) and text[field.span.start : field.span.end] == "latencyMs"
    period = stats.by[0].expr.args[0]  # type: ignore[union-attr]
    assert isinstance(period, Period) and period.text == "5m"


def test_render_is_canonical() -> None:
    a = parse_query("fields SUM( x+y )*2").commands[0].items[0].expr  # type: ignore[union-attr]
    b = parse_query("fields sum(x + y) * 2").commands[0].items[0].expr  # type: ignore[union-attr]
    assert a == b and render(a) == "sum(x + y) * 2"
    assert render(parse_query("fields (a + b) * c").commands[0].items[0].expr) == "(a + b) * c"  # type: ignore[union-attr]
    assert isinstance(parse_query("fields 3").commands[0].items[0].expr, Literal)  # type: ignore[union-attr]


def test_projection_names_are_what_cloudwatch_shows() -> None:
    items = parse_query("fields a.b, SUM( x ), y as z, `odd name`").commands[0].items  # type: ignore[union-attr]
    assert [p.name for p in items] == ["a.b", "SUM( x )", "z", "odd name"]


@pytest.mark.parametrize(
    ("text", "line", "column", "reason"),
    [
        ("", 1, 1, "expected a command"),
        ("fields a\n  | filter (a = 1", 2, 18, "expected ) to close the ("),
        ("fields a |\n\n limit x", 3, 8, "expected the number of rows to return"),
        ("filter a ! b", 1, 10, "unexpected character '!'"),
        ("filter a = 'x", 1, 12, "unterminated string"),
        ("fields `a", 1, 8, "unterminated field name"),
        ("fields a.@b", 1, 9, "unexpected character '.'"),
        ("filter a like 3", 1, 15, 'expected a "substring" or a /regex/'),
        ("fields /x/", 1, 8, "expected an expression"),
        ("filter a in 1", 1, 13, "expected [ to start the list"),
        ("fields 99999999999999999999", 1, 8, "the number is too large"),
        ("fields 1.5m", 1, 8, "a time period needs a whole number"),
        ("sort a up", 1, 8, "expected | or the end of the query"),
        ("unnest a as b", 1, 10, "expected into"),
        ("parse a b", 1, 9, "expected a glob pattern"),
        ("parse a /(?<x>y)\\1/", 1, 9, "the regex uses a backreference"),
        ("parse a /(?<x>[/", 1, 9, "invalid regex"),
        ("parse a /(?<x>", 1, 9, "unterminated regex"),
        ("filter a like /(?<x>[a/", 1, 15, "invalid regex"),
        ("fields count(*, 1)", 1, 15, "expected ) after *"),
        ("dedup count(a)", 1, 12, "not a function call"),
        ("fields a as by", 1, 13, "expected a name after as"),
        ("join x", 1, 1, "the join command is not supported"),
    ],
)
def test_errors_point_at_the_token(text: str, line: int, column: int, reason: str) -> None:
    with pytest.raises(QueryError) as caught:
        parse_query(text)
    error = caught.value
    assert (error.line, error.column) == (line, column), error.message
    assert reason in error.reason
    assert isinstance(error, ValidationError) and error.field == "query"
    source, caret = error.message.splitlines()[1:]
    assert source == "  " + text.splitlines()[line - 1] if text else source == "  "
    assert caret.index("^") == column + 1


def test_too_long_a_query() -> None:
    with pytest.raises(QueryError) as caught:
        parse_query("fields a" + " " * MAX_QUERY_CHARS)
    assert "at most 10000" in caught.value.reason


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    for text in (
        "fields " + "(" * 500 + "1",
        "fields " + "-" * 500 + "1",
        "filter " + "not " * 500 + "a",
    ):
        with pytest.raises(QueryError):
            parse_query(text)


def test_public_api() -> None:
    names = llmtrail.query.__all__
    assert names == sorted(names, key=lambda n: (not n.isupper(), not n[0].isupper(), n))
    assert set(llmtrail.query.__all__) == {
        "DEFAULT_LIMIT",
        "CompiledQuery",
        "FilterPattern",
        "Query",
        "QueryError",
        "compile_filter_pattern",
        "compile_query",
        "filter_pattern_query",
        "parse_query",
    }
    for name in llmtrail.query.__all__:
        value = getattr(llmtrail.query, name)
        assert isinstance(value, int) or value.__doc__, name
