"""``llmtrail logging``: get, put and delete the workspace's model-invocation logging
configuration (``/api/logging-configuration``), in the body of Bedrock's
``PutModelInvocationLoggingConfiguration``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from llmtrail.cli.arguments import add_common_options, read_json_file
from llmtrail.cli.output import Table, print_object, write_json_file
from llmtrail.cli.usage import add_command

PATH = "/api/logging-configuration"
_FLAGS = ("text", "image", "embedding", "video", "audio")


def register(sub: Any) -> None:
    logging = add_command(
        sub,
        "logging",
        "the model-invocation logging configuration: get, put, delete",
        """What is delivered into records, in the body of Bedrock's
        PutModelInvocationLoggingConfiguration: {"loggingConfig": {...}} with
        textDataDeliveryEnabled, imageDataDeliveryEnabled, embeddingDataDeliveryEnabled,
        videoDataDeliveryEnabled, audioDataDeliveryEnabled, s3Config and cloudWatchConfig.
        With none set, everything is delivered; after delete, records keep their metadata,
        tokens, cost and errors but no bodies.""",
        [
            "llmtrail logging get",
            "llmtrail logging put logging.json",
            "llmtrail logging delete",
        ],
    )
    commands = logging.add_subparsers(dest="logging_command", required=True, metavar="COMMAND")

    get = add_command(
        commands,
        "get",
        "the configuration in effect",
        """Print the configuration in effect and its state: default (nothing set, everything
        delivered), configured, or off (deleted: no bodies). --output FILE writes the body,
        which put reads back.""",
        ["llmtrail logging get --format json", "llmtrail logging get --output logging.json"],
    )
    add_common_options(get)
    get.add_argument(
        "--output", "-o", type=Path, metavar="FILE", help="write the body to FILE as JSON"
    )
    get.set_defaults(handler=_get)

    put = add_command(
        commands,
        "put",
        "set the configuration from a JSON file",
        """Set the configuration from FILE (- for standard input): Bedrock's body
        {"loggingConfig": {...}}, as aws bedrock put-model-invocation-logging-configuration
        takes it, optionally with "allowNoLog": false to refuse callers' x-llmtrail-no-log
        opt-out. A flag left out is on. Problems are named by their path in the body.""",
        ["llmtrail logging put logging.json", "llmtrail logging put - < logging.json"],
    )
    add_common_options(put)
    put.add_argument("file", metavar="FILE", help="the body's JSON file, - for standard input")
    put.set_defaults(handler=_put)

    delete = add_command(
        commands,
        "delete",
        "turn delivery off",
        """Delete the configuration, as on Bedrock: delivery is off. Records are still
        written with their metadata, tokens, latency, cost and errors, but no request or
        response body. put turns delivery on again.""",
        ["llmtrail logging delete"],
    )
    add_common_options(delete)
    delete.set_defaults(handler=_delete)


def summary_table(answer: dict[str, Any]) -> Table:
    """The answer as SETTING / VALUE rows people read."""
    info = answer.get("llmtrail") or {}
    config = answer.get("loggingConfig") or {}
    rows: list[list[Any]] = [
        ["state", info.get("state")],
        ["bodies delivered", info.get("bodiesDelivered")],
        ["log group", info.get("logGroupName")],
    ]
    rows += [[f"{flag} delivery", config.get(f"{flag}DataDeliveryEnabled")] for flag in _FLAGS]
    for name, s3 in (
        ("s3Config", config.get("s3Config")),
        ("largeDataDeliveryS3Config", (config.get("cloudWatchConfig") or {}).get(
            "largeDataDeliveryS3Config"
        )),
    ):  # fmt: skip
        if s3:
            rows.append([name, f"{s3.get('bucketName')}/{s3.get('keyPrefix', '')}"])
    rows.append(["allow x-llmtrail-no-log", answer.get("allowNoLog")])
    return Table(["setting", "value"], rows)


def _get(backend: Any, args: argparse.Namespace) -> int:
    answer = backend.request("GET", PATH)
    if args.output is not None:
        size = write_json_file(args.output, answer)
        written = {"file": str(args.output), "size": size, "state": answer["llmtrail"]["state"]}
        print_object(written, args.format, text=f"{args.output}: logging configuration")
        return 0
    print_object(answer, args.format, summary_table(answer))
    return 0


def _put(backend: Any, args: argparse.Namespace) -> int:
    body = read_json_file(args.file)
    answer = backend.request("PUT", PATH, body=body)
    print_object(answer, args.format, summary_table(answer))
    return 0


def _delete(backend: Any, args: argparse.Namespace) -> int:
    answer = backend.request("DELETE", PATH)
    print_object(answer, args.format, summary_table(answer))
    return 0
