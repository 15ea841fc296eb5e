"""``llmtrail cost``, ``cost recompute`` and ``report``: thin commands over the cost API
(`llmtrail.server.cost_api`) and the reports API (``/api/reports``).

Each command builds one request, sends it through the backend (the running server over HTTP,
or the app in process when none runs) and prints the answer, so a command does exactly what
its endpoint does and no number is computed twice. ``report`` writes the rendered file
(``--output FILE``, or standard output; a PDF goes to ``stdout.buffer``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from llmtrail.cli.arguments import (
    add_common_options,
    add_time_range,
    add_url_option,
    time_range,
    time_zone_option,
)
from llmtrail.cli.output import Table, print_object
from llmtrail.cli.usage import add_command

_USAGE_COLUMNS = ["calls", "inputTokens", "outputTokens", "cacheReadTokens", "cacheWriteTokens",
                  "costUsd", "unpriced"]  # fmt: skip
_RECOMPUTE_COLUMNS = ["records", "changed", "unchanged", "updated", "oldTotalUsd",
                      "newTotalUsd", "deltaUsd"]  # fmt: skip


def register(sub: Any) -> None:
    _register_cost(sub)
    _register_report(sub)


def _register_cost(sub: Any) -> None:
    cost = add_command(
        sub,
        "cost",
        "cost, tokens and calls by dimension and period; cost recompute",
        """Show cost, tokens and calls per month or day, split by up to two dimensions:
        model, provider, operation, an inference profile or one of its tags, a request
        metadata key, a caller identity. The table ends with the total.

        --format json prints the API's document (resultsByTime with groups, the group
        definitions and the total, as Cost Explorer answers); --format csv one row a
        period and group.""",
        [
            "llmtrail cost --since 30d",
            "llmtrail cost --by modelId --granularity DAILY --since 7d",
            "llmtrail cost --by requestMetadata.tenant_id --by modelId --format csv",
            "llmtrail cost recompute --since 90d --dry-run",
        ],
    )
    add_common_options(cost)
    cost.add_argument(
        "--by",
        action="append",
        default=[],
        metavar="DIMENSION",
        help="modelId, provider, operation, inferenceProfile.name, inferenceProfile.tags.KEY, "
        "requestMetadata.KEY, identity.arn, status, … (at most two)",
    )
    cost.add_argument(
        "--granularity",
        choices=("DAILY", "MONTHLY"),
        default="MONTHLY",
        help="one row a day or a month (default MONTHLY)",
    )
    cost.add_argument(
        "--tz",
        type=time_zone_option,
        default="UTC",
        help="the time zone of days and months (default UTC)",
    )
    add_time_range(cost)
    cost.set_defaults(handler=_cost)
    commands = cost.add_subparsers(dest="cost_command", metavar="COMMAND")
    again = add_command(
        commands,
        "recompute",
        "re-price history with the current prices",
        """Re-price the recorded calls of a time range with the prices in force now (after
        llmtrail prices set, say) and store the new costs. Prints how many records changed
        and the old and new totals, by model; --dry-run stores nothing.""",
        [
            "llmtrail cost recompute --since 90d --dry-run",
            "llmtrail cost recompute --start 2026-01-01 --end 2026-02-01",
        ],
    )
    add_common_options(again)
    add_time_range(again)
    again.add_argument("--dry-run", action="store_true", help="report, but store nothing")
    again.set_defaults(handler=_recompute)


def _cost(backend: Any, args: argparse.Namespace) -> int:
    query = {**time_range(args), "by": args.by, "granularity": args.granularity, "tz": args.tz}
    answer = backend.request("GET", "/api/cost", query)
    dimensions = [d["key"] for d in answer["groupDefinitions"]]
    rows = []
    for result in answer["resultsByTime"]:
        for group in result["groups"]:
            metrics = group["metrics"]
            rows.append(
                [result["timePeriod"]["start"], *group["keys"]]
                + [metrics[key] for key in _USAGE_COLUMNS]
            )
    total = answer["total"]
    footer = [["total", *([""] * len(dimensions)), *(total[k] for k in _USAGE_COLUMNS)]]
    table = Table(["period", *dimensions, *_USAGE_COLUMNS], rows, footer)
    print_object(answer, args.format, table)
    return 0


def _recompute(backend: Any, args: argparse.Namespace) -> int:
    body: dict[str, Any] = {k: v for k, v in time_range(args).items() if v is not None}
    body["dryRun"] = bool(args.dry_run)
    answer = backend.request("POST", "/api/cost/recompute", body=body)
    tables = [Table(_RECOMPUTE_COLUMNS, [[answer[h] for h in _RECOMPUTE_COLUMNS]])]
    if answer["byModel"]:
        rows = [[m, r["records"], r["oldUsd"], r["newUsd"]] for m, r in answer["byModel"].items()]
        tables.append(Table(["model", "changed", "oldUsd", "newUsd"], rows))
    print_object(answer, args.format, *tables)
    return 0


def _register_report(sub: Any) -> None:
    report = add_command(
        sub,
        "report",
        "performance, cost or chargeback report",
        """Render a report over a time range: performance (invocations, errors, throttles,
        tokens, latency percentiles, usage per model, a series per day), cost (spend by
        model, by usage type and per day) or chargeback (usage and cost per tenant, or per
        another dimension, per month). Its --format is the file's: json (the default),
        csv, html or pdf; it goes to standard output unless --output names a file.""",
        [
            "llmtrail report cost --since 30d --format html --output cost.html",
            "llmtrail report chargeback --dimension requestMetadata.cost_center --format csv",
            "llmtrail report performance --since 7d --format pdf -o performance.pdf",
        ],
    )
    add_common_options(report, data=False)
    report.add_argument("name", choices=("performance", "cost", "chargeback"), help="which report")
    add_url_option(report)
    report.add_argument(
        "--format",
        choices=("json", "csv", "html", "pdf"),
        default="json",
        help="the report file's format (default json)",
    )
    report.add_argument("--output", "-o", type=Path, metavar="FILE", help="write to FILE")
    report.add_argument(
        "--tz", type=time_zone_option, default="UTC", help="the time zone of days and months"
    )
    report.add_argument(
        "--dimension",
        help="chargeback: the field to split by (default requestMetadata.tenant_id)",
    )
    report.add_argument("--table", help="csv: which table (default the report's main one)")
    add_time_range(report)
    report.set_defaults(handler=_report)


def _report(backend: Any, args: argparse.Namespace) -> int:
    query = {**time_range(args), "tz": args.tz, "format": args.format,
             "dimension": args.dimension, "table": args.table}  # fmt: skip
    data: bytes = backend.request("GET", f"/api/reports/{args.name}", query, raw=True)
    if args.output is not None:
        args.output.write_bytes(data)
        print(f"{args.output}: {args.name} report, {args.format}, {len(data)} bytes")
    elif args.format == "pdf":
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        sys.stdout.write(data.decode("utf-8"))
    return 0
