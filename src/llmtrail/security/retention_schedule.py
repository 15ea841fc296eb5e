"""Retention on a schedule, by one server when several share a store.

The server holding the lease runs `RetentionRunner.run` every ``interval_s``; the others
only try to take the lease. The lease is `llmtrail.alerts.lease`'s, under its own key
(``leases``/``retention``), so the alarm evaluator and retention may run on different servers.
`run_once` is one tick, for tests with an injected clock (no sleeping).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from llmtrail.alerts.lease import Lease, holder_id
from llmtrail.security.retention_runner import RetentionReport, RetentionRunner
from llmtrail.store.interfaces import StateStore

log = logging.getLogger("llmtrail.retention")
LEASE_KEY = "retention"


class RetentionSchedule:
    """Runs ``runner`` every ``interval_s`` on the server that holds the retention lease."""

    def __init__(
        self,
        runner: RetentionRunner,
        state: StateStore,
        interval_s: float = 3600.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        holder: str | None = None,
    ) -> None:
        self.runner = runner
        self.interval_s = interval_s
        self.clock = clock
        # a run can take a while: the lease outlives three intervals, as the alarm lease does
        self.lease = Lease(
            state, holder or holder_id(), timedelta(seconds=3 * interval_s), LEASE_KEY
        )
        self.last: RetentionReport | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> RetentionReport | None:
        """One tick: run retention if this server holds (or takes) the lease; the report,
        or None when another server holds it."""
        now = self.clock()
        if not self.lease.acquire(now):
            return None
        self.last = self.runner.run(now)
        return self.last

    def start(self) -> None:
        """Start the loop thread (first run after one interval)."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="llmtrail-retention", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the loop (waiting for a run in progress) and give the lease up."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        try:
            self.lease.release()
        except Exception:  # the store may be closing: the lease then simply expires
            log.debug("releasing the retention lease failed", exc_info=True)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.run_once()
            except Exception:  # the next interval tries again
                log.exception("retention run failed")
