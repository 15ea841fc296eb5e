"""``llmtrail dashboards``: list, get, put and delete dashboards (``/api/dashboards``), a
dashboard being a CloudWatch dashboard body, exported and imported as a JSON file."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from llmtrail.cli.arguments import add_common_options, path_segment, read_json_file
from llmtrail.cli.output import Table, print_list, print_object, write_json_file
from llmtrail.cli.usage import add_command

_HEADERS = ["DashboardName", "LastModified", "Size"]


def register(sub: Any) -> None:
    dashboards = add_command(
        sub,
        "dashboards",
        "dashboards (CloudWatch dashboard bodies): list, get, put, delete",
        """Dashboards are CloudWatch dashboard bodies: a JSON file exported from the
        CloudWatch console (Actions > View/edit source) works unchanged. The web UI shows
        them at /dashboards/NAME.""",
        [
            "llmtrail dashboards list",
            "llmtrail dashboards get llmtrail-overview --output overview.json",
            "llmtrail dashboards put my-team overview.json",
        ],
    )
    commands = dashboards.add_subparsers(
        dest="dashboards_command", required=True, metavar="COMMAND"
    )

    listing = add_command(
        commands, "list", "every dashboard", "List the dashboards: name, last change, size.",
        ["llmtrail dashboards list --format json"],
    )  # fmt: skip
    add_common_options(listing)
    listing.set_defaults(handler=_list)

    get = add_command(
        commands,
        "get",
        "a dashboard's body, to a file or standard output",
        """Print a dashboard's body as JSON, or write it to --output FILE.""",
        ["llmtrail dashboards get llmtrail-overview --output overview.json"],
    )
    add_common_options(get, default_format="json")
    get.add_argument("name", metavar="NAME", help="the dashboard's name")
    get.add_argument(
        "--output",
        "-o",
        type=Path,
        metavar="FILE",
        help="write the body to FILE and print what was written (a line by default)",
    )
    get.set_defaults(handler=_get, format=None)  # json, or with --output table

    put = add_command(
        commands,
        "put",
        "create or replace a dashboard from a body file",
        """Create or replace dashboard NAME from FILE (- for standard input): a CloudWatch
        dashboard body, or a PutDashboard request with DashboardBody. Problems are named by
        their path in the body (widgets[2].properties.metrics[0]).""",
        [
            "llmtrail dashboards put my-team body.json",
            "llmtrail dashboards put ops body.json",
        ],
    )
    add_common_options(put)
    put.add_argument("name", metavar="NAME", help="letters, digits, - and _ (at most 255)")
    put.add_argument("file", metavar="FILE", help="the body's JSON file, - for standard input")
    put.set_defaults(handler=_put)

    delete = add_command(
        commands, "delete", "remove a dashboard", "Remove dashboard NAME.",
        ["llmtrail dashboards delete my-team"],
    )  # fmt: skip
    add_common_options(delete)
    delete.add_argument("name", metavar="NAME", help="the dashboard's name")
    delete.set_defaults(handler=_delete)


def _list(backend: Any, args: argparse.Namespace) -> int:
    items = backend.request("GET", "/api/dashboards")["DashboardEntries"]
    print_list(items, Table(_HEADERS, [[d.get(h) for h in _HEADERS] for d in items]), args.format)
    return 0


def _get(backend: Any, args: argparse.Namespace) -> int:
    body = backend.request("GET", f"/api/dashboards/{path_segment(args.name)}")
    if args.output is None:
        print_object(body, args.format or "json")
        return 0
    size = write_json_file(args.output, body)
    widgets = len(body.get("widgets", []))
    written = {
        "file": str(args.output),
        "DashboardName": args.name,
        "Size": size,
        "widgets": widgets,
    }
    line = f"{args.output}: dashboard {args.name}, {widgets} widgets"
    print_object(written, args.format or "table", text=line)
    return 0


def _put(backend: Any, args: argparse.Namespace) -> int:
    body = read_json_file(args.file)
    answer = backend.request("PUT", f"/api/dashboards/{path_segment(args.name)}", body=body)
    warnings = answer.get("DashboardValidationMessages") or []
    lines = [f"put dashboard {args.name}"]
    lines += [f"warning: {w['DataPath']}: {w['Message']}" for w in warnings]
    print_object(answer, args.format, text="\n".join(lines))
    return 0


def _delete(backend: Any, args: argparse.Namespace) -> int:
    answer = backend.request("DELETE", f"/api/dashboards/{path_segment(args.name)}")
    print_object(answer, args.format, text=f"deleted dashboard {answer['deleted']}")
    return 0
