"""``llmtrail logs``, ``show`` and ``ingest``: thin commands over ``/api/records``."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from llmtrail.cli.arguments import add_common_options, add_since
from llmtrail.cli.output import Table, print_list, print_object, stream_list
from llmtrail.cli.usage import UsageError, add_command
from llmtrail.errors import LlmtrailError

LOG_COLUMNS = (
    ("timestamp", ("timestamp",)),
    ("requestId", ("requestId",)),
    ("operation", ("operation",)),
    ("modelId", ("modelId",)),
    ("status", ("status",)),
    ("in", ("input", "inputTokenCount")),
    ("out", ("output", "outputTokenCount")),
    ("ms", ("latencyMs",)),
    ("provider", ("provider",)),
)
_MAX_REQUEST_BYTES = 16 * 2**20  # well under the server's default max_ingest_bytes
_MAX_GUNZIPPED_BYTES = 2 * 2**30  # a gzip file that expands further is refused, not read


def register(sub: Any) -> None:
    logs = add_command(
        sub,
        "logs",
        "list invocation records, newest first",
        """List the recorded model calls, newest first, filtered by time, model, operation,
        status, provider, request metadata or a CloudWatch filter pattern.

        --format json prints one JSON array of whole records, --format ndjson one record a
        line. With --follow the command keeps printing records as they arrive, until
        Ctrl-C; JSON then streams one record a line (with --format json as with ndjson),
        since an array that never ends cannot be read as one document.""",
        [
            "llmtrail logs --since 1h",
            "llmtrail logs --model gpt-4o-mini --status ERROR --limit 20",
            "llmtrail logs --metadata tenant_id=acme --format json",
            "llmtrail logs --filter-pattern '{ $.input.inputTokenCount > 1000 }'",
            "llmtrail logs --follow --format ndjson",
        ],
    )
    add_common_options(logs)
    add_since(logs)
    logs.add_argument("--model", help="only this model id")
    logs.add_argument("--operation", help="only this operation, e.g. Converse, ChatCompletions")
    logs.add_argument("--status", choices=("OK", "ERROR", "CANCELLED"), help="only this status")
    logs.add_argument("--provider", help="only this provider, e.g. openai, bedrock, sim")
    logs.add_argument(
        "--metadata",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="only records whose request metadata has KEY=VALUE (repeatable)",
    )
    logs.add_argument(
        "--limit", type=int, metavar="N", default=50, help="at most this many (default 50)"
    )
    logs.add_argument(
        "--follow",
        "-f",
        action="store_true",
        help="keep printing new records as they arrive (JSON: one record a line)",
    )
    logs.add_argument(
        "--filter-pattern",
        metavar="PATTERN",
        help="a CloudWatch JSON filter pattern, e.g. '{ $.input.inputTokenCount > 1000 }'",
    )
    logs.set_defaults(handler=_logs)

    show = add_command(
        sub,
        "show",
        "print one record (JSON by default)",
        """Print one whole record, found by its request id: indented JSON by default,
        one line of JSON with --format ndjson, or one field a row with --format table or
        csv.""",
        ["llmtrail show abc123-def456", "llmtrail show abc123-def456 --format table"],
    )
    add_common_options(show, default_format="json")
    show.add_argument("request_id", metavar="REQUEST_ID", help="the record's requestId")
    show.set_defaults(handler=_show)

    ingest = add_command(
        sub,
        "ingest",
        "import records from JSON, NDJSON or .json.gz",
        """Import records from a file: a JSON array, one JSON object, NDJSON, or any of them
        gzipped (Bedrock invocation-log files import unchanged). Records already stored
        are counted as duplicates. Prints how many were stored, duplicate or rejected, with
        the reason for each rejected record (JSON by default); exits 1 if any was
        rejected.""",
        [
            "llmtrail ingest bedrock-logs.json.gz",
            "llmtrail ingest - --batch 1000 < records.ndjson",
        ],
    )
    add_common_options(ingest, default_format="json")
    ingest.add_argument("file", metavar="FILE", help="a file, or - for standard input")
    ingest.add_argument(
        "--batch", type=int, default=5000, help="records per request (default 5000)"
    )
    ingest.set_defaults(handler=_ingest)


def log_table(records: Sequence[dict[str, Any]]) -> Table:
    rows = [[_get(r, path) for _, path in LOG_COLUMNS] for r in records]
    return Table([name for name, _ in LOG_COLUMNS], rows)


def _get(doc: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        if not isinstance(doc, dict):
            return None
        doc = doc.get(part)
    return doc


def _logs(backend: Any, args: argparse.Namespace) -> int:
    from llmtrail.cli.client import iter_pages
    from llmtrail.record import format_timestamp

    if args.follow and args.filter_pattern:
        raise UsageError("--follow and --filter-pattern cannot be combined")
    params = {
        "start": format_timestamp(args.since) if args.since else None,
        "model": args.model,
        "operation": args.operation,
        "status": args.status,
        "provider": args.provider,
        "filterPattern": args.filter_pattern,
    }
    started = datetime.now(UTC)
    records = list(iter_pages(backend, params, args.metadata, args.limit))
    if not args.follow:
        print_list(records, log_table(records), args.format)
        return 0
    stream_list(_follow(backend, params, args.metadata, records, started), log_table, args.format)
    return 0


def _follow(
    backend: Any,
    params: dict[str, Any],
    metadata: list[str],
    first: list[dict[str, Any]],
    started: datetime,
) -> Iterator[list[dict[str, Any]]]:
    """The first page, then each batch of records ingested since, forever."""
    from llmtrail.record import format_timestamp

    yield first
    shown = {r["recordId"] for r in first}  # ingested after `started` but already printed
    cursor = None
    while True:
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
            metadata,
        )
        fresh = [r for r in page["records"] if r["recordId"] not in shown]
        if fresh:
            yield fresh
        cursor = page.get("nextCursor") or cursor
        if len(page["records"]) < 1000:
            time.sleep(1.0)


def _show(backend: Any, args: argparse.Namespace) -> int:
    print_object(backend.get(args.request_id), args.format)
    return 0


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
    print_object({**totals, "rejected_records": rejected[:100]}, args.format)
    return 1 if totals["rejected"] else 0


def read_records(raw: bytes) -> list[bytes]:
    """One JSON text per record from a JSON array, one object, NDJSON, or any of them gzipped
    (every member of a multi-member file, as ``cat a.gz b.gz`` makes).
    A line that is not JSON is still sent, so the server rejects it by index with a reason."""
    import orjson

    from llmtrail.gunzip import GZIP_MAGIC, gunzip_limited

    if raw[:2] == GZIP_MAGIC:
        raw = gunzip_limited(raw, _MAX_GUNZIPPED_BYTES, field="file")
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
