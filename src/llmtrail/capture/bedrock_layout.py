"""Bedrock's S3 layout for invocation logs, as pure functions: object names and batches.

Bedrock delivers ``<prefix>/AWSLogs/<account>/BedrockModelInvocationLogs/<region>/YYYY/MM/DD/
HH/<YYYYMMDD>T<HHMMSS>Z_<hex>.json.gz`` — a gzip'd batch of records, one JSON object a line —
and puts bodies it did not inline under the same hour's ``data/`` folder
(``data/<requestId>_input.json.gz``). Export writes that layout and import reads it, so both
ends share these functions; they never open a file or a connection, and never read the clock.

Names are deterministic: a batch is named after its first record's time and a digest of its
``requestId`` s, and gzip'd with a zero mtime, so exporting the same records twice writes the
same objects with the same bytes (an S3 ETag that does not change).
"""

from __future__ import annotations

import gzip
import hashlib
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from llmtrail.errors import ValidationError
from llmtrail.record import parse_timestamp

LOGS_FOLDER = "BedrockModelInvocationLogs"
DEFAULT_ACCOUNT = "000000000000"  # records of other providers carry no AWS account
DEFAULT_REGION = "us-east-1"
BATCH_RECORDS = 5000  # records in one batch object, at most
BATCH_BYTES = 8 * 2**20  # uncompressed bytes in one batch object, about
LARGE_BODY_BYTES = 100 * 1024  # Bedrock moves bodies over 100 KB to data/ objects

_KEY = re.compile(
    r"(?:^|/)AWSLogs/(?P<account>[^/]+)/" + LOGS_FOLDER + r"/(?P<region>[^/]+)/"
    r"(?P<y>\d{4})/(?P<m>\d{2})/(?P<d>\d{2})/(?P<h>\d{2})/(?P<name>[^/]+\.json\.gz)$"
)


@dataclass(frozen=True)
class HourFolder:
    """Where one hour of one account's and region's records go."""

    account: str
    region: str
    hour: datetime  # UTC, on the hour

    def key(self, prefix: str = "") -> str:
        """The folder's key under ``prefix``, ending in ``/``."""
        head = prefix.strip("/") + "/" if prefix.strip("/") else ""
        return f"{head}AWSLogs/{self.account}/{LOGS_FOLDER}/{self.region}/{self.hour:%Y/%m/%d/%H}/"


@dataclass(frozen=True)
class Batch:
    """One object of the layout: its key and its gzip'd bytes."""

    key: str
    data: bytes
    request_ids: tuple[str, ...]


def folder_of(
    doc: dict[str, object], account: str, region: str, when: datetime | None = None
) -> HourFolder:
    """The hour folder of a record (its own ``accountId`` and ``region`` when it has them);
    ``when`` is its timestamp, when the caller parsed it already."""
    if when is None:
        when = parse_timestamp(str(doc.get("timestamp")))
    hour = when.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    acct = doc.get("accountId")
    reg = doc.get("region")
    return HourFolder(
        acct if isinstance(acct, str) and _segment(acct) else account,
        reg if isinstance(reg, str) and _segment(reg) else region,
        hour,
    )


def _segment(text: str) -> bool:
    return bool(text) and "/" not in text and text not in (".", "..")


def batch_name(first: datetime, request_ids: Sequence[str]) -> str:
    """``20260606T070102Z_<16 hex>.json.gz``: the first record's time and a digest of the
    batch's request ids, as Bedrock names its objects (time, underscore, a unique part)."""
    digest = hashlib.sha256("\n".join(request_ids).encode()).hexdigest()[:16]
    return f"{first.astimezone(UTC):%Y%m%dT%H%M%SZ}_{digest}.json.gz"


def encode_batch(lines: Sequence[bytes]) -> bytes:
    """NDJSON, gzip'd with a zero mtime (the same lines give the same bytes)."""
    return gzip.compress(b"".join(line + b"\n" for line in lines), mtime=0)


def decode_batch(data: bytes) -> list[bytes]:
    """The record lines of a batch object (gzip'd or not), blank lines dropped."""
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return [line for line in data.split(b"\n") if line.strip()]


