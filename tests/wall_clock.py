"""The wall clock, for the tests that cannot inject one: a server process (or a runtime it
shares) reads the real time, and what it sums by calendar month or day (a budget's month,
Cost Explorer's daily and monthly periods) changes when a boundary passes between the moment
a test wrote its records and the moment it asks.

- `wait_out_month_end`: now, once the next UTC month is at least ``margin`` away (when it
  is nearer, the wait goes into it first): a test whose writes and reads all happen within
  ``margin`` sees one month throughout (the wait is at most ``margin``, once a month);
- `month_start`: the first instant of a moment's UTC month, before which a record stamped
  "a minute ago" must not fall when it is to count this month;
- `on_one_day`: an answer and the UTC day it was asked on, asked again when the day changed
  meanwhile, so that what the server decided by its own clock (a period still estimated, an
  end past next month) was decided on that day.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import TypeVar

T = TypeVar("T")


def month_start(moment: datetime) -> datetime:
    """The first instant of ``moment``'s month in UTC."""
    return moment.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def wait_out_month_end(margin: timedelta) -> datetime:
    """Now (UTC), at least ``margin`` before the next month begins: when it begins sooner,
    after it has begun."""
    now = datetime.now(UTC)
    following = (month_start(now) + timedelta(days=32)).replace(day=1)
    if following - now < margin:
        while now < following:
            time.sleep(min((following - now).total_seconds(), 1.0) + 0.001)
            now = datetime.now(UTC)
    return now


def on_one_day(ask: Callable[[date], T]) -> tuple[T, date]:
    """What ``ask(today)`` answers, and ``today``: the UTC day it was asked on, from start to
    end (asked again when the day changed while it was asked)."""
    while True:
        today = datetime.now(UTC).date()
        answer = ask(today)
        if datetime.now(UTC).date() == today:
            return answer, today
