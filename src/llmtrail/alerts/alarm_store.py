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

An alarm belongs to one workspace, and two workspaces may each have an alarm of the same
name: the default workspace's alarms are in the namespaces above (where alarms were kept
before workspaces), another workspace's in ``alarms/WORKSPACE``, ``alarm-states/WORKSPACE``
and ``alarm-history/WORKSPACE``. The workspaces that have alarms are listed in
``alarm-workspaces``, so the evaluator finds every alarm. Every method names the workspace;
another workspace's alarm is "not found".

History is read, extended and written back as one value: only the evaluator holding the
lease (`lease`) and the API's own configuration changes write it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from llmtrail.alerts.alarm import Alarm, parse_alarm
from llmtrail.errors import NotFound
from llmtrail.record import DEFAULT_WORKSPACE, format_timestamp
from llmtrail.store.interfaces import StateStore

ALARMS = "alarms"
STATES = "alarm-states"
HISTORY = "alarm-history"
HISTORY_LIMIT = 500
WORKSPACES = "alarm-workspaces"
INITIAL = "INSUFFICIENT_DATA"


def namespace(kind: str, workspace: str) -> str:
    """The namespace of ``kind`` (`ALARMS`, `STATES`, `HISTORY`) for ``workspace``."""
    return kind if workspace == DEFAULT_WORKSPACE else f"{kind}/{workspace}"


