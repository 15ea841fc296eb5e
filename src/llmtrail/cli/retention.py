"""``llmtrail retention`` and ``llmtrail erase``: thin commands over the retention API
(``/api/retention``, ``/api/erase``), plus ``retention compact``, which rewrites the DuckDB
file offline so that the bytes of deleted rows leave it."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from llmtrail.cli.arguments import add_common_options
from llmtrail.cli.output import Table, fields_table, print_object
from llmtrail.cli.usage import add_command
from llmtrail.errors import LlmtrailError

_REMOVED = ["place", "removed"]


def register(sub: Any) -> None:
    _register_retention(sub)
    _register_erase(sub)


def _register_retention(sub: Any) -> None:
    retention = add_command(
        sub,
        "retention",
        "how long the workspace keeps its data: get (default), put, delete, run, compact",
        """The workspace's retention policy: records, bodies and spans older than their
        period are deleted on a schedule (by one server), optionally archived to Parquet
        first. Unset periods keep data forever. With no sub-command it prints the policy.""",
        ["llmtrail retention", "llmtrail retention put --records-days 90 --bodies-days 30"],
    )
    add_common_options(retention)
    retention.set_defaults(handler=_get)
    commands = retention.add_subparsers(dest="retention_command", metavar="COMMAND")

    get = add_command(
        commands, "get", "print the policy", "Print the workspace's retention policy.",
        ["llmtrail retention get --format json"],
    )  # fmt: skip
    add_common_options(get)
    get.set_defaults(handler=_get)

    put = add_command(
        commands,
        "put",
        "set the policy",
        """Set the workspace's retention policy (replacing it whole: a period not given is
        kept forever).""",
        [
            "llmtrail retention put --records-days 90",
            "llmtrail retention put --records-days 365 --bodies-days 30 --spans-days 90 --archive",
        ],
    )
    add_common_options(put)
    for name, what in (("records", "records, bodies and objects"), ("bodies", "bodies only"),
                       ("spans", "spans")):  # fmt: skip
        put.add_argument(f"--{name}-days", type=int, metavar="DAYS", help=f"days to keep {what}")
    put.add_argument(
        "--archive", action="store_true", help="write what is deleted to Parquet first"
    )
    put.set_defaults(handler=_put)

    delete = add_command(
        commands, "delete", "keep everything again", "Remove the policy: nothing is deleted.",
        ["llmtrail retention delete"],
    )  # fmt: skip
    add_common_options(delete)
    delete.set_defaults(handler=_delete)

    run = add_command(
        commands,
        "run",
        "apply the policy now",
        """Delete (and archive) what is past the policy now and print what went; with
        --dry-run only count it.""",
        ["llmtrail retention run --dry-run", "llmtrail retention run --format json"],
    )
    add_common_options(run)
    run.add_argument("--dry-run", action="store_true", help="count, delete nothing")
    run.set_defaults(handler=_run)

    compact = add_command(
        commands,
        "compact",
        "rewrite the database file without deleted rows' bytes (server stopped)",
        """DuckDB keeps the bytes of deleted rows in free blocks of its file. This copies
        the database into a fresh file and puts it in place, so erased data leaves the disk.
        The server must be stopped.""",
        ["llmtrail retention compact --data-dir /var/lib/llmtrail"],
    )
    add_common_options(compact)
    compact.set_defaults(local_handler=_compact)


def _register_erase(sub: Any) -> None:
    erase = add_command(
        sub,
        "erase",
        "remove a person's or tenant's data everywhere",
        """Erase records by request id, by user (requestMetadata.user_id) or by tenant
        (requestMetadata.tenant_id) in the workspace: records, bodies, objects, spans,
        rollups, archives, dead letters; prints what was removed from where.""",
        [
            "llmtrail erase --user alice@example.com",
            "llmtrail erase --request-id r-1 --request-id r-2",
            "llmtrail erase --tenant acme --format json",
        ],
    )
    add_common_options(erase)
    which = erase.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--request-id", action="append", dest="request_ids", metavar="ID", help="(repeatable)"
    )
    which.add_argument("--user", help="a requestMetadata.user_id")
    which.add_argument("--tenant", help="a requestMetadata.tenant_id")
    erase.set_defaults(handler=_erase)


def _get(backend: Any, args: argparse.Namespace) -> int:
    answer = backend.request("GET", "/api/retention")
    print_object(answer, args.format, fields_table(answer))
    return 0


def _put(backend: Any, args: argparse.Namespace) -> int:
    body = {
        "recordsDays": args.records_days,
        "bodiesDays": args.bodies_days,
        "spansDays": args.spans_days,
        "archive": args.archive,
    }
    answer = backend.request("PUT", "/api/retention", body=body)
    print_object(answer, args.format, fields_table(answer))
    return 0


def _delete(backend: Any, args: argparse.Namespace) -> int:
    answer = backend.request("DELETE", "/api/retention")
    text = "retention policy removed" if answer["deleted"] else "no retention policy was set"
    print_object(answer, args.format, text=text)
    return 0


def _run(backend: Any, args: argparse.Namespace) -> int:
    answer = backend.request("POST", "/api/retention/run", body={"dryRun": args.dry_run})
    headers = ["workspace", "records", "bodies", "objects", "spans", "rollups", "archived"]
    rows = [
        [w["workspace"], w["records"], w["bodies"], w["objects"], w["spans"], w["rollups"],
         len(w["archived"])]
        for w in answer["workspaces"]
    ]  # fmt: skip
    print_object(answer, args.format, Table(headers, rows))
    return 0


def _erase(backend: Any, args: argparse.Namespace) -> int:
    body = {"requestIds": args.request_ids, "user": args.user, "tenant": args.tenant}
    answer = backend.request(
        "POST", "/api/erase", body={k: v for k, v in body.items() if v is not None}
    )
    rows: list[list[Any]] = [[k, v] for k, v in answer["removed"].items()]
    rows.append(["spoolPending", answer["spoolPending"]])
    print_object(answer, args.format, Table(_REMOVED, rows))
    for note in answer["notes"]:
        print(f"note: {note}", file=sys.stderr)
    return 0


def _compact(settings: Any, args: argparse.Namespace) -> int:
    from llmtrail.cli.client import server_url
    from llmtrail.store.duckdb.erasure import compact_database_file

    running = server_url(settings, None)
    if running:
        raise LlmtrailError(f"a server runs on this data directory ({running}): stop it first")
    if not settings.db_path.exists():
        raise LlmtrailError(f"no database at {settings.db_path}")
    before, after = compact_database_file(settings.db_path)
    answer = {"database": str(settings.db_path), "bytesBefore": before, "bytesAfter": after}
    print_object(answer, args.format, fields_table(answer))
    return 0
