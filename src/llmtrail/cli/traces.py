"""``llmtrail traces``, ``trace ID``, ``timeline`` and ``errors``: thin commands over the
traces API (``/api/traces``, ``/api/timeline``, ``/api/errors``)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from llmtrail.cli.output import print_table


def register(sub: Any, common: Any, since: Any) -> None:
    traces = sub.add_parser("traces", help="list traces, newest first")
    common(traces)
    traces.add_argument("--since", type=since, help="e.g. 15m, 1h, 7d")
    traces.add_argument("--app")
    traces.add_argument("--session")
    traces.add_argument("--status", choices=("OK", "ERROR", "CANCELLED"))
    traces.add_argument("--min-duration", type=int, metavar="MS")
    traces.add_argument("--errors", action="store_true", help="only traces with a failure")
    traces.add_argument("--limit", type=int, default=50)
    traces.set_defaults(handler=_traces)

    trace = sub.add_parser("trace", help="one trace as a tree with durations and tokens")
    common(trace)
    trace.add_argument("trace_id")
    trace.set_defaults(handler=_trace)

    timeline = sub.add_parser("timeline", help="the per-request timeline chart")
    common(timeline)
    timeline.add_argument("--since", type=since, help="e.g. 15m, 1h, 7d")
    timeline.add_argument("--by", choices=("trace", "session"), default="trace")
    timeline.add_argument("--limit", type=int, default=50, help="requests (latest)")
    timeline.add_argument("--out", "--output", dest="output", type=Path, help="PNG file")
    timeline.set_defaults(handler=_timeline)

    errors = sub.add_parser("errors", help="failures grouped by type and message")
    common(errors)
    errors.add_argument("--since", type=since, help="e.g. 15m, 1h, 7d")
    errors.add_argument("--limit", type=int, default=50)
    errors.set_defaults(handler=_errors)


def _start(args: argparse.Namespace) -> str | None:
    return args.since.isoformat() if getattr(args, "since", None) else None


def _traces(backend: Any, args: argparse.Namespace) -> int:
    answer = backend.request(
        "GET",
        "/api/traces",
        {
            "start": _start(args),
            "app": args.app,
            "sessionId": args.session,
            "status": args.status,
            "minDurationMs": args.min_duration,
            "hasError": "true" if args.errors else None,
            "limit": args.limit,
        },
    )
    columns = {"traceId": "traceId", "start": "start", "durationMs": "durationMs",
               "status": "status", "name": "name", "spans": "spanCount",
               "llmCalls": "llmCalls", "errors": "errorCount", "inputTokens": "inputTokens",
               "outputTokens": "outputTokens", "app": "app", "session": "sessionId"}  # fmt: skip
    headers = list(columns)
    rows = [[t.get(key) for key in columns.values()] for t in answer["traces"]]
    print_table(headers, rows, args.format)
    return 0


def _trace(backend: Any, args: argparse.Namespace) -> int:
    answer = backend.request("GET", f"/api/traces/{args.trace_id}")
    if args.format == "json":
        print(json.dumps(answer, indent=2))
        return 0
    spans = answer["spans"]
    if args.format == "csv":
        headers = ["spanId", "parentSpanId", "name", "spanKind", "start", "durationMs",
                   "status", "inputTokens", "outputTokens"]  # fmt: skip
        print_table(headers, [[s.get(h) for h in headers] for s in spans], "csv")
        return 0
    from rich.console import Console
    from rich.tree import Tree

    Console(file=sys.stdout).print(trace_tree(answer["traceId"], spans, Tree))
    return 0


def trace_tree(trace_id: str, spans: list[dict[str, Any]], tree_type: Any) -> Any:
    """The spans as a tree under their parents (orphans under the root)."""
    root = tree_type(f"trace {trace_id}")
    ids = {s["spanId"] for s in spans}
    children: dict[str | None, list[dict[str, Any]]] = {}
    for span in spans:
        parent = span.get("parentSpanId") if span.get("parentSpanId") in ids else None
        children.setdefault(parent, []).append(span)

    def add(node: Any, parent: str | None) -> None:
        for span in children.get(parent, []):
            label = f"[bold]{span['name']}[/] ({span['spanKind']}) {span['durationMs']} ms"
            if span.get("inputTokens") is not None:
                label += f"  tokens {span['inputTokens']}→{span.get('outputTokens')}"
            if span["status"] != "OK":
                error = span.get("error") or {}
                label += f"  [red]{span['status']} {error.get('type', '')}[/]"
            add(node.add(label), span["spanId"])

    add(root, None)
    return root


def _timeline(backend: Any, args: argparse.Namespace) -> int:
    from llmtrail.analytics.timeline import render_png, rows_from_json

    data = backend.request(
        "GET", "/api/timeline", {"start": _start(args), "by": args.by, "limit": args.limit}
    )
    if args.format == "json" and args.output is None:
        print(json.dumps(data, indent=2))
        return 0
    out = args.output or Path("timeline.png")
    render_png(rows_from_json(data), out)
    print(f"{out}: {data['requests']} requests, {data['invocations']} model invocations")
    return 0


def _errors(backend: Any, args: argparse.Namespace) -> int:
    answer = backend.request("GET", "/api/errors", {"start": _start(args), "limit": args.limit})
    headers = ["count", "type", "message", "firstSeen", "lastSeen", "models", "apps"]
    rows = []
    for group in answer["errors"]:
        row = [group.get(h) for h in headers]
        row[2] = (row[2] or "")[:80]
        row[5], row[6] = ", ".join(group["models"]), ", ".join(group["apps"])
        rows.append(row)
    if args.format == "json":
        for group in answer["errors"]:
            print(json.dumps(group))
        return 0
    print_table(headers, rows, args.format)
    return 0
