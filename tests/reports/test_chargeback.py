"""The chargeback statement per tenant (or another dimension) per local month."""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from collections.abc import Callable
from decimal import Decimal

import pytest

from llmtrail.errors import ValidationError
from llmtrail.reports import chargeback_report, cost_report, render, resolve_dimension
from llmtrail.schema import RecordSchema

from .conftest import Dataset
from .dataset import Generated, cost, in_scope, local_month


def _groups(
    rows: list[Generated], key: Callable[[Generated], str | None], tz: str
) -> dict[tuple[str, str | None], list[Generated]]:
    out: dict[tuple[str, str | None], list[Generated]] = defaultdict(list)
    for r in rows:
        out[(local_month(r, tz), key(r))].append(r)
    return out


def _check_line(line: dict[str, str], group: list[Generated]) -> None:
    tokens = sum(r.input_tokens + r.output_tokens for r in group)
    assert int(line["requests"]) == len(group)
    assert int(line["inputTokens"]) == sum(r.input_tokens for r in group)
    assert int(line["outputTokens"]) == sum(r.output_tokens for r in group)
    assert int(line["cacheReadTokens"]) == sum(r.cache_read for r in group)
    assert int(line["cacheWriteTokens"]) == sum(r.cache_write for r in group)
    assert int(line["totalTokens"]) == tokens
    assert float(line["avgTokensPerRequest"]) == pytest.approx(tokens / len(group), abs=1e-3)
    assert Decimal(line["costUsd"]) == sum((cost(r, 4) for r in group), Decimal(0))
    assert int(line["unpriced"]) == sum(r.costs is None for r in group)


def test_statement_per_tenant_per_month_in_csv(dataset: Dataset) -> None:
    rows = in_scope(dataset.rows, dataset.scope.start, dataset.scope.end)
    expected = _groups(rows, lambda r: r.tenant, dataset.scope.tz)
    report = chargeback_report(dataset.db, dataset.scope)
    lines = list(csv.DictReader(io.StringIO(render(report, "csv").decode())))
    assert [(line["month"], line["tenant"] or None) for line in lines] == sorted(
        expected, key=lambda k: (k[0], k[1] is None, k[1] or "")
    )
    assert {line["month"] for line in lines} == {"2026-02", "2026-03"}
    for line in lines:
        _check_line(line, expected[(line["month"], line["tenant"] or None)])


def test_totals_by_tenant_add_up_to_the_cost_report(dataset: Dataset) -> None:
    rows = in_scope(dataset.rows, dataset.scope.start, dataset.scope.end)
    report = chargeback_report(dataset.db, dataset.scope)
    doc = json.loads(render(report, "json"))
    assert doc["parameters"] == {"dimension": "requestMetadata.tenant_id"}
    tenants = doc["tables"]["tenants"]["rows"]
    by_tenant: dict[str | None, list[Generated]] = defaultdict(list)
    for r in rows:
        by_tenant[r.tenant].append(r)
    assert {t["tenant"] for t in tenants} == set(by_tenant)
    for tenant in tenants:
        _check_line({k: str(v) for k, v in tenant.items()}, by_tenant[tenant["tenant"]])
    costs = [Decimal(t["costUsd"]) for t in tenants]
    assert costs == sorted(costs, reverse=True)
    total = cost_report(dataset.db, dataset.scope).figure("totalUsd")
    assert Decimal(doc["summary"]["costUsd"]) == total == sum(costs, Decimal(0))
    assert doc["summary"]["requests"] == len(rows)
    assert doc["summary"]["tenants"] == len(by_tenant)


@pytest.mark.parametrize(
    ("dimension", "key", "label"),
    [
        ("requestMetadata.tenant_id", lambda r: r.tenant, "tenant"),  # a promoted key
        ("requestMetadata.project", lambda r: r.project, "project"),  # a map lookup
        ("modelId", lambda r: r.model, "model"),  # a column
        ("inferenceProfile.tags.dept", lambda r: r.dept, "dept"),  # a tag
    ],
)
def test_any_dimension(
    dataset: Dataset, dimension: str, key: Callable[[Generated], str | None], label: str
) -> None:
    rows = in_scope(dataset.rows, dataset.scope.start, dataset.scope.end)
    expected = _groups(rows, key, dataset.scope.tz)
    report = chargeback_report(dataset.db, dataset.scope, dimension)
    assert report.table("statement").column("tenant").label == label.capitalize()
    lines = list(csv.DictReader(io.StringIO(render(report, "csv").decode())))
    assert {(line["month"], line["tenant"] or None) for line in lines} == set(expected)
    for line in lines:
        _check_line(line, expected[(line["month"], line["tenant"] or None)])


@pytest.mark.parametrize(
    "bad",
    ["", "input", "requestMetadata", "@timestamp", "timestamp", "tenant_id", "appLabels.dept"],
)
def test_a_path_that_is_no_dimension_is_refused(dataset: Dataset, bad: str) -> None:
    with pytest.raises(ValidationError) as caught:
        chargeback_report(dataset.db, dataset.scope, bad)
    assert caught.value.field == "dimension"


def test_a_hostile_key_is_a_bound_value(dataset: Dataset) -> None:
    report = chargeback_report(dataset.db, dataset.scope, "requestMetadata.x'] OR 1=1 --")
    lines = report.table("statement").rows
    assert {line["tenant"] for line in lines} == {None}
    assert sum(line["requests"] for line in lines) == len(
        in_scope(dataset.rows, dataset.scope.start, dataset.scope.end)
    )


def test_dimensions_resolve_to_columns_and_lookups() -> None:
    schema = RecordSchema()
    promoted = resolve_dimension("requestMetadata.tenant_id", schema)
    assert (promoted.path, promoted.label) == ("requestMetadata.tenant_id", "tenant")
    lookup = resolve_dimension(" requestMetadata.cost.code ", schema)
    assert (lookup.path, lookup.label) == ("requestMetadata.cost.code", "cost.code")
    tokens = resolve_dimension("input.inputTokenCount", schema)
    assert (tokens.path, tokens.label) == ("input.inputTokenCount", "inputTokenCount")
    with pytest.raises(ValidationError):
        resolve_dimension("custom.labels.a/b~c", schema)  # a key no column holds
