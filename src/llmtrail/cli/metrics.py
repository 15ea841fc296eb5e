"""``llmtrail metrics``: read rollups (``/api/metrics``), list series, rebuild them."""

from __future__ import annotations

import argparse
from typing import Any

from llmtrail.cli.arguments import add_common_options, add_time_range, time_range
from llmtrail.cli.output import Table, print_list, print_object
from llmtrail.cli.usage import add_command


def register(sub: Any) -> None:
    metrics = add_command(
        sub,
        "metrics",
        "metrics from the rollups: get, list, rebuild",
        """Read the per-minute rollups the server keeps as records are stored, by CloudWatch's
        AWS/Bedrock metric names (Invocations, InvocationLatency, TimeToFirstToken,
        InputTokenCount, OutputTokenCount, CacheReadInputTokenCount,
        CacheWriteInputTokenCount, InvocationClientErrors, InvocationServerErrors,
        InvocationThrottles, CostUsd) and dimensions (ModelId, Operation, Provider,
        ApplicationName, TenantId, Team, CostCenter, InferenceProfile, Status, ErrorType).""",
        [
            "llmtrail metrics get InputTokenCount --period 3600 --since 1d",
            "llmtrail metrics get InvocationLatency --stat p99 --by ModelId --since 7d",
            "llmtrail metrics rebuild --since 2026-12-01",
        ],
    )
    commands = metrics.add_subparsers(dest="metrics_command", metavar="COMMAND", required=True)

    get = add_command(
        commands,
        "get",
        "one or more metrics over a time range",
        """Print each metric's datapoints (one series per value of --by), like CloudWatch's
        GetMetricData. Periods are 10, 30 (last 3 hours) or a multiple of 60 seconds.""",
        [
            "llmtrail metrics get Invocations InvocationClientErrors --since 3h",
            "llmtrail metrics get CostUsd --period 86400 --by CostCenter --since 30d",
            "llmtrail metrics get InputTokenCount --dimension ApplicationName=search --since 1d",
        ],
    )
    add_common_options(get)
    add_time_range(get, default="3h")
    get.add_argument("metric", nargs="+", metavar="METRIC", help="AWS/Bedrock metric names")
    get.add_argument(
        "--stat",
        default="Sum",
        help="Sum, Average, Minimum, Maximum, SampleCount or pNN (default Sum)",
    )
    get.add_argument("--period", type=int, default=300, help="seconds (default 300)")
    get.add_argument(
        "--dimension",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="only the series with this dimension value (repeatable)",
    )
    get.add_argument("--by", metavar="DIMENSION", help="one series per value of DIMENSION")
    get.set_defaults(handler=_get)

    listing = add_command(
        commands,
        "list",
        "the series kept, like ListMetrics",
        """List the metric series with data in the range (of one dimension set with
        --dimensions).""",
        ["llmtrail metrics list --dimensions ApplicationName --metric Invocations"],
    )
    add_common_options(listing)
    add_time_range(listing, default="1d")
    listing.add_argument("--metric", help="one metric name")
    listing.add_argument("--dimensions", metavar="NAMES", help="comma-separated dimension set")
    listing.set_defaults(handler=_list)

    rebuild = add_command(
        commands,
        "rebuild",
        "recompute the rollups from the stored records",
        """Recompute the rollups from the records, from --since on (rounded down to the
        hour) or all of them: after an import, a cost recompute or a retention run. A full
        rebuild also picks each dimension's top values afresh.""",
        ["llmtrail metrics rebuild", "llmtrail metrics rebuild --since 2026-12-01T00:00:00Z"],
    )
    add_common_options(rebuild)
    rebuild.add_argument("--since", metavar="TIME", help="RFC 3339 time (default: everything)")
    rebuild.set_defaults(handler=_rebuild)


def _get(backend: Any, args: argparse.Namespace) -> int:
    query: dict[str, Any] = {
        **time_range(args),
        "metric": args.metric,
        "stat": args.stat,
        "period": args.period,
        "dimension": args.dimension,
    }
    if args.by:
        query["by"] = args.by
    answer = backend.request("GET", "/api/metrics", query=query)
    results = answer["MetricDataResults"]
    rows = [
        [r["Label"], t, v]
        for r in results
        for t, v in zip(r["Timestamps"], r["Values"], strict=True)
    ]
    print_list(results, Table(["series", "timestamp", "value"], rows), args.format)
    return 0


def _list(backend: Any, args: argparse.Namespace) -> int:
    query = {**time_range(args), "metric": args.metric, "dimensions": args.dimensions}
    found = backend.request("GET", "/api/metrics/list", query=query)["Metrics"]
    rows = [
        [m["MetricName"], " ".join(f"{d['Name']}={d['Value']}" for d in m["Dimensions"])]
        for m in found
    ]
    print_list(found, Table(["metric", "dimensions"], rows), args.format)
    return 0


def _rebuild(backend: Any, args: argparse.Namespace) -> int:
    query = {"since": args.since} if args.since else None
    answer = backend.request("POST", "/api/metrics/rebuild", query=query)
    since = f" from {args.since}" if args.since else ""
    print_object(answer, args.format, text=f"rebuilt the metric rollups{since}")
    return 0
