"""What DuckDB and ClickHouse spell differently, as builders of sqlglot expressions.

The compiler asks a `SqlDialect` for "the JSON value at this path as text", "the exact 95th
percentile", "does this match the regex"; each dialect answers with a tree that gives the
same result on its engine. Where the engines' own functions disagree, the builders fix one
meaning for both:

* JSON scalars as text, ``NULL`` when missing or JSON ``null`` (DuckDB
  ``json_extract_string`` with a JSON pointer; ClickHouse ``JSONExtract(…, 'Nullable(String)')``).
* Map lookups are ``NULL`` for a missing key (ClickHouse answers ``''``).
* Aggregates are ``NULL`` over no values (ClickHouse's ``-OrNull`` combinator); percentiles
  are exact and interpolated (``quantile_cont`` / ``quantileExactInclusive``); ``stddev`` is
  the sample deviation and ``NULL`` for fewer than two values; ``count_distinct`` is exact.
* Regexes are RE2 on both, with ``.`` not matching a newline (ClickHouse's ``match`` would).
* Text to number: both trim blanks and give ``NULL`` for what is not a number.

User text only ever enters a tree as `exp.Literal`, so it is quoted by sqlglot.
"""

from llmtrail.query.dialects.base import (
    SqlDialect,
    call,
    case,
    is_null,
    not_null,
    number,
    string,
)
from llmtrail.query.dialects.clickhouse import ClickHouse
from llmtrail.query.dialects.duckdb import DuckDB

DIALECTS: dict[str, SqlDialect] = {"duckdb": DuckDB(), "clickhouse": ClickHouse()}

__all__ = [
    "DIALECTS",
    "ClickHouse",
    "DuckDB",
    "SqlDialect",
    "call",
    "case",
    "is_null",
    "not_null",
    "number",
    "string",
]
