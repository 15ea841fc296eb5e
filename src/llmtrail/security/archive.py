"""The Parquet archive of what retention deletes, and erasure's rewrite of it.

Layout: ``DATA_DIR/archive/<workspace>/YYYY/MM/DD/<kind>-<run>-<n>.parquet``, the day being
the data's own (a record's timestamp, a span's start), ``kind`` being ``records`` or
``spans``. Each row carries the columns erasure matches on — workspace, ids, ``userId``,
``tenantId``, ``traceId`` — beside the whole item as JSON (a record in its Bedrock shape with
its bodies inline, even those that lived in the object store, so the archive is complete and
re-ingestible with ``llmtrail ingest``). Files are written to a temporary name and renamed,
so a reader never sees half a file.

When the object store is not a local directory (``[objects] url = "s3://…"``, where several
servers share one bucket), the same files are objects under its ``archive/`` prefix
(``s3://bucket/prefix/archive/<workspace>/YYYY/MM/DD/…``), written in one put each (a reader
never sees half an object either): `archive_location` picks, `DirectoryArchive` and
`ObjectArchive` are the two places, with the same five operations.

Erasure (`erase_from_archives`) rewrites each file that holds a matching row without it (or
removes the file when nothing is left): first the record files, collecting the traces of the
records removed, then the span files, dropping the spans of those traces and of the user or
tenant.
"""

from __future__ import annotations

import functools
import gzip
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from llmtrail.record import InvocationRecord
from llmtrail.span import Span
from llmtrail.store.interfaces import TENANT_ATTRIBUTES, USER_ATTRIBUTES
from llmtrail.store.objects import DirectoryObjectStore, ObjectStore

if TYPE_CHECKING:
    import pyarrow as pa

ARCHIVE_PREFIX = "archive/"  # the archive's keys in an object store


# pyarrow (~60 MB with numpy, Parquet and compute) is imported by the functions that build or
# read a file, so a server that archives nothing never loads it.
@functools.cache
def _schema(kind: str) -> pa.Schema:
    """The Arrow schema of ``records`` or ``spans`` archive files."""
    import pyarrow as pa

    string, moment = pa.string(), pa.timestamp("us", tz="UTC")
    if kind == "records":
        return pa.schema(
            [
                ("workspace", string),
                ("recordId", string),
                ("requestId", string),
                ("timestamp", moment),
                ("userId", string),
                ("tenantId", string),
                ("traceId", string),
                ("record", string),
            ]
        )
    return pa.schema(
        [
            ("workspace", string),
            ("traceId", string),
            ("spanId", string),
            ("start", moment),
            ("userId", string),
            ("tenantId", string),
            ("span", string),
        ]
    )


_BODIES = (
    ("input", "inputBodyJson", "inputBodyS3Path"),
    ("output", "outputBodyJson", "outputBodyS3Path"),
)


def workspace_segment(workspace: str) -> str:
    """The workspace's folder name: one safe path segment, whatever its name."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", workspace)[:128].lstrip(".") or "_"


def workspace_dir(root: Path, workspace: str) -> Path:
    """The workspace's directory under ``root``."""
    return root / workspace_segment(workspace)


class ArchiveFiles(Protocol):
    """Where archive files live; a file is named by a string (a path, or an object's URI)."""

    location: str  # the archive's root, for reports

    def write(self, relative: str, table: pa.Table) -> str:
        """Write ``table`` as Parquet at ``relative`` (``<workspace>/YYYY/MM/DD/<file>``),
        whole or not at all; its name."""
        ...

    def files(self, workspace: str, kind: str) -> list[str]:
        """The names of the workspace's ``kind`` (records, spans) files, in order."""
        ...

    def read(self, name: str) -> pa.Table:
        """The table in file ``name``."""
        ...

    def replace(self, name: str, table: pa.Table) -> None:
        """Write ``table`` over file ``name``, whole or not at all."""
        ...

    def remove(self, name: str) -> None:
        """Remove file ``name``."""
        ...


