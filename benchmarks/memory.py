"""Part K: memory at rest, each llmtrail process and all of them together.

    .venv/bin/python benchmarks/memory.py

A fresh ``llmtrail serve`` (logging on, the embedded DuckDB default, routing to a local
OpenAI-compatible upstream) is started and left to finish its warm-up (the recorder loads the
tokenizer, the price table and pyarrow): "fresh" is its memory then. Then one gateway call and
one ingested record are made and stored, so that what a first record loads is loaded, and the
server idles for two seconds: "after first use". Then four ingest bodies of 1,000 records
(the first starts the recorder's ingest workers, the others go through them): "after ingest
bodies". The resident memory (VmRSS) of the serving
process and of each of its children is read from /proc. The baseline, in the same run, is the
same server with ``--no-record`` (one process, nothing recorded), after the same call.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from rich import box
from rich.console import Console
from rich.table import Table

import procs
from bench_records import ndjson_bodies
from gateway import AUTH, request_body

GOAL_SERVING_MB = 120
WHEN = ("fresh", "after first use", "after ingest bodies")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def name_of(pid: int, server: int) -> str:
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    if "resource_tracker" in cmdline:
        return "multiprocessing's resource tracker"
    if "multiprocessing" in cmdline:
        parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        return "recorder" if parent == server else "the recorder's ingest worker"
    return cmdline[:60]


def post(url: str, body: bytes, content_type: str) -> None:
    request = urllib.request.Request(url, data=body, headers={"content-type": content_type})
    with urllib.request.urlopen(request, timeout=60) as answer:
        answer.read()


def chat(base: str) -> None:
    request = urllib.request.Request(
        base + "/v1/chat/completions", data=request_body(), headers={**AUTH}
    )
    request.add_header("content-type", "application/json")
    with urllib.request.urlopen(request, timeout=60) as answer:
        answer.read()


def use_once(base: str) -> None:
    """One gateway call and one ingested record, stored."""
    chat(base)
    record = {"timestamp": "2026-12-06T10:00:00.000Z", "requestId": "memory-1", "modelId": "m"}
    post(base + "/api/records", json.dumps([record]).encode(), "application/json")
    procs.wait_drained(base)
    time.sleep(2.0)


def ingest_large(base: str) -> None:
    """Ingest bodies of 1,000 records (~1.2 MB): the first starts the recorder's workers,
    the next ones are prepared there."""
    for k in range(4):
        post(
            base + "/api/records", ndjson_bodies(f"{k:08x}", 1000, 1000)[0], "application/x-ndjson"
        )
        if k == 0:
            procs.wait_metric(base, "ingest_workers_warm", 1)
    procs.wait_drained(base)
    time.sleep(2.0)


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="llmtrail-memory-"))
    rows: list[tuple[str, str, str, float]] = []
    started: list[procs.Proc] = []
    with procs.stopping(started):
        upstream, up = procs.start_upstream(work)
        started.append(upstream)
        server, base = procs.start_llmtrail(work, "memory-record", upstream=up)
        started.append(server)
        time.sleep(2.0)
        for when in WHEN:
            if when == "after first use":
                use_once(base)
            elif when == "after ingest bodies":
                ingest_large(base)
            rows.append(("logging on", when, "serving process", rss_mb(server.pid)))
            for child in procs.children(server.pid):
                rows.append(("logging on", when, name_of(child, server.pid), rss_mb(child)))
        bare, bare_base = procs.start_llmtrail(work, "memory-norecord", upstream=up, record=False)
        started.append(bare)
        time.sleep(2.0)
        rows.append(("--no-record (baseline)", "fresh", "serving process", rss_mb(bare.pid)))
        chat(bare_base)
        time.sleep(2.0)
        rows.append(
            ("--no-record (baseline)", "after first use", "serving process", rss_mb(bare.pid))
        )
    table = Table(title="K. Memory at rest (VmRSS, MB)", box=box.MARKDOWN, title_justify="left")
    for column in ("server", "when", "process"):
        table.add_column(column)
    table.add_column("MB", justify="right")
    table.add_column("goal")
    for server_name, when, process, mb in rows:
        goal = ""
        if server_name == "logging on" and process == "serving process":
            goal = f"≤ {GOAL_SERVING_MB}: {'met' if mb <= GOAL_SERVING_MB else 'MISS'}"
        table.add_row(server_name, when, process, f"{mb:,.0f}", goal)
    for when in WHEN:
        total = sum(mb for name, w, _, mb in rows if name == "logging on" and w == when)
        table.add_row("logging on", when, "[b]all processes[/b]", f"{total:,.0f}", "")
    Console(width=120).print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
