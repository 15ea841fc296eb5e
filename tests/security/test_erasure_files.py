"""Erasure leaves no trace of the erased user in any file of the data directory: a real
server runtime (DuckDB file, spool, object store, dead letters, Parquet archive) holds a
user's records, bodies (one offloaded to an object), spans and an archived record; after the
erasure and an offline compaction, no file holds the user's id, while the other user's data
is all there and the rollups count only what is left."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest

from llmtrail.config import load_settings
from llmtrail.metrics.dimensions import dimension_set
from llmtrail.pipeline.spool import Spool, SpoolPosition
from llmtrail.record import InvocationRecord
from llmtrail.security.erasure import Eraser
from llmtrail.security.erasure_files import release_stored, stored_flush
from llmtrail.security.retention import RetentionPolicies
from llmtrail.security.retention_runner import RetentionRunner
from llmtrail.server.runtime import Runtime
from llmtrail.span import Span
from llmtrail.store.duckdb.erasure import DuckDBEraser, compact_database_file
from llmtrail.store.interfaces import RecordQuery, SeriesRead

ERASED = "zz-erasee-5f1c9a7b"
KEPT = "kept-user-31d0"
NOW = datetime.now(UTC).replace(microsecond=0)


def _record(i: int, user: str, age_days: float, big: bool = False) -> InvocationRecord:
    text = f"my account is {user}, order {i}"
    doc: dict[str, Any] = {
        "timestamp": (NOW - timedelta(days=age_days)).isoformat().replace("+00:00", "Z"),
        "requestId": f"{user}-req-{i}",
        "modelId": "m-small",
        "operation": "Converse",
        "requestMetadata": {"user_id": user, "tenant_id": "acme"},
        "input": {
            "inputTokenCount": 10 + i,
            "inputBodyJson": {"messages": [text + (" padding" * 20_000 if big else "")]},
        },
        "output": {"outputTokenCount": 5, "outputBodyJson": {"text": f"hello {user}"}},
        "latencyMs": 120,
        "trace": {"traceId": f"{abs(hash(user)) % 10**8:08d}{i:024d}", "spanId": f"{i:016x}"},
    }
    return InvocationRecord.from_dict(doc, source="sdk")


def _files_holding(root: Path, needle: bytes) -> list[str]:
    found = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and needle in path.read_bytes():
            found.append(str(path.relative_to(root)))
        if path.suffix == ".gz" and needle in gzip.decompress(path.read_bytes()):
            found.append(f"{path.relative_to(root)} (content)")
        if path.suffix == ".parquet":
            table = pq.read_table(path)
            if needle.decode() in orjson.dumps(table.to_pylist(), default=str).decode():
                found.append(f"{path.relative_to(root)} (content)")
    return found


@pytest.fixture
def runtime(tmp_path: Path) -> Any:
    settings = load_settings(None, env={}, overrides={"data_dir": tmp_path / "data"})
    rt = Runtime(settings)
    rt.pipeline.start()
    yield rt
    rt.close()


def test_no_trace_of_the_erased_user_in_any_file(runtime: Runtime) -> None:
    rt = runtime
    data_dir = rt.settings.data_dir
    records = [_record(i, ERASED, age_days=i, big=i == 1) for i in range(6)]
    records += [_record(i, KEPT, age_days=i) for i in range(6)]
    records.append(_record(99, ERASED, age_days=45))  # archived by retention below
    _, future = rt.pipeline.ingest(records)
    future.result()
    flush = stored_flush(rt.spool, rt.records.committed_position)
    flush()
    trace = records[0].data["trace"]["traceId"]
    rt.spans.append(
        [
            Span(trace, "a" * 16, "agent", NOW, NOW + timedelta(seconds=1), kind="agent"),
            Span(
                "f" * 32,
                "b" * 16,
                "tool",
                NOW,
                NOW + timedelta(seconds=1),
                kind="tool",
                attributes={"user.id": ERASED},
            ),
            Span("e" * 32, "c" * 16, "kept", NOW, NOW + timedelta(seconds=1)),
        ]
    )
    dead = rt.pipeline.dead_letter_dir
    dead.mkdir(parents=True, exist_ok=True)
    (dead / "batch-000000000001-000000000000-invalid.ndjson").write_bytes(
        b"".join(orjson.dumps(r.data) + b"\n" for r in (records[2], records[8]))
    )
    eraser = DuckDBEraser(rt.db, rt.rollups)
    archive = data_dir / "archive"
    RetentionPolicies(rt.state).put("default", {"recordsDays": 30, "archive": True})
    ran = RetentionRunner(rt.state, eraser, rt.objects, archive).run(NOW)
    assert ran.workspaces[0].records == 1 and ran.workspaces[0].archived
    rt.metric_store.maintain({})  # fold what the appends staged
    rt.db.checkpoint()
    before = _files_holding(data_dir, ERASED.encode())
    # the user is everywhere before: the database, the spool, the object, dead letters, archive
    assert any(f.endswith(".duckdb") for f in before), before
    assert any(f.startswith("spool/segment-") for f in before), before
    assert any(f.startswith("objects/") for f in before), before
    assert any("deadletter" in f for f in before), before
    assert any(f.startswith("archive/") for f in before), before

    report = Eraser(
        eraser,
        metric_store=rt.metric_store,
        objects=rt.objects,
        archive_root=archive,
        dead_letter_dir=dead,
        spool=rt.spool,
        committed=rt.records.committed_position,
        flush=flush,
    ).erase("default", user=ERASED)
    removed = report.to_dict()["removed"]
    assert removed["records"] == 6 and removed["objects"] == 1 and removed["bodies"] == 6
    assert removed["spans"] == 2 and removed["archiveRecords"] == 1
    assert removed["deadLetters"] == 1 and report.spool_pending == 0
    assert report.notes  # DuckDB's free blocks are named

    # what is left: the other user's records, spans and rollups
    left = rt.records.find(RecordQuery(limit=100)).records
    assert sorted(r.request_id for r in left) == sorted(r.request_id for r in records[6:12])
    read = SeriesRead(
        "default", 0, (), 3600, 3600 * 24 * 400, NOW - timedelta(days=400), NOW + timedelta(days=1)
    )
    assert sum(m["invocations"] for _, m in rt.metric_store.measures(read)) == 6
    assert rt.metric_store.series("default", dimension_set(["TenantId"]), None, None) == [("acme",)]
    assert [s.span_id for s in rt.spans.get_trace("e" * 32)] == ["c" * 16]

    rt.close()  # checkpoints: the write-ahead log is folded into the file
    still = _files_holding(data_dir, ERASED.encode())
    assert all(f.endswith(".duckdb") for f in still), still  # only DuckDB's free blocks …
    compact_database_file(rt.settings.db_path)
    assert _files_holding(data_dir, ERASED.encode()) == []  # … until the file is compacted
    assert _files_holding(data_dir, KEPT.encode())  # the kept user is still there


def test_a_flush_after_an_erasure_released_the_stored_segments_does_not_wait(
    tmp_path: Path,
) -> None:
    """The first erasure releases the stored segments and leaves a new, empty active one;
    the next flush has nothing to wait for (it used to wait for a commit at that segment's
    start, which never comes, until its timeout)."""
    spool = Spool(tmp_path / "spool", fsync=False)
    stored = spool.append([b"a", b"b"]).encode()
    assert release_stored(spool, stored) == 1
    assert spool.end_position() == SpoolPosition(2, 0) and spool.last_frame_end() is None
    asked: list[str | None] = []

    def committed() -> str | None:
        asked.append(stored)
        return stored

    stored_flush(spool, committed, timeout_s=60)()
    assert len(asked) <= 1  # answered at once, not polled until the timeout
    pending = spool.append([b"c"])
    assert spool.last_frame_end() == pending
    stored_flush(spool, lambda: pending.encode(), timeout_s=60)()
    spool.close()
