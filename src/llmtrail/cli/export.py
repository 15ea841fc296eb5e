"""``llmtrail export``: records out, in Bedrock's S3 layout or as Parquet for analysts.

``--format bedrock`` pages ``GET /api/bedrock/records`` (each record as Bedrock writes it:
llmtrail's derived keys left out, so an imported Bedrock log goes back out unchanged) and
writes ``AWSLogs/<account>/BedrockModelInvocationLogs/<region>/YYYY/MM/DD/HH/*.json.gz``
through `bedrock_layout`; ``--format parquet`` pages ``GET /api/records`` (the whole record,
llmtrail's additions included) into one Parquet file. A body the server offloaded goes to
the hour's ``data/`` folder, and the exported record points there (``GET /api/bedrock/body``).
Both write to a directory or an S3 prefix (`log_locations`), and work with a server or on the
data directory alone.
"""

from __future__ import annotations

import argparse
import io
import sys
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from llmtrail.capture.bedrock_layout import (
    DEFAULT_ACCOUNT,
    DEFAULT_REGION,
    batches,
    data_key,
    folder_of,
)
from llmtrail.capture.log_locations import Location, open_location
from llmtrail.cli.arguments import add_common_options, add_time_range, add_url_option, time_range
from llmtrail.cli.output import print_object
from llmtrail.cli.usage import add_command
from llmtrail.errors import NotFound
from llmtrail.record import parse_timestamp

PAGE = 5000  # records a page of /api/bedrock/records (the server's MAX_EXPORT_PAGE)
UPLOADS = 4  # objects written at once


def register(sub: Any) -> None:
    export = add_command(
        sub,
        "export",
        "write records to Bedrock's S3 layout or Parquet",
        """Write the records of a time range to a directory or an S3 prefix.

        --format bedrock (the default) writes them as Bedrock's model invocation logging
        delivers them: AWSLogs/ACCOUNT/BedrockModelInvocationLogs/REGION/YYYY/MM/DD/HH/
        objects of gzip'd JSON lines, records of every provider (a record without an AWS
        account or region goes under --account and --region). llmtrail import reads the
        same layout back. --format parquet writes one Parquet file of the whole records for
        analysts (pyarrow, pandas, DuckDB). S3 uses boto3's credential chain;
        --endpoint-url points it at an S3-compatible store. Prints what was written (JSON).""",
        [
            "llmtrail export --to ./bedrock-logs --since 7d",
            "llmtrail export --to s3://my-bucket/llm-logs --start 2026-11-01 --end 2026-12-01",
            "llmtrail export --format parquet --to ./analysis --since 30d",
        ],
    )
    add_common_options(export, data=False)
    add_url_option(export)
    add_time_range(export, default=None)
    export.add_argument(
        "--format",
        choices=("bedrock", "parquet"),
        default="bedrock",
        help="Bedrock's S3 layout (default) or one Parquet file",
    )
    export.add_argument(
        "--to",
        required=True,
        metavar="DIR|s3://BUCKET/PREFIX",
        help="the directory or S3 prefix to write under",
    )
    export.add_argument("--endpoint-url", metavar="URL", help="an S3-compatible endpoint")
    export.add_argument(
        "--account", default=DEFAULT_ACCOUNT, help="account folder for records without one"
    )
    export.add_argument(
        "--region", default=DEFAULT_REGION, help="region folder for records without one"
    )
    export.set_defaults(handler=_export)


def _export(backend: Any, args: argparse.Namespace) -> int:
    from rich.progress import Progress

    location = open_location(args.to, args.endpoint_url)
    params = time_range(args)
    with Progress(transient=True, disable=not sys.stderr.isatty()) as progress:
        task = progress.add_task("exporting", total=None)
        if args.format == "parquet":
            summary = export_parquet(backend, params, location)
        else:
            summary = export_bedrock(backend, params, location, args.account, args.region)
        progress.update(task, completed=summary["records"])
    print_object({"to": location.uri, **summary}, "json")
    return 0


def pages(
    backend: Any, path: str, params: dict[str, Any], size: int = PAGE
) -> Iterator[dict[str, Any]]:
    """Every record ``path`` lists for ``params``, newest first, parsed as they came
    (``size`` records a request: ``/api/records`` answers at most 1,000)."""
    cursor = None
    while True:
        raw = backend.request("GET", path, {**params, "limit": size, "cursor": cursor}, raw=True)
        page = orjson.loads(raw)
        yield from page["records"]
        cursor = page.get("nextCursor")
        if not cursor or not page["records"]:
            return


def export_bedrock(
    backend: Any, params: dict[str, Any], location: Location, account: str, region: str
) -> dict[str, Any]:
    """Write the records of ``params``' range in Bedrock's layout; what was written."""
    records = objects = 0
    bodies = [0]
    docs = pages(backend, "/api/bedrock/records", params)
    docs = with_data_objects(docs, backend, location, (account, region), bodies)
    with Uploads(location) as uploads:
        for batch in batches(docs, account=account, region=region):
            uploads.put(batch.key, batch.data)
            objects += 1
            records += len(batch.request_ids)
    return {"format": "bedrock", "records": records, "objects": objects, "bodies": bodies[0]}


