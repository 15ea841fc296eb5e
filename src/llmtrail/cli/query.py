"""``llmtrail query`` (Logs Insights queries, saved queries) and ``llmtrail queries``:
thin commands over ``POST /api/query`` and ``/api/saved-queries``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from llmtrail.cli.arguments import add_common_options, add_since, path_segment
from llmtrail.cli.output import Table, print_list, print_object
from llmtrail.cli.usage import UsageError, add_command


def register(sub: Any) -> None:
    query = add_command(
        sub,
        "query",
        "run a CloudWatch Logs Insights query over the records",
        """Run a CloudWatch Logs Insights query (fields, filter, stats, sort, limit, parse,
        display, dedup) over the records of a time range, the last hour by default.

        --format json prints one JSON array with an object for each result row, keyed by
        the query's fields; --format ndjson prints one such object a line. Statistics
        (records matched and scanned) go to standard error with --stats.""",
        [
            "llmtrail query 'stats count(*) by modelId' --since 1h",
            "llmtrail query 'fields requestId, latencyMs | sort latencyMs desc | limit 5'",
            "llmtrail query 'stats avg(latencyMs) by bin(5m)' --since 1d --format json",
            "llmtrail query 'filter status = \"ERROR\"' --save errors",
            "llmtrail query --name errors --since 7d --all --format csv",
        ],
    )
    add_common_options(query)
    query.add_argument("query", nargs="?", metavar="QUERY", help="the query text (or --name)")
    add_since(query, None)
    query.add_argument("--start", help="the range's start, RFC 3339 (inclusive)")
    query.add_argument("--end", help="the range's end, RFC 3339 (exclusive; default now)")
    query.add_argument(
        "--limit",
        type=int,
        metavar="N",
        default=1000,
        help="rows per page (default 1000, at most 10000)",
    )
    query.add_argument("--all", action="store_true", help="fetch every page, not just the first")
    query.add_argument("--name", help="run the saved query NAME")
    query.add_argument("--save", metavar="NAME", help="save the query as NAME, then run it")
    query.add_argument(
        "--stats", action="store_true", help="print records matched and scanned to stderr"
    )
    query.set_defaults(handler=_query)

    _register_saved(sub)


def _register_saved(sub: Any) -> None:
    saved = add_command(
        sub,
        "queries",
        "saved queries: list (default), show, delete",
        """List, show and delete the queries saved with llmtrail query --save. With no
        sub-command it lists them.""",
        ["llmtrail queries", "llmtrail queries show errors"],
    )
    add_common_options(saved)
    saved.set_defaults(handler=_queries_list)
    commands = saved.add_subparsers(dest="queries_command", metavar="COMMAND")

    listing = add_command(
        commands,
        "list",
        "every saved query",
        """List the saved queries: name, query text and description. --format json prints
        one JSON array of them.""",
        ["llmtrail queries list", "llmtrail queries list --format json"],
    )
    add_common_options(listing)
    listing.set_defaults(handler=_queries_list)

    show = add_command(
        commands,
        "show",
        "one saved query (JSON by default)",
        """Print one saved query: its name, query text and description, as JSON by
        default.""",
        ["llmtrail queries show errors"],
    )
    add_common_options(show, default_format="json")
    show.add_argument("name", metavar="NAME", help="the saved query's name")
    show.set_defaults(handler=_queries_show)

    delete = add_command(
        commands,
        "delete",
        "delete a saved query",
        """Delete a saved query. The records it queried are not touched.""",
        ["llmtrail queries delete errors"],
    )
    add_common_options(delete)
    delete.add_argument("name", metavar="NAME", help="the saved query's name")
    delete.set_defaults(handler=_queries_delete)


def _query(backend: Any, args: argparse.Namespace) -> int:
    if not args.query and not args.name:
        raise UsageError("give the query text or --name SAVED")
    text = args.query
    if args.save:
        path = f"/api/saved-queries/{path_segment(args.save)}"
        backend.request("PUT", path, body={"queryString": args.query})
    if text is None:
        text = backend.request("GET", f"/api/saved-queries/{path_segment(args.name)}")[
            "queryString"
        ]
    body: dict[str, Any] = {"queryString": text, "limit": args.limit}
    if args.start or args.end:
        body.update(startTime=args.start, endTime=args.end)
    elif args.since:
        body["startTime"] = args.since.isoformat()
    else:
        body["since"] = "1h"
    answer = backend.request("POST", "/api/query", body=body)
    fields, rows = answer["fields"], [_values(r) for r in answer["results"]]
    while args.all and answer.get("nextToken"):
        answer = backend.request(
            "POST", "/api/query", body={**body, "nextToken": answer["nextToken"]}
        )
        rows += [_values(r) for r in answer["results"]]
    items = [dict(zip(fields, row, strict=True)) for row in rows]
    print_list(items, Table(fields, rows), args.format)
    if args.stats or (answer.get("nextToken") and args.format == "table"):
        stats = answer["statistics"]
        more = " (more rows: --all)" if answer.get("nextToken") else ""
        print(
            f"{len(rows)} rows; records matched {stats['recordsMatched']:g}, "
            f"scanned {stats['recordsScanned']:g}{more}",
            file=sys.stderr,
        )
    return 0


def _values(result: list[dict[str, Any]]) -> list[Any]:
    return [cell["value"] for cell in result]


def _queries_list(backend: Any, args: argparse.Namespace) -> int:
    items = backend.request("GET", "/api/saved-queries")["queries"]
    headers = ["name", "queryString", "description"]
    print_list(items, Table(headers, [[q.get(h) for h in headers] for q in items]), args.format)
    return 0


def _queries_show(backend: Any, args: argparse.Namespace) -> int:
    answer = backend.request("GET", f"/api/saved-queries/{path_segment(args.name)}")
    print_object(answer, args.format)
    return 0


def _queries_delete(backend: Any, args: argparse.Namespace) -> int:
    answer = backend.request("DELETE", f"/api/saved-queries/{path_segment(args.name)}")
    print_object(answer, args.format, text=f"deleted saved query {args.name}")
    return 0
