"""Retention on a schedule, by one server when several share a store.

The server holding the lease runs `RetentionRunner.run` every ``interval_s``; the others
only try to take the lease. The lease is `llmtrail.alerts.lease`'s, under its own key
(``leases``/``retention``), so the alarm evaluator and retention may run on different servers.
`run_once` is one tick, for tests with an injected clock (no sleeping).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from llmtrail.alerts.lease import LeasedLoop
from llmtrail.security.retention_runner import RetentionReport, RetentionRunner
from llmtrail.store.interfaces import StateStore

LEASE_KEY = "retention"


class RetentionSchedule(LeasedLoop):
    """Runs ``runner`` every ``interval_s`` on the server that holds the retention lease."""

    def __init__(
        self,
        runner: RetentionRunner,
        state: StateStore,
        interval_s: float = 3600.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        holder: str | None = None,
    ) -> None:
        super().__init__(self._run, state, interval_s, LEASE_KEY, clock, holder)
        self.runner = runner
        self.last: RetentionReport | None = None

    def _run(self, now: datetime) -> None:
        self.last = self.runner.run(now)

    def run_once(self) -> RetentionReport | None:  # type: ignore[override]
        """One tick: run retention if this server holds (or takes) the lease; the report,
        or None when another server holds it."""
        return self.last if super().run_once() else None
