"""Logs Insights queries run on threads of their own.

A query may run for minutes (``[query] timeout_s``). On asyncio's default thread pool
(``min(32, cpus + 4)`` threads, shared by every ``asyncio.to_thread`` of the server) a few
slow queries would hold the threads that ingest, the gateway and the management API need,
and a cancel would wait behind the very queries it is meant to stop. So queries get
``[query] concurrency`` threads of their own; at most ``[query] queued`` more wait their
turn, and beyond that a query is refused at once with 429 and ``Retry-After``, as Logs
Insights answers ``LimitExceededException`` past its concurrent-query limit. Cancels have a
thread of their own, so one is answered while every query thread is busy.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from llmtrail.errors import LlmtrailError

T = TypeVar("T")
CANCEL_THREADS = 2


class QueryLimitExceeded(LlmtrailError):
    """As many queries as the server runs and queues are already there (→ 429)."""

    status = 429


class QueryWithdrawn(Exception):
    """The query was withdrawn (`QueryPool.withdraw`) before a thread took it."""


class QueryPool:
    """``concurrency`` query threads, ``queued`` waiting places, and cancel threads."""

    def __init__(self, concurrency: int, queued: int) -> None:
        self.concurrency = concurrency
        self.capacity = concurrency + queued
        self._queries = concurrent.futures.ThreadPoolExecutor(concurrency, "llmtrail-query")
        self._cancels = concurrent.futures.ThreadPoolExecutor(CANCEL_THREADS, "llmtrail-cancel")
        self._lock = threading.Lock()
        self._admitted = 0
        self._futures: dict[str, concurrent.futures.Future[Any]] = {}

    async def run(
        self,
        key: str,
        fn: Callable[..., T],
        *args: Any,
        when_done: Callable[[], None],
        **kwargs: Any,
    ) -> T:
        """``fn(*args, **kwargs)`` on a query thread, once one is free; `QueryLimitExceeded`
        when every thread and waiting place is taken, `QueryWithdrawn` when ``key`` was
        withdrawn before it started. ``when_done`` runs when ``fn`` has returned, or when it
        never will (refused, withdrawn, or its caller went away before it started)."""
        with self._lock:
            full = self._admitted >= self.capacity
            if not full:
                self._admitted += 1
        if full:
            when_done()  # it never will run
            raise QueryLimitExceeded(
                f"{self.capacity} queries are already running or waiting, the limit "
                f"([query] concurrency {self.concurrency} + queued); retry later"
            )
        try:
            future = self._queries.submit(fn, *args, **kwargs)
        except BaseException:
            self._release(None)
            when_done()
            raise

        with self._lock:
            self._futures[key] = future

        def done(_: object) -> None:
            with self._lock:
                if self._futures.get(key) is future:
                    del self._futures[key]
            self._release(None)
            when_done()

        future.add_done_callback(done)
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if future.cancelled() and task is not None and not task.cancelling():
                raise QueryWithdrawn(key) from None  # not our caller: `withdraw`
            raise

    def withdraw(self, key: str) -> bool:
        """Take query ``key`` out of the queue if no thread has taken it yet."""
        with self._lock:
            future = self._futures.get(key)
        return future is not None and future.cancel()

    async def cancel(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on a cancel thread: never behind the queries it stops."""
        return await asyncio.wrap_future(self._cancels.submit(fn, *args))

    def cancel_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        """``fn(*args)`` on a cancel thread, without waiting for it."""
        self._cancels.submit(fn, *args)

    def _release(self, _: object) -> None:
        with self._lock:
            self._admitted -= 1
