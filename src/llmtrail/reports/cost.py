"""The cost report: total spend, spend by model, by usage type and per local day.

Costs are the ones stored on each record at capture (``cost_*_usd``, DECIMAL(38,9), with the
``price_version`` used), summed in DuckDB as DECIMAL and carried as `Decimal` to the
renderers — never a float. A record without a cost (its model had no price) adds nothing to
the sums and is counted as *unpriced*, per model, so a gap in the price table shows instead
of hiding in a low total.

Usage types are Bedrock's token counts: input, output, cache read and cache write. The
total is the sum of ``cost_total_usd``, which may exceed the sum of the four parts when a
model is also billed per image or request.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import duckdb

from llmtrail.reports.report import (
    Chart,
    ChartKind,
    Column,
    Kind,
    Report,
    Table,
    figures_of,
)
from llmtrail.reports.scope import LOCAL_DAY, SCOPE_FILTER, ReportScope, fetch_rows
from llmtrail.store.duckdb.database import Database

ZERO = Decimal(0)
# (key, label, cost column, token column)
USAGE_TYPES = (
    ("input", "Input", "cost_input_usd", "input_token_count"),
    ("output", "Output", "cost_output_usd", "output_token_count"),
    ("cacheRead", "Cache read", "cost_cache_read_usd", "cache_read_input_token_count"),
    ("cacheWrite", "Cache write", "cost_cache_write_usd", "cache_write_input_token_count"),
)
_SUMS = ",\n".join(
    f"coalesce(sum({cost}), 0) AS {key}_usd, coalesce(sum({tokens}), 0) AS {key}_tokens"
    for key, _, cost, tokens in USAGE_TYPES
)
_MEASURES = f"""
    count(*) AS invocations,
    count(*) - count(cost_total_usd) AS unpriced,
    coalesce(sum(cost_total_usd), 0) AS total_usd,
    {_SUMS}
"""
_SUMMARY = f"""
SELECT {_MEASURES},
    string_agg(DISTINCT price_version, ', ' ORDER BY price_version) AS price_versions
FROM records WHERE {SCOPE_FILTER}
"""
_BY_MODEL = f"""
SELECT model_id AS model, {_MEASURES}
FROM records WHERE {SCOPE_FILTER}
GROUP BY ALL ORDER BY total_usd DESC, model NULLS LAST
"""
_BY_DAY = f"""
SELECT {LOCAL_DAY} AS day, {_MEASURES}
FROM records WHERE {SCOPE_FILTER}
GROUP BY ALL ORDER BY day
"""

N, M, T = Kind.INT, Kind.MONEY, Kind.TEXT
_COST_COLUMNS = (
    *(Column(f"{key}Usd", f"{label} ($)", M) for key, label, _, _ in USAGE_TYPES),
    Column("totalUsd", "Total ($)", M),
)
MODEL_COLUMNS = (
    Column("model", "Model", T),
    Column("invocations", "Invocations", N),
    Column("unpriced", "Unpriced", N),
    Column("inputTokens", "Input tokens", N),
    Column("outputTokens", "Output tokens", N),
    Column("cacheReadTokens", "Cache read tokens", N),
    Column("cacheWriteTokens", "Cache write tokens", N),
    *_COST_COLUMNS,
)
USAGE_COLUMNS = (
    Column("usageType", "Usage type", T),
    Column("tokens", "Tokens", N),
    Column("costUsd", "Cost ($)", M),
    Column("share", "Share of cost", Kind.RATIO),
)
DAY_COLUMNS = (
    Column("date", "Date", Kind.DATE),
    Column("invocations", "Invocations", N),
    *_COST_COLUMNS,
)


def cost_report(db: Database, scope: ReportScope, *, now: datetime | None = None) -> Report:
    """The cost report of ``scope`` from the ``records`` table of ``db``."""
    return db.read(lambda cursor: build_cost(cursor, scope, now or datetime.now(UTC)))


def build_cost(cursor: duckdb.DuckDBPyConnection, scope: ReportScope, now: datetime) -> Report:
    """The cost report, read on ``cursor`` (a DuckDB connection or cursor)."""
    params = scope.params()
    s = fetch_rows(cursor, _SUMMARY, params)[0]
    parts = sum((s[f"{key}_usd"] for key, _, _, _ in USAGE_TYPES), ZERO)
    figures = figures_of(
        [
            ("totalUsd", "Total cost ($)", M, s["total_usd"]),
            *((f"{k}Usd", f"{label} cost ($)", M, s[f"{k}_usd"]) for k, label, _, _ in USAGE_TYPES),
            ("invocations", "Invocations", N, s["invocations"]),
            ("unpriced", "Invocations without a price", N, s["unpriced"]),
            ("priceVersions", "Price versions", T, s["price_versions"]),
        ]
    )
    usage = tuple(
        {
            "usageType": key,
            "tokens": s[f"{key}_tokens"],
            "costUsd": s[f"{key}_usd"],
            "share": float(s[f"{key}_usd"] / parts) if parts else None,
        }
        for key, _, _, _ in USAGE_TYPES
    )
    models = tuple(
        {"model": r["model"], "invocations": r["invocations"], "unpriced": r["unpriced"]}
        | {f"{k}Tokens": r[f"{k}_tokens"] for k, _, _, _ in USAGE_TYPES}
        | _costs(r)
        for r in fetch_rows(cursor, _BY_MODEL, params)
    )
    by_day = {r["day"]: r for r in fetch_rows(cursor, _BY_DAY, params)}
    days = scope.local_days() or sorted(by_day)
    daily = tuple(
        {"date": d, "invocations": by_day[d]["invocations"] if d in by_day else 0}
        | _costs(by_day.get(d))
        for d in days
    )
    tables = (
        Table("models", "Cost by model", MODEL_COLUMNS, models),
        Table("usage", "Cost by usage type", USAGE_COLUMNS, usage),
        Table("daily", "Cost per day", DAY_COLUMNS, daily),
    )
    charts = (
        Chart("daily-cost", "Cost per day by usage type", ChartKind.STACKED, "daily", "date",
              tuple(f"{k}Usd" for k, _, _, _ in USAGE_TYPES), "US dollars"),
        Chart("model-cost", "Cost by model", ChartKind.BARH, "models", "model",
              ("totalUsd",), "US dollars"),
        Chart("usage-cost", "Cost by usage type", ChartKind.BAR, "usage", "usageType",
              ("costUsd",), "US dollars"),
    )  # fmt: skip
    return Report("cost", "Cost report", scope, now, figures, tables, charts, "models")


def _costs(row: dict[str, Any] | None) -> dict[str, Decimal]:
    out = {f"{k}Usd": row[f"{k}_usd"] if row else ZERO for k, _, _, _ in USAGE_TYPES}
    out["totalUsd"] = row["total_usd"] if row else ZERO
    return out
