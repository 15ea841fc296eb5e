"""``llmtrail demo`` end to end against a running server: the control-plane state first, then
history (``POST /api/records`` and ``/v1/traces`` in batches) and live traffic (the gateway)
at the same time, a wait until the server has stored what it accepted, the budgets sized from
what was spent, and a `Tally` of what was sent.

History is rendered in a thread, batch by batch, so the event loop keeps the live calls'
timing; both share one progress bar (rich, on stderr, so ``--format json`` stays clean).
"""

from __future__ import annotations

import asyncio
import re
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from llmtrail.demo import control
from llmtrail.demo.backfill import Backfill
from llmtrail.demo.history import Account, ndjson
from llmtrail.demo.live import LiveSender
from llmtrail.demo.plan import Plan, Unit, calls_of, make_plan
from llmtrail.demo.spans import RunSpans, export_json

BATCH_RECORDS = 500
SETTLE_TIMEOUT_S = 60.0
_METRIC_LINE = re.compile(r"^llmtrail_pipeline_([a-z_]+) ([0-9.e+]+)$")


@dataclass
class Tally:
    """What the demo sent and how the server answered."""

    url: str
    planned: dict[str, int]
    live: Counter[str] = field(default_factory=Counter)  # route → calls
    live_errors: Counter[str] = field(default_factory=Counter)  # route → error answers
    throttles: int = 0
    history_stored: int = 0
    history_rejected: int = 0
    spans_sent: int = 0
    warnings: list[str] = field(default_factory=list)
    budgets: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "plan": self.planned,
            "live": dict(sorted(self.live.items())),
            "liveErrors": dict(sorted(self.live_errors.items())),
            "liveThrottles": self.throttles,
            "historyStored": self.history_stored,
            "historyRejected": self.history_rejected,
            "spansSent": self.spans_sent,
            "budgets": [
                {k: b.get(k) for k in ("name", "limitUsd", "spentUsd", "percentUsed")}
                for b in self.budgets
            ],
            "warnings": self.warnings,
            "seconds": round(self.seconds, 1),
        }


def run_demo(url: str, calls: int, days: float, seed: int, console: Console | None = None) -> Tally:
    """Fill the server at ``url``: ``calls`` live calls and ``days`` of history."""
    began = time.monotonic()
    api = control.Api(url)
    plan = make_plan(seed, calls, days, datetime.now(UTC))
    tally = Tally(url.rstrip("/"), plan.counts())
    profiles: dict[str, dict[str, Any]] = {}
    for step in (control.put_prices, control.put_saved_queries):
        _guarded(tally, step.__name__, step, api)
    profiles = _guarded(tally, "profiles", control.ensure_profiles, api) or {}
    arns = {name: p["arn"] for name, p in profiles.items()}
    backfill = Backfill(
        arns,
        {name: p["tags"] for name, p in profiles.items()},
        Account.from_arn(next(iter(arns.values()), None)),
    )
    console = console or Console(stderr=True)
    columns = (
        TextColumn("{task.description:<8}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        asyncio.run(_send(url, plan, backfill, arns, tally, progress))
    _guarded(tally, "settle", _settle, url)
    tally.budgets = _guarded(tally, "budgets", control.put_budgets, api) or []
    tally.seconds = time.monotonic() - began
    return tally


def _guarded(tally: Tally, what: str, step: Any, *args: Any) -> Any:
    """A control-plane step whose failure is a warning in the summary, not the demo's end."""
    try:
        return step(*args)
    except Exception as exc:  # reported, and the traffic still goes
        tally.warnings.append(f"{what}: {control.readable(exc)}")
        return None


async def _send(
    url: str,
    plan: Plan,
    backfill: Backfill,
    profiles: dict[str, str],
    tally: Tally,
    progress: Progress,
) -> None:
    history_total = sum(len(calls_of(u)) for u in plan.history)
    live_total = sum(len(calls_of(u)) for u in plan.live)
    past = progress.add_task("history", total=history_total)
    now = progress.add_task("live", total=live_total)

    def done(route: str, status: int) -> None:
        tally.live[route] += 1
        if status >= 400:
            tally.live_errors[route] += 1
        tally.throttles += status == 429
        progress.advance(now)

    sender = LiveSender(url, profiles, done)
    await asyncio.gather(
        _history(url, plan.history, backfill, tally, progress, past), sender.send_all(plan.live)
    )
    tally.warnings += [f"live spans: {e}" for e in sender.span_errors]
    tally.spans_sent += sender.spans_sent


async def _history(
    url: str,
    units: list[Unit],
    backfill: Backfill,
    tally: Tally,
    progress: Progress,
    task: Any,
) -> None:
    timeout = aiohttp.ClientTimeout(total=300)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        for batch in _batches(units):
            docs, runs = await asyncio.to_thread(_render, backfill, batch)
            headers = {"content-type": "application/x-ndjson"}
            async with http.post(url + "/api/records", data=ndjson(docs), headers=headers) as r:
                answer = await r.read()
                if r.status >= 400:
                    tally.warnings.append(f"history: HTTP {r.status} {answer[:300]!r}")
                else:
                    summary = orjson.loads(answer)
                    tally.history_stored += summary.get("stored", 0)
                    tally.history_rejected += summary.get("rejected", 0)
                    _first_rejection(tally, summary)
            if runs:
                body = orjson.dumps(export_json(runs))
                headers = {"content-type": "application/json"}
                async with http.post(url + "/v1/traces", data=body, headers=headers) as r:
                    if r.status >= 400:
                        tally.warnings.append(f"history spans: HTTP {r.status}")
                    else:
                        tally.spans_sent += sum(len(run.spans) for run in runs)
            progress.advance(task, len(docs))


def _batches(units: list[Unit]) -> list[list[Unit]]:
    out: list[list[Unit]] = [[]]
    size = 0
    for unit in units:
        if size >= BATCH_RECORDS:
            out.append([])
            size = 0
        out[-1].append(unit)
        size += len(calls_of(unit))
    return [b for b in out if b]


def _render(backfill: Backfill, units: list[Unit]) -> tuple[list[dict[str, Any]], list[RunSpans]]:
    docs: list[dict[str, Any]] = []
    runs: list[RunSpans] = []
    for unit in units:
        unit_docs, unit_runs = backfill.render(unit)
        docs += unit_docs
        runs += unit_runs
    return docs, runs


def _first_rejection(tally: Tally, summary: dict[str, Any]) -> None:
    for result in summary.get("results", []):
        if result.get("status") == "rejected":
            tally.warnings.append(f"history record rejected: {result}")
            return


def _settle(url: str) -> None:
    """Wait until the server stored everything its pipeline accepted (so budgets see it)."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while True:
        with urllib.request.urlopen(url.rstrip("/") + "/metrics", timeout=30) as response:
            text = response.read().decode()
        m = {}
        for line in text.splitlines():
            found = _METRIC_LINE.match(line)
            if found:
                m[found[1]] = float(found[2])
        settled = m.get("queue_depth", 0) == 0 and m.get("stored", 0) >= m.get("spooled", 0)
        if settled or time.monotonic() > deadline:
            return
        time.sleep(0.1)
