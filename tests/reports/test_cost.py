"""The cost report: exact Decimal sums of the stored costs, by model, usage type and day."""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from datetime import datetime
from decimal import Decimal

from llmtrail.reports import ReportScope, cost_report, render

from .conftest import Dataset
from .dataset import PRICE_VERSION, Generated, cost, in_scope, local_day

USAGE = ("input", "output", "cacheRead", "cacheWrite", "total")


def _sum(rows: list[Generated], index: int) -> Decimal:
    return sum((cost(r, index) for r in rows), Decimal(0))


def test_totals_and_usage_types_are_exact(dataset: Dataset) -> None:
    rows = in_scope(dataset.rows, dataset.scope.start, dataset.scope.end)
    report = cost_report(dataset.db, dataset.scope)
    summary = json.loads(render(report, "json"))["summary"]
    for i, usage in enumerate(USAGE):
        expected = _sum(rows, i)
        assert report.figure(f"{usage}Usd") == expected
        assert summary[f"{usage}Usd"] == f"{expected:.9f}"
    assert _sum(rows, 4) > Decimal(5)
    assert summary["invocations"] == len(rows)
    assert summary["unpriced"] == sum(r.costs is None for r in rows) > 0
    assert summary["priceVersions"] == PRICE_VERSION
    usage_rows = {r["usageType"]: r for r in report.table("usage").rows}
    parts = sum((_sum(rows, i) for i in range(4)), Decimal(0))
    for i, usage in enumerate(USAGE[:4]):
        assert usage_rows[usage]["costUsd"] == _sum(rows, i)
        assert abs(usage_rows[usage]["share"] - float(_sum(rows, i) / parts)) < 1e-9
    assert usage_rows["output"]["tokens"] == sum(r.output_tokens for r in rows)
    assert usage_rows["cacheRead"]["tokens"] == sum(r.cache_read for r in rows)


def test_by_model_in_csv(dataset: Dataset) -> None:
    rows = in_scope(dataset.rows, dataset.scope.start, dataset.scope.end)
    by_model: dict[str, list[Generated]] = defaultdict(list)
    for r in rows:
        by_model[r.model].append(r)
    report = cost_report(dataset.db, dataset.scope)
    text = render(report, "csv").decode()
    cells = list(csv.DictReader(io.StringIO(text)))
    assert [c["model"] for c in cells] == sorted(by_model, key=lambda m: (-_sum(by_model[m], 4), m))
    for cell in cells:
        group = by_model[cell["model"]]
        for i, usage in enumerate(USAGE):
            assert Decimal(cell[f"{usage}Usd"]) == _sum(group, i)
            assert len(cell[f"{usage}Usd"].split(".")[1]) == 9
        assert int(cell["invocations"]) == len(group)
        assert int(cell["unpriced"]) == sum(r.costs is None for r in group)
        assert int(cell["cacheWriteTokens"]) == sum(r.cache_write for r in group)
    unpriced = next(c for c in cells if c["model"] == "sim/unpriced")
    assert unpriced["totalUsd"] == "0.000000000"
    assert unpriced["unpriced"] == unpriced["invocations"]


def test_per_day_in_the_scope_time_zone(dataset: Dataset) -> None:
    rows = in_scope(dataset.rows, dataset.scope.start, dataset.scope.end)
    per_day: dict[object, list[Generated]] = defaultdict(list)
    for r in rows:
        per_day[local_day(r, dataset.scope.tz)].append(r)
    report = cost_report(dataset.db, dataset.scope)
    daily = json.loads(render(report, "json"))["tables"]["daily"]["rows"]
    assert len(daily) == 42
    for row in daily:
        group = per_day.get(datetime.fromisoformat(row["date"]).date(), [])
        assert row["invocations"] == len(group)
        for i, usage in enumerate(USAGE):
            assert Decimal(row[f"{usage}Usd"]) == _sum(group, i)
    assert sum(Decimal(r["totalUsd"]) for r in daily) == _sum(rows, 4)


def test_utc_days_differ_from_local_ones(dataset: Dataset) -> None:
    utc = ReportScope(dataset.scope.start, dataset.scope.end, tz="UTC")
    report = cost_report(dataset.db, utc)
    rows = in_scope(dataset.rows, utc.start, utc.end)
    first = report.table("daily").rows[0]
    assert str(first["date"]) == "2026-02-01"
    expected = [r for r in rows if r.ts.date().isoformat() == "2026-02-01"]
    assert first["totalUsd"] == _sum(expected, 4)
    assert report.figure("totalUsd") == _sum(rows, 4)
