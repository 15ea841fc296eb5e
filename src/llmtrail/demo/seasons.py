"""When history happens: traffic with a daily and weekly rhythm and a slow growth.

Real traffic is not uniform: it peaks in the working afternoon (UTC), has a smaller morning
bump, falls at night and on weekends, and grows a little from day to day. `sample_times`
draws timestamps from that shape by rejection sampling with the plan's own random generator,
so the same seed gives the same times relative to ``end``. A pure function: ``end`` is given,
the clock is never read.
"""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta

_DAY_S = 86_400.0


def traffic_weight(at: datetime, start: datetime, end: datetime) -> float:
    """How busy ``at`` is, from about 0.1 (a weekend night) to 1."""
    hour = at.hour + at.minute / 60
    afternoon = math.exp(-(((hour - 15.0) / 3.2) ** 2))
    morning = 0.55 * math.exp(-(((hour - 9.5) / 1.8) ** 2))
    daily = 0.12 + 0.88 * min(1.0, afternoon + morning)
    weekly = 0.45 if at.weekday() >= 5 else 1.0
    span = max((end - start).total_seconds(), 1.0)
    growth = 0.8 + 0.2 * (at - start).total_seconds() / span
    return daily * weekly * growth


def sample_times(rng: random.Random, count: int, start: datetime, end: datetime) -> list[datetime]:
    """``count`` instants in ``[start, end)`` shaped by `traffic_weight`, in ascending order."""
    span = (end - start).total_seconds()
    if count <= 0 or span <= 0:
        return []
    out: list[datetime] = []
    while len(out) < count:
        at = start + timedelta(seconds=rng.random() * span)
        if rng.random() < traffic_weight(at, start, end):
            out.append(at)
    return sorted(out)


def busiest_hour(rng: random.Random, start: datetime, end: datetime) -> datetime:
    """A weekday afternoon inside ``[start, end)`` (an incident needs traffic to hurt)."""
    best = start
    for _ in range(64):
        at = start + timedelta(seconds=rng.random() * max((end - start).total_seconds(), 1.0))
        if traffic_weight(at, start, end) > traffic_weight(best, start, end):
            best = at
    return best