def batches(
    docs: Iterable[dict[str, object]],
    prefix: str = "",
    account: str = DEFAULT_ACCOUNT,
    region: str = DEFAULT_REGION,
    max_records: int = BATCH_RECORDS,
    max_bytes: int = BATCH_BYTES,
) -> Iterator[Batch]:
    """Objects for ``docs`` given **newest first** (as ``/api/records`` pages them): one
    hour folder's records at a time, oldest first inside an object, each object at most
    ``max_records`` records and about ``max_bytes`` bytes. An hour's objects are yielded once
    a record of an earlier hour arrives, so memory holds about one hour."""
    pending: dict[HourFolder, list[tuple[datetime, str, bytes]]] = {}
    for doc in docs:
        when = parse_timestamp(str(doc["timestamp"]))
        folder = folder_of(doc, account, region, when)
        for done in [f for f in pending if f.hour > folder.hour]:
            yield from _objects(done, pending.pop(done), prefix, max_records, max_bytes)
        pending.setdefault(folder, []).append((when, str(doc["requestId"]), orjson.dumps(doc)))
    for folder in sorted(pending, key=lambda f: (f.hour, f.account, f.region), reverse=True):
        yield from _objects(folder, pending[folder], prefix, max_records, max_bytes)


def _objects(
    folder: HourFolder,
    rows: list[tuple[datetime, str, bytes]],
    prefix: str,
    max_records: int,
    max_bytes: int,
) -> Iterator[Batch]:
    rows.sort(key=lambda row: (row[0], row[1]))
    chunk: list[tuple[datetime, str, bytes]] = []
    size = 0
    for row in rows:
        if chunk and (len(chunk) >= max_records or size + len(row[2]) > max_bytes):
            yield _batch(folder, chunk, prefix)
            chunk, size = [], 0
        chunk.append(row)
        size += len(row[2]) + 1
    if chunk:
        yield _batch(folder, chunk, prefix)


def _batch(folder: HourFolder, rows: list[tuple[datetime, str, bytes]], prefix: str) -> Batch:
    ids = tuple(row[1] for row in rows)
    name = batch_name(rows[0][0], ids)
    return Batch(folder.key(prefix) + name, encode_batch([row[2] for row in rows]), ids)


def parse_key(key: str) -> tuple[HourFolder, str] | None:
    """The hour folder and object name of a batch key; None for anything else (``data/``
    bodies, Bedrock's ``permission-check`` marker, other files)."""
    match = _KEY.search(key)
    if match is None:
        return None
    try:
        hour = datetime(
            int(match["y"]), int(match["m"]), int(match["d"]), int(match["h"]), tzinfo=UTC
        )
    except ValueError:
        return None
    return HourFolder(match["account"], match["region"], hour), match["name"]


def data_key(folder: HourFolder, request_id: str, part: str, prefix: str = "") -> str:
    """``…/HH/data/<requestId>_<input|output>.json.gz``, where Bedrock puts a large body."""
    if part not in ("input", "output"):
        raise ValidationError("part", f"must be input or output, got {part!r}")
    safe = re.sub(r"[^A-Za-z0-9._:-]", "_", request_id)
    return f"{folder.key(prefix)}data/{safe}_{part}.json.gz"


def time_window(lines: Sequence[bytes]) -> tuple[datetime, datetime] | None:
    """``[earliest, latest]`` of the records' timestamps (None when no line has one)."""
    stamps = []
    for line in lines:
        try:
            doc = orjson.loads(line)
            stamps.append(parse_timestamp(str(doc["timestamp"])))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValidationError):
            continue
    return (min(stamps), max(stamps)) if stamps else None


def request_ids(lines: Sequence[bytes]) -> list[str | None]:
    """Each line's ``requestId`` (None for a line that is not a record with one)."""
    out: list[str | None] = []
    for line in lines:
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError:
            out.append(None)
            continue
        rid = doc.get("requestId") if isinstance(doc, dict) else None
        out.append(rid if isinstance(rid, str) and rid else None)
    return out
