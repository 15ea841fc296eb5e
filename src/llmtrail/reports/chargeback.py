"""The chargeback statement: per tenant (or any dimension) per local month, what was used
and what it cost.

The dimension is a record field path (`resolve_dimension`, the resolver cost attribution and
budgets share): ``requestMetadata.tenant_id`` by default, or any other ``requestMetadata``
key, a column such as ``modelId``, or a profile tag. The statement is a syntax tree run by the
store's `QueryEngine` (`llmtrail.query.reads`), on DuckDB or ClickHouse. Records without a
value form their own line (``tenant`` is null), so the statement adds up to the cost report's
total. Every request counts, failed ones included (they are usually billed nothing).
``totalTokens`` is input + output tokens; cache reads and writes are listed apart, as
providers count them differently (Bedrock's ``inputTokenCount`` excludes them, OpenAI's
prompt tokens include cached ones). Money stays `Decimal`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlglot import exp

from llmtrail.query.reads import Reader, ReadSource, column, number
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
from llmtrail.reports.scope import ReportScope

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
    engine: ReadSource,
    scope: ReportScope,
    dimension: str = DEFAULT_DIMENSION,
    *,
    now: datetime | None = None,
) -> Report:
    """The chargeback statement of ``scope`` by ``dimension`` (a record field path) from the
    records of ``engine`` (a `QueryEngine`, or a DuckDB `Database`). Raises
    `ValidationError` for a path that is no dimension."""
    resolved = resolve_dimension(dimension)
    r = Reader.of(engine)
    return build_chargeback(r, scope, resolved, now or datetime.now(UTC))


def _statement(r: Reader, scope: ReportScope, dimension: Dimension) -> exp.Select:
    def total(name: str) -> exp.Expr:
        return exp.Coalesce(this=exp.Sum(this=column(name, "r")), expressions=[number(0)])

    month = r.d.local_date(column("timestamp", "r"), scope.tz, "month")
    tenant = r.dimension(dimension.path)
    calls = exp.Count(this=exp.Star())
    priced = exp.Count(this=column("cost_total_usd", "r"))
    cost = r.d.aggregate("sum", column("cost_total_usd", "r"))
    return (
        exp.select(
            exp.alias_(month, "month"),
            exp.alias_(tenant, "tenant"),
            exp.alias_(calls, "requests"),
            exp.alias_(total("input_token_count"), "input_tokens"),
            exp.alias_(total("output_token_count"), "output_tokens"),
            exp.alias_(total("cache_read_input_token_count"), "cache_read_tokens"),
            exp.alias_(total("cache_write_input_token_count"), "cache_write_tokens"),
            exp.alias_(exp.Coalesce(this=cost, expressions=[number(0)]), "cost_usd"),
            exp.alias_(exp.Sub(this=calls.copy(), expression=priced), "unpriced"),
        )
        .from_(r.table("records", "r"))
        .where(r.in_range("r", scope.workspace, scope.start, scope.end))
        .group_by(month.copy(), tenant.copy())
        .order_by(
            exp.Ordered(this=month.copy(), nulls_first=False),
            exp.Ordered(this=tenant.copy(), nulls_first=False),
        )
    )


_NAMES = ("month", "tenant", "requests", "input_tokens", "output_tokens", "cache_read_tokens",
          "cache_write_tokens", "cost_usd", "unpriced")  # fmt: skip


def build_chargeback(r: Reader, scope: ReportScope, dimension: Dimension, now: datetime) -> Report:
    """The chargeback statement, read through ``r``."""
    statement = tuple(
        _line({"month": f"{row['month']:%Y-%m}", "tenant": row["tenant"]}, row)
        for row in r.dicts(_statement(r, scope, dimension), _NAMES)
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
