"""One ingested record never breaks the server for later callers, nor loses their records.

Against a running ``llmtrail serve``: money with more than 9 decimal places, or above
1,000,000 USD, durations above 2,147,483,647 ms and token counts above 2,147,483,647 are
refused at ingest, naming the field and the limit; a record sent right after such a record
is stored; and records at every limit, many of them, still leave the cost, report, budget,
trace, timeline and query surfaces answering 200.

Then a data directory holding records stored before money was bounded (sums past
DECIMAL(38, 9)) and a refusing budget: the server starts, is ready, and the budget is
listed, refusing, and can be replaced.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from llmtrail.analytics.budgets import Budget, BudgetService, make_budget
from llmtrail.config import load_settings
from llmtrail.record import InvocationRecord, format_timestamp
from llmtrail.server.runtime import Runtime
from llmtrail.store.duckdb import Database, DuckDBRecordStore, DuckDBStateStore
from llmtrail.store.memory import MemoryStateStore
from tests.harness import ServerProcess, call
from tests.wall_clock import month_start, wait_out_month_end

NOW = datetime.now(UTC).replace(microsecond=0)
INT_MAX = 2_147_483_647  # the limit of every integer of a record
HUGE_USD = "9999999999999999999999999999"  # below 10^29: accepted before money was bounded
TENANT = "requestMetadata.tenant_id"


def this_months_minute_ago() -> str:
    """A minute ago, or the first instant of this month if that is later: a record's
    timestamp a budget counts this month, in a month that goes on for at least another
    minute (its last minute is waited out), long enough for a test to check its budget."""
    now = wait_out_month_end(timedelta(seconds=60))
    return format_timestamp(max(now - timedelta(minutes=1), month_start(now)))


def doc(request_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "timestamp": format_timestamp(NOW - timedelta(minutes=1)),
        "requestId": request_id,
        "modelId": "sim/x",
        **extra,
    }


def ingest(url: str, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    status, answer = call(url, "POST", "/api/records", docs)
    assert status == 200, answer
    return answer["results"]  # type: ignore[no-any-return]


def rejected(result: dict[str, Any], field: str, *limit: str) -> None:
    assert result["status"] == "rejected" and result["field"] == field, result
    for text in limit:
        assert text in result["reason"], result


def settle(server: ServerProcess, *request_ids: str) -> None:
    for request_id in request_ids:
        server.wait_for_record(request_id)
    metrics = server.settle()
    assert metrics["dead_lettered"] == 0 and metrics["thread_failures"] == 0, metrics


def answers(url: str, *paths: str) -> None:
    for path in paths:
        status, answer = call(url, "GET", path)
        assert status == 200, (path, answer)
    assert call(url, "GET", "/readyz")[0] == 200


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with ServerProcess(tmp_path_factory.mktemp("record-poisoning") / "data") as proc:
        yield proc


def test_money_past_nine_places_is_refused_and_the_next_caller_is_stored(
    server: ServerProcess,
) -> None:
    """The probe's sequence: a poisoned record, then ~100 ms later an innocent one."""
    (poison,) = ingest(server.url, [doc("poison", cost={"totalUsd": "0.0000000001"})])
    rejected(poison, "cost.totalUsd", "9 decimal places")
    time.sleep(0.1)
    (innocent,) = ingest(server.url, [doc("innocent-1")])
    assert innocent["status"] == "stored"
    settle(server, "innocent-1")
    (again,) = ingest(server.url, [doc("innocent-1")])
    assert again["status"] == "duplicate"  # stored once, and only once


def test_huge_costs_are_refused_and_costs_at_the_limit_sum(server: ServerProcess) -> None:
    tenant = {"tenant_id": "ovf"}
    huge = [doc(f"ovf-{i}", requestMetadata=tenant, cost={"totalUsd": HUGE_USD}) for i in range(11)]
    for result in ingest(server.url, huge):
        rejected(result, "cost.totalUsd", "1,000,000 USD")
    (negative,) = ingest(server.url, [doc("ovf-neg", cost={"inputUsd": "-1000000.000000001"})])
    rejected(negative, "cost.inputUsd", "1,000,000 USD")
    top = {k: "1000000" for k in ("inputUsd", "outputUsd", "totalUsd")}
    this_month = this_months_minute_ago()  # the budget sums this month's records
    fine = [
        doc(f"max-{i}", requestMetadata=tenant, cost=top, timestamp=this_month) for i in range(200)
    ]
    assert {r["status"] for r in ingest(server.url, fine)} == {"stored"}
    settle(server, "max-199")
    budget = {"dimension": TENANT, "value": "ovf", "limitUsd": "100", "action": "refuse"}
    status, answer = call(server.url, "PUT", "/api/budgets", budget)
    assert status == 200, answer
    assert answer["refusing"] is True and answer["spentUsd"].startswith("200000000")
    answers(
        server.url,
        f"/api/cost?by={TENANT}",
        "/api/reports/cost",
        "/api/reports/chargeback",
        "/api/budgets",
    )
    status, listed = call(server.url, "GET", "/api/budgets")
    assert [b["refusing"] for b in listed["budgets"]] == [True]


def test_durations_past_the_limit_are_refused_and_traces_read_at_the_limit(
    server: ServerProcess,
) -> None:
    trace_id = "a" * 32
    for field in ("latencyMs", "timeToFirstTokenMs"):
        (result,) = ingest(server.url, [doc(f"lat-{field}", **{field: 2**63 - 1})])
        rejected(result, field, f"{INT_MAX:,}")
    spans = [
        doc(
            f"lat-max-{i}",
            latencyMs=INT_MAX,
            timeToFirstTokenMs=INT_MAX,
            trace={"traceId": trace_id, "spanId": f"{i + 1:016x}"},
        )
        for i in range(3)
    ]
    assert {r["status"] for r in ingest(server.url, spans)} == {"stored"}
    settle(server, "lat-max-2")
    answers(server.url, "/api/traces", "/api/timeline", f"/api/traces/{trace_id}")


