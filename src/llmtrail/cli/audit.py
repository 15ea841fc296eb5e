"""``llmtrail audit list|verify``: thin commands over ``/api/audit`` and ``/api/audit/verify``
(the running server, or the data directory opened in process)."""

from __future__ import annotations

import argparse
from typing import Any

from llmtrail.cli.arguments import add_common_options, add_since
from llmtrail.cli.output import Table, print_list, print_object
from llmtrail.cli.usage import UsageError, add_command

_HEADERS = ["time", "actor", "role", "action", "surface", "source", "outcome", "target"]
_PROBLEM_HEADERS = ["server", "seq", "key", "reason"]
PAGE = 1000


def register(sub: Any) -> None:
    audit = add_command(
        sub,
        "audit",
        "the audit log: who changed what, who read which prompts; verify its chain",
        """The audit log records every management change and every read of request or
        response bodies: who (the key), when, from where, through which surface, and which
        records. Each server appends to its own hash chain; verify walks every chain and
        reports an entry that was changed, removed, inserted or reordered, or a tail that
        was cut off.""",
        [
            "llmtrail audit list --since 1d",
            "llmtrail audit list --request-id 3f2a9c --format json",
            "llmtrail audit verify",
        ],
    )
    commands = audit.add_subparsers(dest="audit_command", required=True, metavar="COMMAND")

    listing = add_command(
        commands,
        "list",
        "entries of your workspace, newest first",
        """List the audit entries of the key's workspace, newest first. --request-id shows
        who read one record's prompt and answer.""",
        ["llmtrail audit list --since 1h", "llmtrail audit list --actor key/k_1a2b --json"],
    )
    add_common_options(listing)
    add_since(listing)
    listing.add_argument("--until", metavar="TIME", help="only entries before TIME (RFC 3339)")
    listing.add_argument("--actor", help="only entries of this actor (key/ID)")
    listing.add_argument("--request-id", metavar="ID", help="only entries naming this record")
    listing.add_argument("--limit", type=int, default=100, help="at most this many (100)")
    listing.set_defaults(handler=_list)

    verify = add_command(
        commands,
        "verify",
        "check every chain; exit 1 when one was tampered with",
        """Walk every server's chain and its head. Prints each problem found (the server,
        the entry's sequence number and why) and exits 1 when there is one, 0 when every
        chain is whole.""",
        ["llmtrail audit verify", "llmtrail audit verify --format json"],
    )
    add_common_options(verify)
    verify.set_defaults(handler=_verify)


def _list(backend: Any, args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise UsageError(f"--limit must be 1 or more, got {args.limit}")
    query: dict[str, Any] = {
        "since": args.since.isoformat() if args.since else None,
        "until": args.until,
        "actor": args.actor,
        "requestId": args.request_id,
    }
    found: list[dict[str, Any]] = []
    cursor = None
    while len(found) < args.limit:
        page = backend.request(
            "GET",
            "/api/audit",
            {**query, "limit": min(PAGE, args.limit - len(found)), "cursor": cursor},
        )
        found += page["entries"]
        cursor = page.get("nextCursor")
        if not cursor:
            break
    rows = [[_cell(e, h) for h in _HEADERS] for e in found]
    print_list(found, Table(_HEADERS, rows), args.format)
    return 0


def _cell(entry: dict[str, Any], header: str) -> Any:
    if header != "target":
        return entry.get(header)
    target = entry.get("target") or {}
    ids = target.get("requestIds")
    if isinstance(ids, list):
        shown = ", ".join(ids[:3]) + (" …" if len(ids) > 3 else "")
        return f"{target.get('count', len(ids))} records: {shown}"
    return ", ".join(f"{k}={v}" for k, v in target.items())


def _verify(backend: Any, args: argparse.Namespace) -> int:
    report = backend.request("GET", "/api/audit/verify")
    problems = report["problems"]
    chains = len(report["chains"])
    if report["ok"]:
        text = f"ok: {report['entries']} entries in {chains} chain(s), no tampering found"
    else:
        lines = [f"TAMPERED: {len(problems)} problem(s) in {report['entries']} entries"]
        lines += [_problem_line(p) for p in problems]
        text = "\n".join(lines)
    rows = [[p.get(h) for h in _PROBLEM_HEADERS] for p in problems]
    if args.format == "table":
        print_object(report, args.format, text=text)
    else:
        print_object(report, args.format, Table(_PROBLEM_HEADERS, rows))
    return 0 if report["ok"] else 1


def _problem_line(problem: dict[str, Any]) -> str:
    where = f"entry {problem['seq']}" if problem.get("seq") is not None else "chain"
    return f"  {problem['server']} {where}: {problem['reason']}"
