"""The performance report's figures, checked against the generated records in Python."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta

import pytest

from llmtrail.reports import ReportScope, build_report, performance_report, render

from .conftest import NOW, Dataset
from .dataset import Generated, in_scope, local_day, mean, quantile


def _scoped(dataset: Dataset) -> list[Generated]:
    return in_scope(dataset.rows, dataset.scope.start, dataset.scope.end)


def test_summary_matches_the_records(dataset: Dataset) -> None:
    rows = _scoped(dataset)
    latencies = [r.latency for r in rows if r.latency is not None]
    errors = [r for r in rows if r.status == "ERROR"]
    summary = json.loads(render(performance_report(dataset.db, dataset.scope), "json"))["summary"]
    assert 1500 < len(rows) < 2500
    assert summary["invocations"] == len(rows)
    assert summary["succeeded"] == sum(r.status == "OK" for r in rows)
    assert summary["cancelled"] == sum(r.status == "CANCELLED" for r in rows)
    assert summary["errors"] == len(errors)
    assert summary["errorRate"] == pytest.approx(len(errors) / len(rows), abs=1e-6)
    assert summary["throttles"] == sum(r.http_status == 429 for r in rows)
    assert summary["clientErrors"] == sum(r.http_status == 400 for r in rows)
    assert summary["serverErrors"] == sum(r.http_status == 500 for r in rows)
    assert summary["avgLatencyMs"] == pytest.approx(mean(latencies), abs=1e-3)
    for q in (50, 95, 99):
        assert summary[f"p{q}LatencyMs"] == pytest.approx(quantile(latencies, q / 100), abs=1e-3)
    assert summary["maxLatencyMs"] == max(latencies)
    ttfts = [r.ttft for r in rows if r.ttft is not None]
    assert summary["avgTimeToFirstTokenMs"] == pytest.approx(mean(ttfts), abs=1e-3)
    assert summary["inputTokens"] == sum(r.input_tokens for r in rows)
    assert summary["outputTokens"] == sum(r.output_tokens for r in rows)
    assert summary["cacheReadTokens"] == sum(r.cache_read for r in rows)
    assert summary["cacheWriteTokens"] == sum(r.cache_write for r in rows)
    assert summary["models"] == len({r.model for r in rows})


def test_model_usage_in_json_and_csv(dataset: Dataset) -> None:
    rows = _scoped(dataset)
    by_model: dict[str, list[Generated]] = defaultdict(list)
    for r in rows:
        by_model[r.model].append(r)
    report = performance_report(dataset.db, dataset.scope)
    table = json.loads(render(report, "json"))["tables"]["models"]["rows"]
    cells = list(csv.DictReader(io.StringIO(render(report, "csv").decode())))
    assert [r["model"] for r in table] == [c["model"] for c in cells]
    assert sorted(r["model"] for r in table) == sorted(by_model)
    counts = [r["invocations"] for r in table]
    assert counts == sorted(counts, reverse=True)
    for row, cell in zip(table, cells, strict=True):
        group = by_model[row["model"]]
        latencies = [r.latency for r in group if r.latency is not None]
        errors = sum(r.status == "ERROR" for r in group)
        assert row["invocations"] == int(cell["invocations"]) == len(group)
        assert row["errors"] == int(cell["errors"]) == errors
        assert float(cell["errorRate"]) == pytest.approx(errors / len(group), abs=1e-6)
        assert (
            row["throttles"] == int(cell["throttles"]) == sum(r.http_status == 429 for r in group)
        )
        assert row["inputTokens"] == int(cell["inputTokens"]) == sum(r.input_tokens for r in group)
        assert int(cell["outputTokens"]) == sum(r.output_tokens for r in group)
        assert float(cell["avgLatencyMs"]) == pytest.approx(mean(latencies), abs=1e-3)
        assert float(cell["p95LatencyMs"]) == pytest.approx(quantile(latencies, 0.95), abs=1e-3)


def test_days_are_local_and_every_day_is_listed(dataset: Dataset) -> None:
    rows = _scoped(dataset)
    per_day = Counter(local_day(r, dataset.scope.tz) for r in rows)
    errors = Counter(local_day(r, dataset.scope.tz) for r in rows if r.status == "ERROR")
    report = performance_report(dataset.db, dataset.scope)
    daily = report.table("daily").rows
    first = date(2026, 2, 1)
    assert [d["date"] for d in daily] == [first + timedelta(n) for n in range(42)]
    for row in daily:
        assert row["invocations"] == per_day.get(row["date"], 0)
        assert row["errors"] == errors.get(row["date"], 0)
    by_utc_day = Counter(r.ts.date() for r in rows)
    assert per_day != by_utc_day  # the generated records include local day boundaries
    cells = list(csv.DictReader(io.StringIO(render(report, "csv", table="daily").decode())))
    assert [c["date"] for c in cells] == [d["date"].isoformat() for d in daily]


def test_errors_by_code(dataset: Dataset) -> None:
    rows = _scoped(dataset)
    codes = Counter(r.error_code for r in rows if r.status == "ERROR")
    report = performance_report(dataset.db, dataset.scope)
    table = {r["errorCode"]: r for r in report.table("errors").rows}
    assert {k: v["errors"] for k, v in table.items()} == dict(codes)
    assert sum(v["share"] for v in table.values()) == pytest.approx(1)


def test_workspace_and_range_bound_the_records(dataset: Dataset) -> None:
    other = ReportScope(dataset.scope.start, dataset.scope.end, "other", dataset.scope.tz)
    report = build_report(dataset.db, "performance", other, now=NOW)
    expected = in_scope(dataset.rows, other.start, other.end, "other")
    assert report.figure("invocations") == len(expected) > 0
    assert report.generated_at == NOW


def test_an_empty_range_has_zeros_and_nulls(dataset: Dataset) -> None:
    scope = ReportScope(datetime(2030, 1, 1), datetime(2030, 1, 3))
    report = performance_report(dataset.db, scope)
    doc = json.loads(render(report, "json"))
    assert doc["summary"]["invocations"] == 0
    assert doc["summary"]["errorRate"] is None
    assert doc["summary"]["p95LatencyMs"] is None
    assert doc["tables"]["models"]["rows"] == []
    assert [r["invocations"] for r in doc["tables"]["daily"]["rows"]] == [0, 0]
    assert render(report, "csv").decode().splitlines() == [
        "model,invocations,errors,errorRate,throttles,avgLatencyMs,p95LatencyMs,inputTokens,"
        "outputTokens"
    ]
