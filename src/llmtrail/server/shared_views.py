"""What a server learns from the other servers sharing its store (ClickHouse).

Each server keeps three things in memory that the others change: the resend window (the
``(workspace, requestId)`` of recent records, `llmtrail.pipeline.dedup`), the gateway calls
that OTLP spans merge into (`llmtrail.capture.merge`), and the budgets with this month's
spend (`llmtrail.analytics.budget_guard`). On DuckDB one server owns the store and nothing
else writes it; on a shared store `SharedViews` refreshes all three every ``[store]
refresh_s`` seconds:

* the records the store received since the last round (one query: `RecordStore.recent_calls`,
  bounded by the resend window's size) go into the resend window, and the gateway's among
  them into the merge index;
* the budgets are read again from the `StateStore` and, when they changed or records arrived,
  this month's spend of each is summed by the store (one query a budget), so a budget
  created, changed or spent on another server refuses here too.

A view is therefore at most ``refresh_s`` (plus the writer's batch delay) behind. Where that
is not enough the writer closes the gap: before storing a batch it asks the store which of
its ``requestId`` s are already there (`Pipeline`'s shared-store check), so a resend that
reaches two servers within one refresh is still stored once, unless both batches are
written within the same instant.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from llmtrail.analytics.budgets import Budget
from llmtrail.capture.merge import GatewayCallIndex
from llmtrail.pipeline.dedup import RecentRequestIds
from llmtrail.store.interfaces import RecordStore

log = logging.getLogger("llmtrail.shared_views")

# rows become visible a little after their ingested_at (the writer's batch, the insert):
# each round reads again this far back; keys already known are ignored
OVERLAP = timedelta(seconds=30)


class SharedViews:
    def __init__(
        self,
        records: RecordStore,
        dedup: RecentRequestIds,
        calls: GatewayCallIndex,
        budgets: Callable[[], list[Budget]],
        apply_budgets: Callable[[list[Budget]], None],
        interval_s: float,
    ) -> None:
        self.records = records
        self.dedup = dedup
        self.calls = calls
        self.budgets = budgets
        self.apply_budgets = apply_budgets  # sums this month's spend of each, in the store
        self._budgets: list[Budget] | None = None
        self.interval_s = interval_s
        self._since = datetime.now(UTC)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def refresh(self) -> int:
        """One round; how many records of the store it read."""
        now = datetime.now(UTC)
        recent = self.records.recent_calls(self._since - OVERLAP, self.dedup.max_entries)
        self.dedup.claim((c.workspace, c.request_id) for c in recent)
        for c in recent:
            if c.source == "gateway":
                self.calls.note_keys(
                    c.workspace, c.request_id, c.trace_id, c.parent_span_id, c.response_id
                )
        self._since = now
        budgets = self.budgets()
        if budgets and (recent or budgets != self._budgets):  # else the sums are the same
            self.apply_budgets(budgets)
        self._budgets = budgets
        return len(recent)

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._loop, name="llmtrail-shared-views", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.refresh()
            except Exception:  # the store is away: the next round tries again
                log.warning("refreshing what the other servers wrote failed", exc_info=True)
