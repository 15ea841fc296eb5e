"""The ``llmtrail`` command: thin commands, each parsing arguments and calling the library.

Each command lives in the module of its subject (records, query, traces, prices, cost,
profiles, budgets) and registers itself with `usage.add_command`; what it prints goes through
`output`, which alone knows the formats. Exit codes: 0 success, 1 failure, 2 usage (argparse's
own errors, `usage.UsageError`, and a configuration that cannot be used).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from llmtrail.cli.arguments import add_common_options, parse_since
from llmtrail.cli.output import add_format_options, print_object
from llmtrail.cli.usage import UsageError, add_command, describe
from llmtrail.errors import ConfigError, LlmtrailError

__all__ = ["build_parser", "main", "parse_since"]

DESCRIPTION = """llmtrail records every call your applications make to a language model and
lets you list, query, trace and price those calls.

While a server runs (llmtrail serve), the other commands ask it over HTTP; with none running
they open the data directory themselves. Commands that print data take --format
table|json|ndjson|csv (--json for short). Exit codes: 0 success, 1 failure, 2 wrong usage or
configuration. Run llmtrail COMMAND --help for a command's options and examples."""

EXAMPLES = [
    "llmtrail serve --port 7788",
    "llmtrail logs --since 1h",
    "llmtrail query 'stats count(*) by modelId' --since 1d --format json",
    "llmtrail cost --by modelId --since 30d",
]


def build_parser() -> argparse.ArgumentParser:
    from llmtrail.cli import budgets, cost, prices, profiles, query, records, traces

    parser = argparse.ArgumentParser(prog="llmtrail")
    describe(parser, DESCRIPTION, EXAMPLES)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _register_serve(sub)
    records.register(sub)
    query.register(sub)
    traces.register(sub)
    prices.register(sub)
    cost.register(sub)
    profiles.register(sub)
    budgets.register(sub)
    from llmtrail.cli import demo

    demo.register(sub)
    from llmtrail.cli import dashboards

    dashboards.register(sub)
    from llmtrail.cli import alarms

    alarms.register(sub)
    from llmtrail.cli import metrics

    metrics.register(sub)
    from llmtrail.cli import keys

    keys.register(sub)
    from llmtrail.cli import logging_config

    logging_config.register(sub)
    from llmtrail.cli import audit

    audit.register(sub)
    from llmtrail.cli import redaction

    redaction.register(sub)
    from llmtrail.cli import retention

    retention.register(sub)
    from llmtrail.cli import export, imports

    export.register(sub)
    imports.register(sub)
    _register_config(sub)
    return parser


def _register_serve(sub: Any) -> None:
    serve = add_command(
        sub,
        "serve",
        "run the gateway, ingest and query server",
        """Run the server: the model gateway (OpenAI, Anthropic and Bedrock routes), the
        ingest and OTLP endpoints, the query and management API, and the web UI. It writes
        server.json in its data directory, so other llmtrail commands find it.""",
        [
            "llmtrail serve",
            "llmtrail serve --host 0.0.0.0 --port 8080 --data-dir /var/lib/llmtrail",
            "llmtrail serve --route 'gpt-*=openai' --route 'claude-*=anthropic'",
        ],
    )
    add_common_options(serve, data=False)
    serve.add_argument("--host", help="the address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="the port to listen on (default 7788)")
    serve.add_argument(
        "--route",
        action="append",
        default=[],
        metavar="PATTERN=PROVIDER",
        help="send model ids matching PATTERN to PROVIDER (repeatable)",
    )
    serve.add_argument(
        "--no-record",
        dest="record_invocations",
        action="store_const",
        const=False,
        help="forward calls without recording them (to measure the gateway alone)",
    )
    serve.add_argument(
        "--store",
        metavar="URL",
        help="where records live: duckdb:///PATH (default: in the data directory), "
        "clickhouse://USER@HOST:8123/DB or chdb:///PATH",
    )
    serve.set_defaults(local_handler=_serve)


def _register_config(sub: Any) -> None:
    config = add_command(
        sub,
        "config",
        "the configuration",
        """Inspect the configuration llmtrail runs with: defaults, then the TOML file, then
        LLMTRAIL_* environment variables, then flags.""",
        ["llmtrail config show --config llmtrail.toml"],
    )
    commands = config.add_subparsers(dest="config_command", required=True, metavar="COMMAND")
    show = add_command(
        commands,
        "show",
        "print the effective configuration",
        """Print the configuration in effect, secrets masked: a provider's key shows only
        which environment variable holds it and whether it is set. JSON by default;
        --format table or csv lists one setting a row.""",
        ["llmtrail config show", "llmtrail config show --config llmtrail.toml --format table"],
    )
    add_common_options(show, data=False)
    add_format_options(show, default="json")
    show.set_defaults(local_handler=_config_show)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(_run(args) or 0)
    except UsageError as exc:
        command: argparse.ArgumentParser = args.command_parser
        command.error(str(exc))  # prints the command's usage and exits 2
    except ConfigError as exc:
        print(f"llmtrail: configuration: {exc}", file=sys.stderr)
        return 2
    except LlmtrailError as exc:
        print(f"llmtrail: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _settings(args: argparse.Namespace) -> Any:
    from llmtrail.config import load_settings

    overrides = {
        "data_dir": getattr(args, "data_dir", None),
        "host": getattr(args, "host", None),
        "port": getattr(args, "port", None),
        "record_invocations": getattr(args, "record_invocations", None),
        "store": getattr(args, "store", None),
    }
    return load_settings(args.config, overrides=overrides, routes=getattr(args, "route", []))


def _run(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if getattr(args, "local_handler", None) is not None:
        return int(args.local_handler(settings, args))
    from llmtrail.cli.client import open_backend

    backend = open_backend(settings, args.url)
    try:
        return int(args.handler(backend, args))
    finally:
        backend.close()


def _serve(settings: Any, args: argparse.Namespace) -> int:
    from llmtrail.server.serve import serve

    serve(settings)
    return 0


def _config_show(settings: Any, args: argparse.Namespace) -> int:
    from llmtrail.config import masked

    print_object(masked(settings), args.format)
    return 0
