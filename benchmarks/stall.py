"""Part J: the record path stalled for 60 s under gateway load.

    .venv/bin/python benchmarks/stall.py            # 60 s stall, 8 calls in flight
    .venv/bin/python benchmarks/stall.py --stall-s 10 --inflight 4

One llmtrail server (logging on) relays chat completions to a local upstream while a load
generator keeps ``--inflight`` calls in flight. The run has three phases of equal length:
before, during a stall of the recorder process (SIGSTOP: nothing is parsed, priced, spooled
or stored; the serving process keeps handing calls over), and after it (SIGCONT). The table
compares the gateway's latency in each phase with the same load against ``--no-record`` in
the same run, and counts what was recorded: every call answered 200 must be in the store
once the recorder caught up, unless it was dropped and counted (``dropped_handover_full``).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

import procs
from gateway import AUTH, LOADGEN, request_body

PHASES = ("before", "stalled", "after")


def load(url: str, body: Path, inflight: int, seconds: float, rate: float) -> dict[str, Any]:
    """About ``seconds`` of calls at ``inflight`` (sized from the measured ``rate``)."""
    n = max(200, int(rate * seconds))
    argv = [sys.executable, str(LOADGEN), "chat", "--url", url, "--body-file", str(body)]
    argv += ["--inflight", str(inflight), "--requests", str(n), "--warmup", "0"]
    for name, value in AUTH.items():
        argv += ["--header", f"{name}:{value}"]
    done = subprocess.run(argv, capture_output=True, check=True, timeout=3600)
    result: dict[str, Any] = json.loads(done.stdout)
    result["sent"] = n
    return result


def p(latencies: list[float], q: float) -> float:
    ordered = sorted(latencies)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stall-s", type=float, default=60.0)
    parser.add_argument("--inflight", type=int, default=8)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="stall-"))
    body = work / "chat.json"
    body.write_bytes(request_body())

    def log(message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    started: list[procs.Proc] = []
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    with procs.stopping(started):
        upstream, up = procs.start_upstream(work)
        started.append(upstream)
        rec, rec_base = procs.start_llmtrail(work, "stall-record", upstream=up)
        started.append(rec)
        norec, norec_base = procs.start_llmtrail(work, "stall-norecord", upstream=up, record=False)
        started.append(norec)
        recorder = int(procs.metrics(rec_base)["recorder_pid"])
        url = "/v1/chat/completions"
        warm = load(rec_base + url, body, args.inflight, 2, 200)
        rate = len(warm["latencies"]) / warm["wall_s"]
        log(f"about {rate:,.0f} calls/s; phases of {args.stall_s:.0f} s")
        for phase in PHASES:
            for name, base in (("--no-record", norec_base), ("logging on", rec_base)):
                timer = None
                if phase == "stalled" and name == "logging on":
                    os.kill(recorder, signal.SIGSTOP)
                    timer = threading.Timer(args.stall_s, os.kill, (recorder, signal.SIGCONT))
                    timer.start()
                log(f"  {phase}: {name}")
                rows[(phase, name)] = load(base + url, body, args.inflight, args.stall_s, rate)
                if timer is not None:
                    timer.join()  # the stall lasts its whole length, even if the load ended
        drained = procs.wait_drained(rec_base, timeout=600)
    answered = sum(len(rows[(ph, "logging on")]["latencies"]) for ph in PHASES)
    answered += len(warm["latencies"])
    table = Table(
        title=f"Part J: record path stalled {args.stall_s:.0f} s (recorder SIGSTOPped), "
        f"{args.inflight} calls in flight",
        box=box.MARKDOWN,
    )
    for column in ("phase", "target", "calls", "p50 ms", "p99 ms", "errors"):
        table.add_column(column, justify="left" if column in ("phase", "target") else "right")
    for (phase, name), out in rows.items():
        lat = out["latencies"]
        table.add_row(
            phase,
            name,
            f"{len(lat):,}",
            f"{statistics.median(lat) * 1000:.2f}",
            f"{p(lat, 0.99):.2f}",
            str(out["errors"]),
        )
    Console(width=140).print(table)
    before = p(rows[("before", "logging on")]["latencies"], 0.99)
    for phase in PHASES:
        on = p(rows[(phase, "logging on")]["latencies"], 0.99)
        off = p(rows[(phase, "--no-record")]["latencies"], 0.99)
        print(f"{phase}: p99 logging on / --no-record {on / off:.2f}; vs before {on / before:.2f}")
    lost = answered - drained["stored"] - drained.get("dropped_handover_full", 0)
    print(
        f"calls answered 200 with logging on: {answered:,}; stored: {drained['stored']:,.0f}; "
        f"dropped and counted: {drained.get('dropped_handover_full', 0):,.0f}; lost: {lost:,.0f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
