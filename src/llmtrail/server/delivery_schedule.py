"""Bedrock-layout delivery on a schedule, by one server when several share a store.

The server holding the lease (`llmtrail.alerts.lease`'s, under ``leases``/``bedrock-delivery``)
runs `BedrockDelivery.run_once` every ``interval_s``; the others only try to take the lease,
so no page is delivered by two servers at once. `run_once` is one tick, for tests with an
injected clock (no sleeping).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from llmtrail.alerts.lease import Lease, holder_id
from llmtrail.capture.bedrock_delivery import BedrockDelivery
from llmtrail.store.interfaces import StateStore

log = logging.getLogger("llmtrail.delivery")
LEASE_KEY = "bedrock-delivery"


class DeliverySchedule:
    """`BedrockDelivery.run_once` every ``interval_s`` seconds on the one server holding the
    delivery lease (``leases``/``bedrock-delivery``) when several share a store; the others
    only try to take it, so no page is delivered by two servers at once."""

    def __init__(
        self,
        delivery: BedrockDelivery,
        state: StateStore,
        interval_s: float = 60.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        holder: str | None = None,
    ) -> None:
        self.delivery = delivery
        self.interval_s = interval_s
        self.clock = clock
        self.lease = Lease(
            state, holder or holder_id(), timedelta(seconds=3 * interval_s), LEASE_KEY
        )
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> bool:
        """One tick: a delivery round if this server holds (or takes) the lease."""
        if not self.lease.acquire(self.clock()):
            return False
        self.delivery.run_once()
        return True

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._loop, name="llmtrail-delivery", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        """Stop the loop (waiting for a round in progress) and give the lease up."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        try:
            self.lease.release()
        except Exception:  # the store may be closing: the lease then simply expires
            log.debug("releasing the delivery lease failed", exc_info=True)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.run_once()
            except Exception:  # the next round starts again from the checkpoint
                log.exception("Bedrock-layout delivery failed; retrying next round")
