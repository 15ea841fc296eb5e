"""The Parquet archive of what retention deletes, and erasure's rewrite of it.

Layout: ``DATA_DIR/archive/<workspace>/YYYY/MM/DD/<kind>-<run>-<n>.parquet``, the day being
the data's own (a record's timestamp, a span's start), ``kind`` being ``records`` or
``spans``. Each row carries the columns erasure matches on — workspace, ids, ``userId``,
``tenantId``, ``traceId`` — beside the whole item as JSON (a record in its Bedrock shape with
its bodies inline, even those that lived in the object store, so the archive is complete and
re-ingestible with ``llmtrail ingest``). Files are written to a temporary name and renamed,
so a reader never sees half a file.

Erasure (`erase_from_archives`) rewrites each file that holds a matching row without it (or
removes the file when nothing is left): first the record files, collecting the traces of the
records removed, then the span files, dropping the spans of those traces and of the user or
tenant.
"""

from __future__ import annotations

import gzip
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from llmtrail.record import InvocationRecord
from llmtrail.store.interfaces import TENANT_ATTRIBUTES, USER_ATTRIBUTES
from llmtrail.store.spans import Span

RECORD_SCHEMA = pa.schema(
    [
        ("workspace", pa.string()),
        ("recordId", pa.string()),
        ("requestId", pa.string()),
        ("timestamp", pa.timestamp("us", tz="UTC")),
        ("userId", pa.string()),
        ("tenantId", pa.string()),
        ("traceId", pa.string()),
        ("record", pa.string()),
    ]
)
SPAN_SCHEMA = pa.schema(
    [
        ("workspace", pa.string()),
        ("traceId", pa.string()),
        ("spanId", pa.string()),
        ("start", pa.timestamp("us", tz="UTC")),
        ("userId", pa.string()),
        ("tenantId", pa.string()),
        ("span", pa.string()),
    ]
)
_BODIES = (
    ("input", "inputBodyJson", "inputBodyS3Path"),
    ("output", "outputBodyJson", "outputBodyS3Path"),
)


def workspace_dir(root: Path, workspace: str) -> Path:
    """The workspace's directory under ``root``: one safe path segment, whatever its name."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", workspace)[:128].lstrip(".") or "_"
    return root / safe


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
    """Writes one retention run's archive files; ``written`` lists them."""

    root: Path
    run: str  # names this run's files, e.g. 20261206T120000Z
    written: list[Path] = field(default_factory=list)

    def records(self, workspace: str, records: Sequence[InvocationRecord]) -> list[Path]:
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
        return self._write(workspace, "records", rows, RECORD_SCHEMA)

    def spans(self, workspace: str, spans: Sequence[Span]) -> list[Path]:
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
        return self._write(workspace, "spans", rows, SPAN_SCHEMA)

    def _write(
        self, workspace: str, kind: str, by_day: dict[str, list[dict[str, Any]]], schema: pa.Schema
    ) -> list[Path]:
        out = []
        for day, rows in sorted(by_day.items()):
            folder = workspace_dir(self.root, workspace) / day
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{kind}-{self.run}-{len(self.written):06d}.parquet"
            _replace(path, pa.Table.from_pylist(rows, schema=schema))
            self.written.append(path)
            out.append(path)
        return out


@dataclass
class ArchiveErasure:
    """What erasure removed from the archive."""

    files_rewritten: int = 0
    files_removed: int = 0
    records: int = 0
    spans: int = 0


def erase_from_archives(
    root: Path,
    workspace: str,
    *,
    request_ids: Iterable[str] = (),
    user: str | None = None,
    tenant: str | None = None,
    trace_ids: Iterable[str] = (),
) -> ArchiveErasure:
    """Rewrite the workspace's archive files without the matching rows (see the module
    docstring); what was removed."""
    out = ArchiveErasure()
    folder = workspace_dir(root, workspace)
    if not folder.is_dir():
        return out
    ids, traces = list(request_ids), set(trace_ids)
    for path in sorted(folder.rglob("records-*.parquet")):
        table = pq.read_table(path)
        drop = _identity_mask(table, user, tenant)
        if ids:
            drop = pc.or_(drop, pc.is_in(table["requestId"], pa.array(ids, pa.string())))
        drop = pc.fill_null(drop, False)
        traces.update(t for t in pc.filter(table["traceId"], drop).to_pylist() if t)
        out.records += _rewrite(path, table, drop, out)
    for path in sorted(folder.rglob("spans-*.parquet")):
        table = pq.read_table(path)
        drop = _identity_mask(table, user, tenant)
        if traces:
            drop = pc.or_(drop, pc.is_in(table["traceId"], pa.array(sorted(traces), pa.string())))
        out.spans += _rewrite(path, table, pc.fill_null(drop, False), out)
    return out


def _identity_mask(table: pa.Table, user: str | None, tenant: str | None) -> Any:
    drop: Any = pa.array([False] * table.num_rows, pa.bool_())
    for column, value in (("userId", user), ("tenantId", tenant)):
        if value is not None:
            drop = pc.or_(drop, pc.fill_null(pc.equal(table[column], value), False))
    return drop


def _rewrite(path: Path, table: pa.Table, drop: Any, out: ArchiveErasure) -> int:
    removed = int(pc.sum(pc.cast(drop, pa.int64())).as_py() or 0)
    if not removed:
        return 0
    kept = table.filter(pc.invert(drop))
    if kept.num_rows:
        _replace(path, kept)
        out.files_rewritten += 1
    else:
        path.unlink()
        out.files_removed += 1
    return removed


def _replace(path: Path, table: pa.Table) -> None:
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
