"""The performance report: what a log analyzer over Bedrock's invocation logs prints.

Totals (invocations, errors and the error rate, throttles, client and server errors, tokens),
latency (average and exact percentiles, interpolated between the two nearest values as
numpy's default percentile does, on both engines), usage per model, errors by code, and a
series per local day. Everything is aggregated by the store's engine (DuckDB or ClickHouse,
through syntax trees: `llmtrail.query.reads`) over the scoped rows; Python only shapes them.

Definitions: an *error* is a record with ``status = 'ERROR'`` (throttles included); the error
rate is errors ÷ invocations. A *throttle* has ``errorCode`` ThrottlingException or HTTP status
429. Client and server errors are told apart by ``error.httpStatus`` (4xx other than 429,
5xx); an imported record with an ``errorCode`` but no status counts in neither. Latency
figures are over the records that have ``latencyMs``, errors included.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlglot import exp

from llmtrail.query.reads import Reader, ReadSource, column, count_if, number, string
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


def _throttle() -> exp.Expr:
    return exp.or_(
        exp.EQ(this=column("error_code", "r"), expression=string("ThrottlingException")),
        exp.EQ(this=column("error_http_status", "r"), expression=number(429)),
    )


def _status(value: str) -> exp.Expr:
    return exp.EQ(this=column("status", "r"), expression=string(value))


def _total(name: str) -> exp.Expr:
    return exp.Coalesce(this=exp.Sum(this=column(name, "r")), expressions=[number(0)])


def _measures(r: Reader) -> list[exp.Expr]:
    """Invocations, errors, throttles, latency (mean, p95) and tokens of a group."""
    latency = column("latency_ms", "r")
    return [
        exp.alias_(exp.Count(this=exp.Star()), "invocations"),
        exp.alias_(count_if(_status("ERROR")), "errors"),
        exp.alias_(count_if(_throttle()), "throttles"),
        exp.alias_(r.d.aggregate("avg", latency), "avg_latency"),
        exp.alias_(r.d.percentile(latency.copy(), 0.95), "p95_latency"),
        exp.alias_(_total("input_token_count"), "input_tokens"),
        exp.alias_(_total("output_token_count"), "output_tokens"),
    ]


_MEASURE_NAMES = ("invocations", "errors", "throttles", "avg_latency", "p95_latency",
                  "input_tokens", "output_tokens")  # fmt: skip


def _summary(r: Reader) -> tuple[list[exp.Expr], tuple[str, ...]]:
    d = r.d
    latency = column("latency_ms", "r")
    status = column("error_http_status", "r")
    client = exp.and_(
        _status("ERROR"),
        exp.Between(this=status, low=number(400), high=number(499)),
        exp.Not(this=exp.paren(_throttle())),
    )
    server = exp.and_(_status("ERROR"), exp.GTE(this=status.copy(), expression=number(500)))
    extra = {
        "succeeded": count_if(_status("OK")),
        "cancelled": count_if(_status("CANCELLED")),
        "client_errors": count_if(client),
        "server_errors": count_if(server),
        "p50_latency": d.percentile(latency, 0.5),
        "p99_latency": d.percentile(latency.copy(), 0.99),
        "max_latency": d.aggregate("max", latency.copy()),
        "avg_ttft": d.aggregate("avg", column("time_to_first_token_ms", "r")),
        "cache_read_tokens": _total("cache_read_input_token_count"),
        "cache_write_tokens": _total("cache_write_input_token_count"),
        "models": d.count_distinct(column("model_id", "r")),
    }
    columns = [*_measures(r), *(exp.alias_(v, k) for k, v in extra.items())]
    return columns, (*_MEASURE_NAMES, *extra)


N, F, R, T = Kind.INT, Kind.FLOAT, Kind.RATIO, Kind.TEXT
_MEASURE_COLUMNS = (
    Column("invocations", "Invocations", N),
    Column("errors", "Errors", N),
    Column("errorRate", "Error rate", R),
    Column("throttles", "Throttles", N),
    Column("avgLatencyMs", "Avg latency (ms)", F),
    Column("p95LatencyMs", "p95 latency (ms)", F),
    Column("inputTokens", "Input tokens", N),
    Column("outputTokens", "Output tokens", N),
)
MODEL_COLUMNS = (Column("model", "Model", T), *_MEASURE_COLUMNS)
DAY_COLUMNS = (Column("date", "Date", Kind.DATE), *_MEASURE_COLUMNS)
ERROR_COLUMNS = (
    Column("errorCode", "Error code", T),
    Column("errors", "Errors", N),
    Column("share", "Share of errors", R),
    Column("models", "Models", N),
)


def performance_report(
    engine: ReadSource, scope: ReportScope, *, now: datetime | None = None
) -> Report:
    """The performance report of ``scope`` from the records of ``engine`` (a `QueryEngine`,
    or a DuckDB `Database`)."""
    return build_performance(Reader.of(engine), scope, now or datetime.now(UTC))


def build_performance(r: Reader, scope: ReportScope, now: datetime) -> Report:
    """The performance report, read through ``r``."""
    columns, names = _summary(r)
    s = r.dicts(scoped(r, scope, *columns), names)[0]
    by_model = per_model(r, scope, _measures(r), "invocations")
    by_day_tree = per_day(r, scope, _measures(r))
    code = exp.Coalesce(this=column("error_code", "r"), expressions=[column("error_type", "r")])
    errors_tree = (
        scoped(
            r,
            scope,
            exp.alias_(code, "code"),
            exp.alias_(exp.Count(this=exp.Star()), "errors"),
            exp.alias_(r.d.count_distinct(column("model_id", "r")), "models"),
        )
        .where(_status("ERROR"))
        .group_by(code.copy())
        .order_by(
            exp.Ordered(this=exp.column("errors"), desc=True),
            exp.Ordered(this=code.copy(), nulls_first=False),
        )
    )
    total = s["invocations"]
    figures = figures_of(
        [
            ("invocations", "Total invocations", N, total),
            ("succeeded", "Succeeded", N, s["succeeded"]),
            ("errors", "Errors", N, s["errors"]),
            ("errorRate", "Error rate", R, _ratio(s["errors"], total)),
            ("throttles", "Throttles", N, s["throttles"]),
            ("clientErrors", "Client errors (4xx)", N, s["client_errors"]),
            ("serverErrors", "Server errors (5xx)", N, s["server_errors"]),
            ("cancelled", "Cancelled", N, s["cancelled"]),
            ("avgLatencyMs", "Average latency (ms)", F, s["avg_latency"]),
            ("p50LatencyMs", "p50 latency (ms)", F, s["p50_latency"]),
            ("p95LatencyMs", "p95 latency (ms)", F, s["p95_latency"]),
            ("p99LatencyMs", "p99 latency (ms)", F, s["p99_latency"]),
            ("maxLatencyMs", "Max latency (ms)", N, s["max_latency"]),
            ("avgTimeToFirstTokenMs", "Avg time to first token (ms)", F, s["avg_ttft"]),
            ("inputTokens", "Input tokens", N, s["input_tokens"]),
            ("outputTokens", "Output tokens", N, s["output_tokens"]),
            ("cacheReadTokens", "Cache read tokens", N, s["cache_read_tokens"]),
            ("cacheWriteTokens", "Cache write tokens", N, s["cache_write_tokens"]),
            ("models", "Models used", N, s["models"]),
        ]
    )
    models = tuple(
        {"model": row["model"], **_figures(row)}
        for row in r.dicts(by_model, ("model", *_MEASURE_NAMES))
    )
    by_day = {row["day"]: _figures(row) for row in r.dicts(by_day_tree, ("day", *_MEASURE_NAMES))}
    days = scope.local_days() or sorted(by_day)
    daily = tuple({"date": d, **by_day.get(d, _figures(None))} for d in days)
    errors = tuple(
        {
            "errorCode": row["code"],
            "errors": row["errors"],
            "share": _ratio(row["errors"], s["errors"]),
            "models": row["models"],
        }
        for row in r.dicts(errors_tree, ("code", "errors", "models"))
    )
    tables = (
        Table("models", "Model usage", MODEL_COLUMNS, models),
        Table("daily", "Per day", DAY_COLUMNS, daily),
        Table("errors", "Errors by code", ERROR_COLUMNS, errors),
    )
    charts = (
        Chart("daily-invocations", "Invocations and errors per day", ChartKind.BAR,
              "daily", "date", ("invocations", "errors"), "calls"),
        Chart("daily-latency", "Latency per day", ChartKind.LINE,
              "daily", "date", ("avgLatencyMs", "p95LatencyMs"), "ms"),
        Chart("model-invocations", "Invocations by model", ChartKind.BARH,
              "models", "model", ("invocations",), "calls"),
        Chart("model-latency", "Latency by model", ChartKind.BARH,
              "models", "model", ("avgLatencyMs", "p95LatencyMs"), "ms"),
    )  # fmt: skip
    return Report(
        "performance", "Performance report", scope, now, figures, tables, charts, "models"
    )


def _figures(row: dict[str, Any] | None) -> dict[str, Any]:
    if row is None:
        row = {"invocations": 0, "errors": 0, "throttles": 0, "input_tokens": 0,
               "output_tokens": 0, "avg_latency": None, "p95_latency": None}  # fmt: skip
    return {
        "invocations": row["invocations"],
        "errors": row["errors"],
        "errorRate": _ratio(row["errors"], row["invocations"]),
        "throttles": row["throttles"],
        "avgLatencyMs": row["avg_latency"],
        "p95LatencyMs": row["p95_latency"],
        "inputTokens": row["input_tokens"],
        "outputTokens": row["output_tokens"],
    }


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None
