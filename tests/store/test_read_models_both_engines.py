"""The read models answer alike on both engines: the same generated records stored in a
DuckDB file and in ClickHouse (chdb, or ``CLICKHOUSE_URL``), each read model asked on both,
the answers compared whole — and one dimension vocabulary shared by cost attribution,
chargeback and budgets."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import pytest

from llmtrail.analytics.attribution import CostQuery, cost_and_usage, models_seen, profile_usage
from llmtrail.analytics.budget_spend import month_spend
from llmtrail.analytics.budgets import make_budget
from llmtrail.analytics.errors import error_groups
from llmtrail.analytics.timeline import timeline, to_json
from llmtrail.errors import ValidationError
from llmtrail.query.dimensions import dimension_path
from llmtrail.record import InvocationRecord
from llmtrail.span import Span, SpanError
from llmtrail.store.duckdb import Database, DuckDBRecordStore, DuckDBSpanStore
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


# -- error groups and the timeline: records and the spans around them -------------------------
def _traced(records: list[InvocationRecord]) -> list[InvocationRecord]:
    """The records again, their traces shared by several calls, some in sessions."""
    out = generated_records(600)
    for i, record in enumerate(r for r in out if r.data.get("trace")):
        record.data["trace"]["traceId"] = f"{i % 40:032x}"
        if i % 3:
            record.data["trace"]["sessionId"] = f"session-{i % 15}"
    return out


def _spans(records: list[InvocationRecord]) -> list[list[Span]]:
    """Workflow → agent → tool around the calls of 30 traces, failing alike (one failure) or
    apart (two), in two batches: the second sends some spans again, changed."""
    firsts: dict[str, datetime] = {}
    for record in records:
        trace = record.data.get("trace") or {}
        at = datetime.fromisoformat(record.data["timestamp"].replace("Z", "+00:00"))
        if "traceId" in trace:
            firsts[trace["traceId"]] = min(firsts.get(trace["traceId"], at), at)
    first, again = [], []
    for n, (trace_id, at) in enumerate(sorted(firsts.items())[:30]):
        alike = SpanError("ToolError", f"tool {n % 4} failed", "Traceback ...")
        apart = SpanError("WorkflowError", "gave up", None) if n % 3 == 0 else alike
        start, end = at - timedelta(seconds=1), at + timedelta(seconds=30)
        ids = [f"{n:08x}{k:08x}" for k in range(3)]
        fails = n % 2 == 0
        steps = [("workflow", None, apart), ("agent", ids[0], alike), ("tool", ids[1], alike)]
        for (kind, parent, error), span_id in zip(steps, ids, strict=True):
            span = Span(
                trace_id, span_id, f"{kind}-{n}", start, end, kind=kind, parent_span_id=parent,
                status="ERROR" if fails else "OK", error=error if fails else None,
                session_id=f"session-{n % 15}", app=f"app-{n % 3}", workspace=WORKSPACE,
            )  # fmt: skip
            first.append(span)
            if n % 5 == 0:  # sent again, failing now
                again.append(replace(span, status="ERROR", error=alike, end=end + timedelta(1)))
    return [first, again]


@pytest.fixture(scope="module")
def traced(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[QueryEngine, QueryEngine]]:
    from llmtrail.store.clickhouse import ClickHouseDatabase, ClickHouseRecordStore
    from llmtrail.store.clickhouse.query import ClickHouseQueryEngine

    spans_module = pytest.importorskip("llmtrail.store.clickhouse.spans")
    records = _traced(generated_records(600))
    batches = _spans(records)
    db = Database(tmp_path_factory.mktemp("traced") / "llmtrail.duckdb")
    DuckDBRecordStore(db).append(records)
    url = request.getfixturevalue("clickhouse_url")
    click = ClickHouseDatabase.open(url, f"traced_{uuid.uuid4().hex[:12]}")
    ClickHouseRecordStore(click).append(records)
    for store in (DuckDBSpanStore(db), spans_module.ClickHouseSpanStore(click)):
        for batch in batches:
            store.append(batch)
    engine = ClickHouseQueryEngine(click)
    yield DuckDBQueryEngine(db), engine
    engine.close()
    click.command(f"DROP DATABASE IF EXISTS `{click.database}`")
    click.close()
    db.close()


@pytest.mark.parametrize("window", [(START, END), (START + timedelta(days=1), None), (None, None)])
def test_error_groups(
    traced: tuple[QueryEngine, QueryEngine], window: tuple[datetime | None, datetime | None]
) -> None:
    start, end = window
    groups = _both(
        traced,
        lambda e: [
            g.to_dict()
            for g in error_groups(e, workspace=WORKSPACE, start=start, end=end, limit=1000)
        ],
    )
    assert "ToolError" in {g["type"] for g in groups}
    if start in (None, START):
        assert "WorkflowError" in {g["type"] for g in groups}
    assert any("sdk" in g["sources"] and g["apps"] for g in groups)


@pytest.mark.parametrize("by", ["trace", "session"])
def test_timeline(traced: tuple[QueryEngine, QueryEngine], by: str) -> None:
    rows = _both(
        traced,
        lambda e: to_json(timeline(e, workspace=WORKSPACE, start=START, end=END, by=by, limit=60)),
    )
    assert rows["invocations"] > rows["requests"] > 0
    assert any(row["name"] for row in rows["rows"])  # spans around the calls


# -- reports ----------------------------------------------------------------------------------
def _approx(doc: Any) -> Any:
    """``doc`` with its floats compared approximately (the engines sum in their own order)."""
    if isinstance(doc, float):
        return pytest.approx(doc, rel=1e-9)
    if isinstance(doc, dict):
        return {k: _approx(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_approx(v) for v in doc]
    return doc


@pytest.mark.parametrize(
    ("name", "dimension", "tz"),
    [
        ("performance", None, "UTC"),
        ("cost", None, "America/New_York"),
        ("chargeback", None, "Europe/Paris"),
        ("chargeback", "modelId", "UTC"),
        ("chargeback", "inferenceProfile.tags.dept", "Asia/Kolkata"),
    ],
)
def test_reports(
    engines: tuple[QueryEngine, QueryEngine], name: str, dimension: str | None, tz: str
) -> None:
    from llmtrail.reports import ReportScope
    from llmtrail.reports.render import build_report, render

    scope = ReportScope(START, END, workspace=WORKSPACE, tz=tz)
    duck, click = (
        orjson.loads(render(build_report(e, name, scope, dimension=dimension, now=END), "json"))
        for e in engines
    )
    assert duck == _approx(click)
    assert duck["tables"] and any(t["rows"] for t in duck["tables"].values())


# -- Cost Explorer's line items ---------------------------------------------------------------
@pytest.mark.parametrize("unit", ["hour", "day", "month"])
def test_cost_explorer_line_items(engines: tuple[QueryEngine, QueryEngine], unit: str) -> None:
    from llmtrail.server.aws.ce_usage import UsageScope, has_records, line_items, tag_keys_in

    scope = UsageScope(WORKSPACE, START, END, unit, ("dept", "feature", "tenant_id"), "1", "r")
    items = _both(
        engines,
        lambda e: sorted(
            line_items(e, scope),
            key=lambda i: (i.bucket, sorted(i.dimensions.items()), repr(sorted(i.tags.items()))),
        ),
    )
    assert items and {i.bucket.tzinfo is not None for i in items} == {True}
    keys = _both(engines, lambda e: tag_keys_in(e, scope))
    assert {"dept", "feature", "tenant_id"} <= set(keys)
    assert _both(engines, lambda e: (has_records(e, WORKSPACE), has_records(e, "nobody"))) == (
        True,
        False,
    )
