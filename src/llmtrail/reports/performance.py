"""The performance report: what a log analyzer over Bedrock's invocation logs prints.

Totals (invocations, errors and the error rate, throttles, client and server errors, tokens),
latency (average and exact percentiles: DuckDB's ``quantile_cont`` interpolates between the
two nearest values, as numpy's default percentile does), usage per model, errors by code, and
a series per local day. Everything is aggregated in DuckDB over the scoped rows; Python only
shapes the rows.

Definitions: an *error* is a record with ``status = 'ERROR'`` (throttles included); the error
rate is errors ÷ invocations. A *throttle* has ``errorCode`` ThrottlingException or HTTP status
429. Client and server errors are told apart by ``error.httpStatus`` (4xx other than 429,
5xx); an imported record with an ``errorCode`` but no status counts in neither. Latency
figures are over the records that have ``latencyMs``, errors included.
"""

from __future__ import annotations

from datetime import UTC, datetime
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

THROTTLE = "(error_code = 'ThrottlingException' OR error_http_status = 429)"
ERROR = "status = 'ERROR'"
_MEASURES = f"""
    count(*) AS invocations,
    count(*) FILTER (WHERE {ERROR}) AS errors,
    count(*) FILTER (WHERE {THROTTLE}) AS throttles,
    avg(latency_ms) AS avg_latency,
    quantile_cont(latency_ms, 0.95) AS p95_latency,
    coalesce(sum(input_token_count), 0) AS input_tokens,
    coalesce(sum(output_token_count), 0) AS output_tokens
"""

_SUMMARY = f"""
SELECT {_MEASURES},
    count(*) FILTER (WHERE status = 'OK') AS succeeded,
    count(*) FILTER (WHERE status = 'CANCELLED') AS cancelled,
    count(*) FILTER (WHERE {ERROR} AND error_http_status BETWEEN 400 AND 499
                     AND NOT {THROTTLE}) AS client_errors,
    count(*) FILTER (WHERE {ERROR} AND error_http_status >= 500) AS server_errors,
    quantile_cont(latency_ms, 0.5) AS p50_latency,
    quantile_cont(latency_ms, 0.99) AS p99_latency,
    max(latency_ms) AS max_latency,
    avg(time_to_first_token_ms) AS avg_ttft,
    coalesce(sum(cache_read_input_token_count), 0) AS cache_read_tokens,
    coalesce(sum(cache_write_input_token_count), 0) AS cache_write_tokens,
    count(DISTINCT model_id) AS models
FROM records WHERE {SCOPE_FILTER}
"""
_BY_MODEL = f"""
SELECT model_id AS model, {_MEASURES}
FROM records WHERE {SCOPE_FILTER}
GROUP BY ALL ORDER BY invocations DESC, model NULLS LAST
"""
_BY_DAY = f"""
SELECT {LOCAL_DAY} AS day, {_MEASURES}
FROM records WHERE {SCOPE_FILTER}
GROUP BY ALL ORDER BY day
"""
_ERRORS = f"""
SELECT coalesce(error_code, error_type) AS code, count(*) AS errors,
    count(DISTINCT model_id) AS models
FROM records WHERE {SCOPE_FILTER} AND {ERROR}
GROUP BY ALL ORDER BY errors DESC, code NULLS LAST
"""

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


def performance_report(db: Database, scope: ReportScope, *, now: datetime | None = None) -> Report:
    """The performance report of ``scope`` from the ``records`` table of ``db``."""
    return db.read(lambda cursor: build_performance(cursor, scope, now or datetime.now(UTC)))


def build_performance(
    cursor: duckdb.DuckDBPyConnection, scope: ReportScope, now: datetime
) -> Report:
    """The performance report, read on ``cursor`` (a DuckDB connection or cursor)."""
    params = scope.params()

    def query(sql: str) -> list[dict[str, Any]]:
        return fetch_rows(cursor, sql, params)

    s = query(_SUMMARY)[0]
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
    models = tuple({"model": r["model"], **_measures(r)} for r in query(_BY_MODEL))
    by_day = {r["day"]: _measures(r) for r in query(_BY_DAY)}
    days = scope.local_days() or sorted(by_day)
    daily = tuple({"date": d, **by_day.get(d, _measures(None))} for d in days)
    errors = tuple(
        {
            "errorCode": r["code"],
            "errors": r["errors"],
            "share": _ratio(r["errors"], s["errors"]),
            "models": r["models"],
        }
        for r in query(_ERRORS)
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


def _measures(row: dict[str, Any] | None) -> dict[str, Any]:
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
