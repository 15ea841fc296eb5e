"""The cost report: total spend, spend by model, by usage type and per local day.

Costs are the ones stored on each record at capture (``cost_*_usd``, DECIMAL(38,9), with the
``price_version`` used), summed by the store's engine (DuckDB or ClickHouse, through syntax
trees: `llmtrail.query.reads`) as DECIMAL and carried as `Decimal` to the renderers — never
a float. A record without a cost (its model had no price) adds nothing to
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

from sqlglot import exp

from llmtrail.query.reads import Reader, ReadSource, column, number
from llmtrail.reports.report import (
    Chart,
    ChartKind,
    Column,
    Kind,
    Report,
    Table,
    figures_of,
)
from llmtrail.reports.scope import ReportScope, per_day, per_model, scoped

ZERO = Decimal(0)
# (key, label, cost column, token column)
USAGE_TYPES = (
    ("input", "Input", "cost_input_usd", "input_token_count"),
    ("output", "Output", "cost_output_usd", "output_token_count"),
    ("cacheRead", "Cache read", "cost_cache_read_usd", "cache_read_input_token_count"),
    ("cacheWrite", "Cache write", "cost_cache_write_usd", "cache_write_input_token_count"),
)


def _measures(r: Reader) -> list[exp.Expr]:
    """Invocations, unpriced ones, the total and each usage type's cost and tokens."""

    def total(name: str) -> exp.Expr:
        return exp.Coalesce(this=r.d.aggregate("sum", column(name, "r")), expressions=[number(0)])

    calls = exp.Count(this=exp.Star())
    priced = exp.Count(this=column("cost_total_usd", "r"))
    return [
        exp.alias_(calls, "invocations"),
        exp.alias_(exp.Sub(this=calls.copy(), expression=priced), "unpriced"),
        exp.alias_(total("cost_total_usd"), "total_usd"),
        *(
            part
            for key, _, cost, tokens in USAGE_TYPES
            for part in (
                exp.alias_(total(cost), f"{key}_usd"),
                exp.alias_(total(tokens), f"{key}_tokens"),
            )
        ),
    ]


def _names(first: str | None) -> list[str]:
    keys = [n for key, _, _, _ in USAGE_TYPES for n in (f"{key}_usd", f"{key}_tokens")]
    return [*([first] if first else []), "invocations", "unpriced", "total_usd", *keys]


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


def cost_report(engine: ReadSource, scope: ReportScope, *, now: datetime | None = None) -> Report:
    """The cost report of ``scope`` from the records of ``engine`` (a `QueryEngine`, or a
    DuckDB `Database`)."""
    return build_cost(Reader.of(engine), scope, now or datetime.now(UTC))


def build_cost(r: Reader, scope: ReportScope, now: datetime) -> Report:
    """The cost report, read through ``r``."""
    versions = r.d.distinct_values(column("price_version", "r"))
    summary = r.rows(scoped(r, scope, *_measures(r), versions))[0]
    s = dict(zip(_names(None), summary[:-1], strict=True))
    s["price_versions"] = ", ".join(sorted(summary[-1] or ())) or None
    by_model = per_model(r, scope, _measures(r), "total_usd")
    by_day_tree = per_day(r, scope, _measures(r))
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
        {"model": row["model"], "invocations": row["invocations"], "unpriced": row["unpriced"]}
        | {f"{k}Tokens": row[f"{k}_tokens"] for k, _, _, _ in USAGE_TYPES}
        | _costs(row)
        for row in r.dicts(by_model, _names("model"))
    )
    by_day = {row["day"]: row for row in r.dicts(by_day_tree, _names("day"))}
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
