"""The delivery queue: every notification an alarm sends, tried until it arrives or its
attempts run out, and kept so that failed deliveries are shown (``GET /api/deliveries``).

A state change enqueues one delivery per action (`enqueue`), in the `StateStore` (namespace
``alarm-deliveries``), before anything is sent: a server that stops between the two sends it
after the restart, from whichever server holds the evaluation lease. `run_due` sends what is
due; a failure is retried after `BACKOFF_S` (10 s, 30 s, 2 min, 10 min …) up to
``[alerts] delivery_attempts``, then the delivery is ``failed`` with the last error. Only the
latest `KEEP` deliveries are kept. A delivery belongs to its alarm's workspace (its
``workspace``; absent on those kept before workspaces: the default one), is sent through that
workspace's notifier, and is listed only to that workspace.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from llmtrail.alerts.message import AlarmMessage
from llmtrail.alerts.notifiers import DeliveryFailed, Notifier
from llmtrail.errors import LlmtrailError
from llmtrail.record import DEFAULT_WORKSPACE, format_timestamp, parse_timestamp
from llmtrail.store.interfaces import StateStore

log = logging.getLogger("llmtrail.alerts")
NAMESPACE = "alarm-deliveries"
BACKOFF_S = (10, 30, 120, 600, 1800)
KEEP = 1000

# (action, workspace) -> (name, notifier)
NotifierLookup = Callable[[str, str], tuple[str, Notifier]]


class DeliveryQueue:
    def __init__(self, state: StateStore, attempts: int = 5) -> None:
        self.state = state
        self.attempts = attempts

    def enqueue(
        self,
        action: str,
        message: AlarmMessage,
        now: datetime,
        *,
        workspace: str = DEFAULT_WORKSPACE,
    ) -> dict[str, Any]:
        """Keep a delivery of ``message`` to ``action``, pending, for `run_due` to send."""
        delivery = self.new(action, message, now, workspace=workspace)
        self.state.put(NAMESPACE, delivery["id"], delivery)
        return delivery

    def new(
        self,
        action: str,
        message: AlarmMessage,
        now: datetime,
        max_attempts: int | None = None,
        *,
        workspace: str = DEFAULT_WORKSPACE,
    ) -> dict[str, Any]:
        """A delivery not yet kept: `deliver` keeps it after its first attempt (a test fire,
        with ``max_attempts=1``, is tried once and never by `run_due`)."""
        # time-ordered ids: the store lists keys sorted, so the oldest come first
        key = f"{now.strftime('%Y%m%dT%H%M%S.%f')}-{uuid.uuid4().hex[:8]}"
        delivery = {
            "id": key,
            "alarm": message.alarm,
            "workspace": workspace,
            "action": action,
            "state": message.new_state,
            "status": "pending",
            "attempts": 0,
            "created": format_timestamp(now),
            "nextAttempt": format_timestamp(now),
            "lastError": None,
            "result": None,
            "test": message.test,
            "maxAttempts": max_attempts or self.attempts,
            "message": message.to_state(),
        }
        return delivery

    def deliver(
        self, delivery: dict[str, Any], lookup: NotifierLookup, now: datetime
    ) -> dict[str, Any]:
        """One attempt at ``delivery``: sent, or scheduled again, or failed for good."""
        delivery = dict(delivery)
        delivery["attempts"] += 1
        try:
            workspace = delivery.get("workspace", DEFAULT_WORKSPACE)
            name, notifier = lookup(delivery["action"], workspace)
            delivery["notifier"] = name
            delivery["result"] = notifier.send(AlarmMessage.from_state(delivery["message"]))
        except (DeliveryFailed, LlmtrailError) as exc:
            self._failed(delivery, str(exc), now)
        except Exception as exc:
            log.exception("notifier for %r raised", delivery["action"])
            self._failed(delivery, f"{type(exc).__name__}: {exc}", now)
        else:
            delivery.update(status="delivered", delivered=format_timestamp(now), lastError=None)
        self.state.put(NAMESPACE, delivery["id"], delivery)
        return delivery

    def _failed(self, delivery: dict[str, Any], error: str, now: datetime) -> None:
        delivery["lastError"] = error
        if delivery["attempts"] >= delivery.get("maxAttempts", self.attempts):
            delivery["status"] = "failed"
            log.warning("delivery to %r failed for good: %s", delivery["action"], error)
            return
        wait = BACKOFF_S[min(delivery["attempts"], len(BACKOFF_S)) - 1]
        delivery["nextAttempt"] = format_timestamp(now + timedelta(seconds=wait))

    def run_due(self, lookup: NotifierLookup, now: datetime) -> list[dict[str, Any]]:
        """Attempt every pending delivery that is due; returns those attempted."""
        done = []
        for delivery in self.state.list(NAMESPACE).values():
            if delivery.get("status") != "pending":
                continue
            if parse_timestamp(delivery["nextAttempt"], "nextAttempt") > now:
                continue
            done.append(self.deliver(delivery, lookup, now))
        self.prune()
        return done

    def list(
        self,
        alarm: str | None = None,
        status: str | None = None,
        limit: int = 100,
        *,
        workspace: str | None = DEFAULT_WORKSPACE,
    ) -> list[dict[str, Any]]:
        """Deliveries of ``workspace`` (of every workspace for None), newest first,
        optionally of one alarm or status."""
        items = [
            d
            for d in reversed(self.state.list(NAMESPACE).values())
            if (workspace is None or d.get("workspace", DEFAULT_WORKSPACE) == workspace)
            and (alarm is None or d.get("alarm") == alarm)
            and (status is None or d.get("status") == status)
        ]
        return items[:limit]

    def prune(self) -> None:
        keys = list(self.state.list(NAMESPACE))
        for key in keys[: max(0, len(keys) - KEEP)]:
            self.state.delete(NAMESPACE, key)
