"""``llmtrail profiles``: thin commands over the inference profiles API (``/api/profiles``),
which answers as Bedrock's does."""

from __future__ import annotations

import argparse
from typing import Any

from llmtrail.cli.arguments import (
    add_common_options,
    add_time_range,
    key_value,
    path_segment,
    time_range,
)
from llmtrail.cli.output import Table, fields_table, print_list, print_object
from llmtrail.cli.usage import add_command

_PROFILE_HEADERS = ["inferenceProfileId", "inferenceProfileName", "type", "status", "models",
                    "inferenceProfileArn"]  # fmt: skip


def register(sub: Any) -> None:
    profiles = add_command(
        sub,
        "profiles",
        "application inference profiles",
        """Manage application inference profiles, as Bedrock has them: a named copy of a
        model with cost-allocation tags. A call made through a profile's ARN is recorded
        with the profile and its tags, so cost can be split by them.""",
        [
            "llmtrail profiles create --name claims-app --copy-from sim/claims --tag dept=claims",
            "llmtrail profiles list",
        ],
    )
    commands = profiles.add_subparsers(dest="profiles_command", required=True, metavar="COMMAND")

    create = add_command(
        commands,
        "create",
        "create a profile that copies a model",
        """Create an application inference profile that copies a model, with optional
        tags. Prints the new profile's ARN, which callers use as the model id.""",
        [
            "llmtrail profiles create --name claims-app --copy-from gpt-4o-mini",
            "llmtrail profiles create --name sales-app --copy-from sim/sales --tag dept=sales "
            "--tag team=emea",
        ],
    )
    add_common_options(create)
    create.add_argument("--name", required=True, help="the profile's name")
    create.add_argument(
        "--copy-from", required=True, metavar="MODEL", help="a model id or ARN to copy"
    )
    create.add_argument("--description", help="what the profile is for")
    create.add_argument(
        "--tag",
        type=key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a cost-allocation tag (repeatable)",
    )
    create.set_defaults(handler=_create)

    listing = add_command(
        commands,
        "list",
        "list profiles",
        """List inference profiles: id, name, type, status, how many models, ARN.
        --format json prints one JSON array of the profile summaries.""",
        ["llmtrail profiles list", "llmtrail profiles list --type APPLICATION --format json"],
    )
    add_common_options(listing)
    listing.add_argument(
        "--type", choices=("APPLICATION", "SYSTEM_DEFINED"), help="only profiles of this type"
    )
    listing.set_defaults(handler=_list)

    show = add_command(
        commands,
        "show",
        "a profile, its tags and its metrics",
        """Show one profile with its tags and its calls, tokens, errors and cost over a time
        range (the last 30 days by default).""",
        ["llmtrail profiles show 8xkq3u2ri0ta", "llmtrail profiles show 8xkq3u2ri0ta --since 7d"],
    )
    add_common_options(show)
    show.add_argument("identifier", metavar="ID", help="the profile's id or ARN")
    add_time_range(show)
    show.set_defaults(handler=_show)

    delete = add_command(
        commands,
        "delete",
        "delete a profile",
        """Delete an application inference profile. Records made through it keep its name
        and tags.""",
        ["llmtrail profiles delete 8xkq3u2ri0ta"],
    )
    add_common_options(delete)
    delete.add_argument("identifier", metavar="ID", help="the profile's id or ARN")
    delete.set_defaults(handler=_delete)

    tag = add_command(
        commands,
        "tag",
        "add or overwrite tags",
        """Add tags to a profile, overwriting a tag of the same key. Prints the profile's
        tags.""",
        ["llmtrail profiles tag 8xkq3u2ri0ta owner=ops team=triage"],
    )
    add_common_options(tag)
    tag.add_argument("identifier", metavar="ID", help="the profile's id or ARN")
    tag.add_argument("tags", type=key_value, nargs="+", metavar="KEY=VALUE", help="the tags")
    tag.set_defaults(handler=_tag)

    untag = add_command(
        commands,
        "untag",
        "remove tags",
        """Remove tags from a profile by key. Prints the tags it still has.""",
        ["llmtrail profiles untag 8xkq3u2ri0ta owner team"],
    )
    add_common_options(untag)
    untag.add_argument("identifier", metavar="ID", help="the profile's id or ARN")
    untag.add_argument("keys", nargs="+", metavar="KEY", help="the keys of the tags to remove")
    untag.set_defaults(handler=_untag)


def _profile_path(identifier: str, suffix: str = "") -> str:
    return f"/api/profiles/{path_segment(identifier)}{suffix}"


def _create(backend: Any, args: argparse.Namespace) -> int:
    body: dict[str, Any] = {
        "inferenceProfileName": args.name,
        "modelSource": {"copyFrom": args.copy_from},
    }
    if args.description is not None:
        body["description"] = args.description
    if args.tag:
        body["tags"] = args.tag
    answer = backend.request("POST", "/api/profiles", body=body)
    row = [answer["inferenceProfileArn"], answer["status"]]
    print_object(answer, args.format, Table(["inferenceProfileArn", "status"], [row]))
    return 0


def _list(backend: Any, args: argparse.Namespace) -> int:
    summaries: list[dict[str, Any]] = []
    token = None
    while True:
        page = backend.request(
            "GET", "/api/profiles", {"typeEquals": args.type, "nextToken": token}
        )
        summaries += page["inferenceProfileSummaries"]
        token = page.get("nextToken")
        if not token:
            break
    rows = [
        [
            p["inferenceProfileId"],
            p["inferenceProfileName"],
            p["type"],
            p["status"],
            len(p.get("models", [])),
            p["inferenceProfileArn"],
        ]
        for p in summaries
    ]
    print_list(summaries, Table(_PROFILE_HEADERS, rows), args.format)
    return 0


def _show(backend: Any, args: argparse.Namespace) -> int:
    answer = backend.request("GET", _profile_path(args.identifier, "/metrics"), time_range(args))
    shown = {
        **answer["profile"],
        "tags": {t["key"]: t["value"] for t in answer["tags"]},
        "timePeriod": answer["timePeriod"],
        "metrics": answer["metrics"],
    }
    print_object(answer, args.format, fields_table(shown))
    return 0


def _delete(backend: Any, args: argparse.Namespace) -> int:
    backend.request("DELETE", _profile_path(args.identifier))
    deleted = {"deleted": args.identifier}
    print_object(deleted, args.format, text=f"deleted inference profile {args.identifier}")
    return 0


def _tags_table(answer: dict[str, Any]) -> Table:
    return Table(["key", "value"], [[t["key"], t["value"]] for t in answer["tags"]])


def _tag(backend: Any, args: argparse.Namespace) -> int:
    answer = backend.request(
        "POST", _profile_path(args.identifier, "/tags"), body={"tags": args.tags}
    )
    print_object(answer, args.format, _tags_table(answer))
    return 0


def _untag(backend: Any, args: argparse.Namespace) -> int:
    path = _profile_path(args.identifier, "/tags")
    answer = backend.request("DELETE", path, {"tagKeys": args.keys})
    print_object(answer, args.format, _tags_table(answer))
    return 0