class DirectoryArchive:
    """Archive files in a local directory (``DATA_DIR/archive``)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.location = str(root)

    def write(self, relative: str, table: pa.Table) -> str:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        _replace(path, table)
        return str(path)

    def files(self, workspace: str, kind: str) -> list[str]:
        folder = workspace_dir(self.root, workspace)
        if not folder.is_dir():
            return []
        return [str(p) for p in sorted(folder.rglob(f"{kind}-*.parquet"))]

    def read(self, name: str) -> pa.Table:
        import pyarrow.parquet as pq  # on first use (`_schema`)

        return pq.read_table(name)

    def replace(self, name: str, table: pa.Table) -> None:
        _replace(Path(name), table)

    def remove(self, name: str) -> None:
        Path(name).unlink()


class ObjectArchive:
    """Archive files as objects under ``archive/`` in an object store (an S3 bucket)."""

    def __init__(self, objects: ObjectStore) -> None:
        self.objects = objects
        self.location = objects.uri(ARCHIVE_PREFIX)

    def write(self, relative: str, table: pa.Table) -> str:
        import pyarrow.parquet as pq  # on first use (`_schema`)

        key = ARCHIVE_PREFIX + relative
        with tempfile.TemporaryFile() as f:  # Parquet on disk, then streamed up in parts
            pq.write_table(table, f, compression="zstd")
            f.seek(0)
            return self.objects.put_stream(key, f)

    def files(self, workspace: str, kind: str) -> list[str]:
        folder = f"{ARCHIVE_PREFIX}{workspace_segment(workspace)}/"
        names = ((info.uri, info.key.rpartition("/")[2]) for info in self.objects.list(folder))
        return [uri for uri, n in names if n.startswith(f"{kind}-") and n.endswith(".parquet")]

    def read(self, name: str) -> pa.Table:
        import pyarrow as pa  # on first use (`_schema`)
        import pyarrow.parquet as pq

        with self.objects.open(name) as f:
            return pq.read_table(pa.BufferReader(f.read()))

    def replace(self, name: str, table: pa.Table) -> None:
        self.write(name[len(self.location) :], table)

    def remove(self, name: str) -> None:
        self.objects.delete(name)


def archive_location(root: Path | None, objects: ObjectStore | None) -> ArchiveFiles | None:
    """Where archives go: in ``objects`` when it is a shared store (not a local directory),
    else in the directory ``root`` (None: no archive)."""
    if objects is not None and not isinstance(objects, DirectoryObjectStore):
        return ObjectArchive(objects)
    return DirectoryArchive(root) if root is not None else None


def inline_bodies(record: InvocationRecord, read: Callable[[str], bytes]) -> InvocationRecord:
    """``record`` with the bodies it keeps in objects put back inline (``read`` gets an
    object's bytes); an object that cannot be read keeps its path."""
    doc = orjson.loads(orjson.dumps(record.data))
    for part, body_key, path_key in _BODIES:
        section = doc.get(part)
        if not isinstance(section, dict) or not section.get(path_key):
            continue
        try:
            section[body_key] = orjson.loads(gzip.decompress(read(section[path_key])))
        except Exception:  # missing or damaged: the archive says where it was
            continue
        del section[path_key]
    return InvocationRecord(doc, record.derived)


@dataclass
class ArchiveWriter:
    """Writes one retention run's archive files; ``written`` lists them by workspace."""

    files: ArchiveFiles
    run: str  # names this run's files, e.g. 20261206T120000Z
    written: dict[str, list[str]] = field(default_factory=dict)

    def records(self, workspace: str, records: Sequence[InvocationRecord]) -> list[str]:
        rows: dict[str, list[dict[str, Any]]] = {}
        for r in records:
            meta = r.data.get("requestMetadata") or {}
            trace = r.data.get("trace") or {}
            rows.setdefault(_day(r.timestamp), []).append(
                {
                    "workspace": workspace,
                    "recordId": r.record_id,
                    "requestId": r.request_id,
                    "timestamp": r.timestamp,
                    "userId": meta.get("user_id"),
                    "tenantId": meta.get("tenant_id"),
                    "traceId": trace.get("traceId"),
                    "record": orjson.dumps(r.data).decode(),
                }
            )
        return self._write(workspace, "records", rows)

    def spans(self, workspace: str, spans: Sequence[Span]) -> list[str]:
        rows: dict[str, list[dict[str, Any]]] = {}
        for s in spans:
            attrs = s.attributes or {}
            rows.setdefault(_day(s.start), []).append(
                {
                    "workspace": workspace,
                    "traceId": s.trace_id,
                    "spanId": s.span_id,
                    "start": s.start,
                    "userId": _first(attrs, USER_ATTRIBUTES),
                    "tenantId": _first(attrs, TENANT_ATTRIBUTES),
                    "span": orjson.dumps(s.to_dict(), default=str).decode(),
                }
            )
        return self._write(workspace, "spans", rows)

    def _write(
        self, workspace: str, kind: str, by_day: dict[str, list[dict[str, Any]]]
    ) -> list[str]:
        import pyarrow as pa  # on first use (`_schema`)

        schema = _schema(kind)
        out = []
        for day, rows in sorted(by_day.items()):
            count = sum(len(names) for names in self.written.values())
            relative = f"{workspace_segment(workspace)}/{day}/{kind}-{self.run}-{count:06d}.parquet"
            name = self.files.write(relative, pa.Table.from_pylist(rows, schema=schema))
            self.written.setdefault(workspace, []).append(name)
            out.append(name)
        return out


@dataclass
class ArchiveErasure:
    """What erasure removed from the archive."""

    files_rewritten: int = 0
    files_removed: int = 0
    records: int = 0
    spans: int = 0


def erase_from_archives(
    root: Path | None,
    workspace: str,
    *,
    request_ids: Iterable[str] = (),
    user: str | None = None,
    tenant: str | None = None,
    trace_ids: Iterable[str] = (),
    objects: ObjectStore | None = None,
) -> ArchiveErasure:
    """Rewrite the workspace's archive files without the matching rows (see the module
    docstring); what was removed. The archive is where `archive_location` puts it."""
    out = ArchiveErasure()
    files = archive_location(root, objects)
    if files is None:
        return out
    import pyarrow as pa  # on first use (`_schema`)
    import pyarrow.compute as pc

    ids, traces = list(request_ids), set(trace_ids)
    for name in files.files(workspace, "records"):
        table = files.read(name)
        drop = _identity_mask(table, user, tenant)
        if ids:
            drop = pc.or_(drop, pc.is_in(table["requestId"], pa.array(ids, pa.string())))
        drop = pc.fill_null(drop, False)
        traces.update(t for t in pc.filter(table["traceId"], drop).to_pylist() if t)
        out.records += _rewrite(files, name, table, drop, out)
    for name in files.files(workspace, "spans"):
        table = files.read(name)
        drop = _identity_mask(table, user, tenant)
        if traces:
            drop = pc.or_(drop, pc.is_in(table["traceId"], pa.array(sorted(traces), pa.string())))
        out.spans += _rewrite(files, name, table, pc.fill_null(drop, False), out)
    return out


def _identity_mask(table: pa.Table, user: str | None, tenant: str | None) -> Any:
    import pyarrow as pa  # as in `erase_from_archives`
    import pyarrow.compute as pc

    drop: Any = pa.array([False] * table.num_rows, pa.bool_())
    for column, value in (("userId", user), ("tenantId", tenant)):
        if value is not None:
            drop = pc.or_(drop, pc.fill_null(pc.equal(table[column], value), False))
    return drop


def _rewrite(
    files: ArchiveFiles, name: str, table: pa.Table, drop: Any, out: ArchiveErasure
) -> int:
    import pyarrow as pa  # as in `erase_from_archives`
    import pyarrow.compute as pc

    removed = int(pc.sum(pc.cast(drop, pa.int64())).as_py() or 0)
    if not removed:
        return 0
    kept = table.filter(pc.invert(drop))
    if kept.num_rows:
        files.replace(name, kept)
        out.files_rewritten += 1
    else:
        files.remove(name)
        out.files_removed += 1
    return removed


def _replace(path: Path, table: pa.Table) -> None:
    import pyarrow.parquet as pq  # on first use (`_schema`)

    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp, compression="zstd")
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _day(moment: datetime) -> str:
    return f"{moment:%Y/%m/%d}"


def _first(attrs: dict[str, Any], keys: Sequence[str]) -> str | None:
    for key in keys:
        value = attrs.get(key)
        if isinstance(value, str):
            return value
    return None
