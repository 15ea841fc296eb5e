"""The ``llmtrail`` command: thin commands, each parsing arguments and calling the library.

Exit codes: 0 success, 1 failure, 2 usage. Data commands take ``--format table|json|csv``
(``--json`` for short) and ``--url``; with no server running they open the data directory.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from llmtrail.errors import ConfigError, LlmtrailError

_DURATION = re.compile(r"^(\d+)\s*(s|m|h|d|w)$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(text: str) -> datetime:
    match = _DURATION.match(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"expected a duration such as 15m, 1h or 7d, got {text!r}")
    try:
        return datetime.now(UTC) - timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])
    except OverflowError:
        raise argparse.ArgumentTypeError(f"{text!r} reaches too far back") from None


def _common(p: argparse.ArgumentParser, data: bool = True) -> None:
    p.add_argument("--config", type=Path, help="TOML configuration file")
    p.add_argument("--data-dir", type=Path, help="data directory (default ./llmtrail-data)")
    if data:
        p.add_argument("--url", help="server URL (default: the server that owns the data dir)")
        p.add_argument("--format", choices=("table", "json", "csv"), default="table")
        p.add_argument("--json", dest="format", action="store_const", const="json")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llmtrail", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the gateway, ingest and query server")
    _common(serve, data=False)
    serve.add_argument("--host", help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 7788)")
    serve.add_argument(
        "--route",
        action="append",
        default=[],
        metavar="PATTERN=PROVIDER",
        help="route model ids matching PATTERN to PROVIDER (repeatable)",
    )
    serve.add_argument(
        "--no-record",
        dest="record_invocations",
        action="store_const",
        const=False,
        help="forward calls without recording them (for measuring the gateway alone)",
    )

    logs = sub.add_parser("logs", help="list invocation records, newest first")
    _common(logs)
    logs.add_argument("--since", type=parse_since, help="e.g. 15m, 1h, 7d")
    logs.add_argument("--model")
    logs.add_argument("--operation")
    logs.add_argument("--status", choices=("OK", "ERROR", "CANCELLED"))
    logs.add_argument("--provider")
    logs.add_argument("--metadata", action="append", default=[], metavar="KEY=VALUE")
    logs.add_argument("--limit", type=int, default=50)
    logs.add_argument("--follow", "-f", action="store_true", help="keep printing new records")
    logs.add_argument(
        "--filter-pattern",
        metavar="PATTERN",
        help="""a CloudWatch JSON filter pattern, e.g. '{ $.input.inputTokenCount > 1000 }'""",
    )

    show = sub.add_parser("show", help="print one record (JSON by default)")
    _common(show)
    show.set_defaults(format="json")
    show.add_argument("request_id")

    ingest = sub.add_parser("ingest", help="import records from JSON, NDJSON or .json.gz")
    _common(ingest)
    ingest.add_argument("file", help="a file, or - for standard input")
    ingest.add_argument("--batch", type=int, default=5000, help="records per request")

    from llmtrail.cli import cost, query, traces

    traces.register(sub, _common, parse_since)
    cost.register(sub, _common, parse_since)
    query.register(sub, _common, parse_since)

    config = sub.add_parser("config", help="configuration")
    config_sub = config.add_subparsers(dest="config_command", required=True)
    show_config = config_sub.add_parser("show", help="print the effective configuration")
    _common(show_config, data=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(_run(args) or 0)
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
    }
    return load_settings(args.config, overrides=overrides, routes=getattr(args, "route", []))


def _run(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if args.command == "serve":
        from llmtrail.server.serve import serve

        serve(settings)
        return 0
    if args.command == "config":
        from llmtrail.config import masked

        print(json.dumps(masked(settings), indent=2, default=str))
        return 0
    from llmtrail.cli.client import open_backend

    backend = open_backend(settings, args.url)
    try:
        if getattr(args, "handler", None) is not None:
            return int(args.handler(backend, args))
        if args.command == "logs":
            return _logs(backend, args)
        if args.command == "show":
            from llmtrail.cli.output import print_record

            print_record(backend.get(args.request_id), args.format)
            return 0
        return _ingest(backend, args)
    finally:
        backend.close()


def _logs(backend: Any, args: argparse.Namespace) -> int:
    from llmtrail.cli.client import iter_pages
    from llmtrail.cli.output import print_records
    from llmtrail.record import format_timestamp

    params = {
        "start": format_timestamp(args.since) if args.since else None,
        "model": args.model,
        "operation": args.operation,
        "status": args.status,
        "provider": args.provider,
        "filterPattern": args.filter_pattern,
    }
    if args.follow and args.filter_pattern:
        raise SystemExit("llmtrail logs: --follow and --filter-pattern cannot be combined")
    started = datetime.now(UTC)
    records = list(iter_pages(backend, params, args.metadata, args.limit))
    print_records(records, args.format)
    if not args.follow:
        return 0
    shown = {r["recordId"] for r in records}  # ingested after `started` but already printed
    cursor = None
    while True:
        sys.stdout.flush()
        page = backend.find(
            {
                **params,
                "order": "ingested",
                # a batch is stamped just before its commit: look back a little, and skip
                # what the first page already showed
                "ingested_after": format_timestamp(started - timedelta(seconds=5)),
                "cursor": cursor,
                "limit": 1000,
            },
            args.metadata,
        )
        fresh = [r for r in page["records"] if r["recordId"] not in shown]
        if fresh:
            print_records(fresh, args.format)
        cursor = page.get("nextCursor") or cursor
        if len(page["records"]) < 1000:
            time.sleep(1.0)


def _ingest(backend: Any, args: argparse.Namespace) -> int:
    from rich.progress import Progress

    try:
        raw = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
    except OSError as exc:
        raise LlmtrailError(f"cannot read {args.file}: {exc.strerror or exc}") from None
    lines = read_records(raw)
    totals = {"stored": 0, "duplicate": 0, "rejected": 0}
    rejected: list[dict[str, Any]] = []
    with Progress(transient=True, disable=not sys.stderr.isatty()) as progress:
        task = progress.add_task("ingesting", total=len(lines))
        for start, chunk in batches(lines, args.batch, _MAX_REQUEST_BYTES):
            result = backend.ingest(b"\n".join(chunk))
            for key in totals:
                totals[key] += result[key]
            rejected += [
                {**r, "index": r["index"] + start}
                for r in result["results"]
                if r["status"] == "rejected"
            ]
            progress.advance(task, len(chunk))
    print(json.dumps({**totals, "rejected_records": rejected[:100]}))
    return 1 if totals["rejected"] else 0


_MAX_REQUEST_BYTES = 16 * 2**20  # well under the server's default max_ingest_bytes


def read_records(raw: bytes) -> list[bytes]:
    """One JSON text per record from a JSON array, one object, NDJSON, or any of them gzipped.
    A line that is not JSON is still sent, so the server rejects it by index with a reason."""
    import gzip

    import orjson

    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise LlmtrailError(f"not a readable gzip file: {exc}") from None
    text = raw.strip()
    if text[:1] in (b"[", b"{"):
        try:
            whole = orjson.loads(text)
        except orjson.JSONDecodeError:
            whole = None
            if text[:1] == b"[":
                raise LlmtrailError("the file starts with [ but is not a JSON array") from None
        if whole is not None:
            docs = whole if isinstance(whole, list) else [whole]
            return [orjson.dumps(d) for d in docs]
    return [line for line in text.split(b"\n") if line.strip()]


def batches(lines: list[bytes], max_records: int, max_bytes: int) -> list[tuple[int, list[bytes]]]:
    """Split into requests of at most ``max_records`` records and about ``max_bytes`` bytes."""
    out: list[tuple[int, list[bytes]]] = []
    chunk: list[bytes] = []
    start, size = 0, 0
    for i, line in enumerate(lines):
        if chunk and (len(chunk) >= max_records or size + len(line) > max_bytes):
            out.append((start, chunk))
            chunk = []
            start, size = i, 0
        chunk.append(line)
        size += len(line) + 1
    if chunk:
        out.append((start, chunk))
    return out
