"""``llmtrail traces``, ``trace ID``, ``timeline`` and ``errors``: thin commands over the
traces API (``/api/traces``, ``/api/timeline``, ``/api/errors``)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from llmtrail.cli.arguments import add_common_options, add_since, path_segment
from llmtrail.cli.output import Table, print_list, print_object
from llmtrail.cli.usage import add_command

_TRACE_COLUMNS = {"traceId": "traceId", "start": "start", "durationMs": "durationMs",
                  "status": "status", "name": "name", "spans": "spanCount",
                  "llmCalls": "llmCalls", "errors": "errorCount", "inputTokens": "inputTokens",
                  "outputTokens": "outputTokens", "app": "app", "session": "sessionId"}  # fmt: skip
_SPAN_COLUMNS = ["spanId", "parentSpanId", "name", "spanKind", "start", "durationMs", "status",
                 "inputTokens", "outputTokens"]  # fmt: skip
_ERROR_COLUMNS = ["count", "type", "message", "firstSeen", "lastSeen", "models", "apps"]


def register(sub: Any) -> None:
    traces = add_command(
        sub,
        "traces",
        "list traces, newest first",
        """List traces (one request of an agent or workflow, with its spans and model
        calls), newest first: duration, status, span and model-call counts, tokens, app and
        session. --format json prints one JSON array of the traces as the API gives them.""",
        [
            "llmtrail traces --since 1h",
            "llmtrail traces --errors --app support-bot --format json",
            "llmtrail traces --min-duration 5000 --limit 10",
        ],
    )
    add_common_options(traces)
    add_since(traces)
    traces.add_argument("--app", help="only traces of this application")
    traces.add_argument("--session", help="only traces of this session id")
    traces.add_argument(
        "--status", choices=("OK", "ERROR", "CANCELLED"), help="only traces with this status"
    )
    traces.add_argument(
        "--min-duration", type=int, metavar="MS", help="only traces lasting at least MS"
    )
    traces.add_argument("--errors", action="store_true", help="only traces with a failure")
    traces.add_argument(
        "--limit", type=int, metavar="N", default=50, help="at most this many (default 50)"
    )
    traces.set_defaults(handler=_traces)

    trace = add_command(
        sub,
        "trace",
        "one trace as a tree with durations and tokens",
        """Show one trace: as a tree of its spans with durations, tokens and failures, one
        span a row with --format csv, or the whole trace as JSON with --format json.""",
        [
            "llmtrail trace 5b8efff798038103d269b633813fc60c",
            "llmtrail trace 5b8efff798038103d269b633813fc60c --format json",
        ],
    )
    add_common_options(trace)
    trace.add_argument("trace_id", metavar="TRACE_ID", help="32 hex digits")
    trace.set_defaults(handler=_trace)

    timeline = add_command(
        sub,
        "timeline",
        "the per-request timeline chart",
        """Draw the latest requests as a timeline: one row a trace or session, with a bar
        for each model call. The chart is written as a PNG (timeline.png unless --output
        says otherwise). --format json or ndjson prints the timeline's data instead, and
        --format csv one request a row; with --output the PNG is written as well.""",
        [
            "llmtrail timeline --since 1h --output timeline.png",
            "llmtrail timeline --by session --limit 20 --format json",
        ],
    )
    add_common_options(timeline)
    add_since(timeline)
    timeline.add_argument(
        "--by", choices=("trace", "session"), default="trace", help="one row a trace or session"
    )
    timeline.add_argument(
        "--limit",
        type=int,
        metavar="N",
        default=50,
        help="the latest this many requests (default 50)",
    )
    timeline.add_argument(
        "--out", "--output", dest="output", type=Path, metavar="FILE", help="the PNG file"
    )
    timeline.set_defaults(handler=_timeline)

    errors = add_command(
        sub,
        "errors",
        "failures grouped by type and message",
        """List failures grouped by error type and message, the most frequent first, with
        when each was first and last seen and which models and apps it hit. --format json
        prints one JSON array of the groups.""",
        ["llmtrail errors --since 1d", "llmtrail errors --since 7d --format csv"],
    )
    add_common_options(errors)
    add_since(errors)
    errors.add_argument(
        "--limit", type=int, metavar="N", default=50, help="at most this many (default 50)"
    )
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
    items = answer["traces"]
    rows = [[t.get(key) for key in _TRACE_COLUMNS.values()] for t in items]
    print_list(items, Table(list(_TRACE_COLUMNS), rows), args.format)
    return 0


def _trace(backend: Any, args: argparse.Namespace) -> int:
    from rich.tree import Tree

    answer = backend.request("GET", f"/api/traces/{path_segment(args.trace_id)}")
    spans = answer["spans"]
    table = Table(_SPAN_COLUMNS, [[s.get(h) for h in _SPAN_COLUMNS] for s in spans])
    print_object(answer, args.format, table, text=trace_tree(answer["traceId"], spans, Tree))
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
    drawn = args.output or (Path("timeline.png") if args.format == "table" else None)
    if drawn is not None:
        render_png(rows_from_json(data), drawn)
    headers = ["key", "name", "start", "end", "invocations"]
    rows = [[r.get("key"), r.get("name"), r.get("start"), r.get("end"),
             len(r.get("invocations", []))] for r in data.get("rows", [])]  # fmt: skip
    said = f"{drawn}: {data['requests']} requests, {data['invocations']} model invocations"
    print_object(data, args.format, Table(headers, rows), text=said if drawn else None)
    return 0


def _errors(backend: Any, args: argparse.Namespace) -> int:
    answer = backend.request("GET", "/api/errors", {"start": _start(args), "limit": args.limit})
    rows = []
    for group in answer["errors"]:
        row = [group.get(h) for h in _ERROR_COLUMNS]
        row[2] = (row[2] or "")[:80]
        row[5], row[6] = ", ".join(group["models"]), ", ".join(group["apps"])
        rows.append(row)
    print_list(answer["errors"], Table(_ERROR_COLUMNS, rows), args.format)
    return 0