class AlarmStore:
    """Alarm definitions, states and history over a `StateStore`, per workspace."""

    def __init__(self, state: StateStore) -> None:
        self.state = state

    def put(self, alarm: Alarm, now: datetime) -> dict[str, Any]:
        """Create or replace ``alarm`` in its workspace; a new alarm starts in
        ``INSUFFICIENT_DATA``."""
        ws = alarm.workspace
        existed = self.state.get(namespace(ALARMS, ws), alarm.name) is not None
        if ws != DEFAULT_WORKSPACE and self.state.get(WORKSPACES, ws) is None:
            self.state.put(WORKSPACES, ws, {"workspace": ws})
        self.state.put(namespace(ALARMS, ws), alarm.name, alarm.to_dict())
        if self.state.get(namespace(STATES, ws), alarm.name) is None:
            self.state.put(
                namespace(STATES, ws),
                alarm.name,
                _state(INITIAL, "Unchecked: Initial alarm creation", None, {}, now),
            )
        self._add_history(
            alarm.name,
            ws,
            {
                "Timestamp": format_timestamp(now),
                "HistoryItemType": "ConfigurationUpdate",
                "HistorySummary": f'Alarm "{alarm.name}" {"updated" if existed else "created"}',
            },
        )
        return self.describe(alarm.name, workspace=ws)

    def get(self, name: str, *, workspace: str = DEFAULT_WORKSPACE) -> Alarm:
        doc = self.state.get(namespace(ALARMS, workspace), name)
        if doc is None:
            raise NotFound(f"no alarm named {name!r}")
        return _parsed(doc, name, workspace)

    def workspaces(self) -> list[str]:
        """Every workspace that has (or had) alarms, the default one first."""
        return [
            DEFAULT_WORKSPACE,
            *(w for w in self.state.list(WORKSPACES) if w != DEFAULT_WORKSPACE),
        ]

    def any(self) -> bool:
        """Whether any workspace has an alarm."""
        return any(self.state.list(namespace(ALARMS, ws)) for ws in self.workspaces())

    def alarms(self, workspace: str | None = None) -> list[Alarm]:
        """Every alarm of ``workspace`` (of every workspace for None), by name; one whose
        stored definition no longer validates (a metric renamed since) is left out rather
        than stopping the others."""
        out = []
        for ws in self.workspaces() if workspace is None else [workspace]:
            for name, doc in self.state.list(namespace(ALARMS, ws)).items():
                try:
                    out.append(_parsed(doc, name, ws))
                except Exception:
                    continue
        return out

    def describe(self, name: str, *, workspace: str = DEFAULT_WORKSPACE) -> dict[str, Any]:
        """The definition with its state, as ``DescribeAlarms`` lists a ``MetricAlarm``."""
        doc = self.state.get(namespace(ALARMS, workspace), name)
        if doc is None:
            raise NotFound(f"no alarm named {name!r}")
        return {**doc, **(self.state.get(namespace(STATES, workspace), name) or {})}

    def describe_all(self, *, workspace: str = DEFAULT_WORKSPACE) -> list[dict[str, Any]]:
        """Every alarm of ``workspace`` with its state, by name."""
        states = self.state.list(namespace(STATES, workspace))
        return [
            {**doc, **states.get(name, {})}
            for name, doc in self.state.list(namespace(ALARMS, workspace)).items()
        ]

    def delete(self, name: str, *, workspace: str = DEFAULT_WORKSPACE) -> None:
        if not self.state.delete(namespace(ALARMS, workspace), name):
            raise NotFound(f"no alarm named {name!r}")
        self.state.delete(namespace(STATES, workspace), name)
        self.state.delete(namespace(HISTORY, workspace), name)

    def current(self, name: str, *, workspace: str = DEFAULT_WORKSPACE) -> dict[str, Any]:
        found = self.state.get(namespace(STATES, workspace), name)
        return dict(found or _state(INITIAL, "", None, {}, None))

    def record(
        self,
        name: str,
        new_state: str,
        reason: str,
        value: float | None,
        data: dict[str, Any],
        now: datetime,
        *,
        workspace: str = DEFAULT_WORKSPACE,
    ) -> str | None:
        """Save an evaluation; when the state changed, add a ``StateUpdate`` history item and
        return the old state (None when it did not change)."""
        current = self.current(name, workspace=workspace)
        old = current.get("StateValue", INITIAL)
        when = format_timestamp(now)
        states = namespace(STATES, workspace)
        if old == new_state:
            current.update({"Value": value, "EvaluatedAt": when, "EvaluationError": None})
            self.state.put(states, name, current)
            return None
        self.state.put(states, name, _state(new_state, reason, value, data, now))
        self._add_history(
            name,
            workspace,
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

    def failed(
        self, name: str, error: str, now: datetime, *, workspace: str = DEFAULT_WORKSPACE
    ) -> None:
        """The alarm could not be evaluated at ``now``: it keeps its state and says why."""
        current = self.current(name, workspace=workspace)
        current.update({"EvaluationError": error, "EvaluatedAt": format_timestamp(now)})
        self.state.put(namespace(STATES, workspace), name, current)

    def note(self, name: str, item: dict[str, Any], *, workspace: str = DEFAULT_WORKSPACE) -> None:
        """Add an ``Action`` history item (a notification sent or failed)."""
        if self.state.get(namespace(ALARMS, workspace), name) is not None:
            self._add_history(name, workspace, {"HistoryItemType": "Action", **item})

    def history(
        self, name: str, kind: str | None = None, *, workspace: str = DEFAULT_WORKSPACE
    ) -> list[dict[str, Any]]:
        """The alarm's history, newest first; ``kind`` keeps one ``HistoryItemType``."""
        if self.state.get(namespace(ALARMS, workspace), name) is None:
            raise NotFound(f"no alarm named {name!r}")
        items = list(self.state.get(namespace(HISTORY, workspace), name) or [])
        return [i for i in items if kind is None or i.get("HistoryItemType") == kind]

    def _add_history(self, name: str, workspace: str, item: dict[str, Any]) -> None:
        where = namespace(HISTORY, workspace)
        items = list(self.state.get(where, name) or [])
        items.insert(0, {"AlarmName": name, **item})
        self.state.put(where, name, items[:HISTORY_LIMIT])


def _parsed(doc: Any, name: str, workspace: str) -> Alarm:
    """The stored definition, in the workspace it is stored in (whatever it says)."""
    return parse_alarm({**doc, "Workspace": workspace}, name)


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
