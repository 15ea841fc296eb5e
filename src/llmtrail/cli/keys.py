"""``llmtrail keys``: create, list and revoke llmtrail keys (``/api/keys``).

With no server running, the command opens the data directory itself: that is how the first
admin key of a server that will listen beyond loopback is made. While a server runs and
needs keys, the command sends ``$LLMTRAIL_KEY`` (an admin key) like every other command.
"""

from __future__ import annotations

import argparse
from typing import Any

from llmtrail.cli.arguments import add_common_options, path_segment
from llmtrail.cli.output import Table, print_list, print_object
from llmtrail.cli.usage import add_command

_HEADERS = ["id", "role", "workspace", "name", "bodies", "models", "rpm", "tpm", "expires",
            "created", "revoked"]  # fmt: skip


def register(sub: Any) -> None:
    keys = add_command(
        sub,
        "keys",
        "API keys with a role and a workspace: create, list, revoke",
        """Keys say who may do what: admin (everything), reader (read data; bodies only with
        --bodies), ingester (ingest and OTLP), gateway (call models, within --models, --rpm
        and --tpm). A key's workspace is where everything it writes goes and the only one it
        reads. A key is shown once, when it is created; llmtrail keeps only a keyed hash.
        Bound to loopback with no keys the server runs open; once a key exists, every route
        but /healthz and /readyz needs one.""",
        [
            "llmtrail keys create --role admin",
            "llmtrail keys create --role gateway --workspace acme --models 'gpt-*' --rpm 600",
            "llmtrail keys create --role gateway --aws",
            "llmtrail keys list",
            "llmtrail keys revoke 3f9a0c1b2d4e",
        ],
    )
    commands = keys.add_subparsers(dest="keys_command", required=True, metavar="COMMAND")

    create = add_command(
        commands,
        "create",
        "create a key and print it (once)",
        """Create a key. The key is printed once; store it where its user keeps secrets.""",
        ["llmtrail keys create --role reader --bodies --expires 90d"],
    )
    add_common_options(create)
    create.add_argument(
        "--role",
        required=True,
        choices=["admin", "reader", "ingester", "gateway"],
        help="what the key may do (see above)",
    )
    create.add_argument("--workspace", help="the key's workspace (default: the caller's)")
    create.add_argument("--name", default="", help="what the key is for")
    create.add_argument("--bodies", action="store_true", help="readers: may read bodies")
    create.add_argument(
        "--models",
        nargs="+",
        default=[],
        metavar="PATTERN",
        help="gateway keys: models it may call (shell patterns such as gpt-*)",
    )
    create.add_argument("--rpm", type=int, help="requests per minute (gateway keys)")
    create.add_argument("--tpm", type=int, help="tokens per minute (gateway keys)")
    create.add_argument("--expires", help="an RFC 3339 time or a duration such as 90d")
    create.add_argument(
        "--aws",
        action="store_true",
        help="also issue an AWS-style access key pair (SigV4 on Bedrock routes)",
    )
    create.set_defaults(handler=_create)

    listing = add_command(commands, "list", "every key (without secrets)",
                          "List the keys: id, role, workspace, limits, expiry, revocation.",
                          ["llmtrail keys list --format json"])  # fmt: skip
    add_common_options(listing)
    listing.set_defaults(handler=_list)

    revoke = add_command(commands, "revoke", "revoke a key by id",
                         "Revoke key ID: every server stops taking it within seconds.",
                         ["llmtrail keys revoke 3f9a0c1b2d4e"])  # fmt: skip
    add_common_options(revoke)
    revoke.add_argument("key_id", metavar="ID", help="the key's id (llmtrail keys list)")
    revoke.set_defaults(handler=_revoke)


def _create(backend: Any, args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"role": args.role, "name": args.name}
    optional = {"workspace": args.workspace, "rpm": args.rpm, "tpm": args.tpm,
                "expires": args.expires}  # fmt: skip
    body.update({k: v for k, v in optional.items() if v is not None})
    if args.bodies:
        body["bodies"] = True
    if args.models:
        body["models"] = args.models
    if args.aws:
        body["aws"] = True
    answer = backend.request("POST", "/api/keys", body=body)
    lines = [
        f"created {answer['role']} key {answer['id']} in workspace {answer['workspace']}",
        f"key: {answer['key']}",
    ]
    if answer.get("awsAccessKeyId"):
        lines += [
            f"aws_access_key_id: {answer['awsAccessKeyId']}",
            f"aws_secret_access_key: {answer['awsSecretAccessKey']}",
        ]
    lines.append("(shown once: llmtrail keeps only a keyed hash of it)")
    print_object(answer, args.format, text="\n".join(lines))
    return 0


def _list(backend: Any, args: argparse.Namespace) -> int:
    items = backend.request("GET", "/api/keys")["keys"]
    rows = [[_cell(k.get(h)) for h in _HEADERS] for k in items]
    print_list(items, Table(_HEADERS, rows), args.format)
    return 0


def _revoke(backend: Any, args: argparse.Namespace) -> int:
    answer = backend.request("DELETE", f"/api/keys/{path_segment(args.key_id)}")
    print_object(answer, args.format, text=f"revoked key {answer['id']}")
    return 0


def _cell(value: Any) -> Any:
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return value
