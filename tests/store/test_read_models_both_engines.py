"""The read models answer alike on both engines: the same generated records stored in a
DuckDB file and in ClickHouse (chdb, or ``CLICKHOUSE_URL``), each read model asked on both,
the answers compared whole — and one dimension vocabulary shared by cost attribution,
chargeback and budgets."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from llmtrail.analytics.attribution import CostQuery, cost_and_usage, models_seen, profile_usage
from llmtrail.analytics.budget_spend import month_spend
from llmtrail.analytics.budgets import make_budget
from llmtrail.errors import ValidationError
from llmtrail.query.dimensions import dimension_path
from llmtrail.record import InvocationRecord
from llmtrail.store.duckdb import Database, DuckDBRecordStore
from llmtrail.store.duckdb.query import DuckDBQueryEngine
from llmtrail.store.interfaces import QueryEngine

from ..query.differential_records import END, START, WORKSPACE, generated_records

pytest.importorskip("chdb")
ARN = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/p"


@pytest.fixture(scope="module")
def records() -> list[InvocationRecord]:
    out = generated_records(600)
    for i, record in enumerate(out[::4]):  # a quarter of them called through a profile
        record.data.setdefault("inferenceProfile", {})["arn"] = f"{ARN}{i % 2}"
    return out


@pytest.fixture(scope="module")
def engines(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    records: list[InvocationRecord],
) -> Iterator[tuple[QueryEngine, QueryEngine]]:
    from llmtrail.store.clickhouse import ClickHouseDatabase, ClickHouseRecordStore
    from llmtrail.store.clickhouse.query import ClickHouseQueryEngine

    db = Database(tmp_path_factory.mktemp("reads") / "llmtrail.duckdb")
    DuckDBRecordStore(db).append(records)
    url = request.getfixturevalue("clickhouse_url")
    click = ClickHouseDatabase.open(url, f"reads_{uuid.uuid4().hex[:12]}")
    ClickHouseRecordStore(click).append(records)
    engine = ClickHouseQueryEngine(click)
    yield DuckDBQueryEngine(db), engine
    engine.close()
    click.command(f"DROP DATABASE IF EXISTS `{click.database}`")
    click.close()
    db.close()


def _both(engines: tuple[QueryEngine, QueryEngine], read: Any) -> Any:
    duck, click = (read(e) for e in engines)
    assert duck == click
    return duck


@pytest.mark.parametrize(
    ("by", "granularity", "tz"),
    [
        ((), "MONTHLY", "UTC"),
        (("modelId",), "DAILY", "UTC"),
        (("requestMetadata.tenant_id", "requestMetadata.feature"), "DAILY", "Europe/Paris"),
        (("inferenceProfile.tags.dept", "status"), "MONTHLY", "America/New_York"),
        (("input.inputTokenCount",), "MONTHLY", "Asia/Kolkata"),
    ],
)
def test_cost_and_usage(
    engines: tuple[QueryEngine, QueryEngine], by: tuple[str, ...], granularity: str, tz: str
) -> None:
    query = CostQuery(START, END, by=by, granularity=granularity, tz=tz, workspace=WORKSPACE)
    answer = _both(engines, lambda e: cost_and_usage(e, query).to_dict())
    assert answer["total"]["calls"] > 0
    assert (
        sum(g["metrics"]["calls"] for p in answer["resultsByTime"] for g in p["groups"])
        == (answer["total"]["calls"])
    )


def test_profile_usage_and_models_seen(
    engines: tuple[QueryEngine, QueryEngine], records: list[InvocationRecord]
) -> None:
    for arn in (f"{ARN}0", f"{ARN}1", f"{ARN}2"):
        usage = _both(engines, lambda e, a=arn: profile_usage(e, a, START, END, WORKSPACE))
        assert (usage.usage.calls > 0) == (arn != f"{ARN}2")
    seen = _both(engines, lambda e: models_seen(e, START, END, WORKSPACE))
    assert sum(m.count for m in seen) > 0


def test_month_spend(engines: tuple[QueryEngine, QueryEngine]) -> None:
    budgets = [
        make_budget("requestMetadata.tenant_id", "tenant-03", "100"),
        make_budget("requestMetadata.feature", "draft", "100", timezone="Europe/Paris"),
        make_budget("modelId", "gpt-4o-mini", "100"),
        make_budget("inferenceProfile.tags.dept", "a", "100"),
    ]
    now = START + timedelta(days=1)
    spent = _both(engines, lambda e: month_spend(e, budgets, now))
    assert set(spent) == {b.key for b in budgets}
    assert any(v > Decimal(0) for v in spent.values())


ACCEPTED = ["requestMetadata.tenant_id", "requestMetadata.cost.code", "modelId",
            "inferenceProfile.tags.dept", "input.inputTokenCount", "status"]  # fmt: skip
REFUSED = ["", "tenant_id", "colour", "nonsense.path", "appLabels.dept", "input",
           "requestMetadata", "requestMetadata.", "@timestamp", "timestamp", "cost.totalUsd",
           "input.inputBodyJson", "modelId.x"]  # fmt: skip


@pytest.mark.parametrize("name", ACCEPTED + REFUSED)
def test_one_dimension_vocabulary(engines: tuple[QueryEngine, QueryEngine], name: str) -> None:
    """Cost attribution, chargeback and budgets accept and refuse the same names."""
    from llmtrail.reports import ReportScope
    from llmtrail.reports.chargeback import chargeback_report

    verdicts = []
    for attempt in (
        lambda: make_budget(name, "v", "1"),
        lambda: cost_and_usage(engines[0], CostQuery(START, END, by=(name,))),
        lambda: chargeback_report(engines[0], ReportScope(START, END), name),
        lambda: dimension_path(name),
    ):
        try:
            attempt()
            verdicts.append(True)
        except ValidationError as exc:
            assert exc.field in ("dimension", "by")
            verdicts.append(False)
    assert verdicts == [name in ACCEPTED] * 4
