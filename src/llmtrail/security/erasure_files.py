"""The places outside the store where a record can still be: body objects, dead-letter
files and the spool.

* Objects: the `ObjectStore` protocol has no delete yet, so `remove_object` knows the two
  stores llmtrail has (a directory, memory) and uses ``delete(uri)`` where a store has one.
* Dead letters (``DATA_DIR/spool/deadletter/*.ndjson``, one record a line, written by the
  pipeline): each file holding a matching record is rewritten without it (removed when
  nothing is left). A line that is no JSON object is kept: it matches nothing we can tell.
* The spool: once every record has been stored (the caller flushed the pipeline), the
  segments wholly stored are deleted — the active one is closed first (`release_stored`), since
  stored frames otherwise stay in it until it fills. What is still in the spool after that
  was not stored yet and would be stored again by a replay: `pending_in_spool` counts the
  matching records there (read-only: it never touches a segment the pipeline writes).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from llmtrail.errors import ValidationError
from llmtrail.pipeline.frames import decode_payload
from llmtrail.pipeline.spool import HEADER, MAGIC, Spool, SpoolPosition
from llmtrail.record import DEFAULT_WORKSPACE, InvocationRecord
from llmtrail.store.objects import ObjectStore

Match = Callable[[dict[str, Any]], bool]


def record_matcher(
    workspace: str, request_ids: frozenset[str], user: str | None, tenant: str | None
) -> Match:
    """Whether a record (its JSON) is one erasure removes."""

    def matches(doc: dict[str, Any]) -> bool:
        if doc.get("workspace", DEFAULT_WORKSPACE) != workspace:
            return False
        meta = doc.get("requestMetadata")
        meta = meta if isinstance(meta, dict) else {}
        return (
            doc.get("requestId") in request_ids
            or (user is not None and meta.get("user_id") == user)
            or (tenant is not None and meta.get("tenant_id") == tenant)
        )

    return matches


def remove_object(objects: ObjectStore, uri: str) -> bool:
    """Delete the object at ``uri``; False when there was none (or it is not this store's)."""
    return bool(objects.delete(uri))


@dataclass
class FileErasure:
    files_rewritten: int = 0
    files_removed: int = 0
    records: int = 0


def erase_dead_letters(directory: Path, matches: Match) -> FileErasure:
    """Rewrite the dead-letter files in ``directory`` without the matching records."""
    out = FileErasure()
    if not directory.is_dir():
        return out
    for path in sorted(directory.glob("*.ndjson")):
        kept, removed = [], 0
        for line in path.read_bytes().splitlines(keepends=True):
            try:
                doc = orjson.loads(line)
            except orjson.JSONDecodeError:
                doc = None
            if isinstance(doc, dict) and matches(doc):
                removed += 1
            else:
                kept.append(line)
        if not removed:
            continue
        out.records += removed
        if any(line.strip() for line in kept):
            tmp = path.with_suffix(".tmp")
            with open(tmp, "wb") as f:
                f.write(b"".join(kept))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
            out.files_rewritten += 1
        else:
            path.unlink()
            out.files_removed += 1
    return out


def release_stored(spool: Spool, committed: str | None) -> int:
    """Delete the spool segments whose records are all stored (``committed`` is the store's
    committed position), closing the active segment first when it is wholly stored; how many
    segment files were deleted."""
    if committed is None:
        return 0
    done = SpoolPosition.decode(committed)
    spool.advance_past(SpoolPosition(done.segment, done.offset + 1))  # rolls only if all stored
    return spool.release(done)


def pending_in_spool(spool: Spool, committed: str | None, matches: Match) -> int:
    """Matching records in the spool after ``committed`` (not stored yet), read without
    touching the segments."""
    after = SpoolPosition.decode(committed) if committed else SpoolPosition.ZERO
    found = 0
    for path in sorted(spool.directory.glob("segment-*.spool")):
        number = path.name[len("segment-") : -len(".spool")]
        if not number.isdigit() or int(number) < after.segment:
            continue
        data = path.read_bytes()
        offset = 0
        while offset + HEADER.size <= len(data):
            magic, _, _, _, length, _ = HEADER.unpack_from(data, offset)
            end = offset + HEADER.size + length
            if magic != MAGIC or end > len(data):
                break  # a torn tail (being written, or damaged): the pipeline's business
            if SpoolPosition(int(number), end) > after:
                try:
                    record = decode_payload(data[offset + HEADER.size : end])
                except (orjson.JSONDecodeError, KeyError, TypeError, ValidationError):
                    record = None
                if isinstance(record, InvocationRecord) and matches(record.data):
                    found += 1
            offset = end
    return found


def stored_flush(
    spool: Spool, committed: Callable[[], str | None], timeout_s: float = 30.0
) -> Callable[[], None]:
    """A ``flush`` for `Eraser`: wait until the store has committed everything in the spool
    when it is called (or ``timeout_s`` passed: what is left is then counted as pending)."""

    def flush() -> None:
        # the last frame, not `end_position`: once an erasure released the stored segments
        # the active one is new and empty, and no commit ever reaches its start
        target = spool.last_frame_end()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            done = committed()
            if target is None or (done is not None and SpoolPosition.decode(done) >= target):
                return
            time.sleep(0.01)

    return flush