class Uploads:
    """Writes objects to ``location`` from `UPLOADS` threads, so that an S3 PUT's round trip
    overlaps the reading and encoding of the next records; at most twice that many wait
    (memory stays a few objects). The first failure is raised to the caller, at the next
    `put` or at the end of the block."""

    def __init__(self, location: Location) -> None:
        self.location = location
        self.pool = ThreadPoolExecutor(UPLOADS, thread_name_prefix="llmtrail-export")
        self.pending: deque[Future[None]] = deque()

    def put(self, key: str, data: bytes) -> None:
        while self.pending and (len(self.pending) >= 2 * UPLOADS or self.pending[0].done()):
            self.pending.popleft().result()
        self.pending.append(self.pool.submit(self.location.put, key, data))

    def __enter__(self) -> Uploads:
        return self

    def __exit__(self, kind: object, *_: object) -> None:
        try:
            if kind is None:
                while self.pending:
                    self.pending.popleft().result()
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)


def with_data_objects(
    docs: Iterator[dict[str, Any]],
    backend: Any,
    location: Location,
    where: tuple[str, str],
    written: list[int],
) -> Iterator[dict[str, Any]]:
    """``docs``, each body the server offloaded copied to the hour's ``data/`` folder and
    the record's ``…BodyS3Path`` pointing there, as Bedrock delivers large bodies. A path
    the server cannot serve (a Bedrock log's own bucket, say) is left as it is."""
    for doc in docs:
        for part in ("input", "output"):
            section = doc.get(part)
            field = f"{part}BodyS3Path"
            if not isinstance(section, dict) or not isinstance(section.get(field), str):
                continue
            try:
                data = backend.request(
                    "GET",
                    "/api/bedrock/body",
                    {"requestId": doc["requestId"], "part": part},
                    raw=True,
                )
            except NotFound:
                continue
            key = data_key(folder_of(doc, *where), str(doc["requestId"]), part)
            location.put(key, data)
            section[field] = location.object_uri(key)
            written[0] += 1
        yield doc


_COLUMNS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("requestId", ("requestId",), "string"),
    ("accountId", ("accountId",), "string"),
    ("region", ("region",), "string"),
    ("operation", ("operation",), "string"),
    ("modelId", ("modelId",), "string"),
    ("provider", ("provider",), "string"),
    ("status", ("status",), "string"),
    ("errorCode", ("errorCode",), "string"),
    ("inputTokenCount", ("input", "inputTokenCount"), "int"),
    ("outputTokenCount", ("output", "outputTokenCount"), "int"),
    ("cacheReadInputTokenCount", ("input", "cacheReadInputTokenCount"), "int"),
    ("cacheWriteInputTokenCount", ("input", "cacheWriteInputTokenCount"), "int"),
    ("latencyMs", ("latencyMs",), "int"),
    ("timeToFirstTokenMs", ("timeToFirstTokenMs",), "int"),
    ("costUsd", ("cost", "totalUsd"), "money"),
    ("traceId", ("trace", "traceId"), "string"),
)


def export_parquet(backend: Any, params: dict[str, Any], location: Location) -> dict[str, Any]:
    """One Parquet file of the range's records: typed columns for what analysts group by,
    ``requestMetadata`` as a map, and each whole record as JSON text."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [_row(doc) for doc in pages(backend, "/api/records", params, size=1000)]
    types = {"string": pa.string(), "int": pa.int64(), "money": pa.decimal128(20, 10)}
    schema = pa.schema(
        [pa.field("timestamp", pa.timestamp("us", tz="UTC"))]
        + [pa.field(name, types[kind]) for name, _, kind in _COLUMNS]
        + [
            pa.field("requestMetadata", pa.map_(pa.string(), pa.string())),
            pa.field("record", pa.string()),
        ]
    )
    rows.reverse()  # oldest first
    table = pa.Table.from_pylist(rows, schema=schema)
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    name = "llmtrail-records.parquet"
    if rows:
        first, last = rows[0]["timestamp"], rows[-1]["timestamp"]
        name = f"llmtrail-records-{first:%Y%m%dT%H%M%SZ}-{last:%Y%m%dT%H%M%SZ}.parquet"
    location.put(name, buffer.getvalue())
    return {"format": "parquet", "records": len(rows), "objects": 1, "key": name}


def _row(doc: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {"timestamp": parse_timestamp(str(doc["timestamp"]))}
    for name, path, kind in _COLUMNS:
        value: Any = doc
        for part in path:
            value = value.get(part) if isinstance(value, dict) else None
        if kind == "int":
            value = value if isinstance(value, int) and not isinstance(value, bool) else None
        elif kind == "money":
            value = _money(value)
        else:
            value = value if isinstance(value, str) else None
        row[name] = value
    metadata = doc.get("requestMetadata")
    row["requestMetadata"] = list(metadata.items()) if isinstance(metadata, dict) else None
    row["record"] = orjson.dumps(doc).decode()
    return row


def _money(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value)).quantize(Decimal("1e-10")) if value is not None else None
    except InvalidOperation:
        return None
