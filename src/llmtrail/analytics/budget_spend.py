"""What each budget's records cost so far this month, summed in the store.

One ``SELECT sum(cost_total_usd)`` per budget over the records of the budget's workspace, its
month (in its time zone) and its dimension value — what the gateway's `BudgetGuard` starts
from and what the budget surfaces show. A budget never counts another workspace's records.
The statement is a syntax tree run by the store's `QueryEngine` (`llmtrail.query.reads`), and
the dimension is resolved as cost attribution and reports resolve it
(`llmtrail.query.dimensions`), so a budget sums on DuckDB and ClickHouse alike.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal

from sqlglot import exp

from llmtrail.analytics.budgets import Budget, month_bounds, month_of
from llmtrail.query.reads import Reader, ReadSource, column, number, string
from llmtrail.store.query_bounds import QueryFailed

log = logging.getLogger("llmtrail")


def month_spend(
    engine: ReadSource, budgets: Sequence[Budget], now: datetime | None = None
) -> dict[str, Decimal]:
    """This month's spend of each budget, by `Budget.key` (its name in the default
    workspace), read through ``engine`` (a `QueryEngine`, or a DuckDB `Database`). A sum past
    DECIMAL(38, 9) (records stored before money was bounded per record) is summed again as a
    double, so that one such record never stops budgets from working."""
    r = Reader.of(engine)
    now = now or datetime.now(UTC)
    spent: dict[str, Decimal] = {}
    for budget in budgets:
        start, end = month_bounds(month_of(now, budget.timezone), budget.timezone)
        where = exp.and_(
            r.in_range("r", budget.workspace, start, end),
            exp.EQ(this=r.dimension(budget.dimension), expression=string(budget.value)),
        )
        cost = column("cost_total_usd", "r")
        try:
            rows = r.rows(_sum(r, cost, where))
        except QueryFailed:
            log.warning("budget %r: this month's spend overflows DECIMAL(38, 9)", budget.name)
            rows = r.rows(_sum(r, r.d.to_double(cost), where))
        spent[budget.key] = (
            Decimal(str(rows[0][0])) if rows and rows[0][0] is not None else Decimal(0)
        )
    return spent


def _sum(r: Reader, value: exp.Expr, where: exp.Expr) -> exp.Select:
    total = exp.Coalesce(this=r.d.aggregate("sum", value), expressions=[number(0)])
    return exp.select(total).from_(r.table("records", "r")).where(where.copy())
