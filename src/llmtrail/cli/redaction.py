"""``llmtrail redaction``: get, put, delete and try the workspace's redaction policy over
``/api/redaction``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from llmtrail.cli.arguments import add_common_options
from llmtrail.cli.output import Table, print_object, write_json_file
from llmtrail.cli.usage import add_command
from llmtrail.errors import ValidationError

GROUPS = ("bodies", "metadata", "errors")


def register(sub: Any) -> None:
    redaction = add_command(
        sub,
        "redaction",
        "the redaction policy: get, put, delete, test",
        """What is redacted before a record reaches a file: API keys, AWS keys, JWTs and
        bearer tokens always; e-mail addresses, phone numbers, card numbers, IBANs, IP
        addresses, your own patterns and (with the presidio extra) names and addresses when
        the policy turns them on; per group of fields (bodies, metadata, errors) masked,
        hashed with a key or dropped. Changes apply to capture within a second.""",
        [
            "llmtrail redaction get --output policy.json",
            "llmtrail redaction put policy.json",
            "llmtrail redaction test 'mail me at jane@example.com'",
        ],
    )
    commands = redaction.add_subparsers(dest="redaction_command", required=True, metavar="COMMAND")

    get = add_command(
        commands,
        "get",
        "the policy in effect",
        """Print the workspace's policy as JSON (what put takes), or write it to --output.""",
        ["llmtrail redaction get", "llmtrail redaction get --output policy.json"],
    )
    add_common_options(get, default_format="json")
    get.add_argument("--output", "-o", type=Path, metavar="FILE", help="write the policy to FILE")
    get.set_defaults(handler=_get)

    put = add_command(
        commands,
        "put",
        "replace the policy from a JSON file",
        """Replace the workspace's policy with FILE (- for standard input): an object with
        keyDetectors, detectors, actions and patterns, or what get prints. Problems are
        named by their field (patterns[0].pattern).""",
        ["llmtrail redaction put policy.json"],
    )
    add_common_options(put, default_format="json")
    put.add_argument("file", metavar="FILE", help="the policy's JSON file, - for standard input")
    put.set_defaults(handler=_put)

    delete = add_command(
        commands,
        "delete",
        "back to the default policy",
        """Remove the workspace's policy: key detectors, masked everywhere.""",
        ["llmtrail redaction delete"],
    )
    add_common_options(delete, default_format="json")
    delete.set_defaults(handler=_delete)

    test = add_command(
        commands,
        "test",
        "redact a text as capture would",
        """Redact TEXT (- for standard input) under the workspace's policy, or under the
        policy in --policy FILE, as the given group of fields; print the text and what was
        found where.""",
        [
            "llmtrail redaction test 'card 4111 1111 1111 1111'",
            "llmtrail redaction test --group errors --policy policy.json -",
        ],
    )
    add_common_options(test)
    test.add_argument("text", metavar="TEXT", help="the text, - for standard input")
    test.add_argument("--group", choices=GROUPS, default="bodies", help="default bodies")
    test.add_argument("--policy", type=Path, metavar="FILE", help="try this policy instead")
    test.set_defaults(handler=_test)


def _read_json(name: str, field: str) -> Any:
    try:
        text = sys.stdin.read() if name == "-" else Path(name).read_text()
    except OSError as exc:
        raise ValidationError(field, f"cannot be read: {exc}") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ValidationError(field, f"{name} is not valid JSON: {exc}") from None


def _get(backend: Any, args: argparse.Namespace) -> int:
    answer = backend.request("GET", "/api/redaction")
    if args.output is None:
        print_object(answer, args.format)
        return 0
    write_json_file(args.output, answer["policy"])
    written = {"file": str(args.output), "workspace": answer["workspace"]}
    print_object(written, args.format, text=f"{args.output}: redaction policy")
    return 0


def _put(backend: Any, args: argparse.Namespace) -> int:
    answer = backend.request("PUT", "/api/redaction", body=_read_json(args.file, "FILE"))
    print_object(answer, args.format, text=f"put the redaction policy of {answer['workspace']}")
    return 0


def _delete(backend: Any, args: argparse.Namespace) -> int:
    answer = backend.request("DELETE", "/api/redaction")
    print_object(answer, args.format, text=f"{answer['workspace']}: default redaction policy")
    return 0


def _test(backend: Any, args: argparse.Namespace) -> int:
    text = sys.stdin.read() if args.text == "-" else args.text
    body: dict[str, Any] = {"text": text, "group": args.group}
    if args.policy is not None:
        body["policy"] = _read_json(str(args.policy), "--policy")
    answer = backend.request("POST", "/api/redaction/test", body=body)
    rows = [[f["kind"], f["start"], f["end"], f["replacement"]] for f in answer["findings"]]
    table = Table(["kind", "start", "end", "replacement"], rows)
    found = [f"{kind} at {start}-{end}: {replacement or '(dropped)'}" for kind, start, end,
             replacement in rows]  # fmt: skip
    summary = f"{len(rows)} finding(s), {answer['group']}: {answer['action']}"
    print_object(answer, args.format, table, text="\n".join([answer["text"], summary, *found]))
    return 0
