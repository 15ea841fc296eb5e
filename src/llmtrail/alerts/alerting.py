"""Alerting as a whole: the alarms, notifiers and deliveries of one store, evaluated on a
schedule by the one server holding the lease.

`Alerting` is what the API and CLI call (put, describe, history, test fires) and what the
`EvaluationLoop` thread ticks every ``[alerts] evaluation_interval_s``: take or renew the
lease (`lease`); if held, sync the budgets' alarms, evaluate every alarm, and send the
deliveries that are due. Ticks and the API's evaluations take one lock, so a test fire or an
``evaluate`` call never races the loop in the same process. ``clock`` is injected, so tests
step time instead of waiting for it.

Alarms, notifiers and deliveries belong to a workspace: every call the API and the UI make
names the caller's, and another workspace's alarm or notifier is "not found". The schedule
evaluates every workspace's alarms, each over its own workspace's data.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from llmtrail.alerts.alarm import parse_alarm
from llmtrail.alerts.alarm_store import AlarmStore
from llmtrail.alerts.deliveries import DeliveryQueue
from llmtrail.alerts.evaluator import AlarmEvaluator, BudgetEntry, sync_budget_alarms
from llmtrail.alerts.lease import Lease, holder_id
from llmtrail.alerts.message import AlarmMessage
from llmtrail.alerts.notifier_store import NotifierStore
from llmtrail.alerts.sources import AlarmValues
from llmtrail.config import Settings
from llmtrail.errors import ValidationError
from llmtrail.record import DEFAULT_WORKSPACE
from llmtrail.store.interfaces import StateStore

log = logging.getLogger("llmtrail.alerts")
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class Alerting:
    def __init__(
        self,
        state: StateStore,
        settings: Settings,
        values: AlarmValues,
        budgets: Callable[[], Iterable[BudgetEntry]] = lambda: (),
        clock: Clock = utc_now,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.alarms = AlarmStore(state)
        self.notifiers = NotifierStore(state, settings)
        self.deliveries = DeliveryQueue(state, settings.alerts.delivery_attempts)
        interval = settings.alerts.evaluation_interval_s
        self.lease = Lease(state, holder_id(), timedelta(seconds=max(3 * interval, 10)))
        self.base_url = settings.alerts.public_url or f"http://{settings.host}:{settings.port}"
        self.evaluator = AlarmEvaluator(self.alarms, values, self.deliveries, self.base_url)
        self.budgets = budgets
        self._lock = threading.Lock()

    # -- the schedule ---------------------------------------------------------------------
    def tick(self, now: datetime | None = None) -> bool:
        """One scheduled round; False when another server holds the lease."""
        now = now or self.clock()
        with self._lock:
            try:
                budgets = list(self.budgets())
            except Exception:
                log.exception("the budgets could not be read; their alarms are left as they are")
                budgets = None
            if budgets == [] and not self._anything_to_do():
                return False  # nothing to evaluate or send: no lease write every interval
            if not self.lease.acquire(now):
                return False
            try:
                if budgets is not None:
                    sync_budget_alarms(self.alarms, budgets, now)
            except Exception:
                log.exception("the budgets' alarms could not be synced")
            self.evaluator.evaluate_all(now)
            self.deliveries.run_due(self.notifiers.for_action, now)
            return True

    def _anything_to_do(self) -> bool:
        return self.alarms.any() or bool(
            self.deliveries.list(status="pending", limit=1, workspace=None)
        )

    # -- alarms ---------------------------------------------------------------------------
    def describe_alarms(self, workspace: str = DEFAULT_WORKSPACE) -> list[dict[str, Any]]:
        """``DescribeAlarms``' ``MetricAlarms`` of ``workspace``, with state: what the web
        UI's Alarms page and dashboards' alarm widgets show."""
        return self.alarms.describe_all(workspace=workspace)

    def history(self, name: str, workspace: str = DEFAULT_WORKSPACE) -> list[dict[str, Any]]:
        """``DescribeAlarmHistory``' ``AlarmHistoryItems`` of alarm ``name``, newest first."""
        return self.alarms.history(name, workspace=workspace)

    def put_alarm(self, name: str, doc: Any, workspace: str = DEFAULT_WORKSPACE) -> dict[str, Any]:
        """``PutMetricAlarm`` in ``workspace``; a body naming another ``Workspace`` is
        refused (a key never writes outside its own)."""
        given = doc.get("Workspace") if isinstance(doc, dict) else None
        if given is not None and given != workspace:
            raise ValidationError(
                "Workspace", f"is {given!r}, but this key's workspace is {workspace!r}"
            )
        alarm = parse_alarm({**doc, "Workspace": workspace} if isinstance(doc, dict) else doc, name)
        with self._lock:
            return self.alarms.put(alarm, self.clock())

    def evaluate(self, name: str, workspace: str = DEFAULT_WORKSPACE) -> dict[str, Any]:
        """Evaluate alarm ``name`` now (its notifications are sent at the next tick)."""
        with self._lock:
            alarm = self.alarms.get(name, workspace=workspace)
            self.evaluator.evaluate(alarm, self.clock())
            return self.alarms.describe(name, workspace=workspace)

    def set_state(
        self, name: str, workspace: str, state: str, reason: str, data: dict[str, Any]
    ) -> str | None:
        """Put alarm ``name`` in ``state`` by hand (``SetAlarmState``), as an evaluation that
        changed it would: a ``StateUpdate`` history item, and one delivery per action of the
        new state (sent at the next tick). The same state again changes nothing. Returns the
        old state, None when unchanged. The evaluator brings the alarm back to what its data
        says at its next evaluation, as CloudWatch does."""
        with self._lock:  # the evaluation loop's lock: one history writer at a time
            alarm = self.alarms.get(name, workspace=workspace)
            current = self.alarms.current(name, workspace=workspace)
            if current.get("StateValue") == state:
                return None
            now = self.clock()
            value = current.get("Value")
            old: str | None = self.alarms.record(
                name, state, reason, value, data, now, workspace=workspace
            )
            if old is not None:
                message = AlarmMessage.for_change(
                    alarm, old, state, reason, value, now, self.base_url
                )
                for action in alarm.actions_for(state):
                    self.deliveries.enqueue(action, message, now, workspace=workspace)
            return old

    def test_alarm(self, name: str, workspace: str = DEFAULT_WORKSPACE) -> list[dict[str, Any]]:
        """Send alarm ``name``'s ALARM message, marked as a test, to each of its
        ``AlarmActions`` once; the answers say whether each arrived."""
        alarm = self.alarms.get(name, workspace=workspace)
        if not alarm.alarm_actions:
            raise ValidationError("AlarmActions", f"alarm {name!r} has no actions to test")
        now = self.clock()
        current = self.alarms.current(name, workspace=workspace)
        message = AlarmMessage.for_change(
            alarm,
            current.get("StateValue", "INSUFFICIENT_DATA"),
            "ALARM",
            "Test fire: the alarm's actions were triggered by hand.",
            current.get("Value"),
            now,
            self.base_url,
            test=True,
        )
        return [self._fire_once(action, message, now, workspace) for action in alarm.alarm_actions]

    def test_notifier(self, name: str, workspace: str = DEFAULT_WORKSPACE) -> dict[str, Any]:
        """Send a test message through notifier ``name`` of ``workspace``, once."""
        self.notifiers.get(name, workspace=workspace)
        now = self.clock()
        sample = parse_alarm(
            {
                "Query": 'filter status = "ERROR" | stats count(*)',
                "Threshold": 5,
                "ComparisonOperator": "GreaterThanOrEqualToThreshold",
                "Period": 300,
            },
            "llmtrail test notification",
        )
        message = AlarmMessage.for_change(
            sample, "OK", "ALARM", f"Test of notifier {name!r}.", 6.0, now, self.base_url, True
        )
        return self._fire_once(name, message, now, workspace)

    def _fire_once(
        self, action: str, message: AlarmMessage, now: datetime, workspace: str
    ) -> dict[str, Any]:
        delivery = self.deliveries.new(action, message, now, max_attempts=1, workspace=workspace)
        return self.deliveries.deliver(delivery, self.notifiers.for_action, now)


class EvaluationLoop:
    """The thread that ticks `Alerting` every interval until `stop`."""

    def __init__(self, alerting: Alerting, interval_s: float) -> None:
        self.alerting = alerting
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="llmtrail-alarms", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.alerting.tick()
            except Exception:
                log.exception("alarm evaluation failed; trying again in %.0f s", self.interval_s)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        try:
            self.alerting.lease.release()
        except Exception:
            log.debug("could not release the alarm lease", exc_info=True)
