"""The chargeback statement: per tenant (or any dimension) per local month, what was used
and what it cost.

The dimension is a record field path (`resolve_dimension`): ``requestMetadata.tenant_id`` by
default, or any other ``requestMetadata`` key, a column such as ``modelId``, or a tag in
``extra``. Records without a value form their own line (``tenant`` is null), so the statement
adds up to the cost report's total. Every request counts, failed ones included (they are
usually billed nothing). ``totalTokens`` is input + output tokens; cache reads and writes
are listed apart, as providers count them differently (Bedrock's ``inputTokenCount``
excludes them, OpenAI's prompt tokens include cached ones). Money stays `Decimal`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import duckdb

from llmtrail.reports.dimension import DEFAULT_DIMENSION, Dimension, resolve_dimension
from llmtrail.reports.report import (
    Chart,
    ChartKind,
    Column,
    Kind,
    Report,
    Table,
    figures_of,
)
from llmtrail.reports.scope import LOCAL_MONTH, SCOPE_FILTER, ReportScope, fetch_rows
from llmtrail.store.duckdb.database import Database

_STATEMENT = """
SELECT {month} AS month, {dimension} AS tenant,
    count(*) AS requests,
    coalesce(sum(input_token_count), 0) AS input_tokens,
    coalesce(sum(output_token_count), 0) AS output_tokens,
    coalesce(sum(cache_read_input_token_count), 0) AS cache_read_tokens,
    coalesce(sum(cache_write_input_token_count), 0) AS cache_write_tokens,
    coalesce(sum(cost_total_usd), 0) AS cost_usd,
    count(*) - count(cost_total_usd) AS unpriced
FROM records WHERE {scope}
GROUP BY ALL ORDER BY month, tenant NULLS LAST
"""
_SUMMED = ("requests", "inputTokens", "outputTokens", "cacheReadTokens", "cacheWriteTokens",
           "totalTokens", "costUsd", "unpriced")  # fmt: skip

N, M = Kind.INT, Kind.MONEY


def _columns(label: str, *, month: bool) -> tuple[Column, ...]:
    return (
        *((Column("month", "Month", Kind.MONTH),) if month else ()),
        Column("tenant", label[:1].upper() + label[1:], Kind.TEXT),
        Column("requests", "Requests", N),
        Column("inputTokens", "Input tokens", N),
        Column("outputTokens", "Output tokens", N),
        Column("cacheReadTokens", "Cache read tokens", N),
        Column("cacheWriteTokens", "Cache write tokens", N),
        Column("totalTokens", "Total tokens", N),
        Column("avgTokensPerRequest", "Avg tokens per request", Kind.FLOAT),
        Column("costUsd", "Cost ($)", M),
        Column("unpriced", "Unpriced", N),
    )


def chargeback_report(
    db: Database,
    scope: ReportScope,
    dimension: str = DEFAULT_DIMENSION,
    *,
    now: datetime | None = None,
) -> Report:
    """The chargeback statement of ``scope`` by ``dimension`` (a record field path) from the
    ``records`` table of ``db``. Raises `ValidationError` for a path that is no dimension."""
    resolved = resolve_dimension(dimension, db.schema)
    return db.read(
        lambda cursor: build_chargeback(cursor, scope, resolved, now or datetime.now(UTC))
    )


def build_chargeback(
    cursor: duckdb.DuckDBPyConnection, scope: ReportScope, dimension: Dimension, now: datetime
) -> Report:
    """The chargeback statement, read on ``cursor`` (a DuckDB connection or cursor)."""
    sql = _STATEMENT.format(month=LOCAL_MONTH, dimension=dimension.sql, scope=SCOPE_FILTER)
    statement = tuple(
        _line({"month": r["month"], "tenant": r["tenant"]}, r)
        for r in fetch_rows(cursor, sql, scope.params() | dimension.params)
    )
    tenants = _totals(statement, "tenant")
    months = _totals(statement, "month")
    grand = _totals(statement, None)[0] if statement else _line({}, None)
    figures = figures_of(
        [
            ("costUsd", "Total cost ($)", M, grand["costUsd"]),
            ("requests", "Requests", N, grand["requests"]),
            ("totalTokens", "Total tokens", N, grand["totalTokens"]),
            ("avgTokensPerRequest", "Avg tokens per request", Kind.FLOAT,
             grand["avgTokensPerRequest"]),
            ("tenants", f"Distinct {dimension.label} values", N, len(tenants)),
            ("months", "Months", N, len(months)),
            ("unpriced", "Requests without a price", N, grand["unpriced"]),
        ]
    )  # fmt: skip
    label = dimension.label
    tables = (
        Table("statement", f"Statement by month and {label}", _columns(label, month=True),
              statement),
        Table("tenants", f"Totals by {label}", _columns(label, month=False), tenants),
    )  # fmt: skip
    charts = (
        Chart("monthly-cost", f"Cost per month by {label}", ChartKind.STACKED, "statement",
              "month", ("costUsd",), "US dollars", series="tenant"),
        Chart("tenant-cost", f"Cost by {label}", ChartKind.BARH, "tenants", "tenant",
              ("costUsd",), "US dollars"),
        Chart("tenant-tokens", f"Tokens by {label}", ChartKind.BARH, "tenants", "tenant",
              ("inputTokens", "outputTokens"), "tokens"),
    )  # fmt: skip
    return Report(
        "chargeback",
        "Chargeback statement",
        scope,
        now,
        figures,
        tables,
        charts,
        "statement",
        {"dimension": dimension.path},
    )


def _line(keys: dict[str, Any], row: dict[str, Any] | None) -> dict[str, Any]:
    r = row or {}
    sums = {
        "requests": r.get("requests", 0),
        "inputTokens": r.get("input_tokens", 0),
        "outputTokens": r.get("output_tokens", 0),
        "cacheReadTokens": r.get("cache_read_tokens", 0),
        "cacheWriteTokens": r.get("cache_write_tokens", 0),
        "costUsd": r.get("cost_usd", Decimal(0)),
        "unpriced": r.get("unpriced", 0),
    }
    return _finish(keys | sums | {"totalTokens": sums["inputTokens"] + sums["outputTokens"]})


def _finish(line: dict[str, Any]) -> dict[str, Any]:
    requests = line["requests"]
    line["avgTokensPerRequest"] = line["totalTokens"] / requests if requests else None
    return line


def _totals(lines: tuple[dict[str, Any], ...], key: str | None) -> tuple[dict[str, Any], ...]:
    """``lines`` summed per value of ``key`` (all together when None), in order of cost
    (largest first) for tenants and of time for months."""
    groups: dict[Any, dict[str, Any]] = {}
    for line in lines:
        group_key = line[key] if key else None
        group = groups.setdefault(group_key, {} if key is None else {key: group_key})
        for name in _SUMMED:
            group[name] = group.get(name, 0) + line[name]
    out = [_finish(g) for g in groups.values()]
    if key == "tenant":
        out.sort(key=lambda g: (-g["costUsd"], g["tenant"] is None, g["tenant"] or ""))
    return tuple(out)
