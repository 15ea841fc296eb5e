"""Monthly budgets per dimension value (tenant ``acme``: $100 a month), what they have spent
and where they are heading.

A budget names a dimension of the record (``requestMetadata.tenant_id``, ``modelId``,
``inferenceProfile.tags.dept``, …), the value it watches, a monthly limit in USD and what
happens once the limit is spent: ``notify`` (the state says so, alerts notify) or ``refuse``
(the gateway's `BudgetGuard` refuses calls until the month changes). Budgets are control-plane
state: the `StateStore`, namespace ``budgets``, key the budget's `Budget.key`.

A budget belongs to a workspace, the one of the key that set it: it counts and refuses only
that workspace's calls, and another workspace neither sees nor changes it (404, as for a name
nobody used). Budget names are unique within a workspace. The default workspace's budgets
are keyed by their name alone, as every budget was before workspaces, so those stored then
read back as the default workspace's.

Everything here but `BudgetService` is a pure function of data: `spent` sums
``cost.totalUsd`` (Decimal strings; money is never a float) over record dicts, and
`budget_status` turns an amount spent — from `spent`, or from a SQL sum over the store — into
the state alerts read. Months are calendar months in the budget's time zone (UTC by default).

The forecast is linear on days elapsed: what was spent so far, divided by the days elapsed
in the month (at least one, so a first-morning spike does not extrapolate to the moon), times
the days in the month. A month that is over forecasts what it spent.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation, localcontext
from typing import Any
from zoneinfo import ZoneInfo

from llmtrail.analytics.time_zones import time_zone_name
from llmtrail.errors import NotFound, ValidationError
from llmtrail.query.dimensions import dimension_name, record_path
from llmtrail.record import DEFAULT_WORKSPACE, parse_timestamp
from llmtrail.store.interfaces import StateStore

NAMESPACE = "budgets"
ACTIONS = ("notify", "refuse")
MAX_LIMIT_USD = Decimal("1000000000000")
NAME_MAX = 256
VALUE_MAX = 256
_CENT = Decimal("0.01")
_MICRO = Decimal("0.000001")
_ONE_DAY_US = 86_400_000_000
# room for any sum a DECIMAL(38, 9) column holds, to 6 places (the default context has 28 digits)
_WIDE = Context(prec=60)


@dataclass(frozen=True)
class Budget:
    """A monthly USD limit on what records with ``dimension == value`` cost."""

    name: str
    dimension: str
    value: str
    limit_usd: Decimal
    action: str = "notify"
    timezone: str = "UTC"
    workspace: str = DEFAULT_WORKSPACE

    @property
    def key(self) -> str:
        """The budget's key in the StateStore, in `BudgetGuard` and in what `month_spend`
        answers: its name in the default workspace, ``WORKSPACE<tab>NAME`` in another (a name
        is printable, so no name of the default workspace takes another's key)."""
        return budget_key(self.workspace, self.name)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (money as a decimal string); also the StateStore value."""
        return {
            "name": self.name,
            "dimension": self.dimension,
            "value": self.value,
            "limitUsd": str(self.limit_usd),
            "action": self.action,
            "timezone": self.timezone,
            "workspace": self.workspace,
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], workspace: str | None = None) -> Budget:
        """A budget from `to_dict`'s shape, validated (raises `ValidationError`); of
        ``workspace`` when given (an API caller's), else of the one ``doc`` names (stored
        budgets; the default workspace when it names none)."""
        if not isinstance(doc, Mapping):
            raise ValidationError("budget", "must be an object")
        if workspace is None:
            workspace = doc.get("workspace", DEFAULT_WORKSPACE)
            if not isinstance(workspace, str) or not workspace:
                raise ValidationError("workspace", "must be a workspace name")
        return make_budget(
            doc.get("dimension"),
            doc.get("value"),
            doc.get("limitUsd"),
            action=doc.get("action", "notify"),
            name=doc.get("name"),
            timezone=doc.get("timezone", "UTC"),
            workspace=workspace,
        )


def budget_key(workspace: str, name: str) -> str:
    """See `Budget.key`."""
    return name if workspace == DEFAULT_WORKSPACE else f"{workspace}\t{name}"


def validate_dimension(value: Any) -> str:
    """A dimension as cost attribution and reports take it (`dimension_name`: a record field
    path such as ``requestMetadata.tenant_id``, ``inferenceProfile.tags.dept`` or ``modelId``;
    a bare ``tenant_id`` is ``requestMetadata.tenant_id``), in its canonical spelling."""
    return dimension_name(value)


def parse_usd(value: Any, field: str = "limitUsd") -> Decimal:
    """A positive USD amount (at most 6 decimal places, below a trillion) as a Decimal."""
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise ValidationError(field, 'must be a decimal amount in USD, such as "100.00"')
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValidationError(field, f"is not a decimal amount: {value!r}") from None
    if not amount.is_finite() or amount <= 0 or amount >= MAX_LIMIT_USD:
        raise ValidationError(field, f"must be more than 0 and less than {MAX_LIMIT_USD}")
    if amount != amount.quantize(_MICRO, rounding=ROUND_HALF_UP):
        raise ValidationError(field, "has more than 6 decimal places")
    return amount


def validate_timezone(value: Any) -> str:
    """An IANA time zone name (``UTC``, ``Europe/Paris``) that the engines know too
    (`time_zone_name`)."""
    return time_zone_name(value, "timezone")


def make_budget(
    dimension: Any,
    value: Any,
    limit_usd: Any,
    *,
    action: Any = "notify",
    name: Any = None,
    timezone: Any = "UTC",
    workspace: str = DEFAULT_WORKSPACE,
) -> Budget:
    """A validated `Budget` of ``workspace``; the name defaults to ``DIMENSION=VALUE``."""
    dimension = validate_dimension(dimension)
    if not isinstance(value, str) or not 1 <= len(value) <= VALUE_MAX:
        raise ValidationError("value", f"must be a string of 1–{VALUE_MAX} characters")
    limit = parse_usd(limit_usd)
    if action not in ACTIONS:
        raise ValidationError("action", f"must be notify or refuse, got {action!r}")
    name = f"{dimension}={value}" if name is None else name
    if not isinstance(name, str) or not 1 <= len(name) <= NAME_MAX or not name.isprintable():
        raise ValidationError("name", f"must be 1–{NAME_MAX} printable characters")
    return Budget(name, dimension, value, limit, action, validate_timezone(timezone), workspace)


# -- dimensions, months, costs ----------------------------------------------------------------
@functools.lru_cache(maxsize=1024)
def _dimension_path(dimension: str) -> tuple[str, ...]:
    return record_path(dimension)


def dimension_value(doc: Mapping[str, Any], dimension: str) -> str | None:
    """The string at ``dimension`` in a record (or record-like dict), or None."""
    cur: Any = doc
    for part in _dimension_path(dimension):
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(part)
    return cur if isinstance(cur, str) else None


@functools.lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def month_of(when: datetime, timezone: str = "UTC") -> str:
    """The calendar month (``YYYY-MM``) ``when`` falls in, in ``timezone``."""
    local = when.astimezone(_zone(timezone))
    return f"{local.year:04d}-{local.month:02d}"


def month_bounds(month: str, timezone: str = "UTC") -> tuple[datetime, datetime]:
    """The start (inclusive) and end (exclusive) of ``YYYY-MM`` in ``timezone``, in UTC."""
    try:
        year, mon = (int(part) for part in month.split("-"))
        start = datetime(year, mon, 1, tzinfo=_zone(timezone))
        end = datetime(year + mon // 12, mon % 12 + 1, 1, tzinfo=_zone(timezone))
    except ValueError:
        raise ValidationError("month", f"must be YYYY-MM, got {month!r}") from None
    return start.astimezone(UTC), end.astimezone(UTC)


def record_cost(doc: Mapping[str, Any]) -> Decimal | None:
    """``cost.totalUsd`` as a Decimal, or None when absent or not a finite number."""
    cost = doc.get("cost")
    total = cost.get("totalUsd") if isinstance(cost, Mapping) else None
    if total is None or isinstance(total, bool):
        return None
    if isinstance(total, float) and not math.isfinite(total):
        return None
    try:
        amount = Decimal(str(total))
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None


def record_time(doc: Mapping[str, Any]) -> datetime | None:
    """The record's ``timestamp`` as an aware datetime, or None when missing or unreadable."""
    value = doc.get("timestamp")
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        try:
            return parse_timestamp(value)
        except ValidationError:
            return None
    return None


def spent(budget: Budget, month: str, records: Iterable[Mapping[str, Any]]) -> Decimal:
    """What the records in ``month`` (the budget's time zone) whose dimension has the
    budget's value cost, summed exactly."""
    start, end = month_bounds(month, budget.timezone)
    total = Decimal(0)
    for doc in records:
        if dimension_value(doc, budget.dimension) != budget.value:
            continue
        when = record_time(doc)
        cost = record_cost(doc)
        if when is not None and cost is not None and start <= when < end:
            total += cost
    return total


def forecast(amount: Decimal, month: str, timezone: str, now: datetime) -> Decimal:
    """``amount`` spent so far in ``month``, extrapolated linearly to the month's end (see the
    module's docstring); rounded to 6 decimal places, never below ``amount``."""
    start, end = month_bounds(month, timezone)
    if now >= end or now <= start:
        return amount
    elapsed_us = max((now - start) // timedelta(microseconds=1), _ONE_DAY_US)
    total_us = (end - start) // timedelta(microseconds=1)
    with localcontext(_WIDE):
        projected = (amount * total_us / elapsed_us).quantize(_MICRO, rounding=ROUND_HALF_UP)
    return max(projected, amount)


@dataclass(frozen=True)
class BudgetStatus:
    """A budget's month so far: what alerts read to notify at thresholds."""

    budget: Budget
    month: str
    spent_usd: Decimal
    forecast_usd: Decimal

    @property
    def percent_used(self) -> Decimal:
        """Spent as a percentage of the limit, to 0.01."""
        with localcontext(_WIDE):
            return (self.spent_usd * 100 / self.budget.limit_usd).quantize(_CENT, ROUND_HALF_UP)

    @property
    def forecast_percent(self) -> Decimal:
        """The forecast as a percentage of the limit, to 0.01."""
        with localcontext(_WIDE):
            return (self.forecast_usd * 100 / self.budget.limit_usd).quantize(_CENT, ROUND_HALF_UP)

    @property
    def exceeded(self) -> bool:
        """True once the limit is spent (a ``refuse`` budget then refuses)."""
        return self.spent_usd >= self.budget.limit_usd

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: money as decimal strings, percentages as numbers."""
        return {
            **self.budget.to_dict(),
            "month": self.month,
            "spentUsd": str(self.spent_usd),
            "forecastUsd": str(self.forecast_usd),
            "percentUsed": float(self.percent_used),
            "forecastPercent": float(self.forecast_percent),
            "exceeded": self.exceeded,
        }


def budget_status(budget: Budget, amount: Decimal, now: datetime) -> BudgetStatus:
    """The status of ``budget`` in the month of ``now``, given what it has ``amount`` spent
    in that month (from `spent` or a sum over the store)."""
    month = month_of(now, budget.timezone)
    return BudgetStatus(budget, month, amount, forecast(amount, month, budget.timezone, now))


# -- storage ----------------------------------------------------------------------------------
class BudgetService:
    """Budgets in the StateStore. ``on_change`` (e.g. a `BudgetGuard`'s ``set_budgets``) is
    called with every budget of every workspace after each write. Reads and deletes name the
    workspace; a budget of another workspace is `NotFound`."""

    def __init__(
        self,
        state: StateStore,
        on_change: Callable[[list[Budget]], None] | None = None,
    ) -> None:
        self.state = state
        self.on_change = on_change

    def put(self, budget: Budget) -> Budget:
        """Create the budget, or replace the one of the same name. ``on_change`` sees the new
        budgets before they are saved: when it fails (this month's spend cannot be summed),
        nothing is saved; when saving fails, ``on_change`` is told the budgets as they are."""
        budgets = {b.key: b for b in self.all()}
        budgets[budget.key] = budget
        if self.on_change is not None:
            self.on_change([budgets[key] for key in sorted(budgets)])
        try:
            self.state.put(NAMESPACE, budget.key, budget.to_dict())
        except BaseException:
            self._changed()
            raise
        return budget

    def get(self, name: str, workspace: str = DEFAULT_WORKSPACE) -> Budget:
        """``workspace``'s budget called ``name``; raises `NotFound`."""
        value = self.state.get(NAMESPACE, budget_key(workspace, name))
        budget = Budget.from_dict(value) if value is not None else None
        if budget is None or budget.workspace != workspace:
            raise NotFound(f"no budget named {name!r}")
        return budget

    def all(self, workspace: str | None = None) -> list[Budget]:
        """Every budget of ``workspace`` by name (of every workspace when None, by key)."""
        found = [Budget.from_dict(v) for v in self.state.list(NAMESPACE).values()]
        if workspace is None:
            return found
        return sorted((b for b in found if b.workspace == workspace), key=lambda b: b.name)

    def delete(self, name: str, workspace: str = DEFAULT_WORKSPACE) -> None:
        """Remove ``workspace``'s budget ``name``; raises `NotFound`."""
        self.get(name, workspace)
        if not self.state.delete(NAMESPACE, budget_key(workspace, name)):
            raise NotFound(f"no budget named {name!r}")
        self._changed()

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change(self.all())
