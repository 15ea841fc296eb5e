"""What each budget's records cost so far this month, summed in the store.

One ``SELECT sum(cost_total_usd)`` per budget over the records of the budget's workspace, its
month (in its time zone) and its dimension value — what the gateway's `BudgetGuard` starts
from and what the budget surfaces show. A budget never counts another workspace's records.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import duckdb

from llmtrail.analytics.budgets import Budget, month_bounds, month_of
from llmtrail.analytics.dimensions import dimension_sql
from llmtrail.store.duckdb.database import Database

log = logging.getLogger("llmtrail")


def month_spend(
    db: Database, budgets: Sequence[Budget], now: datetime | None = None
) -> dict[str, Decimal]:
    """This month's spend of each budget, by `Budget.key` (its name in the default
    workspace). A sum past DECIMAL(38, 9) (records stored before money was bounded per
    record) is summed again as a double, so that one such record never stops budgets from
    working."""
    now = now or datetime.now(UTC)
    spent: dict[str, Decimal] = {}
    for budget in budgets:
        start, end = month_bounds(month_of(now, budget.timezone), budget.timezone)
        expr, params = dimension_sql(budget.dimension, db.schema)
        where = f"WHERE workspace = ? AND timestamp >= ? AND timestamp < ? AND {expr} = ?"
        args = [budget.workspace, start, end, *params, budget.value]
        try:
            sql = f"SELECT coalesce(sum(cost_total_usd), 0) FROM records {where}"
            row = db.read(functools.partial(_one_row, sql, args))
        except duckdb.OutOfRangeException:
            log.warning("budget %r: this month's spend overflows DECIMAL(38, 9)", budget.name)
            sql = f"SELECT coalesce(sum(cost_total_usd::DOUBLE), 0) FROM records {where}"
            row = db.read(functools.partial(_one_row, sql, args))
        spent[budget.key] = Decimal(str(row[0])) if row else Decimal(0)
    return spent


def _one_row(sql: str, args: list[Any], cursor: Any) -> Any:
    return cursor.execute(sql, args).fetchone()
