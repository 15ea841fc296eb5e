"""``llmtrail import``: Bedrock invocation logs in, from a directory or an S3 prefix.

Reads Bedrock's layout (`bedrock_layout.parse_key`: batch objects only; ``data/`` bodies and
the ``permission-check`` marker are not records) and sends each object's lines through the
ingest API, ``POST /api/records``, as gzip'd NDJSON — the one way in, with its validation,
redaction, spool and durability.

Importing is resumable and idempotent, also months apart. Two things make it so:

* a **manifest** in the server's StateStore (``/api/imports``): per object its URI, ETag
  and how many of its lines were sent and acknowledged. An object done under the same ETag
  is skipped without being read; one cut short resumes at its offset. The manifest is
  written after the ingest API acknowledged a batch (after the spool's fsync), so a kill
  between the two resends at most that batch;
* a **request-id check** per batch (``/api/imports/known``): which of the batch's
  ``requestId`` s the store holds with a timestamp in the batch's time span. Those lines are
  not sent. The ingest path's own resend window is one hour; this check is what keeps a
  record out the second time when that window has long passed (the manifest lost, the object
  rewritten, the same records under another prefix).

A record whose ``inputBodyS3Path`` / ``outputBodyS3Path`` lies under the imported root (an
export's or Bedrock's own ``data/`` objects) has that body read back in before it is sent.
"""

from __future__ import annotations

import argparse
import gzip
import sys
from dataclasses import dataclass
from typing import Any

import orjson

from llmtrail.capture.bedrock_layout import decode_batch, parse_key, request_ids, time_window
from llmtrail.capture.log_locations import Listed, Location, open_location
from llmtrail.cli.arguments import add_common_options, add_url_option
from llmtrail.cli.output import print_object
from llmtrail.cli.records import batches
from llmtrail.cli.usage import UsageError, add_command
from llmtrail.errors import LlmtrailError
from llmtrail.record import format_timestamp

_MAX_REQUEST_BYTES = 16 * 2**20


def register(sub: Any) -> None:
    command = add_command(
        sub,
        "import",
        "import Bedrock invocation logs from a directory or S3",
        """Import the invocation logs Bedrock delivered to S3 (or llmtrail export wrote):
        every AWSLogs/ACCOUNT/BedrockModelInvocationLogs/REGION/YYYY/MM/DD/HH/*.json.gz
        object under the directory or s3://bucket/prefix, through the ingest API.

        Safe to repeat and to interrupt: the server keeps a manifest of the objects
        imported (URI, ETag, lines done), so a second run skips what is done and resumes
        what was cut short, and each batch's requestIds are checked against the records
        already stored for that time, so nothing is stored twice even months later. S3
        uses boto3's credential chain; --endpoint-url points it at an S3-compatible store.
        Prints the totals (JSON); exits 1 if any record was rejected.""",
        [
            "llmtrail import ./bedrock-logs",
            "llmtrail import s3://my-bucket/llm-logs/AWSLogs/123456789012/",
            "llmtrail import s3://logs --endpoint-url http://127.0.0.1:9000 --max-objects 10",
        ],
    )
    add_common_options(command, data=False)
    add_url_option(command)
    command.add_argument(
        "source", metavar="DIR|s3://BUCKET/PREFIX", help="the directory or S3 prefix to read"
    )
    command.add_argument("--endpoint-url", metavar="URL", help="an S3-compatible endpoint")
    command.add_argument(
        "--batch", type=int, default=5000, help="records per ingest request (default 5000)"
    )
    command.add_argument(
        "--max-objects",
        type=int,
        metavar="N",
        help="import at most N objects this run, then stop (run again to go on)",
    )
    command.set_defaults(handler=_import)


def _import(backend: Any, args: argparse.Namespace) -> int:
    from rich.progress import Progress

    if args.batch < 1 or (args.max_objects is not None and args.max_objects < 1):
        raise UsageError("--batch and --max-objects must be 1 or more")
    location = open_location(args.source, args.endpoint_url)
    importer = Importer(backend, location, args.batch)
    todo = [o for o in location.list() if parse_key(o.key) is not None]
    with Progress(transient=True, disable=not sys.stderr.isatty()) as progress:
        task = progress.add_task("importing", total=sum(o.size for o in todo))
        for listed in todo:
            if args.max_objects is not None and importer.totals["objects"] >= args.max_objects:
                importer.totals["stoppedEarly"] = True
                break
            importer.one(listed)
            progress.advance(task, listed.size)
        importer.finish()
    print_object(
        {"source": location.uri, **importer.totals, "rejects": importer.rejects[:100]}, "json"
    )
    return 1 if importer.totals["rejected"] else 0


@dataclass
class _Part:
    """Lines ``[start, end)`` of one object, waiting in the next ingest request."""

    uri: str
    etag: str
    lines: list[bytes]  # the whole object's
    start: int
    end: int


