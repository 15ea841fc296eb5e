"""The query language: CloudWatch Logs Insights queries and filter patterns, compiled to SQL.

People ask their questions of invocation records in the language they already use for
Bedrock logs in CloudWatch (``stats pct(latencyMs, 95) by modelId, bin(5m)``). The text is
parsed into an AST (`parse_query`), its fields are resolved against the store's schema and
type-checked, and a sqlglot syntax tree is built and rendered for DuckDB or ClickHouse
(`compile_query`) — user text reaches the SQL only as literals built in the tree. CloudWatch
JSON filter patterns (``{ $.modelId = "x" && $.input.inputTokenCount > 100 }``) compile
through the same field resolution (`compile_filter_pattern`).

The compiler is pure: it never opens a connection or reads the clock; the caller passes the
workspace and time range and runs the SQL.
"""

from llmtrail.query.ast import Query
from llmtrail.query.compiler import DEFAULT_LIMIT, CompiledQuery, compile_query
from llmtrail.query.errors import QueryError
from llmtrail.query.filter_pattern import (
    FilterPattern,
    compile_filter_pattern,
    filter_pattern_query,
)
from llmtrail.query.parser import parse_query

__all__ = [
    "DEFAULT_LIMIT",
    "CompiledQuery",
    "FilterPattern",
    "Query",
    "QueryError",
    "compile_filter_pattern",
    "compile_query",
    "filter_pattern_query",
    "parse_query",
]
