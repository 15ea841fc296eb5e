"""Budgets: validation, dimensions, months and time zones, exact spent sums, the linear
forecast, storage, and the gateway's guard refusing once spent and recovering next month
(with an injected clock)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from llmtrail.analytics.budget_guard import BudgetGuard, Refusal
from llmtrail.analytics.budgets import (
    NAMESPACE,
    Budget,
    BudgetService,
    budget_status,
    dimension_value,
    forecast,
    make_budget,
    month_bounds,
    month_of,
    record_cost,
    spent,
)
from llmtrail.errors import NotFound, ValidationError
from llmtrail.record import DEFAULT_WORKSPACE, InvocationRecord
from llmtrail.store.duckdb import Database, DuckDBStateStore
from llmtrail.store.interfaces import StateStore
from llmtrail.store.memory import MemoryStateStore

TENANT = "requestMetadata.tenant_id"


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def record(
    tenant: str | None, cost: Any, when: str = "2026-11-10T12:00:00Z", **extra: Any
) -> dict[str, Any]:
    doc: dict[str, Any] = {"requestId": "r", "timestamp": when, "modelId": "sim/claude", **extra}
    if tenant is not None:
        doc["requestMetadata"] = {"tenant_id": tenant}
    if cost is not None:
        doc["cost"] = {"totalUsd": cost, "priceVersion": "v1"}
    return doc


def acme(limit: str = "1.00", action: str = "refuse", **kw: Any) -> Budget:
    return make_budget(TENANT, "acme", limit, action=action, **kw)


# -- the budget itself ------------------------------------------------------------------------
def test_make_budget_defaults_and_round_trip() -> None:
    b = make_budget(TENANT, "acme", "100", action="refuse")
    assert b == Budget("requestMetadata.tenant_id=acme", TENANT, "acme", Decimal(100), "refuse")
    assert b.to_dict() == {
        "name": "requestMetadata.tenant_id=acme",
        "dimension": TENANT,
        "value": "acme",
        "limitUsd": "100",
        "action": "refuse",
        "timezone": "UTC",
        "workspace": "default",
    }
    assert Budget.from_dict(b.to_dict()) == b
    assert make_budget("inferenceProfile.tags.dept", "claims", 50.5).limit_usd == Decimal("50.5")


@pytest.mark.parametrize(
    ("args", "kwargs", "field"),
    [
        (("tenant_id", "acme", "1"), {}, "dimension"),
        (("requestMetadata.", "acme", "1"), {}, "dimension"),
        (("input.inputBodyJson", "acme", "1"), {}, "dimension"),
        ((TENANT, "", "1"), {}, "value"),
        ((TENANT, "acme", "0"), {}, "limitUsd"),
        ((TENANT, "acme", "-5"), {}, "limitUsd"),
        ((TENANT, "acme", "NaN"), {}, "limitUsd"),
        ((TENANT, "acme", "ten"), {}, "limitUsd"),
        ((TENANT, "acme", True), {}, "limitUsd"),
        ((TENANT, "acme", "0.0000001"), {}, "limitUsd"),
        ((TENANT, "acme", "1e12"), {}, "limitUsd"),
        ((TENANT, "acme", "1"), {"action": "block"}, "action"),
        ((TENANT, "acme", "1"), {"timezone": "Mars/Olympus"}, "timezone"),
        ((TENANT, "acme", "1"), {"name": ""}, "name"),
        ((TENANT, "acme", "1"), {"name": "a\nb"}, "name"),
    ],
)
def test_bad_budgets_name_the_field(
    args: tuple[Any, ...], kwargs: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as err:
        make_budget(*args, **kwargs)
    assert err.value.field == field


def test_dimension_values() -> None:
    doc = {
        "modelId": "sim/claude",
        "identity": {"arn": "key:abc"},
        "requestMetadata": {"tenant_id": "acme", "app.name": "web", "n": 5},
        "inferenceProfile": {"arn": "arn:…", "tags": {"dept": "claims"}},
    }
    assert dimension_value(doc, "modelId") == "sim/claude"
    assert dimension_value(doc, "identity.arn") == "key:abc"
    assert dimension_value(doc, TENANT) == "acme"
    assert dimension_value(doc, "requestMetadata.app.name") == "web"  # a key with a dot
    assert dimension_value(doc, "requestMetadata.n") is None  # not a string
    assert dimension_value(doc, "inferenceProfile.tags.dept") == "claims"
    assert dimension_value(doc, "inferenceProfile.tags.team") is None
    assert dimension_value({"requestMetadata": "odd"}, TENANT) is None
    assert dimension_value({}, "inferenceProfile.arn") is None


def test_months_and_time_zones() -> None:
    assert month_bounds("2026-12") == (
        datetime(2026, 12, 1, tzinfo=UTC),
        datetime(2027, 1, 1, tzinfo=UTC),
    )
    start, end = month_bounds("2026-11", "Europe/Paris")
    assert start == datetime(2026, 10, 31, 23, tzinfo=UTC)  # CET is UTC+1 in November
    assert end == datetime(2026, 11, 30, 23, tzinfo=UTC)
    late = datetime(2026, 11, 30, 23, 30, tzinfo=UTC)
    assert month_of(late) == "2026-11" and month_of(late, "Europe/Paris") == "2026-12"
    for bad in ("2026-13", "2026", "Nov", "2026-11-01"):
        with pytest.raises(ValidationError) as err:
            month_bounds(bad)
        assert err.value.field == "month"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0.000123", Decimal("0.000123")),
        (Decimal("0.5"), Decimal("0.5")),
        (2, Decimal(2)),
        (0.25, Decimal("0.25")),
        (None, None),
        ("free", None),
        ("Infinity", None),
        (float("nan"), None),
        (True, None),
    ],
)
def test_record_cost(value: Any, expected: Decimal | None) -> None:
    assert record_cost(record("acme", value)) == expected
    assert record_cost({"cost": {}}) is None and record_cost({"cost": "1"}) is None


def test_spent_sums_exactly_over_the_budgets_month_and_value() -> None:
    records = [
        record("acme", "0.1"),
        record("acme", "0.2"),  # 0.1 + 0.2 is exactly 0.3 in Decimal
        record("acme", "0.000000001", when="2026-11-30T23:59:59.999999Z"),
        record("acme", "5", when="2026-12-01T00:00:00Z"),  # next month
        record("acme", "7", when="2026-10-31T23:59:59Z"),  # last month
        record("globex", "9"),
        record(None, "11"),
        record("acme", None),  # no price: no cost
        record("acme", "3", when="not a time"),
    ]
    assert spent(acme(), "2026-11", records) == Decimal("0.300000001")
    assert spent(acme(), "2026-12", records) == Decimal(5)
    # in Paris (UTC+1) October's last UTC second is November, November's last is December
    paris = acme(timezone="Europe/Paris")
    assert spent(paris, "2026-11", records) == Decimal("7.3")
    assert spent(paris, "2026-12", records) == Decimal("5.000000001")


def test_forecast_is_linear_on_days_elapsed() -> None:
    nov = "2026-11"  # 30 days
    half = datetime(2026, 11, 16, tzinfo=UTC)  # 15 days elapsed
    assert forecast(Decimal("10"), nov, "UTC", half) == Decimal("20.000000")
    # a first-hour spike extrapolates from one day, not from an hour
    early = datetime(2026, 11, 1, 1, tzinfo=UTC)
    assert forecast(Decimal("1"), nov, "UTC", early) == Decimal("30.000000")
    # a month that is over, or not begun, forecasts what it spent
    assert forecast(Decimal("4"), nov, "UTC", datetime(2026, 12, 5, tzinfo=UTC)) == Decimal(4)
    assert forecast(Decimal("0"), nov, "UTC", half) == Decimal(0)


def test_budget_status_for_alerts() -> None:
    now = datetime(2026, 11, 11, tzinfo=UTC)  # 10 of 30 days elapsed
    status = budget_status(acme("100"), Decimal("25"), now)
    assert status.month == "2026-11"
    assert status.percent_used == Decimal("25.00") and not status.exceeded
    assert status.to_dict() == {
        **acme("100").to_dict(),
        "month": "2026-11",
        "spentUsd": "25",
        "forecastUsd": "75.000000",
        "percentUsed": 25.0,
        "forecastPercent": 75.0,
        "exceeded": False,
    }
    assert budget_status(acme("100"), Decimal("100"), now).exceeded


# -- storage ----------------------------------------------------------------------------------
@pytest.fixture(params=["memory", "duckdb"])
def state(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateStore]:
    store: StateStore
    if request.param == "memory":
        store = MemoryStateStore()
    else:
        store = DuckDBStateStore(Database(tmp_path / "llmtrail.duckdb"))
    yield store
    store.close()


def test_budget_service_stores_and_notifies(state: StateStore) -> None:
    seen: list[list[Budget]] = []
    budgets = BudgetService(state, on_change=seen.append)
    budgets.put(acme("100"))
    budgets.put(make_budget("modelId", "sim/claude", "5", name="sim"))
    budgets.put(acme("150"))  # same name: replaces
    assert [b.name for b in budgets.all()] == ["requestMetadata.tenant_id=acme", "sim"]
    assert budgets.get("requestMetadata.tenant_id=acme").limit_usd == Decimal(150)
    assert (state.get(NAMESPACE, "sim") or {}).get("limitUsd") == "5"
    budgets.delete("sim")
    with pytest.raises(NotFound):
        budgets.get("sim")
    with pytest.raises(NotFound):
        budgets.delete("sim")
    assert [len(s) for s in seen] == [1, 2, 2, 1]


# -- the guard ----------------------------------------------------------------------------------
def test_guard_refuses_once_spent_and_recovers_next_month() -> None:
    clock = Clock(datetime(2026, 11, 10, 12, tzinfo=UTC))
    guard = BudgetGuard([acme("1.00")], clock=clock)
    call = {"modelId": "sim/claude", "requestMetadata": {"tenant_id": "acme"}}
    other = {"modelId": "sim/claude", "requestMetadata": {"tenant_id": "globex"}}

    for _ in range(2):
        assert guard.check(call) is None
        guard.observe(record("acme", "0.40"))
    assert guard.check(call) is None  # 0.80 of 1.00
    guard.observe(record("acme", "0.20"))  # exactly spent
    refusal = guard.check(call)
    assert refusal == Refusal(
        "requestMetadata.tenant_id=acme",
        TENANT,
        "acme",
        Decimal("1.00"),
        Decimal("1.00"),
        "2026-11",
    )
    assert "$1.00 of its $1.00 limit for 2026-11" in refusal.message
    assert refusal.to_dict()["spentUsd"] == "1.00"
    assert guard.check(other) is None and guard.check({"modelId": "x"}) is None
    [status] = guard.state()
    assert status.exceeded and status.percent_used == Decimal("100.00")

    clock.now = datetime(2026, 12, 1, 0, 0, 1, tzinfo=UTC)
    assert guard.check(call) is None  # a new month
    guard.observe(record("acme", "0.90", when="2026-11-30T23:59:59Z"))  # last month's call
    [status] = guard.state()
    assert status.month == "2026-12" and status.spent_usd == 0 and not status.exceeded
    guard.observe(record("acme", "1.50", when="2026-12-01T00:00:00Z"))
    refusal = guard.check(call)
    assert refusal is not None and refusal.month == "2026-12"
    assert refusal.spent_usd == Decimal("1.50")


def test_notify_budgets_never_refuse_but_show_in_state() -> None:
    clock = Clock(datetime(2026, 11, 16, tzinfo=UTC))
    dept = make_budget("inferenceProfile.tags.dept", "claims", "10", name="claims")
    guard = BudgetGuard([dept], clock=clock)
    stamped = {"inferenceProfile": {"arn": "a", "name": "n", "tags": {"dept": "claims"}}}
    guard.observe({**record(None, "12"), **stamped})
    assert guard.check(stamped) is None
    [status] = guard.state()
    assert status.exceeded and status.spent_usd == Decimal(12)
    assert status.forecast_usd == Decimal("24.000000")


def test_guard_takes_stored_records_and_seeded_totals() -> None:
    clock = Clock(datetime(2026, 11, 10, tzinfo=UTC))
    guard = BudgetGuard(
        [acme("10")], clock=clock, spent={"requestMetadata.tenant_id=acme": Decimal("9.5")}
    )
    stored = InvocationRecord.from_dict(record("acme", "0.5"), source="gateway")
    guard.observe(stored)
    assert guard.check({"requestMetadata": {"tenant_id": "acme"}}) is not None
    # changing the limit keeps the month's total; a new budget starts from what it is given
    globex = make_budget(TENANT, "globex", "3", action="refuse")
    guard.set_budgets([acme("20"), globex], spent={globex.name: Decimal("3")})
    assert guard.check({"requestMetadata": {"tenant_id": "acme"}}) is None
    assert [s.spent_usd for s in guard.state()] == [Decimal("10.0"), Decimal(3)]
    assert guard.check({"requestMetadata": {"tenant_id": "globex"}}) is not None
    guard.set_budgets([])
    assert guard.state() == [] and guard.check({"requestMetadata": {"tenant_id": "globex"}}) is None


def test_a_sum_from_the_store_keeps_what_was_observed_and_not_yet_stored() -> None:
    """The guard learns a gateway record before the store holds it: a total read again from
    the store (a budget changed, a shared store's refresh) adds back what is not stored yet."""
    clock = Clock(datetime(2026, 11, 10, 12, tzinfo=UTC))
    budgets = [acme("1.00")]
    key = budgets[0].key
    guard = BudgetGuard(budgets, clock=clock)
    call = {"requestMetadata": {"tenant_id": "acme"}}
    guard.observe(record("acme", "0.60", requestId="a"))
    guard.observe(record("acme", "0.50", requestId="b"))
    guard.stored([(DEFAULT_WORKSPACE, "a")])  # the store holds a, not b
    guard.resum(budgets, lambda _: {key: Decimal("0.60")})
    assert guard.state()[0].spent_usd == Decimal("1.10") and guard.check(call) is not None

    def summed_while_c_is_stored(_: list[Budget]) -> dict[str, Decimal]:
        guard.stored([(DEFAULT_WORKSPACE, "c")])
        return {key: Decimal("0.70")}  # a and c

    guard.observe(record("acme", "0.10", requestId="c"))
    guard.resum(budgets, summed_while_c_is_stored)  # c is counted twice: the guard errs
    assert guard.state()[0].spent_usd == Decimal("1.30")  # towards refusing
    guard.stored([(DEFAULT_WORKSPACE, "b")])
    guard.resum(budgets, lambda _: {key: Decimal("1.20")})  # the next sum is exact
    assert guard.state()[0].spent_usd == Decimal("1.20")

    def never_read() -> Iterator[tuple[str, str]]:
        raise AssertionError("the keys were read with no record waiting")
        yield ("", "")

    guard.stored(never_read())

    def store_away(_: list[Budget]) -> dict[str, Decimal]:
        raise RuntimeError("the store is away")

    with pytest.raises(RuntimeError):  # a failed sum leaves the guard as it was
        guard.resum([acme("5.00")], store_away)
    assert guard.state()[0].budget.limit_usd == Decimal("1.00")


def test_guard_months_follow_each_budgets_time_zone() -> None:
    clock = Clock(datetime(2026, 11, 30, 22, 30, tzinfo=UTC))  # 23:30 in Paris
    paris = acme("1", timezone="Europe/Paris", name="paris")
    guard = BudgetGuard([paris, acme("1", name="utc")], clock=clock)
    guard.observe(record("acme", "1", when="2026-11-30T22:00:00Z"))
    call = {"requestMetadata": {"tenant_id": "acme"}}
    assert guard.check(call) is not None
    clock.now = datetime(2026, 11, 30, 23, 30, tzinfo=UTC)  # December in Paris, not in UTC
    refusal = guard.check(call)
    assert refusal is not None and refusal.budget == "utc"
    assert {s.budget.name: s.month for s in guard.state()} == {"paris": "2026-12", "utc": "2026-11"}


def test_guard_ignores_records_without_cost_or_match() -> None:
    clock = Clock(datetime(2026, 11, 10, tzinfo=UTC))
    guard = BudgetGuard([acme("1")], clock=clock)
    for doc in (record("acme", None), record("acme", "0"), record("globex", "5"), "not a record"):
        guard.observe(doc)
    assert guard.state()[0].spent_usd == 0
    guard.observe(record("acme", "2", when=None))  # type: ignore[arg-type]  # no time: now
    assert guard.state()[0].spent_usd == 2
    assert BudgetGuard(clock=clock).check({"requestMetadata": {"tenant_id": "acme"}}) is None