def test_token_counts_past_the_limit_are_refused_and_sums_at_the_limit_fit(
    server: ServerProcess,
) -> None:
    (result,) = ingest(server.url, [doc("tok-huge", input={"inputTokenCount": 2**63 - 1})])
    rejected(result, "input.inputTokenCount", f"{INT_MAX:,}")
    (result,) = ingest(server.url, [doc("tok-out", output={"outputTokenCount": INT_MAX + 1})])
    rejected(result, "output.outputTokenCount", f"{INT_MAX:,}")
    counts = {
        "input": {
            "inputTokenCount": INT_MAX,
            "cacheReadInputTokenCount": INT_MAX,
            "cacheWriteInputTokenCount": INT_MAX,
        },
        "output": {"outputTokenCount": INT_MAX},
    }
    many = [doc(f"tok-max-{i}", **counts) for i in range(300)]
    assert {r["status"] for r in ingest(server.url, many)} == {"stored"}
    settle(server, "tok-max-299")
    answers(server.url, "/api/cost", "/api/cost?by=modelId&granularity=DAILY")
    status, answer = call(
        server.url,
        "POST",
        "/api/query",
        {
            "queryString": 'filter @requestId like "tok-max-" '
            "| stats sum(input.inputTokenCount) as n, count(*) as c",
            "since": "1d",
        },
    )
    assert status == 200, answer
    row = {c["field"]: c["value"] for c in answer["results"][0]}
    assert (int(row["n"]), int(row["c"])) == (300 * INT_MAX, 300)


def test_a_data_dir_with_overflowing_sums_starts_ready_with_its_budget(tmp_path: Path) -> None:
    """Records stored before money was bounded, whose sum is past DECIMAL(38, 9), and a
    refusing budget over them: the server starts, answers /readyz 200, lists the budget as
    refusing, and a PUT replaces it."""
    data = tmp_path / "data"
    data.mkdir()
    this_month = this_months_minute_ago()  # the budget refuses on this month's spend
    db = Database(data / "llmtrail.duckdb")
    try:
        legacy = [
            InvocationRecord(
                {
                    **doc(f"legacy-{i}", requestMetadata={"tenant_id": "ovf"}),
                    "timestamp": this_month,
                    "recordId": f"0190a000-0000-7000-8000-{i:012d}",
                    "workspace": "default",
                    "cost": {"totalUsd": HUGE_USD},
                }
            )
            for i in range(11)
        ]
        DuckDBRecordStore(db).append(legacy)
        budget = {"name": "ovf", "dimension": TENANT, "value": "ovf", "limitUsd": "100"}
        budget["action"] = "refuse"
        DuckDBStateStore(db).put("budgets", "ovf", budget)
    finally:
        db.close()
    with ServerProcess(data) as proc:
        assert "did not start" not in proc.log()
        status, listed = call(proc.url, "GET", "/api/budgets")
        assert status == 200, listed
        assert [b["refusing"] for b in listed["budgets"]] == [True]
        status, answer = call(proc.url, "PUT", "/api/budgets", {**budget, "limitUsd": "200"})
        assert status == 200 and answer["limitUsd"] == "200" and answer["refusing"], answer
        assert call(proc.url, "GET", "/readyz")[0] == 200
        (innocent,) = ingest(proc.url, [doc("after-legacy")])
        assert innocent["status"] == "stored"
        proc.wait_for_record("after-legacy")


def test_a_start_that_fails_once_the_pipeline_runs_leaves_it_not_ready(tmp_path: Path) -> None:
    """The log says /readyz stays 503 when the start failed: the pipeline stops accepting."""
    runtime = Runtime(load_settings(None, env={}, overrides={"data_dir": str(tmp_path)}))

    def broken() -> dict[str, float]:
        raise RuntimeError("failed after the pipeline started")

    runtime.pipeline.stats = broken  # type: ignore[method-assign]
    try:
        with pytest.raises(RuntimeError, match="after the pipeline started"):
            runtime.start()
        assert not runtime.pipeline.ready.is_set()
    finally:
        runtime.close()


def test_a_budget_whose_spend_cannot_be_summed_is_not_saved() -> None:
    """``on_change`` (the guard, with this month's spend) sees a budget before it is saved:
    when it fails nothing is saved; when saving fails it is told the budgets as they are."""
    seen: list[list[str]] = []
    fail = [True]

    def on_change(budgets: list[Budget]) -> None:
        if fail[0]:
            raise OverflowError("Overflow in HUGEINT addition")
        seen.append([b.name for b in budgets])

    state = MemoryStateStore()
    service = BudgetService(state, on_change=on_change)
    budget = make_budget(TENANT, "ovf", "100", action="refuse")
    with pytest.raises(OverflowError):
        service.put(budget)
    assert service.all() == []
    fail[0] = False
    service.put(budget)
    assert service.all() == [budget] and seen == [[budget.name]]

    def broken_put(namespace: str, key: str, value: Any) -> None:
        raise OSError("disk full")

    state.put = broken_put  # type: ignore[method-assign]
    with pytest.raises(OSError):
        service.put(make_budget(TENANT, "other", "5"))
    assert seen[-1] == [budget.name]  # the guard is back to what is saved
