"""``llmtrail demo`` against real servers: what it says it sent is what the query, traces,
cost, profiles and budgets APIs find, with the variety every page needs; the same seed sends
the same plan; and with no server running it starts one on the data directory (and runs with
no provider SDK importable)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from llmtrail.demo import make_plan
from llmtrail.demo.cast import ROUTES
from tests.harness import ServerProcess, call
from tests.wall_clock import wait_out_month_end

CALLS = 40
DAYS = 2
SEED = 3
# Run the CLI with the provider SDKs unimportable: the demo must work with the server extra.
_NO_SDKS = """
import sys
class _Blocked:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("openai", "anthropic", "boto3"):
            raise ImportError(f"{name} is not installed here")
sys.meta_path.insert(0, _Blocked())
from llmtrail.cli import main
sys.exit(main(sys.argv[1:]))
"""


def demo(*args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", _NO_SDKS, "demo", *args, "--format", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "120"},
    )
    assert done.returncode == 0, done.stderr
    tally: dict[str, Any] = json.loads(done.stdout)
    assert tally["warnings"] == [], tally["warnings"]
    return tally


def query(server: ServerProcess, text: str, since: str = "7d", **more: Any) -> list[dict[str, Any]]:
    """Rows of ``text`` over the last ``since``, or between ``startTime`` and ``endTime``
    when given (the API refuses both at once)."""
    window = more if "startTime" in more else {"since": since, **more}
    status, answer = call(server.url, "POST", "/api/query", {"queryString": text, **window})
    assert status == 200 and answer["status"] == "Complete", answer
    return [{c["field"]: c["value"] for c in row} for row in answer["results"]]


def counts(rows: list[dict[str, Any]], key: str, value: str = "n") -> dict[str, int]:
    return {row[key]: int(row[value]) for row in rows}


@pytest.fixture(scope="module")
def filled(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ServerProcess, dict[str, Any]]]:
    root = tmp_path_factory.mktemp("demo")
    with ServerProcess(root / "data") as server:
        # the demo sizes its budgets from this month's spend, which the budgets test reads
        # back seconds later: in the same month
        wait_out_month_end(timedelta(seconds=60))
        tally = demo(
            "--url", server.url, "--calls", str(CALLS), "--days", str(DAYS), "--seed", str(SEED)
        )
        server.settle()
        yield server, tally


def test_what_the_demo_says_it_sent_is_stored(filled: tuple[ServerProcess, dict[str, Any]]) -> None:
    server, tally = filled
    assert sum(tally["live"].values()) == CALLS
    assert tally["historyStored"] == tally["plan"]["history records"] == CALLS * DAYS * 2
    by_source = counts(query(server, "stats count(*) as n by source"), "source")
    assert by_source == {"gateway": CALLS, "ingest": tally["historyStored"]}

    operations: dict[str, int] = {}
    for route, n in tally["live"].items():
        operations[ROUTES[route][1]] = operations.get(ROUTES[route][1], 0) + n
    live_ops = query(server, "filter source = 'gateway' | stats count(*) as n by operation")
    assert counts(live_ops, "operation") == operations
    all_ops = counts(query(server, "stats count(*) as n by operation"), "operation")
    assert set(all_ops) == {op for _, op, _ in ROUTES.values()}  # every wire format and operation

    errors = query(
        server, "filter source = 'gateway' and status = 'ERROR' | stats count(*) as n by errorCode"
    )
    assert sum(counts(errors, "errorCode").values()) == sum(tally["liveErrors"].values())
    assert counts(errors, "errorCode").get("ThrottlingException", 0) == tally["liveThrottles"]
    every_error = counts(
        query(server, "filter status = 'ERROR' | stats count(*) as n by errorCode"), "errorCode"
    )
    assert every_error["ThrottlingException"] >= 1
    assert every_error["ResourceNotFoundException"] >= 1  # the model id that does not exist
    assert every_error["InternalServerException"] >= 1


def test_variety_for_every_page(filled: tuple[ServerProcess, dict[str, Any]]) -> None:
    server, _ = filled
    apps = counts(
        query(server, "stats count(*) as n by requestMetadata.application_name"),
        "requestMetadata.application_name",
    )
    assert len(apps) >= 3 and None not in apps
    for key in ("tenant_id", "team", "cost_center", "variant"):
        assert len(query(server, f"stats count(*) by requestMetadata.{key}")) >= 2, key

    streams = counts(
        query(server, "filter ispresent(timeToFirstTokenMs) | stats count(*) as n by operation"),
        "operation",
    )
    assert {
        "ChatCompletions",
        "Messages",
        "ConverseStream",
        "InvokeModelWithResponseStream",
    } <= set(streams)
    session_only = query(
        server,
        "filter ispresent(trace.sessionId) and not ispresent(trace.traceId)"
        " | stats count(*) as n by source",
    )
    assert counts(session_only, "source").get("gateway", 0) >= 1
    slow = query(server, "filter latencyMs > 2000 | stats count(*) as n")
    assert int(slow[0]["n"]) >= 1

    now = datetime.now(UTC)
    old = query(server, "stats count(*) as n", startTime=(now - timedelta(days=3)).isoformat(),
                endTime=(now - timedelta(days=1)).isoformat())  # fmt: skip
    assert int(old[0]["n"]) >= 1

    tool_traces = 0
    for summary in server.get(
        "/api/traces?limit=100&start=" + (now - timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    )["traces"]:
        spans = server.get(f"/api/traces/{summary['traceId']}")["spans"]
        kinds = {s["spanKind"] for s in spans}
        tools = [s for s in spans if s["spanKind"] == "tool"]
        if tools and "agent" in kinds and "llm" in kinds:
            assert all(t["input"] is not None and t["output"] is not None for t in tools)
            tool_traces += 1
    assert tool_traces >= 2


def test_cost_profiles_and_budgets(filled: tuple[ServerProcess, dict[str, Any]]) -> None:
    server, tally = filled
    cost = server.get("/api/cost?by=requestMetadata.cost_center&granularity=MONTHLY")
    centers = {
        g["keys"][0]
        for period in cost["resultsByTime"]
        for g in period["groups"]
        if float(g["metrics"]["costUsd"]) > 0
    }
    assert len(centers) >= 3
    profiles = server.get("/api/profiles?typeEquals=APPLICATION")["inferenceProfileSummaries"]
    assert {p["inferenceProfileName"] for p in profiles} >= {"claims-agent-prod", "search-prod"}
    tagged = query(
        server,
        "filter ispresent(inferenceProfile.arn)"
        " | stats count(*) as n by inferenceProfile.tags.cost_center",
    )
    assert len(tagged) >= 1
    budgets = {b["name"]: b for b in server.get("/api/budgets")["budgets"]}
    assert len(budgets) == len(tally["budgets"]) == 3
    assert any(80 <= b["percentUsed"] < 100 for b in budgets.values())  # one near its limit


def test_the_same_seed_sends_the_same_plan(filled: tuple[ServerProcess, dict[str, Any]]) -> None:
    server, first = filled
    again = demo(
        "--url", server.url, "--calls", str(CALLS), "--days", str(DAYS), "--seed", str(SEED)
    )
    assert again["plan"] == first["plan"]
    assert again["live"] == first["live"]
    now = datetime(2026, 12, 1, 12, tzinfo=UTC)
    assert make_plan(SEED, CALLS, DAYS, now) == make_plan(SEED, CALLS, DAYS, now)
    assert make_plan(SEED, CALLS, DAYS, now) != make_plan(SEED + 1, CALLS, DAYS, now)
    later = now + timedelta(hours=7, minutes=13)  # another time of day: the same calls
    assert (
        make_plan(SEED, CALLS, DAYS, later).counts() == make_plan(SEED, CALLS, DAYS, now).counts()
    )


def test_with_no_server_it_starts_one_on_the_data_directory(tmp_path: Path) -> None:
    data = tmp_path / "data"
    tally = demo("--data-dir", str(data), "--calls", "12", "--days", "0.5", "--seed", "5")
    assert not (data / "server.json").exists()  # the demo's server is gone
    with ServerProcess(data) as server:
        stored = counts(query(server, "stats count(*) as n by source", since="2d"), "source")
        assert stored == {"gateway": 12, "ingest": tally["historyStored"]}


@pytest.mark.parametrize("hours", [0, 7, 13, 20, 31, 50, 100, 130])
def test_history_reaches_the_last_hour_at_any_time_of_the_week(hours: int) -> None:
    """History fills ``[now - days, now - 1h)``: its newest call is within a few hours of the
    end, whatever the day and hour (the quietest hours hold a few calls an hour)."""
    now = datetime(2026, 12, 6, 7, 0, tzinfo=UTC) + timedelta(hours=hours)
    plan = make_plan(1, 300, 7, now)

    def start(unit: Any) -> datetime:
        return unit.at if hasattr(unit, "at") else unit.turns[0].at

    times = [start(u) for u in plan.history]
    assert min(times) >= now - timedelta(days=7)
    assert max(times) < now - timedelta(hours=1)
    assert max(times) > now - timedelta(hours=3)
