"""Alarms, their current state and their history, kept in the `StateStore` so that every
server sharing a store sees the same ones.

=================  ======================================================================
namespace          value under the alarm's name
=================  ======================================================================
``alarms``         the definition (`Alarm.to_dict`, ``PutMetricAlarm``'s fields)
``alarm-states``   ``StateValue``, ``StateReason``, ``StateReasonData``, ``Value``,
                   ``StateUpdatedTimestamp`` and ``EvaluatedAt``
``alarm-history``  the latest `HISTORY_LIMIT` items, newest first, shaped like
                   ``DescribeAlarmHistory``'s ``AlarmHistoryItems``
=================  ======================================================================

History is read, extended and written back as one value: only the evaluator holding the
lease (`lease`) and the API's own configuration changes write it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from llmtrail.alerts.alarm import Alarm, parse_alarm
from llmtrail.errors import NotFound
from llmtrail.record import format_timestamp
from llmtrail.store.interfaces import StateStore

ALARMS = "alarms"
STATES = "alarm-states"
HISTORY = "alarm-history"
HISTORY_LIMIT = 500
INITIAL = "INSUFFICIENT_DATA"


class AlarmStore:
    """Alarm definitions, states and history over a `StateStore`."""

    def __init__(self, state: StateStore) -> None:
        self.state = state

    def put(self, alarm: Alarm, now: datetime) -> dict[str, Any]:
        """Create or replace ``alarm``; a new alarm starts in ``INSUFFICIENT_DATA``."""
        existed = self.state.get(ALARMS, alarm.name) is not None
        self.state.put(ALARMS, alarm.name, alarm.to_dict())
        if self.state.get(STATES, alarm.name) is None:
            self.state.put(
                STATES,
                alarm.name,
                _state(INITIAL, "Unchecked: Initial alarm creation", None, {}, now),
            )
        self._add_history(
            alarm.name,
            {
                "Timestamp": format_timestamp(now),
                "HistoryItemType": "ConfigurationUpdate",
                "HistorySummary": f'Alarm "{alarm.name}" {"updated" if existed else "created"}',
            },
        )
        return self.describe(alarm.name)

    def get(self, name: str) -> Alarm:
        doc = self.state.get(ALARMS, name)
        if doc is None:
            raise NotFound(f"no alarm named {name!r}")
        return parse_alarm(doc, name)

    def alarms(self) -> list[Alarm]:
        """Every alarm, by name; one whose stored definition no longer validates (a metric
        renamed since) is left out rather than stopping the others."""
        out = []
        for name, doc in self.state.list(ALARMS).items():
            try:
                out.append(parse_alarm(doc, name))
            except Exception:
                continue
        return out

    def describe(self, name: str) -> dict[str, Any]:
        """The definition with its state, as ``DescribeAlarms`` lists a ``MetricAlarm``."""
        doc = self.state.get(ALARMS, name)
        if doc is None:
            raise NotFound(f"no alarm named {name!r}")
        return {**doc, **(self.state.get(STATES, name) or {})}

    def describe_all(self) -> list[dict[str, Any]]:
        states = self.state.list(STATES)
        return [{**doc, **states.get(name, {})} for name, doc in self.state.list(ALARMS).items()]

    def delete(self, name: str) -> None:
        if not self.state.delete(ALARMS, name):
            raise NotFound(f"no alarm named {name!r}")
        self.state.delete(STATES, name)
        self.state.delete(HISTORY, name)

    def current(self, name: str) -> dict[str, Any]:
        return dict(self.state.get(STATES, name) or _state(INITIAL, "", None, {}, None))

    def record(
        self,
        name: str,
        new_state: str,
        reason: str,
        value: float | None,
        data: dict[str, Any],
        now: datetime,
    ) -> str | None:
        """Save an evaluation; when the state changed, add a ``StateUpdate`` history item and
        return the old state (None when it did not change)."""
        current = self.current(name)
        old = current.get("StateValue", INITIAL)
        when = format_timestamp(now)
        if old == new_state:
            current.update({"Value": value, "EvaluatedAt": when, "EvaluationError": None})
            self.state.put(STATES, name, current)
            return None
        self.state.put(STATES, name, _state(new_state, reason, value, data, now))
        self._add_history(
            name,
            {
                "Timestamp": when,
                "HistoryItemType": "StateUpdate",
                "HistorySummary": f"Alarm updated from {old} to {new_state}",
                "OldState": old,
                "NewState": new_state,
                "Reason": reason,
                "Value": value,
            },
        )
        return str(old)

    def failed(self, name: str, error: str, now: datetime) -> None:
        """The alarm could not be evaluated at ``now``: it keeps its state and says why."""
        current = self.current(name)
        current.update({"EvaluationError": error, "EvaluatedAt": format_timestamp(now)})
        self.state.put(STATES, name, current)

    def note(self, name: str, item: dict[str, Any]) -> None:
        """Add an ``Action`` history item (a notification sent or failed)."""
        if self.state.get(ALARMS, name) is not None:
            self._add_history(name, {"HistoryItemType": "Action", **item})

    def history(self, name: str, kind: str | None = None) -> list[dict[str, Any]]:
        """The alarm's history, newest first; ``kind`` keeps one ``HistoryItemType``."""
        if self.state.get(ALARMS, name) is None:
            raise NotFound(f"no alarm named {name!r}")
        items = list(self.state.get(HISTORY, name) or [])
        return [i for i in items if kind is None or i.get("HistoryItemType") == kind]

    def _add_history(self, name: str, item: dict[str, Any]) -> None:
        items = list(self.state.get(HISTORY, name) or [])
        items.insert(0, {"AlarmName": name, **item})
        self.state.put(HISTORY, name, items[:HISTORY_LIMIT])


def _state(
    value: str, reason: str, number: float | None, data: dict[str, Any], now: datetime | None
) -> dict[str, Any]:
    when = format_timestamp(now) if now is not None else None
    return {
        "StateValue": value,
        "StateReason": reason,
        "StateReasonData": data,
        "Value": number,
        "StateUpdatedTimestamp": when,
        "EvaluatedAt": when,
    }
