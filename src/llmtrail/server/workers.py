"""Worker processes for a request's CPU-bound work — decoding, validating and pricing large
batches (``POST /api/records``, ``POST /v1/traces``) — so that it runs beside the event loop
instead of sharing its GIL. The functions sent there are pure: bytes and settings in, values
out. The pool starts on first use (``spawn``: no copy of the server's threads or open files)
and stops with the runtime."""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class Workers:
    def __init__(self, processes: int = 2) -> None:
        self.processes = processes
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def _executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    max_workers=self.processes, mp_context=multiprocessing.get_context("spawn")
                )
            return self._pool

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in a worker process."""
        return await asyncio.get_running_loop().run_in_executor(self._executor(), fn, *args)

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
