"""The gateway's budget check: refuse a call once a ``refuse`` budget it falls under is spent.

The gateway calls `BudgetGuard.check` before forwarding every call, so the check reads only
memory: budgets indexed by dimension then value, and a running total per budget for the
current month. The record path calls `BudgetGuard.observe` with each gateway record before
it is stored, which adds the record's ``cost.totalUsd`` to the totals of the budgets it falls
under. A total belongs to one calendar month (in the budget's time zone, by the injected
clock); the first check or observe in a new month starts it again from zero, so a refusing
budget recovers when its month ends.

A budget belongs to a workspace: it counts the records and refuses the calls of that
workspace only (the call's and the record's ``workspace``; the default workspace when they
name none). Totals are kept per `Budget.key`, so two workspaces may use the same name.

Totals start from what the store says was spent this month (``spent`` when building the
guard or calling `set_budgets`); a budget added without it starts at zero. Calls in flight
when the limit is crossed still complete, so a month can end a little over its limit.

The guard observes a gateway record before it is stored, so a sum read from the store can
miss records the guard already counted. Until the pipeline reports them `stored`, their costs
are kept aside, and `resum` (which reads the store's sums for the budgets) adds them back:
a total read again from the store (on a budget change, a re-pricing, or every refresh of a
shared store) never forgets what this server spent. A record stored while the store is being
summed may be counted twice until the next sum: the guard errs towards refusing.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from llmtrail.analytics.budgets import (
    Budget,
    BudgetStatus,
    budget_status,
    dimension_value,
    month_of,
    record_cost,
    record_time,
)
from llmtrail.record import DEFAULT_WORKSPACE

_Index = dict[str, dict[str, list[Budget]]]  # dimension → value → budgets
_Hits = list[tuple[str, str, Decimal]]  # an observed record's (budget key, month, cost)
_Unstored = dict[tuple[str, str], _Hits]  # by (workspace, requestId)

# observed records whose storage was never reported (lost to a full hand-over, refused by the
# store) are forgotten oldest first beyond this many
_UNSTORED_MAX = 65_536


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Refusal:
    """Why a call is refused: which budget, its limit and what it has spent this month."""

    budget: str
    dimension: str
    value: str
    limit_usd: Decimal
    spent_usd: Decimal
    month: str

    @property
    def message(self) -> str:
        """One sentence for the 429 the gateway answers with."""
        return (
            f"budget {self.budget!r} ({self.dimension} = {self.value!r}) has spent "
            f"${self.spent_usd} of its ${self.limit_usd} limit for {self.month}; calls are "
            "refused until the month ends or the limit is raised"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, money as decimal strings."""
        return {
            "budget": self.budget,
            "dimension": self.dimension,
            "value": self.value,
            "limitUsd": str(self.limit_usd),
            "spentUsd": str(self.spent_usd),
            "month": self.month,
            "message": self.message,
        }


