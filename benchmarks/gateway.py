"""Part A: the latency llmtrail's gateway adds to a non-streaming chat completion.

Every target is measured in the same run, against one local OpenAI-compatible upstream
(zero delay, ~1 KB answers), by a separate load-generator process. Each (target, in-flight)
cell is split into rounds, and the targets take turns round by round (in a rotating order),
so that a noisy neighbour on the shared machine smears over all rows instead of one.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict

import orjson
from rich import box
from rich.table import Table

import procs
import spy

LOADGEN = Path(__file__).resolve().parent / "loadgen.py"
MODEL = "bench-1k"
AUTH = {"authorization": "Bearer sk-bench-not-a-real-key"}
# goals of the record path's own process (docs/record-path.md), against rows of the same run:
# added p50 within 0.15 ms of --no-record's, added p99 at most 1.5x --no-record's, added p50 at
# most half of Portkey's; CPU a record costs (all llmtrail processes) at most 250 µs; at 64 in
# flight at least 80 % of --no-record's throughput
GOAL_P50_OVER_NORECORD_MS, GOAL_P99_TIMES_NORECORD, GOAL_TIMES_PORTKEY = 0.15, 1.5, 0.5
GOAL_CPU_PER_RECORD_US, GOAL_THROUGHPUT_SHARE = 250, 0.8


@dataclass(frozen=True)
class Plan:
    inflight: tuple[int, ...]
    requests: dict[int, int]  # measured requests per in-flight level (all rounds together)
    warmup: dict[int, int]  # unmeasured requests before each round
    rounds: int


FULL = Plan((1, 64), {1: 3000, 64: 20000}, {1: 200, 64: 1000}, 3)
QUICK = Plan((1, 64), {1: 600, 64: 3000}, {1: 100, 64: 300}, 1)


@dataclass
class Target:
    name: str
    url: str  # the chat-completions endpoint
    headers: dict[str, str]
    pid: int  # the server process whose CPU time is charged to this target
    llmtrail_base: str | None = None  # set for llmtrail with logging: drained between rounds


@dataclass
class Cell:
    latencies: list[float] = field(default_factory=list)
    wall_s: float = 0.0
    errors: int = 0
    first_error: str = ""
    cpu_s: float = 0.0  # server CPU (user + system, all threads), warm-up and drain included
    served: int = 0  # requests the server handled meanwhile (warm-up included)


@dataclass
class GatewayResult:
    targets: list[Target]
    cells: dict[tuple[str, int], Cell]
    skipped: dict[str, str]  # target name -> why it was not measured
    recorded: dict[str, float]  # llmtrail (logging on) counters after the run
    profile: Path | None = None  # py-spy raw profile of llmtrail (logging on)


def request_body() -> bytes:
    """A chat request whose messages total ~1 KB."""
    system = "You are a support assistant for an online shop. " * 9
    user = "My order 4711 arrived damaged; the box was crushed and the mug inside is broken. " * 6
    return orjson.dumps(
        {
            "model": MODEL,
            "messages": [
                {"role": "system", "content": system[:450]},
                {"role": "user", "content": user[:500]},
            ],
            "temperature": 0.2,
            "max_tokens": 256,
        }
    )


class LoadResult(TypedDict):
    """What ``loadgen.py chat`` prints."""

    latencies: list[float]  # seconds, measured requests only
    wall_s: float  # duration of the measured phase
    errors: int
    error: list[str]  # the first error, if any


def load(target: Target, inflight: int, n: int, warm: int, body_file: Path) -> LoadResult:
    argv = [sys.executable, str(LOADGEN), "chat", "--url", target.url]
    argv += ["--body-file", str(body_file), "--inflight", str(inflight)]
    argv += ["--requests", str(n), "--warmup", str(warm)]
    for name, value in target.headers.items():
        argv += ["--header", f"{name}:{value}"]
    done = subprocess.run(argv, capture_output=True, check=False, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"load generator failed: {done.stderr.decode(errors='replace')[-2000:]}")
    result: LoadResult = json.loads(done.stdout)
    return result


def _round(target: Target, cell: Cell, inflight: int, n: int, warm: int, body: Path) -> None:
    """One load-generator run against ``target``, added to ``cell``."""
    cpu = procs.tree_cpu_seconds(target.pid)
    out = load(target, inflight, n, warm, body)
    if target.llmtrail_base:  # the writer's catching up is part of the cost, and must not
        procs.wait_drained(target.llmtrail_base)  # overlap the next target's round
    cell.cpu_s += procs.tree_cpu_seconds(target.pid) - cpu
    cell.served += n + warm
    cell.latencies += out["latencies"]
    cell.wall_s += out["wall_s"]
    cell.errors += out["errors"]
    if out["error"] and not cell.first_error:
        cell.first_error = str(out["error"][0])


def start_targets(workdir: Path, started: list[procs.Proc]) -> tuple[str, list[Target]]:
    """The local upstream, and llmtrail in front of it with logging on and with
    ``--no-record`` (each process added to ``started``): the upstream's URL, and the direct,
    logging-on and ``--no-record`` targets, in that order."""
    upstream, up = procs.start_upstream(workdir)
    started.append(upstream)
    rec, rec_base = procs.start_llmtrail(workdir, "llmtrail-record", upstream=up)
    started.append(rec)
    norec, norec_base = procs.start_llmtrail(
        workdir, "llmtrail-norecord", upstream=up, record=False
    )
    started.append(norec)
    path = "/v1/chat/completions"
    return up, [
        Target("direct to upstream (baseline)", up + path, AUTH, upstream.pid),
        Target("llmtrail, logging on", rec_base + path, AUTH, rec.pid, rec_base),
        Target("llmtrail, --no-record", norec_base + path, AUTH, norec.pid),
    ]


def run(workdir: Path, plan: Plan, log: procs.Log, profile: Path | None = None) -> GatewayResult:
    body_file = workdir / "chat-request.json"
    body_file.write_bytes(request_body())
    started: list[procs.Proc] = []
    skipped: dict[str, str] = {}
    with procs.stopping(started):
        up, targets = start_targets(workdir, started)
        recording = targets[1]
        assert recording.llmtrail_base is not None
        path = "/v1/chat/completions"
        portkey_name = "Portkey gateway (npm)"
        log(f"installing/starting {portkey_name} …")
        why = procs.install_portkey()
        if why is None:
            headers = {**AUTH, "x-portkey-provider": "openai", "x-portkey-custom-host": up + "/v1"}
            try:
                pk, pk_base = procs.start_portkey(workdir, up, headers)
            except (RuntimeError, TimeoutError, OSError) as exc:
                skipped[portkey_name] = f"could not start: {str(exc).splitlines()[0]}"
            else:
                started.append(pk)
                portkey_name = f"Portkey gateway {procs.portkey_version()}"
                targets.append(Target(portkey_name, pk_base + path, headers, pk.pid))
        else:
            skipped[portkey_name] = why
        for target in targets:  # first use (imports, caches) paid by no measured round
            log(f"  {target.name}: warming up")
            load(target, 8, plan.warmup[64], 0, body_file)
            if target.llmtrail_base:
                procs.wait_drained(target.llmtrail_base)
        cells: dict[tuple[str, int], Cell] = {}
        recorder = spy.Recorder(recording.pid, profile) if profile is not None else None
        for inflight in plan.inflight:
            for r in range(plan.rounds):
                total = plan.requests[inflight]  # split as evenly as whole requests allow
                per_round = total * (r + 1) // plan.rounds - total * r // plan.rounds
                order = targets[r % len(targets) :] + targets[: r % len(targets)]
                for target in order:
                    log(f"  {target.name}: {inflight} in flight, round {r + 1}/{plan.rounds}")
                    cell = cells.setdefault((target.name, inflight), Cell())
                    _round(target, cell, inflight, per_round, plan.warmup[inflight], body_file)
        recorded = procs.wait_drained(recording.llmtrail_base)
        if recorder is not None:
            recorder.stop()
    return GatewayResult(targets, cells, skipped, recorded, profile)


def percentile(sorted_values: list[float], q: int) -> float:
    """Nearest-rank percentile (``q`` in whole percent) of an ascending list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, -(-q * len(sorted_values) // 100))
    return sorted_values[rank - 1]


def table(result: GatewayResult, plan: Plan) -> Table:
    t = Table(
        title="A. Gateway added latency: POST /v1/chat/completions, non-stream, "
        "~1 KB in / ~1 KB out",
        box=box.MARKDOWN,
        title_justify="left",
    )
    t.add_column("target")
    for name in (
        "in flight",
        "requests",
        "p50 ms",
        "p99 ms",
        "req/s",
        "server CPU µs/req",
        "added p50 ms",
        "added p99 ms",
        "errors",
    ):
        t.add_column(name, justify="right")
    t.add_column("goal")
    baseline = result.targets[0].name
    for inflight in plan.inflight:
        base = sorted(result.cells[(baseline, inflight)].latencies)
        b50, b99 = percentile(base, 50), percentile(base, 99)

        norecord = _added(result, "llmtrail, --no-record", inflight, b50, b99)
        portkey = next(
            (
                _added(result, t.name, inflight, b50, b99)
                for t in result.targets
                if t.name.startswith("Portkey")
            ),
            None,
        )
        for target in result.targets:
            cell = result.cells[(target.name, inflight)]
            lat = sorted(cell.latencies)
            p50, p99 = percentile(lat, 50), percentile(lat, 99)
            is_added = target.name != baseline
            goal = ""
            mine = _added(result, target.name, inflight, b50, b99)
            if target.llmtrail_base and norecord is not None and mine is not None:
                goal = _goals(inflight, mine, norecord, portkey)
            errors = str(cell.errors) + (f" ({cell.first_error})" if cell.first_error else "")
            t.add_row(
                target.name,
                str(inflight),
                str(len(lat)),
                f"{p50 * 1000:.3f}",
                f"{p99 * 1000:.3f}",
                f"{len(lat) / cell.wall_s:,.0f}" if cell.wall_s else "-",
                f"{cell.cpu_s / cell.served * 1e6:,.0f}" if cell.served else "-",
                f"{(p50 - b50) * 1000:+.3f}" if is_added else "-",
                f"{(p99 - b99) * 1000:+.3f}" if is_added else "-",
                errors,
                goal,
            )
    for name, why in result.skipped.items():
        t.add_row(name, *["-"] * 9, f"not measured: {why}")
    m = result.recorded
    t.caption = (
        f"llmtrail (logging on) recorded: accepted {m.get('accepted', 0):.0f}, "
        f"stored {m.get('stored', 0):.0f}, dropped "
        f"{m.get('dropped_queue_full', 0) + m.get('dropped_handover_full', 0):.0f}; "
        f"{plan.rounds} round(s) per cell, targets interleaved"
    )
    t.caption_justify = "left"
    return t


def _added(
    result: GatewayResult, name: str, inflight: int, b50: float, b99: float
) -> tuple[float, float, float, float] | None:
    """(added p50 ms, added p99 ms, req/s, CPU µs a request) of a row, if it was measured."""
    found = result.cells.get((name, inflight))
    if found is None or not found.latencies:
        return None
    lat = sorted(found.latencies)
    return (
        (percentile(lat, 50) - b50) * 1000,
        (percentile(lat, 99) - b99) * 1000,
        len(lat) / found.wall_s if found.wall_s else 0.0,
        found.cpu_s / found.served * 1e6 if found.served else 0.0,
    )


def _goals(
    inflight: int,
    mine: tuple[float, float, float, float],
    norecord: tuple[float, float, float, float],
    portkey: tuple[float, float, float, float] | None,
) -> str:
    """The goal column of the logging-on row: PASS or MISS for each goal at this load."""

    def verdict(ok: bool) -> str:
        return "PASS" if ok else "MISS"

    a50, a99, rate, cpu = mine
    n50, n99, n_rate, n_cpu = norecord
    if inflight == 1:
        parts = [
            f"p50 ≤ no-record+{GOAL_P50_OVER_NORECORD_MS:g}: "
            + verdict(a50 <= n50 + GOAL_P50_OVER_NORECORD_MS),
            f"p99 ≤ {GOAL_P99_TIMES_NORECORD:g}× no-record: "
            + verdict(a99 <= GOAL_P99_TIMES_NORECORD * n99),
            f"record CPU {cpu - n_cpu:,.0f} µs ≤ {GOAL_CPU_PER_RECORD_US}: "
            + verdict(cpu - n_cpu <= GOAL_CPU_PER_RECORD_US),
        ]
        if portkey is not None:
            parts.append(
                f"p50 ≤ {GOAL_TIMES_PORTKEY:g}× Portkey's: "
                + verdict(a50 <= GOAL_TIMES_PORTKEY * portkey[0])
            )
        return "; ".join(parts)
    share = rate / n_rate if n_rate else 0.0
    return f"{share:.0%} of no-record's req/s (≥ {GOAL_THROUGHPUT_SHARE:.0%}): " + verdict(
        share >= GOAL_THROUGHPUT_SHARE
    )
