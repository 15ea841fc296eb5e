"""One evaluation of one alarm, and the alarms every budget gets.

`AlarmEvaluator.evaluate` reads the alarm's values for its periods (`sources`), decides the
state (`evaluation.decide`), saves it (`AlarmStore.record`) and, when the state changed,
enqueues one delivery per action of the new state. Enqueued, not sent: the delivery queue
sends them after, so that a slow SMTP server never holds up the other alarms.

Budgets are alarms too: each budget has ``budget NAME 80%`` and ``budget NAME 100%``
(``Budget`` + ``Threshold``), created when missing and removed with the budget; their actions
are the user's to set with a PUT, which the next sync leaves as it is.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable
from datetime import datetime

from llmtrail.alerts.alarm import Alarm, parse_alarm
from llmtrail.alerts.alarm_store import AlarmStore
from llmtrail.alerts.deliveries import DeliveryQueue
from llmtrail.alerts.evaluation import Outcome, decide, windows
from llmtrail.alerts.message import AlarmMessage
from llmtrail.alerts.sources import AlarmValues
from llmtrail.errors import LlmtrailError, NotFound
from llmtrail.record import DEFAULT_WORKSPACE

log = logging.getLogger("llmtrail.alerts")
BUDGET_LEVELS = (80, 100)


class AlarmEvaluator:
    def __init__(
        self, alarms: AlarmStore, values: AlarmValues, deliveries: DeliveryQueue, base_url: str
    ) -> None:
        self.alarms = alarms
        self.values = values
        self.deliveries = deliveries
        self.base_url = base_url

    def evaluate(self, alarm: Alarm, now: datetime) -> Outcome:
        """Evaluate ``alarm`` over its own workspace's values and save the outcome there."""
        ws = alarm.workspace
        current = self.alarms.current(alarm.name, workspace=ws).get(
            "StateValue", "INSUFFICIENT_DATA"
        )
        periods = windows(alarm, now)
        values = self.values.values(alarm, periods, now)
        outcome = decide(alarm, values, current)
        data = {
            **outcome.reason_data,
            "period": alarm.period,
            "startDate": periods[0][0].isoformat(),
            "endDate": periods[-1][1].isoformat(),
        }
        old = self.alarms.record(
            alarm.name, outcome.state, outcome.reason, outcome.value, data, now, workspace=ws
        )
        if old is not None:
            log.info("alarm %r: %s -> %s (%s)", alarm.name, old, outcome.state, outcome.reason)
            message = AlarmMessage.for_change(
                alarm, old, outcome.state, outcome.reason, outcome.value, now, self.base_url
            )
            for action in alarm.actions_for(outcome.state):
                self.deliveries.enqueue(action, message, now, workspace=ws)
        return outcome

    def evaluate_all(self, now: datetime) -> int:
        """Evaluate every alarm of every workspace; one that cannot be evaluated (its query
        no longer compiles, the store is reopening) keeps its state, says why, and does not
        stop the others. Returns how many were evaluated."""
        done = 0
        for alarm in self.alarms.alarms():
            try:
                self.evaluate(alarm, now)
                done += 1
            except LlmtrailError as exc:
                log.warning("alarm %r could not be evaluated: %s", alarm.name, exc)
                self.alarms.failed(alarm.name, str(exc), now, workspace=alarm.workspace)
            except Exception as exc:
                log.exception("alarm %r could not be evaluated", alarm.name)
                error = f"{type(exc).__name__}: {exc}"
                self.alarms.failed(alarm.name, error, now, workspace=alarm.workspace)
        return done


def budget_alarm_name(budget: str, level: int) -> str:
    return f"budget {budget} {level}%"[:255]


BudgetEntry = tuple[str, str] | tuple[str, str, str]  # (name, limitUsd[, workspace])


def sync_budget_alarms(alarms: AlarmStore, budgets: Iterable[BudgetEntry], now: datetime) -> None:
    """Create the 80 % and 100 % alarms of each budget ``(name, limitUsd, workspace)`` (the
    default workspace when the workspace is left out) that lacks them, in the budget's
    workspace, and remove those of budgets that are gone."""
    limits = {
        (entry[2] if len(entry) > 2 else DEFAULT_WORKSPACE, entry[0]): entry[1] for entry in budgets
    }
    existing = {(a.workspace, a.name): a for a in alarms.alarms(None)}
    for (workspace, budget), limit in limits.items():
        for level in BUDGET_LEVELS:
            name = budget_alarm_name(budget, level)
            if (workspace, name) in existing:
                continue
            alarm = parse_alarm(
                {
                    "Budget": budget,
                    "Threshold": level,
                    "ComparisonOperator": "GreaterThanOrEqualToThreshold",
                    "Period": 300,
                    "EvaluationPeriods": 1,
                    "AlarmDescription": f"{level}% of budget {budget!r} (${limit} a month) spent",
                    "Workspace": workspace,
                },
                name,
            )
            alarms.put(alarm, now)
    for alarm in existing.values():
        managed = alarm.budget is not None and alarm.name == budget_alarm_name(
            alarm.budget, int(alarm.threshold)
        )
        if managed and (alarm.workspace, alarm.budget) not in limits:
            with contextlib.suppress(NotFound):
                alarms.delete(alarm.name, workspace=alarm.workspace)
