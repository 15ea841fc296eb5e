"""In-memory stores: the reference behaviour of the interfaces, for tests and embedding."""

from __future__ import annotations

import copy
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from llmtrail.record import DEFAULT_WORKSPACE, InvocationRecord
from llmtrail.store.interfaces import AppendResult, RecordPage, RecordQuery
from llmtrail.store.paging import decode_cursor, encode_cursor, epoch_us
from llmtrail.store.schema import get_path


class MemoryRecordStore:
    def __init__(self) -> None:
        self._rows: list[tuple[datetime, InvocationRecord]] = []  # (ingested_at, record)
        self._position: str | None = None
        self._lock = threading.Lock()

    def append(
        self, records: Sequence[InvocationRecord], position: str | None = None
    ) -> AppendResult:
        now = datetime.now(UTC)
        with self._lock:
            self._rows.extend(
                (now, InvocationRecord(copy.deepcopy(r.data), r.derived)) for r in records
            )
            if position is not None:
                self._position = position
        return AppendResult(stored=len(records), position=position)

    def committed_position(self) -> str | None:
        return self._position

    def get(self, request_id: str, workspace: str = DEFAULT_WORKSPACE) -> InvocationRecord | None:
        with self._lock:
            for _, record in self._rows:
                if record.request_id == request_id and record.workspace == workspace:
                    return InvocationRecord(copy.deepcopy(record.data), record.derived)
        return None

    def find(self, query: RecordQuery) -> RecordPage:
        with self._lock:
            rows = [(at, r) for at, r in self._rows if _matches(r, at, query)]
        if query.ingested_after is not None:
            rows.sort(key=lambda row: (row[0], row[1].record_id))
            records = [r for _, r in rows]
        else:
            records = sorted(
                (r for _, r in rows),
                key=lambda r: (epoch_us(r.timestamp), r.record_id),
                reverse=True,
            )
            if query.cursor:
                after = decode_cursor(query.cursor)
                records = [r for r in records if (epoch_us(r.timestamp), r.record_id) < after]
        page = records[: query.limit]
        out = [InvocationRecord(copy.deepcopy(r.data), r.derived) for r in page]
        if not query.with_bodies:
            for r in out:
                for part, key in (("input", "inputBodyJson"), ("output", "outputBodyJson")):
                    r.data.get(part, {}).pop(key, None)
        next_cursor = None
        if len(records) > query.limit and query.ingested_after is None:
            last = page[-1]
            next_cursor = encode_cursor(last.timestamp, last.record_id)
        return RecordPage(out, next_cursor)

    def recent_request_ids(self, since: datetime) -> list[tuple[str, str]]:
        with self._lock:
            return [(r.workspace, r.request_id) for at, r in self._rows if at >= since]

    def close(self) -> None:
        pass


def _matches(record: InvocationRecord, ingested_at: datetime, q: RecordQuery) -> bool:
    d = record.data
    ts = record.timestamp
    checks = (
        record.workspace == q.workspace,
        q.start is None or ts >= q.start,
        q.end is None or ts < q.end,
        q.model_id is None or d.get("modelId") == q.model_id,
        q.operation is None or d.get("operation") == q.operation,
        q.status is None or d.get("status") == q.status,
        q.provider is None or d.get("provider") == q.provider,
        q.ingested_after is None or ingested_at > q.ingested_after,
    )
    return all(checks) and all(get_path(d, ("requestMetadata", k)) == v for k, v in q.metadata)


class MemoryStateStore:
    def __init__(self) -> None:
        self._data: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def get(self, namespace: str, key: str) -> Any | None:
        with self._lock:
            return copy.deepcopy(self._data.get((namespace, key)))

    def put(self, namespace: str, key: str, value: Any) -> None:
        with self._lock:
            self._data[(namespace, key)] = copy.deepcopy(value)

    def delete(self, namespace: str, key: str) -> bool:
        with self._lock:
            return self._data.pop((namespace, key), None) is not None

    def list(self, namespace: str) -> dict[str, Any]:
        with self._lock:
            return {
                k: copy.deepcopy(v) for (ns, k), v in sorted(self._data.items()) if ns == namespace
            }

    def close(self) -> None:
        pass
