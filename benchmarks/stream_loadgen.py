"""The streaming benchmark's load generator: its own process, aiohttp on uvloop.

One run against one target (the upstream itself, or a gateway in front of it):

1. warm-up: ``--warmup`` two-chunk streams at once, so that every hop's keep-alive pool holds
   enough connections and no measured stream pays a TCP handshake (the same on every target);
   with ``--settle-metrics``, a gateway's ``/metrics`` URL, it then waits until the gateway has
   stored the warm-up's records, so that the one-time cost of its first store write (lazy
   imports, first inserts) is not charged to the measured streams;
2. ``--streams`` measured streams, started evenly over ``--ramp`` seconds (so their clocks
   tick at spread-out phases, as independent users' streams do, instead of in lock-step);
3. while all of them run, a probe every ``--probe-interval`` seconds: a one-chunk stream whose
   time to first byte is measured under the full load (more samples than the streams give);
4. it writes one JSON object to ``--output``: per measured stream its time to first byte,
   every gap between clock frames (µs), how far it fell behind the upstream's schedule, its
   duration, the event count, the SHA-256 of its body and the gateway's request id; the
   probes' times to first byte (with when each was sent); the number of requests sent and
   of those that streamed to their end (warm-up and probes included).

Time to first byte is from just before the request is written to the first body byte read.
Gaps are measured between the arrivals of complete events (an event split over two reads
arrives with its second piece), so a gateway that coalesced chunks would show it. The client
keeps per-read work small (a hash update, a count of event terminators, a clock read) and
turns the garbage collector off while it measures, so its own pauses do not show as gaps.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import itertools
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from procs import parse_metrics
from stream_formats import FORMATS, StreamFormat

WARMUP_INDEX = 900_000  # stream indices of the warm-up and probe requests: apart from the
PROBE_INDEX = 800_000  # measured ones, so their records can be told apart


class StreamRun:
    """One run against ``base``; `run` returns what the module docstring lists."""

    def __init__(self, base: str, fmt: StreamFormat, rate: float) -> None:
        self.url = base + fmt.path
        self.fmt = fmt
        self.period = 1.0 / rate
        self.sent_requests = 0
        self.ok_requests = 0
        self.errors: list[str] = []

    def _session(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=300),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=30),
            skip_auto_headers=("User-Agent",),
            auto_decompress=False,
        )

    async def one(self, session: aiohttp.ClientSession, index: int, chunks: int) -> dict[str, Any]:
        """One stream, read to its end; its measurements (``error`` set when it failed)."""
        request = self.fmt.request(index, chunks)
        counter = self.fmt.counter()
        digest = hashlib.sha256()
        times: list[float] = []  # when each complete event arrived
        first: float | None = None
        request_id = error = None
        self.sent_requests += 1
        sent = time.perf_counter()
        try:
            async with session.post(
                self.url, data=request.body, headers=request.headers
            ) as response:
                request_id = response.headers.get("x-llmtrail-request-id")
                if response.status != 200:
                    raw = await response.read()
                    error = f"HTTP {response.status}: {raw[:200]!r}"
                else:
                    async for data in response.content.iter_any():
                        now = time.perf_counter()
                        if first is None:
                            first = now
                        digest.update(data)
                        count = counter.feed(data)
                        if count:
                            times += [now] * count
        except (aiohttp.ClientError, TimeoutError) as exc:
            error = repr(exc)
        end = time.perf_counter()
        expected = self.fmt.events(chunks)
        if error is None and len(times) != expected:
            error = f"{len(times)} events, expected {expected}"
        if error is not None:
            self.errors.append(f"stream {index}: {error}")
        else:
            self.ok_requests += 1
        lead = self.fmt.lead_events
        frames = times[lead : lead + chunks]  # when each clock frame's text delta arrived
        gaps = [round((b - a) * 1e6) for a, b in itertools.pairwise(frames)]
        behind = [(t - frames[0]) - i * self.period for i, t in enumerate(frames)]
        return {
            "index": index,
            "ttfb_s": None if first is None else first - sent,
            "duration_s": end - sent,
            "events": len(times),
            "gaps_us": gaps,
            "behind_ms": max(behind, default=0.0) * 1000,
            "sha256": digest.hexdigest(),
            "request_id": request_id,
            "error": error,
        }

    async def probes(
        self, session: aiohttp.ClientSession, start: float, stop: float, interval: float
    ) -> list[tuple[float, float]]:
        """One-chunk streams every ``interval`` s from ``start`` until ``stop`` (perf_counter
        times); for each, when it was sent (s after ``start``) and its time to first byte."""
        out: list[tuple[float, float]] = []
        pending: set[asyncio.Task[None]] = set()

        async def probe(index: int, at: float) -> None:
            result = await self.one(session, index, 1)
            if result["error"] is None and result["ttfb_s"] is not None:
                out.append((at - start, result["ttfb_s"]))

        k = 0
        while (at := start + k * interval) < stop:
            delay = at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(probe(PROBE_INDEX + k, at))
            pending.add(task)
            task.add_done_callback(pending.discard)
            k += 1
        if pending:
            await asyncio.wait(pending)
        return out

    async def settle(self, session: aiohttp.ClientSession, metrics_url: str) -> None:
        """Poll a gateway's ``/metrics`` until it has stored (or dropped) all it accepted."""
        deadline = time.perf_counter() + 120
        while time.perf_counter() < deadline:
            async with session.get(metrics_url) as response:
                text = (await response.read()).decode()
            counters = parse_metrics(text)
            done = counters.get("stored", 0) + counters.get("dropped_queue_full", 0)
            if done >= counters.get("accepted", 0):
                return
            await asyncio.sleep(0.05)
        raise TimeoutError(f"{metrics_url}: the warm-up's records were not stored within 120 s")

    async def run(
        self,
        streams: int,
        chunks: int,
        ramp: float,
        warmup: int,
        probe_interval: float,
        settle_metrics: str | None = None,
    ) -> dict[str, Any]:
        async with self._session() as session:
            warm = [self.one(session, WARMUP_INDEX + k, 2) for k in range(warmup)]
            await asyncio.gather(*warm)
            if settle_metrics:
                await self.settle(session, settle_metrics)
            await asyncio.sleep(0.5)  # let the servers finish the warm-up's bookkeeping
            gc.collect()
            gc.freeze()
            gc.disable()
            began = time.perf_counter()
            start = began + 0.05
            tasks = []
            probes: asyncio.Task[list[tuple[float, float]]] | None = None
            if probe_interval > 0:
                plateau = (start + ramp + 0.2, start + (chunks - 1) * self.period - 0.5)
                probes = asyncio.create_task(self.probes(session, *plateau, probe_interval))
            for k in range(streams):
                delay = start + k * ramp / streams - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(self.one(session, k, chunks)))
            results = await asyncio.gather(*tasks)
            probe_ttfb = await probes if probes is not None else []
            wall = time.perf_counter() - began
            gc.enable()
        return {
            "streams": results,
            "probes": probe_ttfb,
            "sent_requests": self.sent_requests,
            "ok_requests": self.ok_requests,
            "errors": len(self.errors),
            "first_errors": self.errors[:3],
            "wall_s": wall,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--base", required=True, help="the target's base URL (no path)")
    parser.add_argument("--format", choices=sorted(FORMATS), default="openai")
    parser.add_argument("--streams", type=int, default=256)
    parser.add_argument("--chunks", type=int, default=300)
    parser.add_argument("--rate", type=float, default=20.0, help="the upstream's chunks/s")
    parser.add_argument("--ramp", type=float, default=2.0, help="seconds to start all streams")
    parser.add_argument("--warmup", type=int, default=264, help="concurrent warm-up streams")
    parser.add_argument("--probe-interval", type=float, default=0.02, help="0: no probes")
    parser.add_argument("--output", type=Path, required=True, help="where to write the JSON")
    parser.add_argument("--settle-metrics", help="a gateway's /metrics URL: wait for its store")
    args = parser.parse_args()
    import uvloop

    run = StreamRun(args.base, FORMATS[args.format], args.rate)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        result = runner.run(
            run.run(
                args.streams,
                args.chunks,
                args.ramp,
                args.warmup,
                args.probe_interval,
                args.settle_metrics,
            )
        )
    args.output.write_bytes(orjson.dumps(result) + b"\n")


if __name__ == "__main__":
    main()
