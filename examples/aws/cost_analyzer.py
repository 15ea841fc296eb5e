"""Where did the money go? The last 30 days of cost and usage from AWS Cost Explorer, by day,
service and usage type, with totals, printed as a table.

Written for AWS, exactly as one would write it there (boto3's ``ce`` client,
``get_cost_and_usage`` with ``DAILY`` granularity grouped by ``SERVICE`` and ``USAGE_TYPE``,
every page followed). To run it against llmtrail instead, give the server's address as
``--endpoint-url``; nothing else changes::

    python cost_analyzer.py
    python cost_analyzer.py --endpoint-url http://127.0.0.1:8080
    python cost_analyzer.py --endpoint-url http://127.0.0.1:8080 --days 7

The range is the ``--days`` days ending today (UTC), today included: its figures are
estimated until the day is over, and the report says so. Amounts are summed as decimals, never
floats, so the totals are exact.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import boto3

METRICS = ["UnblendedCost", "UsageQuantity"]
GROUP_BY = [{"Type": "DIMENSION", "Key": "SERVICE"}, {"Type": "DIMENSION", "Key": "USAGE_TYPE"}]


@dataclass(frozen=True)
class Line:
    """One day's cost and usage of one usage type of one service."""

    day: str
    service: str
    usage_type: str
    cost: Decimal
    quantity: Decimal
    unit: str
    estimated: bool


def cost_explorer(endpoint_url: str | None, region: str) -> Any:
    """The Cost Explorer client; ``endpoint_url`` None means AWS itself."""
    return boto3.client("ce", region_name=region, endpoint_url=endpoint_url)


def time_period(today: date, days: int) -> dict[str, str]:
    """The ``days`` days ending with ``today`` (End is exclusive)."""
    start = today - timedelta(days=days - 1)
    return {"Start": start.isoformat(), "End": (today + timedelta(days=1)).isoformat()}


def daily_lines(ce: Any, period: dict[str, str]) -> list[Line]:
    """Every (day, service, usage type) of the period, following NextPageToken."""
    lines: list[Line] = []
    request: dict[str, Any] = {
        "TimePeriod": period,
        "Granularity": "DAILY",
        "Metrics": METRICS,
        "GroupBy": GROUP_BY,
    }
    while True:
        answer = ce.get_cost_and_usage(**request)
        for result in answer["ResultsByTime"]:
            for group in result["Groups"]:
                service, usage_type = group["Keys"]
                cost = group["Metrics"]["UnblendedCost"]
                usage = group["Metrics"]["UsageQuantity"]
                lines.append(
                    Line(
                        day=result["TimePeriod"]["Start"],
                        service=service,
                        usage_type=usage_type,
                        cost=Decimal(cost["Amount"]),
                        quantity=Decimal(usage["Amount"]),
                        unit=usage["Unit"],
                        estimated=result["Estimated"],
                    )
                )
        token = answer.get("NextPageToken")
        if not token:
            return lines
        request["NextPageToken"] = token


def _amount(value: Decimal) -> str:
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _table(headers: list[str], rows: list[list[str]], right: set[int]) -> list[str]:
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return [line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def totals(lines: list[Line], key: str) -> dict[str, tuple[Decimal, Decimal]]:
    """Cost and quantity summed by ``key`` (``service`` or ``usage_type``)."""
    out: dict[str, tuple[Decimal, Decimal]] = defaultdict(lambda: (Decimal(0), Decimal(0)))
    for item in lines:
        cost, quantity = out[getattr(item, key)]
        out[getattr(item, key)] = (cost + item.cost, quantity + item.quantity)
    return dict(out)


def report(lines: list[Line], period: dict[str, str], days: int) -> list[str]:
    """The printed report: the daily table, totals by service and by usage type, the total."""
    out = [
        f"Cost and usage from {period['Start']} to {period['End']} (exclusive), "
        f"{days} days, DAILY, grouped by SERVICE and USAGE_TYPE",
        "",
    ]
    ordered = sorted(lines, key=lambda x: (x.day, x.service, x.usage_type))
    rows = [
        [x.day, x.service, x.usage_type, _amount(x.cost), _amount(x.quantity), x.unit]
        for x in ordered
    ]
    out += _table(["Day", "Service", "Usage type", "Cost (USD)", "Usage", "Unit"], rows, {3, 4})
    for title, key, label in (
        ("Totals by service", "service", "Service"),
        ("Totals by usage type", "usage_type", "Usage type"),
    ):
        summed = totals(lines, key)
        rows = [[name, _amount(c), _amount(q)] for name, (c, q) in sorted(summed.items())]
        out += ["", title, *_table([label, "Cost (USD)", "Usage"], rows, {1, 2})]
    total = sum((x.cost for x in lines), Decimal(0))
    out += ["", f"Total cost: {_amount(total)} USD"]
    estimated = sorted({x.day for x in lines if x.estimated})
    if estimated:
        out.append(f"Estimated (not final yet): {', '.join(estimated)}")
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint-url", help="a Cost Explorer-compatible endpoint (default: AWS)")
    parser.add_argument("--region", default="us-east-1", help="Cost Explorer lives in us-east-1")
    parser.add_argument("--days", type=int, default=30, help="how many days, today included")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    period = time_period(datetime.now(UTC).date(), args.days)
    lines = daily_lines(cost_explorer(args.endpoint_url, args.region), period)
    print("\n".join(report(lines, period, args.days)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
