"""What a notification says: which alarm changed state, from what to what, why, the value
and the threshold, and the address of the UI page that shows the alarm.

`to_dict` follows the JSON CloudWatch alarms publish to SNS (``AlarmName``,
``NewStateValue``, ``NewStateReason``, ``OldStateValue``, ``StateChangeTime``, ``Trigger``)
plus llmtrail's ``Value``, ``Url`` and ``Test``; e-mail and Slack render `subject` and
`text` from the same fields.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from llmtrail.alerts.alarm import COMPARISONS, Alarm
from llmtrail.record import format_timestamp


@dataclass(frozen=True)
class AlarmMessage:
    alarm: str
    description: str
    old_state: str
    new_state: str
    reason: str
    value: float | None
    threshold: float
    comparison: str
    watching: str  # the value in words: "Sum of InvocationClientErrors"
    period: int
    evaluation_periods: int
    time: str
    url: str
    trigger: dict[str, Any]
    test: bool = False

    @classmethod
    def for_change(
        cls,
        alarm: Alarm,
        old_state: str,
        new_state: str,
        reason: str,
        value: float | None,
        now: datetime,
        base_url: str,
        test: bool = False,
    ) -> AlarmMessage:
        trigger = {
            k: v
            for k, v in alarm.to_dict().items()
            if k
            in (
                "MetricName",
                "Namespace",
                "Statistic",
                "ExtendedStatistic",
                "Dimensions",
                "Query",
                "Budget",
                "Period",
                "EvaluationPeriods",
                "DatapointsToAlarm",
                "ComparisonOperator",
                "Threshold",
                "TreatMissingData",
            )
        }
        return cls(
            alarm=alarm.name,
            description=alarm.description,
            old_state=old_state,
            new_state=new_state,
            reason=reason,
            value=value,
            threshold=alarm.threshold,
            comparison=alarm.comparison,
            watching=alarm.describe_value(),
            period=alarm.period,
            evaluation_periods=alarm.evaluation_periods,
            time=format_timestamp(now),
            url=alarm_url(base_url, alarm.name),
            trigger=trigger,
            test=test,
        )

    @property
    def subject(self) -> str:
        """``ALARM: "errors" (InvocationClientErrors >= 5)``; a test says so first."""
        head = "[TEST] " if self.test else ""
        op = COMPARISONS.get(self.comparison, self.comparison)
        condition = f"{_short(self.watching)} {op} {_n(self.threshold)}"
        return f'{head}{self.new_state}: "{self.alarm}" ({condition})'

    @property
    def text(self) -> str:
        lines = [
            ("This is a test notification; nothing changed.\n" if self.test else "")
            + f'Alarm "{self.alarm}" is now {self.new_state} (was {self.old_state}).',
            "",
            f"Watching:   {self.watching}",
            f"Condition:  {COMPARISONS.get(self.comparison, self.comparison)} "
            f"{_n(self.threshold)} over {self.evaluation_periods} x {self.period} s",
            f"Value:      {'no data' if self.value is None else _n(self.value)}",
            f"Threshold:  {_n(self.threshold)}",
            f"Reason:     {self.reason}",
            f"Changed at: {self.time}",
            "",
            f"See it: {self.url}",
        ]
        if self.description:
            lines[1:1] = ["", self.description]
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict[str, Any]:
        return {
            "AlarmName": self.alarm,
            "AlarmDescription": self.description,
            "NewStateValue": self.new_state,
            "NewStateReason": self.reason,
            "OldStateValue": self.old_state,
            "StateChangeTime": self.time,
            "Trigger": self.trigger,
            "Value": self.value,
            "Threshold": self.threshold,
            "Url": self.url,
            "Test": self.test,
        }

    def to_state(self) -> dict[str, Any]:
        """Every field, for the delivery queue to keep and `from_state` to rebuild."""
        return asdict(self)

    @classmethod
    def from_state(cls, doc: dict[str, Any]) -> AlarmMessage:
        return cls(**doc)


def alarm_url(base_url: str, name: str) -> str:
    """The UI page of alarm ``name``."""
    return f"{base_url.rstrip('/')}/alarms/{urllib.parse.quote(name, safe='')}"


def _short(watching: str) -> str:
    return watching if len(watching) <= 60 else watching[:57] + "..."


def _n(value: float) -> str:
    return str(int(value)) if value == int(value) and abs(value) < 1e15 else f"{value:.6g}"
