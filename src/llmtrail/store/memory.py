"""In-memory stores: the reference behaviour of the interfaces, for tests and embedding."""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from llmtrail.errors import ValidationError
from llmtrail.record import DEFAULT_WORKSPACE, InvocationRecord
from llmtrail.schema import RECORD_COLUMNS, Type, get_path
from llmtrail.span import Span, span_from_record
from llmtrail.store.interfaces import (
    TENANT_ATTRIBUTES,
    USER_ATTRIBUTES,
    AppendResult,
    RecentCall,
    RecordPage,
    RecordQuery,
    RecordSelection,
    RecordStore,
    SelectedRecords,
    SpanSelection,
)
from llmtrail.store.paging import decode_cursor, encode_cursor, epoch_us
from llmtrail.store.spans import TracePage, TraceQuery, TraceSummary, summarize_trace, trace_matches


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
            found = [
                r for _, r in self._rows if r.request_id == request_id and r.workspace == workspace
            ]
        if not found:
            return None
        first = min(found, key=lambda r: (epoch_us(r.timestamp), r.record_id))
        return InvocationRecord(copy.deepcopy(first.data), first.derived)

    def find(self, query: RecordQuery) -> RecordPage:
        with self._lock:
            rows = [(at, r) for at, r in self._rows if _matches(r, at, query)]
        following = query.order == "ingested"

        def key(row: tuple[datetime, InvocationRecord]) -> tuple[int, str]:
            return epoch_us(row[0] if following else row[1].timestamp), row[1].record_id

        rows.sort(key=key, reverse=not following)
        if query.cursor:
            after = decode_cursor(query.cursor)
            rows = [row for row in rows if (key(row) > after if following else key(row) < after)]
        page = rows[: query.limit]
        out = [InvocationRecord(copy.deepcopy(r.data), r.derived) for _, r in page]
        if not query.with_bodies:
            for r in out:
                for part, name in (("input", "inputBodyJson"), ("output", "outputBodyJson")):
                    r.data.get(part, {}).pop(name, None)
        next_cursor = None
        if page and (following or len(rows) > query.limit):
            next_cursor = encode_cursor(*key(page[-1]))
        elif following:
            next_cursor = query.cursor
        return RecordPage(out, next_cursor)

    def recent_request_ids(self, since: datetime, limit: int) -> list[tuple[str, str]]:
        with self._lock:
            recent = [(r.workspace, r.request_id) for at, r in self._rows if at >= since]
        return recent[-limit:] if limit else []

    def recent_calls(self, since: datetime, limit: int) -> list[RecentCall]:
        with self._lock:
            rows = [(at, r) for at, r in self._rows if at >= since]
        out = []
        for at, r in rows[-limit:] if limit else []:
            trace = r.data.get("trace") or {}
            out.append(
                RecentCall(
                    r.workspace,
                    r.request_id,
                    r.data.get("source"),
                    trace.get("traceId"),
                    trace.get("parentSpanId"),
                    r.data.get("responseId"),
                    at,
                )
            )
        return out

    def stored_request_ids(
        self, keys: Sequence[tuple[str, str]], since: datetime
    ) -> set[tuple[str, str]]:
        wanted = set(keys)
        with self._lock:
            return {(r.workspace, r.request_id) for at, r in self._rows if at >= since} & wanted

    def set_costs(
        self, costs: Mapping[str, Mapping[str, Any] | None], workspace: str = DEFAULT_WORKSPACE
    ) -> int:
        for block in costs.values():
            _check_cost(block)
        updated = 0
        with self._lock:
            for _, record in self._rows:
                if record.workspace != workspace or record.record_id not in costs:
                    continue
                block = costs[record.record_id]
                if block is None:
                    record.data.pop("cost", None)
                else:
                    record.data["cost"] = copy.deepcopy(dict(block))
                updated += 1
        return updated

    def close(self) -> None:
        pass


_NANO = Decimal("0.000000001")  # the scale of the SQL stores' DECIMAL(38, 9) money
_MAX_MONEY = Decimal(10) ** 29
_COST_KEYS = {c.path[1]: c.type for c in RECORD_COLUMNS if c.path[:1] == ("cost",)}


