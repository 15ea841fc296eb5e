"""``llmtrail budgets``: thin commands over the budgets API (``/api/budgets``)."""

from __future__ import annotations

import argparse
from typing import Any

from llmtrail.cli.arguments import add_common_options, path_segment, time_zone_option
from llmtrail.cli.output import Table, print_list, print_object
from llmtrail.cli.usage import add_command

_BUDGET_HEADERS = ["name", "dimension", "value", "limitUsd", "action", "month", "spentUsd",
                   "forecastUsd", "percentUsed", "exceeded"]  # fmt: skip


def register(sub: Any) -> None:
    budgets = add_command(
        sub,
        "budgets",
        "monthly budgets: list (default), set, delete",
        """Monthly spending limits on one dimension's value, such as a tenant or a model.
        A budget notifies when spent, or refuses further calls through the gateway with
        --refuse. With no sub-command it lists the budgets.""",
        [
            "llmtrail budgets",
            "llmtrail budgets set --dimension requestMetadata.tenant_id --value acme --limit 100",
        ],
    )
    add_common_options(budgets)
    budgets.set_defaults(handler=_list)
    commands = budgets.add_subparsers(dest="budgets_command", metavar="COMMAND")

    listing = add_command(
        commands,
        "list",
        "budgets with spent, forecast and percent used",
        """List the budgets with this month's spending, the forecast for the month and the
        percent used. --format json prints one JSON array of them.""",
        ["llmtrail budgets list", "llmtrail budgets list --format json"],
    )
    add_common_options(listing)
    listing.set_defaults(handler=_list)

    put = add_command(
        commands,
        "set",
        "add or replace a budget",
        """Add a monthly budget, or replace the one of the same name. It notifies once the
        limit is spent, or with --refuse refuses further calls until the month ends.""",
        [
            "llmtrail budgets set --dimension requestMetadata.tenant_id --value acme --limit 100",
            "llmtrail budgets set --dimension modelId --value gpt-4o --limit 500 --refuse "
            "--timezone Europe/Berlin",
        ],
    )
    add_common_options(put)
    put.add_argument(
        "--dimension", required=True, help="what it watches: requestMetadata.KEY, modelId, …"
    )
    put.add_argument("--value", required=True, help="the dimension's value it watches")
    put.add_argument("--limit", required=True, metavar="USD", help="the monthly limit in USD")
    put.add_argument("--refuse", action="store_true", help="refuse calls once it is spent")
    put.add_argument("--name", help="the budget's name (default DIMENSION=VALUE)")
    put.add_argument(
        "--timezone",
        type=time_zone_option,
        default="UTC",
        help="the time zone whose months count (default UTC)",
    )
    put.set_defaults(handler=_set)

    delete = add_command(
        commands,
        "delete",
        "remove a budget",
        """Remove a budget; calls it refused go through again.""",
        ["llmtrail budgets delete requestMetadata.tenant_id=acme"],
    )
    add_common_options(delete)
    delete.add_argument("name", metavar="NAME", help="the budget's name")
    delete.set_defaults(handler=_delete)


def _row(budget: dict[str, Any]) -> list[Any]:
    return [budget.get(h) for h in _BUDGET_HEADERS]


def _list(backend: Any, args: argparse.Namespace) -> int:
    items = backend.request("GET", "/api/budgets")["budgets"]
    print_list(items, Table(_BUDGET_HEADERS, [_row(b) for b in items]), args.format)
    return 0


def _set(backend: Any, args: argparse.Namespace) -> int:
    body: dict[str, Any] = {
        "dimension": args.dimension,
        "value": args.value,
        "limitUsd": args.limit,
        "action": "refuse" if args.refuse else "notify",
        "timezone": args.timezone,
    }
    if args.name:
        body["name"] = args.name
    answer = backend.request("PUT", "/api/budgets", body=body)
    print_object(answer, args.format, Table(_BUDGET_HEADERS, [_row(answer)]))
    return 0


def _delete(backend: Any, args: argparse.Namespace) -> int:
    answer = backend.request("DELETE", f"/api/budgets/{path_segment(args.name)}")
    print_object(answer, args.format, text=f"deleted budget {answer['deleted']}")
    return 0
