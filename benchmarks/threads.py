"""Where a gateway call's CPU goes, thread by thread, in the running servers.

    .venv/bin/python benchmarks/threads.py                        # 4,000 calls at 1 in flight
    .venv/bin/python benchmarks/threads.py --calls 10000 --inflight 64

`stages.py` times each stage of the record path in a tight loop. This runs the servers as part
A does (the local OpenAI-compatible upstream; ``llmtrail serve`` with logging on, and with
``--no-record``), sends each the same calls, waits until the recording server has stored them
all, and reads the CPU ticks of every thread of the serving process and of its children (the
recorder) from ``/proc/<pid>/task`` before and after: CPU µs a call, per thread. Threads are
named as Python names them when py-spy is installed (``py-spy dump``), otherwise by their
kernel name and id. Linux only.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from rich import box
from rich.console import Console
from rich.table import Table

import gateway
import procs
import spy
from llmtrail.threads import thread_ids

_DUMPED = re.compile(r'^Thread (\d+) \([^)]*\): "([^"]*)"', re.MULTILINE)


def thread_ticks(pid: int) -> dict[int, tuple[str, float]]:
    """Each thread of ``pid``: its kernel name and its CPU seconds (user + system)."""
    out = {}
    for tid in thread_ids(pid):
        stat = procs.stat_of(f"/proc/{pid}/task/{tid}/stat")
        if stat is not None:  # not ended meanwhile
            out[tid] = (stat[0], procs.stat_cpu_seconds(stat[1]))
    return out


def python_names(pid: int) -> dict[int, str]:
    """Thread id → the name Python gave the thread (empty without py-spy)."""
    exe = spy.py_spy()
    if exe is None:
        return {}
    done = subprocess.run(
        [exe, "dump", "--pid", str(pid)], capture_output=True, text=True, check=False, timeout=60
    )
    return {int(tid): name for tid, name in _DUMPED.findall(done.stdout)}


def measure(
    target: gateway.Target, calls: int, inflight: int, body: Path
) -> list[tuple[str, str, float]]:
    """(process, thread, CPU µs a call) for every thread that ran during ``calls`` calls."""
    pids = {target.pid: "serving", **{child: "recorder" for child in procs.children(target.pid)}}
    before = {pid: thread_ticks(pid) for pid in pids}
    out = gateway.load(target, inflight, calls, 0, body)
    if out["errors"]:
        raise RuntimeError(f"{target.name}: {out['errors']} calls failed: {out['error']}")
    if target.llmtrail_base:  # the records' work is part of the call's cost
        procs.wait_drained(target.llmtrail_base)
    rows = []
    for pid, process in pids.items():
        names = python_names(pid)
        for tid, (kernel, seconds) in thread_ticks(pid).items():
            spent = seconds - before[pid].get(tid, (kernel, 0.0))[1]
            if spent > 0:
                name = names.get(tid) or f"{kernel} {tid}"
                rows.append((process, name, spent / calls * 1e6))
    return sorted(rows, key=lambda r: -r[2])


def table(title: str, rows: list[tuple[str, str, float]]) -> Table:
    t = Table(title=title, box=box.MARKDOWN, title_justify="left")
    for column in ("process", "thread"):
        t.add_column(column)
    t.add_column("CPU µs a call", justify="right")
    merged: Counter[tuple[str, str]] = Counter()
    for process, name, us in rows:  # a pool's threads (…_0, …_1) as one row
        merged[(process, re.sub(r"_\d+$", "", name))] += us
    for (process, name), us in merged.most_common():
        if us >= 1:
            t.add_row(process, name, f"{us:,.1f}")
    t.add_row("", "[b]all threads[/b]", f"{sum(us for _, _, us in rows):,.1f}")
    return t


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=4000)
    parser.add_argument("--inflight", type=int, default=1)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="threads-"))
    body = work / "chat-request.json"
    body.write_bytes(gateway.request_body())
    started: list[procs.Proc] = []
    with procs.stopping(started):
        _, targets = gateway.start_targets(work, started)
        targets = targets[1:]  # logging on, --no-record
        results = []
        for target in targets:
            gateway.load(target, 8, 500, 0, body)  # first use paid by no measured call
            if target.llmtrail_base:
                procs.wait_drained(target.llmtrail_base)
            results.append((target.name, measure(target, args.calls, args.inflight, body)))
    console = Console(width=120)
    if spy.py_spy() is None:
        console.print("py-spy is not installed: threads are named by the kernel only")
    for name, rows in results:
        console.print(table(f"{name}: {args.calls:,} calls, {args.inflight} in flight", rows))
    record = sum(r[2] for r in results[0][1]) - sum(r[2] for r in results[1][1])
    console.print(f"a record: {record:,.1f} µs of CPU a call (logging on less --no-record)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