def _check_cost(block: Mapping[str, Any] | None) -> None:
    """Refuse what the SQL stores could not hold: an amount that is no finite decimal of at
    most 9 decimal places below 1e29, a ``priceVersion`` or ``reason`` that is no string."""
    for key, value in (block or {}).items():
        kind = _COST_KEYS.get(key)
        if kind is None or value is None:
            continue
        if kind is Type.DECIMAL:
            try:
                amount = Decimal(str(value))
                ok = not isinstance(value, bool) and amount.is_finite()
                ok = ok and abs(amount) < _MAX_MONEY and amount == amount.quantize(_NANO)
            except InvalidOperation:
                ok = False
            if not ok:
                raise ValidationError(f"cost.{key}", f"must be a finite decimal, got {value!r}")
        elif not isinstance(value, str):
            raise ValidationError(f"cost.{key}", f"must be a string, got {value!r}")


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

    def put_many(self, items: Sequence[tuple[str, str, Any]]) -> None:
        with self._lock:
            for namespace, key, value in items:
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


class MemorySpanStore:
    """SpanStore in memory. Traces include the records of ``records`` (any RecordStore, read
    through its interface) that carry ``trace.traceId``."""

    def __init__(self, records: RecordStore | None = None) -> None:
        self._records = records
        self._spans: dict[tuple[str, str, str], Span] = {}  # (workspace, traceId, spanId)
        self._lock = threading.Lock()

    def append(self, spans: Sequence[Span]) -> int:
        copies = [copy.deepcopy(s) for s in spans]
        with self._lock:
            for s in copies:
                self._spans.pop((s.workspace, s.trace_id, s.span_id), None)
                self._spans[(s.workspace, s.trace_id, s.span_id)] = s
        return len(spans)

    def get_trace(self, trace_id: str, workspace: str = DEFAULT_WORKSPACE) -> list[Span]:
        spans = self._traces(workspace, trace_id, with_bodies=True).get(trace_id, [])
        return sorted(spans, key=lambda s: (s.start, s.span_id))

    def find_traces(self, query: TraceQuery) -> TracePage:
        after = decode_cursor(query.cursor) if query.cursor else None
        traces = self._traces(query.workspace, None, with_bodies=False)
        summaries = [summarize_trace(spans) for spans in traces.values()]

        def key(s: TraceSummary) -> tuple[int, str]:
            return epoch_us(s.start), s.trace_id

        rows = sorted((s for s in summaries if trace_matches(s, query)), key=key, reverse=True)
        if after is not None:
            rows = [s for s in rows if key(s) < after]
        page = rows[: query.limit]
        more = len(rows) > query.limit and bool(page)
        return TracePage(page, encode_cursor(*key(page[-1])) if more else None)

    def close(self) -> None:
        pass

    def _traces(
        self, workspace: str, trace_id: str | None, *, with_bodies: bool
    ) -> dict[str, list[Span]]:
        """Spans by traceId: the traced records as spans, then the stored spans whose spanId
        no record of their trace has."""
        elements = [span_from_record(r) for r in self._traced_records(workspace, with_bodies)]
        if trace_id is not None:
            elements = [s for s in elements if s.trace_id == trace_id]
        taken = {(s.trace_id, s.span_id) for s in elements}
        with self._lock:
            stored = [
                s
                for (ws, tid, sid), s in self._spans.items()
                if ws == workspace
                and (trace_id is None or tid == trace_id)
                and (tid, sid) not in taken
            ]
        by_trace: dict[str, list[Span]] = {}
        for span in elements + [copy.deepcopy(s) for s in stored]:
            by_trace.setdefault(span.trace_id, []).append(span)
        return by_trace

    def _traced_records(self, workspace: str, with_bodies: bool) -> list[InvocationRecord]:
        if self._records is None:
            return []
        out: list[InvocationRecord] = []
        cursor = None
        while True:
            page = self._records.find(
                RecordQuery(
                    workspace=workspace, limit=10_000, cursor=cursor, with_bodies=with_bodies
                )
            )
            out += [r for r in page.records if get_path(r.data, ("trace", "traceId"))]
            cursor = page.next_cursor
            if cursor is None:
                return out


