"""The load generator: its own process, aiohttp on uvloop, keep-alive connections.

``chat``: POST one fixed chat-completions body, ``--concurrency`` requests in flight, and print
every request's latency (after ``--warmup`` unmeasured requests) as one JSON line.

``ingest``: POST NDJSON bodies of ``--per-request`` records to ``/api/records`` over
``--connections`` connections, then poll ``/metrics`` until the server has stored them all;
print acknowledged records/s and the lag from the last acknowledgement to stored.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from bench_records import ndjson_bodies
from procs import parse_metrics


def _session(connections: int) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=connections, keepalive_timeout=300),
        timeout=aiohttp.ClientTimeout(total=120),
        skip_auto_headers=("User-Agent",),
    )


async def chat(
    url: str, body: bytes, headers: dict[str, str], inflight: int, n: int, warm: int
) -> dict[str, Any]:
    headers = {"content-type": "application/json", **headers}
    latencies: list[float] = []
    errors: list[str] = []

    async with _session(inflight) as session:

        async def worker(todo: list[int], measure: bool) -> None:
            while todo:
                todo.pop()
                t0 = time.perf_counter()
                try:
                    async with session.post(url, data=body, headers=headers) as response:
                        await response.read()
                        status = response.status
                except aiohttp.ClientError as exc:
                    status, detail = 0, repr(exc)
                else:
                    detail = f"HTTP {status}"
                elapsed = time.perf_counter() - t0
                if status != 200:
                    errors.append(detail)
                elif measure:
                    latencies.append(elapsed)

        for count, measure in ((warm, False), (n, True)):
            todo = list(range(count))
            started = time.perf_counter()
            await asyncio.gather(*(worker(todo, measure) for _ in range(inflight)))
            wall = time.perf_counter() - started
    return {"latencies": latencies, "wall_s": wall, "errors": len(errors), "error": errors[:1]}


async def ingest(
    base: str, total: int, per_request: int, connections: int, run: str
) -> dict[str, Any]:
    bodies = ndjson_bodies(run, total, per_request)
    size = sum(len(b) for b in bodies)
    headers = {"content-type": "application/x-ndjson"}
    stored = 0
    problems: list[str] = []
    async with _session(connections) as session:
        queue = list(reversed(bodies))

        async def worker() -> None:
            nonlocal stored
            while queue:
                body = queue.pop()
                async with session.post(base + "/api/records", data=body, headers=headers) as r:
                    raw = await r.read()
                if r.status != 200:
                    problems.append(f"HTTP {r.status}: {raw[:200]!r}")
                    continue
                stored += orjson.loads(raw)["stored"]

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        acked = time.perf_counter()
        while True:  # until the writer thread has committed everything to DuckDB
            async with session.get(base + "/metrics") as r:
                text = (await r.read()).decode()
            if parse_metrics(text)["stored"] >= stored or problems:
                break
            if time.perf_counter() - acked > 300:
                problems.append("records not stored within 300 s of the last acknowledgement")
                break
            await asyncio.sleep(0.005)
        queryable = time.perf_counter()
        if stored != total:
            problems.append(f"the server stored {stored} of {total} records (duplicates?)")
        async with session.get(base + "/api/records?limit=1") as r:
            listed = len(orjson.loads(await r.read())["records"])
    return {
        "records": total,
        "stored": stored,
        "bytes": size,
        "requests": len(bodies),
        "ack_s": acked - started,
        "lag_s": queryable - acked,
        "listed": listed,
        "problems": problems[:3],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="mode", required=True)
    c = sub.add_parser("chat")
    c.add_argument("--url", required=True)
    c.add_argument("--body-file", required=True, type=Path)
    c.add_argument("--header", action="append", default=[], metavar="NAME:VALUE")
    c.add_argument("--inflight", type=int, default=1)
    c.add_argument("--requests", type=int, default=1000)
    c.add_argument("--warmup", type=int, default=200)
    i = sub.add_parser("ingest")
    i.add_argument("--base", required=True)
    i.add_argument("--records", type=int, default=200_000)
    i.add_argument("--per-request", type=int, default=1000)
    i.add_argument("--connections", type=int, default=4)
    i.add_argument("--run", default="0a1b2c3d")
    args = parser.parse_args()
    try:
        import uvloop

        loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = uvloop.new_event_loop
    except ImportError:
        loop_factory = None
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        if args.mode == "chat":
            headers = dict(h.split(":", 1) for h in args.header)
            body = args.body_file.read_bytes()
            result = runner.run(
                chat(args.url, body, headers, args.inflight, args.requests, args.warmup)
            )
        else:
            result = runner.run(
                ingest(args.base, args.records, args.per_request, args.connections, args.run)
            )
    # the event loop may leave stdout non-blocking: a long answer (a minute of latencies) would
    # then be cut where the pipe was full
    os.set_blocking(sys.stdout.fileno(), True)
    sys.stdout.buffer.write(orjson.dumps(result) + b"\n")
    sys.stdout.buffer.flush()


if __name__ == "__main__":
    main()
