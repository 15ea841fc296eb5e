"""Which server evaluates alarms when several share a store: the one holding the lease.

The lease is a value in the `StateStore` (namespace ``leases``, key ``alarm-evaluator``):
its holder and when it expires. A server takes it when it is free or expired, renews it on
each evaluation, and gives it up when it stops. The store offers no compare-and-set, so a
take is confirmed by reading the lease back after writing it: when two servers write at the
same moment, the store keeps one value (the last write wins, on ClickHouse too) and only its
writer sees itself when it reads back; the other waits for the lease to expire. Expiry is
three evaluation intervals, so a holder that died hands over within that time.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from llmtrail.record import format_timestamp, parse_timestamp
from llmtrail.store.interfaces import StateStore

log = logging.getLogger("llmtrail.lease")
NAMESPACE = "leases"
KEY = "alarm-evaluator"


def holder_id() -> str:
    """This server: host, process and a random part (a restarted process is another)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Lease:
    """The lease under ``key`` in the ``leases`` namespace (the alarm evaluator's by
    default; retention runs hold their own)."""

    def __init__(self, state: StateStore, holder: str, duration: timedelta, key: str = KEY) -> None:
        self.state = state
        self.holder = holder
        self.duration = duration
        self.key = key

    def acquire(self, now: datetime) -> bool:
        """Take or renew the lease; True when this server holds it until ``now`` plus the
        duration."""
        current = self.state.get(NAMESPACE, self.key)
        if current is not None and current.get("holder") != self.holder:
            expires = parse_timestamp(current["expires"], "expires")
            if expires > now:
                return False
        value = {"holder": self.holder, "expires": format_timestamp(now + self.duration)}
        self.state.put(NAMESPACE, self.key, value)
        confirmed = self.state.get(NAMESPACE, self.key)
        return confirmed is not None and confirmed.get("holder") == self.holder

    def release(self) -> None:
        current = self.state.get(NAMESPACE, self.key)
        if current is not None and current.get("holder") == self.holder:
            self.state.delete(NAMESPACE, self.key)

    def holder_now(self, now: datetime) -> str | None:
        """Who holds the lease at ``now`` (None when free)."""
        current = self.state.get(NAMESPACE, self.key)
        if current is None or parse_timestamp(current["expires"], "expires") <= now:
            return None
        return str(current["holder"])


class LeasedLoop:
    """``job(now)`` every ``interval_s`` seconds on the one server holding the lease ``key``
    (held for three intervals, so a holder that died hands over within that time); the
    other servers only try to take it. `run_once` is one tick, for tests with an injected
    clock (no sleeping). Retention and Bedrock-layout delivery run this way."""

    def __init__(
        self,
        job: Callable[[datetime], object],
        state: StateStore,
        interval_s: float,
        key: str,
        clock: Callable[[], datetime],
        holder: str | None = None,
    ) -> None:
        self.job = job
        self.interval_s = interval_s
        self.clock = clock
        self.lease = Lease(state, holder or holder_id(), timedelta(seconds=3 * interval_s), key)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> bool:
        """One tick: the job, if this server holds (or takes) the lease."""
        now = self.clock()
        if not self.lease.acquire(now):
            return False
        self.job(now)
        return True

    def start(self) -> None:
        """Start the loop thread (first run after one interval)."""
        if self._thread is None:
            name = f"llmtrail-{self.lease.key}"
            self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
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
            log.debug("releasing the %s lease failed", self.lease.key, exc_info=True)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.run_once()
            except Exception:  # the next interval tries again
                log.exception("the %s run failed; the next interval tries again", self.lease.key)
