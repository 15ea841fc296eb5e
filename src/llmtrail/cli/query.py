"""``llmtrail query`` (Logs Insights queries, saved queries) and ``llmtrail queries``:
thin commands over ``POST /api/query`` and ``/api/saved-queries``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from llmtrail.cli.output import print_table


def register(sub: Any, common: Any, since: Any) -> None:
    query = sub.add_parser(
        "query",
        help="run a CloudWatch Logs Insights query over the records",
        description="Example: llmtrail query 'stats count(*) by modelId' --since 1h",
    )
    common(query)
    query.add_argument("query", nargs="?", help="the query text (or --name SAVED)")
    query.add_argument("--since", type=since, help="e.g. 15m, 1h, 7d (default 1h)")
    query.add_argument("--start", help="RFC 3339 start (inclusive)")
    query.add_argument("--end", help="RFC 3339 end (exclusive; default now)")
    query.add_argument("--limit", type=int, default=1000, help="rows per page (max 10000)")
    query.add_argument("--all", action="store_true", help="follow nextToken to the last row")
    query.add_argument("--name", help="run the saved query NAME")
    query.add_argument("--save", metavar="NAME", help="save the query as NAME (and run it)")
    query.add_argument("--stats", action="store_true", help="print statistics to stderr")
    query.set_defaults(handler=_query)

    saved = sub.add_parser("queries", help="saved queries")
    common(saved)
    saved.add_argument("action", choices=("list", "show", "delete"), nargs="?", default="list")
    saved.add_argument("name", nargs="?")
    saved.set_defaults(handler=_queries)


def _query(backend: Any, args: argparse.Namespace) -> int:
    if not args.query and not args.name:
        raise SystemExit("llmtrail query: give the query text or --name SAVED")
    text = args.query
    if args.save:
        backend.request("PUT", f"/api/saved-queries/{args.save}", body={"queryString": args.query})
    if text is None:
        text = backend.request("GET", f"/api/saved-queries/{args.name}")["queryString"]
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
    if args.format == "json":
        for row in rows:
            print(json.dumps(dict(zip(fields, row, strict=True))))
    else:
        print_table(fields, rows, args.format)
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


def _queries(backend: Any, args: argparse.Namespace) -> int:
    if args.action == "list":
        items = backend.request("GET", "/api/saved-queries")["queries"]
        rows = [[q["name"], q["queryString"], q.get("description")] for q in items]
        print_table(["name", "queryString", "description"], rows, args.format)
        return 0
    if not args.name:
        raise SystemExit(f"llmtrail queries {args.action}: give the NAME")
    if args.action == "show":
        print(json.dumps(backend.request("GET", f"/api/saved-queries/{args.name}"), indent=2))
        return 0
    backend.request("DELETE", f"/api/saved-queries/{args.name}")
    return 0
