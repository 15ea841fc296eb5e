"""Deciding an alarm's state from its datapoints: a pure function of data, no clock, no I/O.

CloudWatch's rule, "M out of N": of the last ``EvaluationPeriods`` (N) periods, the alarm is
``ALARM`` when at least ``DatapointsToAlarm`` (M) breach the threshold. A period with no
datapoint counts as ``TreatMissingData`` says: ``breaching`` or ``notBreaching`` as that;
``missing`` and ``ignore`` leave it out, and when every period is empty the state becomes
``INSUFFICIENT_DATA`` (``missing``) or stays as it was (``ignore``). When fewer than M
periods have data and none of them breach, the alarm is ``OK`` (it cannot be in alarm).

Periods end at the evaluation time: a Query or Budget alarm slides with it; a metric alarm's
last period ends at the next rollup boundary (10 s, 30 s or a minute), so that the minute in
progress counts as soon as its records are stored. A percentile cannot be added up from
minutes, so a percentile alarm's periods are the rollups' own (multiples of its period).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from llmtrail.alerts.alarm import COMPARISONS, STATISTICS, Alarm

_WORDS = {
    ">=": "greater than or equal to",
    ">": "greater than",
    "<": "less than",
    "<=": "less than or equal to",
}


@dataclass(frozen=True)
class Outcome:
    """The state the datapoints call for, why, and the latest value (None if none)."""

    state: str
    reason: str
    value: float | None
    reason_data: dict[str, Any] = field(default_factory=dict)


def windows(alarm: Alarm, now: datetime) -> list[tuple[datetime, datetime]]:
    """The ``EvaluationPeriods`` periods evaluated at ``now``, oldest first."""
    end = now
    if alarm.source == "metric":
        step = alarm.period if alarm.period < 60 or alarm.statistic not in STATISTICS else 60
        epoch = math.ceil(now.timestamp() / step) * step
        end = datetime.fromtimestamp(epoch, UTC)
    period = timedelta(seconds=alarm.period)
    first = end - period * alarm.evaluation_periods
    return [(first + period * i, first + period * (i + 1)) for i in range(alarm.evaluation_periods)]


def breaches(alarm: Alarm, value: float) -> bool:
    op = COMPARISONS[alarm.comparison]
    t = alarm.threshold
    return {">=": value >= t, ">": value > t, "<": value < t, "<=": value <= t}[op]


def decide(alarm: Alarm, values: Sequence[float | None], current: str) -> Outcome:
    """The state for ``values`` (one per period, oldest first, None where there was no
    data) given the ``current`` state."""
    m, n = alarm.datapoints_to_alarm, len(values)
    present = [v for v in values if v is not None]
    latest = present[-1] if present else None
    missing_as = alarm.treat_missing_data
    breaching = sum(1 for v in present if breaches(alarm, v))
    if missing_as == "breaching":
        breaching += n - len(present)
    data = {"values": list(values), "threshold": alarm.threshold, "breaching": breaching}
    if breaching >= m:
        return Outcome("ALARM", _crossed(alarm, values, breaching, n), latest, data)
    if not present and missing_as in ("missing", "ignore"):
        if missing_as == "ignore":
            return Outcome(current, "no datapoints; missing data is ignored", None, data)
        return Outcome(
            "INSUFFICIENT_DATA",
            f"Insufficient Data: {n} datapoint{'s were' if n > 1 else ' was'} unknown.",
            None,
            data,
        )
    return Outcome("OK", _crossed(alarm, values, breaching, n), latest, data)


def _crossed(alarm: Alarm, values: Sequence[float | None], breaching: int, n: int) -> str:
    """CloudWatch's wording: ``Threshold Crossed: 1 out of the last 1 datapoints [6.0] was
    greater than or equal to the threshold (5.0) …``."""
    shown = ", ".join("missing" if v is None else _number(v) for v in reversed(values))
    word = _WORDS[COMPARISONS[alarm.comparison]]
    verb = "was" if breaching == 1 else "were"
    need = alarm.datapoints_to_alarm
    return (
        f"Threshold Crossed: {breaching} out of the last {n} datapoints [{shown}] {verb} {word} "
        f"the threshold ({_number(alarm.threshold)}) (minimum {need} datapoint"
        f"{'s' if need > 1 else ''} for ALARM)."
    )


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) and abs(value) < 1e15 else f"{value:.6g}"


def slot(
    alarm: Alarm,
    periods: Sequence[tuple[datetime, datetime]],
    points: Sequence[tuple[datetime, float]],
) -> list[float | None]:
    """Datapoints ``(timestamp, value)`` placed in ``periods`` by timestamp. Several in one
    period (a series cut at other boundaries) are combined as the statistic combines:
    sums for ``Sum`` and ``SampleCount``, the least or greatest for ``Minimum`` and
    ``Maximum`` and percentiles (the greatest: an alarm errs on the side of firing), and
    the mean for ``Average``."""
    grouped: list[list[float]] = [[] for _ in periods]
    for when, value in points:
        for i, (start, end) in enumerate(periods):
            if start <= when < end and value is not None and math.isfinite(value):
                grouped[i].append(float(value))
                break
    out: list[float | None] = []
    for group in grouped:
        if not group:
            out.append(None)
        elif alarm.statistic in ("Sum", "SampleCount"):
            out.append(sum(group))
        elif alarm.statistic == "Minimum":
            out.append(min(group))
        elif alarm.statistic == "Average":
            out.append(sum(group) / len(group))
        else:
            out.append(max(group))
    return out
