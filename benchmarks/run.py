"""llmtrail benchmarks: gateway added latency (part A), ingest throughput (part B), many
concurrent streams through the gateway (part C), OTLP trace ingest (part D) and Logs Insights
queries on 10 million records (part E).

    .venv/bin/python benchmarks/run.py            # full run, a few minutes
    .venv/bin/python benchmarks/run.py --quick    # smaller counts, a smoke run
    .venv/bin/python benchmarks/run.py --py-spy   # also profile the servers (slows them)
    .venv/bin/python benchmarks/run.py --only streams --format openai   # part C only
    .venv/bin/python benchmarks/run.py --only otlp   # part D only
    .venv/bin/python benchmarks/run.py --only query  # part E only (10M records, built once)
    .venv/bin/python benchmarks/run.py --only engines  # part I: DuckDB and chdb (only asked)

See benchmarks/README.md for what each row means.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console

import engines
import gateway
import ingest
import otlp
import procs
import query
import spy
import stream_tables
import streams

console = Console(color_system=None, highlight=False, soft_wrap=True, width=220)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def main() -> int:
    parser = argparse.ArgumentParser(description="llmtrail benchmarks")
    parser.add_argument("--quick", action="store_true", help="smaller counts (a smoke run)")
    parser.add_argument(
        "--only",
        choices=("gateway", "ingest", "streams", "otlp", "query", "engines"),
        help="run one part only",
    )
    parser.add_argument(
        "--format",
        choices=("openai", "anthropic", "bedrock"),
        default="openai",
        help="part C: the wire format of the streams",
    )
    parser.add_argument(
        "--py-spy",
        action="store_true",
        help="profile llmtrail (logging on) in parts A and C and the ingest server in part B",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    if args.py_spy and spy.py_spy() is None:
        parser.error("--py-spy: py-spy is not installed (.venv/bin/pip install py-spy)")
    procs.CACHE.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="run-", dir=procs.CACHE))
    profiles = procs.CACHE / "profiles" if args.py_spy else None
    if profiles is not None:
        profiles.mkdir(exist_ok=True)
    console.print(
        f"llmtrail benchmarks ({'quick' if args.quick else 'full'}"
        f"{', profiled by py-spy' if args.py_spy else ''}): Python "
        f"{platform.python_version()}, {os.cpu_count()} CPUs, {platform.platform()}; "
        f"load generator and servers share these CPUs; load average at start {load_average()}"
    )
    try:
        if args.only in (None, "gateway"):
            plan = gateway.QUICK if args.quick else gateway.FULL
            log("part A: gateway added latency")
            profile = profiles / "gateway-logging-on.txt" if profiles else None
            result = gateway.run(workdir, plan, log, profile)
            console.print()
            console.print(gateway.table(result, plan))
            if result.profile is not None and result.profile.exists():
                console.print()
                console.print(spy.summary(result.profile, "A. py-spy: llmtrail, logging on"))
        if args.only in (None, "ingest"):
            iplan = ingest.QUICK if args.quick else ingest.FULL
            log("part B: ingest")
            profile = profiles / "ingest-server.txt" if profiles else None
            iresult = ingest.run(workdir, iplan, log, profile)
            for table in ingest.tables(iresult):
                console.print()
                console.print(table)
            if iresult.profile is not None and iresult.profile.exists():
                console.print()
                console.print(spy.summary(iresult.profile, "B. py-spy: ingest server"))
        if args.only in (None, "streams"):
            splan = streams.QUICK if args.quick else streams.FULL
            log("part C: concurrent streams")
            profile = profiles / "streams-logging-on.txt" if profiles else None
            sresult = streams.run(workdir, splan, log, profile, args.format)
            for table in stream_tables.tables(sresult):
                console.print()
                console.print(table)
            if sresult.profile is not None and sresult.profile.exists():
                console.print()
                console.print(spy.summary(sresult.profile, "C. py-spy: llmtrail, logging on"))
        if args.only in (None, "otlp"):
            oplan = otlp.QUICK if args.quick else otlp.FULL
            log("part D: OTLP ingest")
            profile = profiles / "otlp-server.txt" if profiles else None
            oresult = otlp.run(workdir, oplan, log, profile)
            for table in otlp.tables(oresult):
                console.print()
                console.print(table)
            if oresult.profile is not None and oresult.profile.exists():
                console.print()
                console.print(spy.summary(oresult.profile, "D. py-spy: OTLP server (mixed)"))
        if args.only in (None, "query"):
            log("part E: Logs Insights queries")
            qresult = query.run(query.QUICK if args.quick else query.FULL, log)
            for part in query.tables(qresult):
                console.print()
                console.print(part)
        if args.only == "engines":  # long (a 10M-record chdb database): only when asked
            log("part I: DuckDB and ClickHouse side by side")
            eresult = engines.run(engines.QUICK if args.quick else engines.FULL, log)
            for part in engines.tables(eresult):
                console.print()
                console.print(part)
    finally:
        if args.keep:
            log(f"work directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    console.print()
    console.print(f"load average at end {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
