"""The streaming benchmark's upstream: its own process, aiohttp on uvloop, chunks on a clock.

Each stream keeps its own clock, started when its request has been read: frame ``i`` is
written at ``start + i / rate`` (an absolute deadline, so a late tick does not push the later
ones back: no drift). How late the upstream itself was is counted per write and served at
``GET /stats`` (``POST /stats/reset`` between phases), so the table can tell the upstream's
jitter from the gateway's. Frames are built when they are sent (see ``stream_formats``), so
no phase gets a cache another one paid for.

    python benchmarks/stream_upstream.py --port 9200 --format openai --rate 20
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import signal
from dataclasses import asdict, dataclass

import orjson
from aiohttp import web

from stream_formats import FORMATS, StreamFormat

LATE_MS = 10.0  # a write this much behind its deadline counts as late


@dataclass
class ClockStats:
    """How well the upstream kept its clock since the last reset."""

    streams: int = 0
    writes: int = 0
    late_writes: int = 0  # writes more than LATE_MS behind their deadline
    max_late_ms: float = 0.0
    client_gone: int = 0  # streams whose client went away before the end


class StreamUpstream:
    """The aiohttp application: one streaming route per format, ``/healthz`` and ``/stats``."""

    def __init__(self, fmt: StreamFormat, rate: float) -> None:
        self.fmt = fmt
        self.period = 1.0 / rate
        self.stats = ClockStats()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post(self.fmt.path, self.stream)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/stats", self.show_stats)
        app.router.add_post("/stats/reset", self.reset_stats)
        return app

    async def stream(self, request: web.Request) -> web.StreamResponse:
        loop = asyncio.get_running_loop()
        body = await request.read()
        start = loop.time()
        try:
            index, chunks = self.fmt.parse_request(body)
        except ValueError as exc:
            return web.json_response({"error": {"message": str(exc)}}, status=400)
        stats = self.stats
        stats.streams += 1
        response = web.StreamResponse(
            headers={"Content-Type": self.fmt.content_type, "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        try:
            for i in range(chunks):
                deadline = start + i * self.period
                delay = deadline - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                late_ms = (loop.time() - deadline) * 1000
                stats.writes += 1
                if late_ms > LATE_MS:
                    stats.late_writes += 1
                stats.max_late_ms = max(stats.max_late_ms, late_ms)
                await response.write(self.fmt.frame(index, chunks, i))
            await response.write_eof()
        except ConnectionResetError:
            stats.client_gone += 1
        return response

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "format": self.fmt.name})

    async def show_stats(self, request: web.Request) -> web.Response:
        return web.Response(body=orjson.dumps(asdict(self.stats)), content_type="application/json")

    async def reset_stats(self, request: web.Request) -> web.Response:
        self.stats = ClockStats()
        return web.json_response({"status": "reset"})


async def serve(port: int, fmt: StreamFormat, rate: float) -> None:
    runner = web.AppRunner(StreamUpstream(fmt, rate).app(), access_log=None)
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await web.TCPSite(runner, "127.0.0.1", port, backlog=2048).start()
        gc.freeze()  # what exists now lives for the whole run; keep the collector off it
        print(f"stream upstream ({fmt.name}, {rate:g} chunks/s) on port {port}", flush=True)
        await stop.wait()
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--format", choices=sorted(FORMATS), default="openai")
    parser.add_argument("--rate", type=float, default=20.0, help="chunks per second per stream")
    args = parser.parse_args()
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve(args.port, FORMATS[args.format], args.rate))


if __name__ == "__main__":
    main()
