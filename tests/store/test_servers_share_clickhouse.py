"""Two server runtimes on one ClickHouse (the session's chdb engine, which any number of
clients in one process share, or ``CLICKHOUSE_URL``): what one writes the other reads —
records, control-plane state, inference profiles, a revoked key — while each commits its
own spool position; a resend reaching the other server is stored once; a budget spent on
one refuses on the other; a span sent to one merges into the other's gateway call; an alarm
change notifies once. Each runtime's `SharedViews` round is run by the test (its own
schedule is set to an hour) so that what is shown does not depend on timing."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from llmtrail.analytics.budgets import make_budget
from llmtrail.config import load_settings
from llmtrail.record import InvocationRecord
from llmtrail.security.keys import KeySpec
from llmtrail.server.alarms_api import build_alerting
from llmtrail.server.runtime import Runtime
from llmtrail.store.interfaces import RecordQuery
from tests.alerts.receivers import WebhookReceiver
from tests.store.conftest import store_url
from tests.wall_clock import wait_out_month_end

SECRET_VARIABLE = "LLMTRAIL_TEST_SHARED_SECRET"


@pytest.fixture
def servers(
    clickhouse_url: str,
    clickhouse_database: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[Runtime, Runtime]]:
    url, env = store_url(clickhouse_url, clickhouse_database)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv(SECRET_VARIABLE, secrets.token_urlsafe(48))  # one secret, as documented
    settings = {
        "LLMTRAIL_STORE__URL": url,
        "LLMTRAIL_SERVER__SECRET_ENV": SECRET_VARIABLE,
        "LLMTRAIL_STORE__REFRESH_S": "3600",  # the tests run each round themselves
        "LLMTRAIL_ALERTS__ALLOW_PRIVATE_WEBHOOKS": "true",
    }
    runtimes: list[Runtime] = []
    try:
        for name in ("a", "b"):
            runtime = Runtime(
                load_settings(
                    None, env={**env, **settings}, overrides={"data_dir": tmp_path / name}
                )
            )
            runtimes.append(runtime)
            runtime.start()
        yield runtimes[0], runtimes[1]
    finally:
        for runtime in runtimes:
            runtime.close()


def test_what_one_server_writes_the_other_reads(servers: tuple[Runtime, Runtime]) -> None:
    a, b = servers
    assert a.stores.engine in ("chdb", "clickhouse") and a.db.available
    record = InvocationRecord.from_dict(
        {
            "requestId": f"shared-{secrets.token_hex(4)}",
            "timestamp": datetime.now(UTC).isoformat(),
            "modelId": "sim/a",
            "input": {"inputTokenCount": 7},
        }
    )
    fresh, stored = a.pipeline.ingest([record])
    assert fresh == [True]
    stored.result(timeout=30)
    seen = _eventually(lambda: b.records.get(record.request_id))
    assert seen is not None and seen.data["input"]["inputTokenCount"] == 7
    # each server its own spool position (written just after the batch it covers)
    assert _eventually(a.records.committed_position) is not None
    assert b.records.committed_position() is None

    profile = a.profiles.create("shared-team", "sim/a", tags={"dept": "claims"})
    assert b.profiles.get(profile.arn).name == "shared-team"
    a.state.put("notes", "k", {"v": 1})
    assert b.state.get("notes", "k") == {"v": 1}


def test_a_key_revoked_on_one_server_stops_working_on_the_other(
    servers: tuple[Runtime, Runtime],
) -> None:
    a, b = servers
    issued = a.keys.create(KeySpec(role="reader", name="shared"))
    assert _eventually(lambda: b.keys.authenticate(issued.key, "test")) is not None
    a.keys.revoke(issued.id)
    assert a.keys.authenticate(issued.key, "test") is None
    gone = _eventually(lambda: b.keys.authenticate(issued.key, "test") is None or None)
    assert gone is True  # within [server] key_refresh_s


def _record(request_id: str, source: str = "import", **doc: Any) -> InvocationRecord:
    return InvocationRecord.from_dict(
        {
            "requestId": request_id,
            "timestamp": datetime.now(UTC).isoformat(),
            "modelId": "sim/a",
            "input": {"inputTokenCount": 7},
            **doc,
        },
        source=source,
    )


def _ingest(runtime: Runtime, *records: InvocationRecord) -> list[bool]:
    """Ingest on ``runtime`` and wait until its writer has stored the batch."""
    before = runtime.pipeline.counters.batches
    fresh, spooled = runtime.pipeline.ingest(list(records))
    spooled.result(timeout=30)
    if any(fresh):
        assert _eventually(lambda: runtime.pipeline.counters.batches > before or None)
    return fresh


def _count(runtime: Runtime, request_id: str) -> int:
    page = runtime.records.find(RecordQuery(limit=1000, with_bodies=False))
    return sum(1 for r in page.records if r.request_id == request_id)


def test_a_resend_to_the_other_server_is_stored_once(servers: tuple[Runtime, Runtime]) -> None:
    a, b = servers
    first = f"resend-{secrets.token_hex(4)}"
    assert _ingest(a, _record(first)) == [True]
    # before b's round: b takes the resend, but its writer finds the record stored and skips it
    assert _ingest(b, _record(first)) == [True]
    assert b.pipeline.counters.duplicates_elsewhere == 1
    assert _count(a, first) == 1
    # after b's round, b knows the record and answers duplicate at once
    second = f"resend-{secrets.token_hex(4)}"
    assert _ingest(a, _record(second)) == [True]
    assert b.shared_views is not None and b.shared_views.refresh() >= 2
    assert _ingest(b, _record(second)) == [False]
    assert _count(b, second) == 1
    # what each server stores itself is never held back
    third = f"resend-{secrets.token_hex(4)}"
    assert _ingest(b, _record(third)) == [True] and _count(a, third) == 1


def test_a_budget_spent_on_one_server_refuses_on_the_other(
    servers: tuple[Runtime, Runtime],
) -> None:
    a, b = servers
    wait_out_month_end(timedelta(seconds=30))  # spent and refused in one month
    team = f"team-{secrets.token_hex(3)}"
    a.budgets.put(make_budget("requestMetadata.team", team, "0.50", action="refuse"))
    call = {"workspace": "default", "modelId": "sim/a", "requestMetadata": {"team": team}}
    assert b.budget_guard.check(call) is None  # b has not heard of the budget yet
    cost = {"totalUsd": "0.75", "inputUsd": "0.25", "outputUsd": "0.50"}
    _ingest(a, _record(f"spend-{team}", requestMetadata={"team": team}, cost=cost))
    assert a.shared_views is not None and b.shared_views is not None
    b.shared_views.refresh()
    refusal = b.budget_guard.check(call)
    assert refusal is not None and refusal.spent_usd == Decimal("0.75")
    assert refusal.budget == f"requestMetadata.team={team}"


def test_a_span_sent_to_one_server_merges_into_the_others_gateway_call(
    servers: tuple[Runtime, Runtime],
) -> None:
    a, b = servers
    trace_id, parent = secrets.token_hex(16), secrets.token_hex(8)
    gateway = _record(
        f"gw-{trace_id[:8]}",
        trace={"traceId": trace_id, "spanId": secrets.token_hex(8), "parentSpanId": parent},
        responseId=f"chatcmpl-{trace_id[:12]}",
        source="gateway",
    )
    _ingest(a, gateway)
    span = {"trace": {"traceId": trace_id, "spanId": parent}}
    by_response = {"responseId": f"chatcmpl-{trace_id[:12]}"}
    assert b.call_index.match(span, "default") is None
    assert b.shared_views is not None and b.shared_views.refresh() >= 1
    found = b.call_index.match(span, "default")
    assert found is not None and (found.request_id, found.trace_id, found.by) == (
        gateway.request_id,
        trace_id,
        "parent",
    )
    again = b.call_index.match(by_response, "default")
    assert again is not None and again.request_id == gateway.request_id


def test_an_alarm_change_notifies_once_whichever_servers_evaluate(
    servers: tuple[Runtime, Runtime],
) -> None:
    a, b = servers
    with WebhookReceiver() as hook:
        first, second = build_alerting(a), build_alerting(b)
        first.notifiers.put("hook", {"type": "webhook", "url": hook.url})
        marker = f"alarm-{secrets.token_hex(4)}"
        first.put_alarm(
            "errors",
            {
                "Query": f'filter requestMetadata.run = "{marker}" | stats count(*)',
                "Period": 300,
                "EvaluationPeriods": 1,
                "Threshold": 3,
                "ComparisonOperator": "GreaterThanOrEqualToThreshold",
                "AlarmActions": ["hook"],
            },
        )
        _ingest(a, *(_record(f"{marker}-{i}", requestMetadata={"run": marker}) for i in range(4)))
        now = datetime.now(UTC) + timedelta(seconds=1)
        ticks = [first.tick(now), second.tick(now), second.tick(now), first.tick(now)]
        assert ticks.count(True) == 2 and ticks[0] is True  # the lease holder, twice
        assert second.describe_alarms()[0]["StateValue"] == "ALARM"  # b reads a's state
        assert len(hook.posts) == 1
        first.lease.release()
        later = now + timedelta(seconds=1)
        assert second.tick(later) is True and len(hook.posts) == 1  # no change, no message


def _eventually(read: object, timeout: float = 20.0) -> object:
    """``read()`` once it is not None (another server's view refreshes on its own)."""
    assert callable(read)
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if value is not None or time.monotonic() > deadline:
            return value
        time.sleep(0.1)
