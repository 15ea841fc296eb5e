"""A real aiohttp server on 127.0.0.1, run from a background thread: the base of the fake
provider upstreams.

Tests and benchmarks drive the gateway with official clients and need a provider on the other
side that speaks the real wire format over a real socket. Each fake (`AnthropicUpstream`,
`BedrockUpstream`) is a subclass that adds its routes; this class owns the thread, the event
loop, the ephemeral port and the log of received requests, so the fakes hold only protocol.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType, TracebackType
from typing import Any, Self

import orjson
from aiohttp import web
from aiohttp.typedefs import Handler

__all__ = ["LocalServer", "ReceivedRequest", "json_response", "serve_until_interrupted"]


@dataclass
class ReceivedRequest:
    """One request as the server saw it."""

    method: str
    path: str  # percent-decoded
    raw_path: str  # as sent: still percent-encoded, with the query string
    headers: dict[str, str]  # lower-cased names
    body: bytes


def json_response(
    obj: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """A JSON response with ``Content-Type: application/json``."""
    return web.Response(
        body=orjson.dumps(obj), status=status, headers=headers, content_type="application/json"
    )


class LocalServer:
    """Serves an aiohttp app on 127.0.0.1 from a background thread with its own event loop."""

    name = "local-server"
    client_max_size = 64 * 1024**2  # the largest request body the app reads

    def __init__(self, *, port: int = 0, record: bool = True) -> None:
        self.record = record  # False: keep ``received`` empty (long benchmark runs)
        self.received: list[ReceivedRequest] = []
        self._requested_port = port
        self._port: int | None = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None

    def add_routes(self, app: web.Application) -> None:
        """Register the subclass's handlers."""
        raise NotImplementedError

    def describe(self, request: web.Request, body: bytes) -> ReceivedRequest:
        """The log entry for one request; subclasses add what they know about it."""
        headers = {k.lower(): v for k, v in request.headers.items()}
        return ReceivedRequest(request.method, request.path, request.raw_path, headers, body)

    def start(self) -> Self:
        """Bind 127.0.0.1:port (0 picks a free port) and serve in a background thread."""
        if self._thread is not None:
            raise RuntimeError(f"{type(self).__name__} already started")
        self._ready, self._startup_error = threading.Event(), None
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._startup_error is not None:
            self._thread.join()
            self._thread = None
            raise self._startup_error
        return self

    def stop(self) -> None:
        """Stop serving and join the background thread; safe to call more than once."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stopping.set)
        thread.join()
        self._port = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound port; raises while the server is not running."""
        if self._port is None:
            raise RuntimeError(f"{type(self).__name__} is not running")
        return self._port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``, the server's root."""
        return f"http://127.0.0.1:{self.port}"

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:
            if self._ready.is_set():
                raise
            self._startup_error = exc  # raised by start(), e.g. the port is taken
        finally:
            self._ready.set()
            try:
                # handlers still waiting (a test's hanging upstream) end here, as asyncio.run
                # ends them, instead of being destroyed pending when the loop closes
                pending = asyncio.all_tasks(loop)
                for task in pending:
                    task.cancel()
                loop.run_until_complete(_settle(pending))
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.run_until_complete(loop.shutdown_default_executor())
            finally:
                loop.close()

    async def _serve(self) -> None:
        self._stopping = asyncio.Event()
        app = web.Application(middlewares=[self._log_request], client_max_size=self.client_max_size)
        self.add_routes(app)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        try:
            await web.TCPSite(runner, "127.0.0.1", self._requested_port).start()
            self._port = int(runner.addresses[0][1])
            self._ready.set()
            await self._stopping.wait()
        finally:
            await runner.cleanup()

    @web.middleware
    async def _log_request(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self.record:
            entry = self.describe(request, await request.read())
            with self._lock:
                self.received.append(entry)
        return await handler(request)


async def _settle(tasks: set[asyncio.Task[Any]]) -> None:
    await asyncio.gather(*tasks, return_exceptions=True)


def serve_until_interrupted(
    make: Callable[[argparse.Namespace], LocalServer],
    parser: argparse.ArgumentParser,
    argv: list[str] | None,
    label: Callable[[LocalServer], str],
    default_port: int = 0,
) -> None:
    """The ``python -m`` entry point of a fake: serve in the foreground until SIGINT/SIGTERM,
    after printing one line that ends with the URL to use."""
    parser.add_argument(
        "--port", type=int, default=default_port, help="port on 127.0.0.1 (0 = any free)"
    )
    args = parser.parse_args(argv)

    def _interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _interrupt)
    with make(args) as server:
        print(label(server), flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