class BudgetGuard:
    """In-memory monthly totals of the budgets; thread-safe (the gateway checks on the event
    loop while the record path observes on another thread)."""

    def __init__(
        self,
        budgets: Iterable[Budget] = (),
        *,
        clock: Callable[[], datetime] = _utc_now,
        spent: Mapping[str, Decimal] | None = None,
    ) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._budgets: dict[str, Budget] = {}  # by key
        self._watch: dict[str, _Index] = {}  # workspace → dimension → value → budgets
        self._refuse: dict[str, _Index] = {}  # the same, refusing ones only
        self._totals: dict[str, Decimal] = {}  # budget key → spent in _months[key]
        self._months: dict[str, str] = {}
        # (workspace, requestId) of records observed and not yet reported stored
        self._unstored: OrderedDict[tuple[str, str], _Hits] = OrderedDict()
        self.set_budgets(budgets, spent)

    def set_budgets(
        self,
        budgets: Iterable[Budget],
        spent: Mapping[str, Decimal] | None = None,
        unstored: _Unstored | None = None,
    ) -> None:
        """Replace the budgets (of every workspace). A budget kept with the same dimension,
        value and time zone keeps its running total unless ``spent`` (this month's amount per
        `Budget.key`, e.g. summed from the store by `month_spend`) gives one; other new
        budgets start at zero. To a given amount are added the costs of the records observed
        and not yet stored, those of ``unstored`` (taken before ``spent`` was summed) too."""
        now = self.clock()
        with self._lock:
            aside: dict[tuple[str, str], Decimal] = {}  # (budget key, month) → not stored
            if spent is not None:
                for hits in {**(unstored or {}), **self._unstored}.values():
                    for budget_key, month, cost in hits:
                        aside[budget_key, month] = aside.get((budget_key, month), Decimal(0)) + cost
            old = self._budgets
            self._budgets = {b.key: b for b in budgets}
            self._watch, self._refuse = {}, {}
            for b in self._budgets.values():
                _add(self._watch, b)
                if b.action == "refuse":
                    _add(self._refuse, b)
                before = old.get(b.key)
                same = before is not None and (before.dimension, before.value, before.timezone) == (
                    b.dimension,
                    b.value,
                    b.timezone,
                )
                if spent is not None and b.key in spent:
                    month = month_of(now, b.timezone)
                    held = aside.get((b.key, month), Decimal(0))
                    self._totals[b.key] = Decimal(spent[b.key]) + held
                    self._months[b.key] = month
                elif not same:
                    self._totals[b.key] = Decimal(0)
                    self._months[b.key] = month_of(now, b.timezone)
            for name in set(self._totals) - set(self._budgets):
                del self._totals[name], self._months[name]

    def resum(
        self, budgets: list[Budget], month_spend: Callable[[list[Budget]], Mapping[str, Decimal]]
    ) -> None:
        """`set_budgets` with this month's spend of each budget as ``month_spend`` sums it in
        the store, plus what the guard observed that the store did not hold yet (raises what
        ``month_spend`` raises, leaving the guard as it was)."""
        with self._lock:
            unstored = dict(self._unstored)
        self.set_budgets(budgets, month_spend(budgets), unstored)

    def stored(self, keys: Iterable[tuple[str, str]]) -> None:
        """The pipeline stored the records of these ``(workspace, requestId)``: a sum read
        from the store holds their costs from now on. Does not iterate ``keys`` when no
        observed record is waiting (a lazy iterable costs nothing then)."""
        if not self._unstored:
            return
        with self._lock:
            for key in keys:
                self._unstored.pop(key, None)

    def check(self, call: Mapping[str, Any]) -> Refusal | None:
        """The refusal for a call about to be forwarded, or None to let it through.

        ``call`` is record-shaped: what the gateway knows before forwarding (``workspace``,
        ``modelId``, ``requestMetadata``, ``inferenceProfile``, ``provider``, ``operation``,
        …); only the budgets of its workspace apply."""
        if not self._refuse:
            return None
        now = self.clock()
        with self._lock:
            for dimension, by_value in self._refuse.get(_workspace(call), {}).items():
                value = dimension_value(call, dimension)
                if value is None:
                    continue
                for b in by_value.get(value, ()):
                    total = self._current(b, now)
                    if total >= b.limit_usd:
                        return Refusal(
                            b.name, b.dimension, b.value, b.limit_usd, total, self._months[b.key]
                        )
        return None

    def observe(self, record: Mapping[str, Any] | Any) -> None:
        """Add a record's cost to the budgets it falls under (kept aside until it is `stored`),
        when it belongs to the current month (the budgets of the record's workspace). Takes a
        record dict or an `InvocationRecord` (its ``data``)."""
        doc = getattr(record, "data", record)
        if not isinstance(doc, Mapping) or not self._watch:
            return
        cost = record_cost(doc)
        if not cost:
            return
        now = self.clock()
        when = record_time(doc) or now
        workspace = _workspace(doc)
        hits: _Hits = []
        with self._lock:
            for dimension, by_value in self._watch.get(workspace, {}).items():
                value = dimension_value(doc, dimension)
                if value is None:
                    continue
                for b in by_value.get(value, ()):
                    total = self._current(b, now)
                    if month_of(when, b.timezone) == self._months[b.key]:
                        self._totals[b.key] = total + cost
                        hits.append((b.key, self._months[b.key], cost))
            request_id = doc.get("requestId")
            if hits and isinstance(request_id, str):
                self._unstored[(workspace, request_id)] = hits
                while len(self._unstored) > _UNSTORED_MAX:
                    self._unstored.popitem(last=False)

    def state(self, workspace: str | None = None) -> list[BudgetStatus]:
        """Every budget's month so far (spent, forecast, percent used), by key; only
        ``workspace``'s when given."""
        now = self.clock()
        with self._lock:
            return [
                budget_status(b, self._current(b, now), now)
                for _, b in sorted(self._budgets.items())
                if workspace is None or b.workspace == workspace
            ]

    def _current(self, budget: Budget, now: datetime) -> Decimal:
        """The budget's total for the month of ``now``, starting a new month at zero."""
        month = month_of(now, budget.timezone)
        if self._months.get(budget.key) != month:
            self._months[budget.key] = month
            self._totals[budget.key] = Decimal(0)
        return self._totals[budget.key]


def _add(index: dict[str, _Index], budget: Budget) -> None:
    by_dimension = index.setdefault(budget.workspace, {})
    by_dimension.setdefault(budget.dimension, {}).setdefault(budget.value, []).append(budget)


def _workspace(doc: Mapping[str, Any]) -> str:
    """The workspace a call or record belongs to (the default one when it names none)."""
    workspace = doc.get("workspace")
    return workspace if isinstance(workspace, str) and workspace else DEFAULT_WORKSPACE