class Importer:
    """Imports objects in order, keeping the manifest as it goes. Small objects share a
    request (Bedrock writes many of a few hundred records): up to ``batch`` records and
    about 16 MB go in one ingest call, and the manifest notes of all the objects it carried
    go in one call after the server acknowledged it, so each object's note still follows
    the storing of its lines."""

    def __init__(self, backend: Any, location: Location, batch: int) -> None:
        self.backend = backend
        self.location = location
        self.batch = batch
        source = location.object_uri("x")[:-1]
        self.root = source  # the URI every key of the location starts with
        self.manifest: dict[str, Any] = backend.request("GET", "/api/imports", {"source": source})[
            "objects"
        ]
        self.totals: dict[str, Any] = {
            "objects": 0,
            "objectsAlreadyDone": 0,
            "stored": 0,
            "duplicate": 0,
            "alreadyStored": 0,
            "rejected": 0,
        }
        self.rejects: list[dict[str, Any]] = []
        self._parts: list[_Part] = []  # what the next request carries
        self._records = self._bytes = 0
        self._stored: dict[str, int] = {}  # per object URI: stored in this run

    def one(self, listed: Listed) -> None:
        """Read an object and queue its lines not yet imported (sending full requests)."""
        uri = self.location.object_uri(listed.key)
        entry = self.manifest.get(uri)
        same = isinstance(entry, dict) and entry.get("etag") == listed.etag
        if same and entry and entry.get("done"):
            self.totals["objectsAlreadyDone"] += 1
            return
        offset = int(entry.get("offset") or 0) if same and entry else 0
        lines = decode_batch(self.location.get(listed.key))
        self.totals["objects"] += 1
        if offset >= len(lines):  # an empty object, or one whose last note was lost
            note = {"uri": uri, "etag": listed.etag, "offset": len(lines), "done": True}
            self.backend.request("PUT", "/api/imports", body=note)
            return
        for start, chunk in batches(lines[offset:], self.batch, _MAX_REQUEST_BYTES):
            size = sum(len(line) + 1 for line in chunk)
            if self._parts and (
                self._records + len(chunk) > self.batch or self._bytes + size > _MAX_REQUEST_BYTES
            ):
                self.finish()
            begin = offset + start
            self._parts.append(_Part(uri, listed.etag, lines, begin, begin + len(chunk)))
            self._records += len(chunk)
            self._bytes += size

    def finish(self) -> None:
        """Send what is queued, then note how far each object it carried got."""
        parts, self._parts = self._parts, []
        self._records = self._bytes = 0
        if not parts:
            return
        self._send(parts)
        notes = []
        for part in parts:
            done = part.end == len(part.lines)
            notes.append(
                {
                    "uri": part.uri,
                    "etag": part.etag,
                    "offset": part.end,
                    "done": done,
                    "stored": self._stored.get(part.uri, 0),
                }
            )
        self.backend.request("PUT", "/api/imports", body={"objects": notes})

    def _inlined(self, line: bytes) -> bytes:
        """The record with each body whose ``…BodyS3Path`` lies under the imported root read
        back in from its ``data/`` object (the server offloads it again if it is large)."""
        if b"BodyS3Path" not in line:
            return line
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError:
            return line
        changed = False
        for part in ("input", "output"):
            section = doc.get(part) if isinstance(doc, dict) else None
            if not isinstance(section, dict):
                continue
            path = section.get(f"{part}BodyS3Path")
            if not isinstance(path, str) or not path.startswith(self.root):
                continue
            try:
                body = orjson.loads(gzip.decompress(self.location.get(path[len(self.root) :])))
            except (LlmtrailError, OSError, orjson.JSONDecodeError):
                continue  # sent as it is: the record keeps its path
            doc[part] = {
                (f"{part}BodyJson" if k == f"{part}BodyS3Path" else k): (
                    body if k == f"{part}BodyS3Path" else v
                )
                for k, v in section.items()
            }
            changed = True
        return orjson.dumps(doc) if changed else line

    def _known(self, chunk: list[bytes], ids: list[str | None]) -> set[str]:
        """Which of ``ids`` the store holds with a timestamp in ``chunk``'s time span."""
        window = time_window(chunk)
        if window is None or not any(ids):
            return set()
        answer = self.backend.request(
            "POST",
            "/api/imports/known",
            body={
                "requestIds": sorted({i for i in ids if i}),
                "start": format_timestamp(window[0]),
                "end": format_timestamp(window[1]),
            },
        )
        return set(answer["known"])

    def _send(self, parts: list[_Part]) -> None:
        """Send the lines of ``parts`` the store does not hold yet, in one request (the
        request-id check is per object: one object spans an hour, several may not)."""
        send: list[tuple[_Part, int, bytes]] = []  # (part, line number in its object, line)
        for part in parts:
            chunk = part.lines[part.start : part.end]
            ids = request_ids(chunk)
            known = self._known(chunk, ids)
            kept = [
                (part, part.start + n, self._inlined(line))
                for n, line in enumerate(chunk)
                if ids[n] is None or ids[n] not in known
            ]
            self.totals["alreadyStored"] += len(chunk) - len(kept)
            send += kept
        if not send:
            return
        result = self.backend.ingest(gzip.compress(b"\n".join(line for _, _, line in send)))
        for key in ("stored", "duplicate", "rejected"):
            self.totals[key] += result[key]
        for item in result["results"]:
            part, line, _ = send[item["index"]]
            if item["status"] == "stored":
                self._stored[part.uri] = self._stored.get(part.uri, 0) + 1
            elif item["status"] == "rejected":
                self.rejects.append({**item, "object": part.uri, "line": line + 1})
