"""The background exporter: finished spans go into a bounded queue, and one daemon thread
posts them in batches as OTLP/HTTP JSON.

The app's thread only appends to a deque under a lock, so recording a span never waits for
the network; when the queue is full the span is dropped and counted, so memory stays bounded
however long the server is down. The thread sends a batch when ``max_batch`` spans are
waiting, when the oldest has waited ``interval`` seconds, or when `flush` asks. A failed post
is retried ``max_retries`` times with exponential backoff (connection errors, timeouts, 408,
429 and 5xx), then the batch is dropped and counted; other 4xx answers are not retried.
Nothing here raises into the app. `shutdown` flushes within a deadline and then drops what
is left, so a process with a dead server still exits promptly. Only the standard library's
``urllib`` is used, which also keeps these posts out of the httpx patch that propagates
``traceparent``.
"""

from __future__ import annotations

import os
import threading
import time
import urllib.error
import urllib.request
import weakref
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Literal

from llmtrail.sdk.spans import FinishedSpan

Encode = Callable[[Sequence[FinishedSpan]], bytes]
Outcome = Literal["ok", "retry", "fail"]
MAX_BACKOFF = 30.0
_LIVE: weakref.WeakSet[SpanExporter] = weakref.WeakSet()


class SpanExporter:
    """Batches finished spans on a daemon thread and posts them to ``endpoint``."""

    def __init__(
        self,
        endpoint: str,
        encode: Encode,
        *,
        headers: Mapping[str, str] | None = None,
        max_queue: int = 2048,
        max_batch: int = 256,
        interval: float = 1.0,
        max_retries: int = 3,
        retry_delay: float = 0.5,
        request_timeout: float = 10.0,
    ) -> None:
        if max_queue < 1 or max_batch < 1:
            raise ValueError("max_queue and max_batch must be at least 1")
        self.endpoint = endpoint
        self._encode = encode
        self._headers = {"Content-Type": "application/json", **(headers or {})}
        self._max_queue = max_queue
        self._max_batch = max_batch
        self._interval = interval
        self._max_retries = max_retries
        self._retry_delay = retry_delay
        self._request_timeout = request_timeout
        self._counts = dict.fromkeys(
            (
                "exported",
                "dropped_queue_full",
                "dropped_export",
                "dropped_after_shutdown",
                "failed_batches",
                "retries",
            ),
            0,
        )
        self._reset()
        _LIVE.add(self)

    def _reset(self) -> None:
        """Fresh queue, lock and thread state (at start, and in a child after ``fork``)."""
        self._cond = threading.Condition(threading.Lock())
        self._wake = threading.Event()
        self._queue: deque[FinishedSpan] = deque()
        self._oldest_at = 0.0
        self._accepted = 0
        self._settled = 0
        self._flush_target = 0
        self._closed = False
        self._give_up_at: float | None = None
        self._thread: threading.Thread | None = None

    def submit(self, span: FinishedSpan) -> bool:
        """Queue ``span`` for export; False (and counted as dropped) when the queue is full or
        the exporter is shut down. Never blocks on the network, never raises."""
        with self._cond:
            if self._closed:
                self._counts["dropped_after_shutdown"] += 1
                return False
            if len(self._queue) >= self._max_queue:
                self._counts["dropped_queue_full"] += 1
                return False
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="llmtrail-sdk-exporter", daemon=True
                )
                self._thread.start()
            self._queue.append(span)
            self._accepted += 1
            if len(self._queue) == 1:
                self._oldest_at = time.monotonic()
                self._cond.notify_all()
            elif len(self._queue) == self._max_batch:
                self._cond.notify_all()
            return True

    def flush(self, timeout: float | None = 5.0) -> bool:
        """Send everything queued so far now; True once all of it was exported or dropped,
        False when ``timeout`` seconds passed first."""
        with self._cond:
            target = self._accepted
            self._flush_target = max(self._flush_target, target)
            self._cond.notify_all()
            return self._cond.wait_for(lambda: self._settled >= target, timeout)

    def shutdown(self, timeout: float = 5.0) -> bool:
        """Flush for at most ``timeout`` seconds, then drop what is left and stop the thread.
        True when everything queued was settled in time. Later spans are dropped."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._closed = True
            self._give_up_at = deadline
            self._flush_target = self._accepted
            thread = self._thread
            self._cond.notify_all()
        flushed = self.flush(timeout)
        self._wake.set()
        if thread is not None:
            thread.join(max(0.0, deadline - time.monotonic()) + 1.0)
        return flushed

    def stats(self) -> dict[str, int]:
        """Counters: ``exported``, ``dropped`` (all reasons), ``failed_batches``, ``queued``,
        and the reasons apart: ``dropped_queue_full``, ``dropped_export``,
        ``dropped_after_shutdown``; ``retries``."""
        with self._cond:
            counts = dict(self._counts)
            queued = len(self._queue)
        dropped = (
            counts["dropped_queue_full"]
            + counts["dropped_export"]
            + counts["dropped_after_shutdown"]
        )
        return {"exported": counts["exported"], "dropped": dropped, "queued": queued, **counts}

    def _run(self) -> None:
        while True:
            with self._cond:
                batch = self._next_batch()
            if batch is None:
                return
            try:
                self._export(batch)
            except Exception:
                self._count("failed_batches", 1)
                self._count("dropped_export", len(batch))
            with self._cond:
                self._settled += len(batch)
                self._cond.notify_all()

    def _next_batch(self) -> list[FinishedSpan] | None:
        """Wait (holding the condition) until a batch is due; None once closed and empty."""
        while True:
            waiting = len(self._queue)
            if waiting:
                due = self._oldest_at + self._interval
                if (
                    waiting >= self._max_batch
                    or self._flush_target > self._settled
                    or self._closed
                    or time.monotonic() >= due
                ):
                    batch = [self._queue.popleft() for _ in range(min(waiting, self._max_batch))]
                    self._oldest_at = time.monotonic()
                    return batch
                self._cond.wait(max(0.0, due - time.monotonic()))
            elif self._closed:
                return None
            else:
                self._cond.wait()

    def _export(self, batch: list[FinishedSpan]) -> None:
        body = self._encode(batch)
        attempt = 0
        while True:
            if self._past_deadline():
                break
            outcome = self._post(body)
            if outcome == "ok":
                self._count("exported", len(batch))
                return
            if outcome == "fail" or attempt >= self._max_retries:
                break
            delay = min(self._retry_delay * 2**attempt, MAX_BACKOFF)
            give_up_at = self._give_up_at
            if give_up_at is not None:
                delay = min(delay, max(0.0, give_up_at - time.monotonic()))
            attempt += 1
            self._count("retries", 1)
            if self._wake.wait(delay) and self._past_deadline():
                break
        self._count("failed_batches", 1)
        self._count("dropped_export", len(batch))

    def _post(self, body: bytes) -> Outcome:
        request = urllib.request.Request(
            self.endpoint, data=body, headers=self._headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self._request_timeout) as response:
                response.read()
        except urllib.error.HTTPError as error:
            error.close()
            return "retry" if error.code in (408, 429) or error.code >= 500 else "fail"
        except Exception:
            return "retry"
        return "ok"

    def _past_deadline(self) -> bool:
        give_up_at = self._give_up_at
        return give_up_at is not None and time.monotonic() >= give_up_at

    def _count(self, name: str, amount: int) -> None:
        with self._cond:
            self._counts[name] += amount


def _after_fork_in_child() -> None:
    for exporter in list(_LIVE):
        exporter._reset()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