class MemoryEraser:
    """`DataEraser` over the in-memory stores (there are no rollups in memory)."""

    def __init__(self, records: MemoryRecordStore, spans: MemorySpanStore | None = None) -> None:
        self.records = records
        self.spans = spans

    def select(self, selection: RecordSelection, limit: int, full: bool = False) -> SelectedRecords:
        with self.records._lock:
            found = [r for _, r in self.records._rows if _selected(r, selection)]
        found.sort(key=lambda r: (epoch_us(r.timestamp), r.record_id))
        page = found[:limit]
        out = SelectedRecords()
        for record in page:
            d = record.data
            out.record_ids.append(record.record_id)
            parts = [d.get("input") or {}, d.get("output") or {}]
            out.bodies += any(p.get(k) is not None for p in parts for k in _BODY_KEYS)
            out.objects += [str(p[k]) for p in parts for k in _PATH_KEYS if p.get(k)]
            trace = get_path(d, ("trace", "traceId"))
            if trace:
                out.trace_ids.add(str(trace))
            out.first = record.timestamp if out.first is None else min(out.first, record.timestamp)
            out.after = (record.timestamp, record.record_id)
            if full:
                out.records.append(InvocationRecord(copy.deepcopy(d), record.derived))
        if len(found) <= limit:
            out.after = None
        return out

    def delete_records(
        self, workspace: str, record_ids: Sequence[str], bodies_only: bool = False
    ) -> int:
        wanted = set(record_ids)
        touched = 0
        with self.records._lock:
            kept = []
            for at, record in self.records._rows:
                if record.workspace != workspace or record.record_id not in wanted:
                    kept.append((at, record))
                    continue
                touched += 1
                if bodies_only:
                    for part in ("input", "output"):
                        for key in (*_BODY_KEYS, *_PATH_KEYS):
                            (record.data.get(part) or {}).pop(key, None)
                    kept.append((at, record))
            self.records._rows = kept
        return touched

    def delete_spans(
        self,
        selection: SpanSelection,
        limit: int,
        keep: Callable[[list[Span]], None] | None = None,
        dry_run: bool = False,
    ) -> int:
        if self.spans is None:
            return 0
        with self.spans._lock:
            keys = [k for k, s in self.spans._spans.items() if _span_selected(s, selection)]
            if dry_run:
                return len(keys)
            keys = keys[:limit]
            if keep is not None and keys:
                keep([copy.deepcopy(self.spans._spans[k]) for k in keys])
            for k in keys:
                del self.spans._spans[k]
        return len(keys)

    def delete_rollups(
        self,
        workspace: str,
        before: datetime | None = None,
        tenant: str | None = None,
        dry_run: bool = False,
    ) -> int:
        return 0

    def reclaim(self) -> None:
        pass


_BODY_KEYS = ("inputBodyJson", "outputBodyJson")
_PATH_KEYS = ("inputBodyS3Path", "outputBodyS3Path")


def _selected(record: InvocationRecord, sel: RecordSelection) -> bool:
    ts = record.timestamp
    meta = record.data.get("requestMetadata") or {}
    parts = [record.data.get("input") or {}, record.data.get("output") or {}]
    checks = (
        record.workspace == sel.workspace,
        sel.start is None or ts >= sel.start,
        sel.before is None or ts < sel.before,
        not sel.request_ids or record.request_id in sel.request_ids,
        sel.user is None or meta.get("user_id") == sel.user,
        sel.tenant is None or meta.get("tenant_id") == sel.tenant,
        not sel.with_body
        or any(p.get(k) is not None for p in parts for k in (*_BODY_KEYS, *_PATH_KEYS)),
        sel.after is None
        or (epoch_us(ts), record.record_id) > (epoch_us(sel.after[0]), sel.after[1]),
    )
    return all(checks)


def _span_selected(span: Span, sel: SpanSelection) -> bool:
    if span.workspace != sel.workspace or (sel.before is not None and span.start >= sel.before):
        return False
    if not (sel.trace_ids or sel.user is not None or sel.tenant is not None):
        return True
    attrs = span.attributes or {}
    return (
        span.trace_id in sel.trace_ids
        or (sel.user is not None and any(attrs.get(k) == sel.user for k in USER_ATTRIBUTES))
        or (sel.tenant is not None and any(attrs.get(k) == sel.tenant for k in TENANT_ATTRIBUTES))
    )
