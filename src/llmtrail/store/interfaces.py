"""The store interfaces. Each has an in-memory implementation (`memory`), a DuckDB one, and
one contract suite in ``tests/store`` that every implementation passes."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from llmtrail.errors import Picklable
from llmtrail.record import DEFAULT_WORKSPACE, InvocationRecord
from llmtrail.schema import RecordSchema
from llmtrail.span import Span
from llmtrail.store.spans import TracePage, TraceQuery


@dataclass(frozen=True)
class RecordQuery:
    """Which records to list: ``order="newest"`` is newest first by ``timestamp`` (ties by
    ``recordId``); ``order="ingested"`` is oldest first by ingestion time, for following new
    records (its page always carries the cursor to poll with next)."""

    workspace: str = DEFAULT_WORKSPACE
    start: datetime | None = None  # inclusive
    end: datetime | None = None  # exclusive
    model_id: str | None = None
    operation: str | None = None
    status: str | None = None
    provider: str | None = None
    metadata: tuple[tuple[str, str], ...] = ()
    ingested_after: datetime | None = None
    order: str = "newest"  # or "ingested"
    limit: int = 100
    cursor: str | None = None
    with_bodies: bool = True


@dataclass
class RecordPage:
    records: list[InvocationRecord]
    next_cursor: str | None = None


@dataclass(frozen=True)
class RecentCall:
    """What another server sharing the store must know of a record it did not write: its
    key in the resend window, and the keys a span of the same call can name (`source`
    ``gateway`` only: ``trace.parentSpanId`` and ``responseId``)."""

    workspace: str
    request_id: str
    source: str | None = None
    trace_id: str | None = None
    parent_span_id: str | None = None
    response_id: str | None = None
    ingested_at: datetime | None = None


@dataclass
class AppendResult:
    stored: int
    position: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class RecordStore(Protocol):
    """Invocation records and their bodies."""

    def append(
        self, records: Sequence[InvocationRecord], position: str | None = None
    ) -> AppendResult:
        """Store ``records`` and their bodies in one transaction; when ``position`` is given,
        commit it as the spool position in that same transaction (crash replay idempotence)."""
        ...

    def committed_position(self) -> str | None:
        """The spool position committed with the last batch, or None before the first."""
        ...

    def get(self, request_id: str, workspace: str = DEFAULT_WORKSPACE) -> InvocationRecord | None:
        """The record with this ``requestId`` (the earliest if several), with bodies."""
        ...

    def find(self, query: RecordQuery) -> RecordPage:
        """Records matching ``query``, one page, with the cursor of the next page."""
        ...

    def recent_request_ids(self, since: datetime, limit: int) -> list[tuple[str, str]]:
        """``(workspace, requestId)`` of the ``limit`` latest records ingested since ``since``."""
        ...

    def recent_calls(self, since: datetime, limit: int) -> list[RecentCall]:
        """The `RecentCall` of the ``limit`` latest records ingested since ``since``, oldest
        first."""
        ...

    def stored_request_ids(
        self, keys: Sequence[tuple[str, str]], since: datetime
    ) -> set[tuple[str, str]]:
        """Which of ``keys`` (``(workspace, requestId)``) name records ingested since
        ``since`` (by any server sharing the store)."""
        ...

    def set_costs(
        self, costs: Mapping[str, Mapping[str, Any] | None], workspace: str = DEFAULT_WORKSPACE
    ) -> int:
        """Replace the ``cost`` block of each record of ``workspace`` whose ``recordId`` is a
        key of ``costs`` with its value (``inputUsd`` … ``totalUsd`` as decimal strings,
        ``priceVersion``, or just ``reason``: what `CostResult.to_dict` gives; None removes
        the cost), in one transaction where the backend has them (re-pricing history).
        Unknown ids are skipped; returns how many records were updated."""
        ...

    def close(self) -> None:
        """Flush and release the store; later calls are errors."""
        ...


class StateStore(Protocol):
    """Control-plane state: JSON values under (namespace, key)."""

    def get(self, namespace: str, key: str) -> Any | None:
        """The value, or None."""
        ...

    def put(self, namespace: str, key: str, value: Any) -> None:
        """Create or replace the value."""
        ...

    def put_many(self, items: Sequence[tuple[str, str, Any]]) -> None:
        """Create or replace every ``(namespace, key, value)``, in one write (a bulk index:
        the audit log's reads index names up to a thousand records per entry)."""
        ...

    def delete(self, namespace: str, key: str) -> bool:
        """Remove the value; True if there was one."""
        ...

    def list(self, namespace: str) -> dict[str, Any]:
        """Every key and value in the namespace, keys sorted."""
        ...

    def close(self) -> None:
        """Release the store."""
        ...


class SpanStore(Protocol):
    """The steps of traces that are not model calls (workflow, agent, tool, task, retrieval,
    embedding, …). Model calls stay invocation records: reads return the union of the spans
    and the records whose ``trace.traceId`` is the trace's, a record winning over a span with
    the same ``spanId``."""

    def append(self, spans: Sequence[Span]) -> int:
        """Store ``spans`` in one transaction; a span sent again (same workspace, traceId and
        spanId) replaces the earlier one. Returns how many were given."""
        ...

    def get_trace(self, trace_id: str, workspace: str = DEFAULT_WORKSPACE) -> list[Span]:
        """Every span of the trace, records included as spans carrying their record (with
        bodies), ordered by start (ties by spanId); empty if the trace is unknown."""
        ...

    def find_traces(self, query: TraceQuery) -> TracePage:
        """Summaries of the traces matching ``query``, newest first, one page, with the
        cursor of the next page. Raises `ValidationError` for a cursor it did not issue."""
        ...

    def close(self) -> None:
        """Release the store; later calls are errors."""
        ...


@dataclass
class QueryRows:
    """What a compiled query returned: column names and rows of Python values."""

    columns: list[str]
    rows: list[tuple[Any, ...]]


class QueryCancelled(Picklable):
    """The query was cancelled while it ran."""


class QueryEngine(Protocol):
    """Runs SQL compiled by `llmtrail.query` (the query language and the read models of
    `llmtrail.query.reads`) for this engine's ``dialect``."""

    dialect: str

    @property
    def schema(self) -> RecordSchema:
        """The record schema of the engine's tables (promoted keys included)."""
        ...

    def execute(self, sql: str, query_id: str) -> QueryRows:
        """Run ``sql``; raises `QueryCancelled` when ``cancel(query_id)`` stops it."""
        ...

    def scanned(self, workspace: str, start: datetime, end: datetime) -> tuple[int, int]:
        """Records in ``[start, end)`` of ``workspace``, and an estimate of their bytes."""
        ...

    def cancel(self, query_id: str) -> bool:
        """Stop a running query; False when it is not running."""
        ...


@dataclass(frozen=True)
class SeriesRead:
    """One read of metric rollups: a dimension set (`llmtrail.metrics.dimensions` mask) and
    the values of its dimensions as ``(column, value)``, the rollup width to read, the range
    ``[start, end)`` and the ``period`` (a multiple of ``width``) the buckets merge into;
    ``measures`` names the measures to read (all when empty)."""

    workspace: str
    dimset: int
    values: tuple[tuple[str, str], ...]
    width: int
    period: int
    start: datetime
    end: datetime
    measures: tuple[str, ...] = ()  # the measures wanted (rollup column names); () for all


_MERGE = {"min": min, "max": max}


@dataclass
class SeriesTotals:
    """One series over a range: its dimension values (in the dimension set's order), its
    measures per period (ascending), and its latency buckets per histogram (``latency``,
    ``ttft``) over the range; `measures` merges the periods (``…_min``/``…_max`` by min and
    max, the rest added up)."""

    values: tuple[str, ...]
    periods: list[tuple[datetime, dict[str, Any]]] = field(default_factory=list)
    histograms: dict[str, dict[int, int]] = field(default_factory=dict)

    @property
    def measures(self) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for _, measures in self.periods:
            for key, value in measures.items():
                held = merged.get(key)
                if value is None or held is None:
                    merged[key] = held if value is None else value
                else:
                    merge = _MERGE.get(key.rsplit("_", 1)[-1])
                    merged[key] = merge(held, value) if merge else held + value
        return merged


class MetricStore(Protocol):
    """Per-bucket rollups of the records, kept by the record store as batches are stored."""

    def measures(self, read: SeriesRead) -> list[tuple[datetime, dict[str, Any]]]:
        """Per period with data (ascending): counts, sums, minima and maxima merged."""
        ...

    def histogram(self, read: SeriesRead, metric: str) -> dict[datetime, dict[int, int]]:
        """Per period: the merged latency buckets of ``metric`` (``latency`` or ``ttft``)."""
        ...

    def percentile(self, read: SeriesRead, metric: str, q: float) -> list[tuple[datetime, int]]:
        """Per period with data (ascending): the latency bucket (`llmtrail.metrics.sketch`)
        holding the ``q``-th percentile (0–100) of ``metric``, by nearest rank."""
        ...

    def series(
        self, workspace: str, dimset: int, start: datetime | None, end: datetime | None
    ) -> list[tuple[str, ...]]:
        """The dimension values of every series of ``dimset`` with data in the range."""
        ...

    def totals(self, read: SeriesRead) -> list[SeriesTotals]:
        """Every series of ``read.dimset`` matching ``read.values``, in one read: each with
        its measures per ``read.period``, and (when the read names no measures) its latency
        buckets over the range."""
        ...

    def rebuild(self, since: datetime | None = None) -> None:
        """Recompute the rollups from the stored records (from ``since`` on, or all)."""
        ...

    def maintain(self, keep: Mapping[int, timedelta]) -> None:
        """Fold the rows written since the last call and drop buckets older than each
        width's retention (``keep``: width in seconds → age)."""
        ...


# span attributes that name a span's user and tenant (OpenTelemetry, the SDK's metadata)
USER_ATTRIBUTES: tuple[str, ...] = ("user.id", "enduser.id", "user_id", "llmtrail.metadata.user_id")
TENANT_ATTRIBUTES: tuple[str, ...] = ("tenant.id", "tenant_id", "llmtrail.metadata.tenant_id")


@dataclass(frozen=True)
class RecordSelection:
    """Records of one workspace to expire or erase: every condition given holds — a
    ``timestamp`` in ``[start, before)``, a ``requestId`` among ``request_ids``, ``user``
    (``requestMetadata.user_id``), ``tenant`` (``requestMetadata.tenant_id``), a body still
    held (``with_body``: a bodies row or an object path). ``after`` is the keyset cursor
    ``(timestamp, recordId)`` of the previous page (pages are oldest first)."""

    workspace: str
    start: datetime | None = None
    before: datetime | None = None
    request_ids: tuple[str, ...] = ()
    user: str | None = None
    tenant: str | None = None
    with_body: bool = False
    after: tuple[datetime, str] | None = None


@dataclass
class SelectedRecords:
    """One page of selected records: their ids, how many hold a body row, the object URIs
    of their offloaded bodies, their traces, the cursor of the next page (None at the end),
    and with ``full`` the records themselves with their inline bodies (for an archive)."""

    record_ids: list[str] = field(default_factory=list)
    bodies: int = 0
    objects: list[str] = field(default_factory=list)
    trace_ids: set[str] = field(default_factory=set)
    first: datetime | None = None  # the earliest timestamp on the page
    after: tuple[datetime, str] | None = None
    records: list[InvocationRecord] = field(default_factory=list)


@dataclass(frozen=True)
class SpanSelection:
    """Spans of one workspace: started before ``before`` (when given) and, when any of
    ``trace_ids``, ``user``, ``tenant`` is given, in one of those traces or carrying the user
    or tenant in an attribute (`USER_ATTRIBUTES`, `TENANT_ATTRIBUTES`)."""

    workspace: str
    before: datetime | None = None
    trace_ids: tuple[str, ...] = ()
    user: str | None = None
    tenant: str | None = None


class DataEraser(Protocol):
    """Deletes stored data for retention and erasure, in bounded steps (each one short
    write), always within one workspace."""

    def select(self, selection: RecordSelection, limit: int, full: bool = False) -> SelectedRecords:
        """Up to ``limit`` records matching ``selection``, oldest first; with ``full`` the
        records with their bodies too."""
        ...

    def delete_records(
        self, workspace: str, record_ids: Sequence[str], bodies_only: bool = False
    ) -> int:
        """Delete these records of ``workspace`` and their bodies (with ``bodies_only``: only
        the bodies and the object paths, keeping the records); how many records it touched."""
        ...

    def delete_spans(
        self,
        selection: SpanSelection,
        limit: int,
        keep: Callable[[list[Span]], None] | None = None,
        dry_run: bool = False,
    ) -> int:
        """Delete up to ``limit`` spans matching, handing them to ``keep`` first (an archive:
        when it raises, nothing is deleted); how many. With ``dry_run``: how many match in
        all, deleting nothing."""
        ...

    def delete_rollups(
        self,
        workspace: str,
        before: datetime | None = None,
        tenant: str | None = None,
        dry_run: bool = False,
    ) -> int:
        """Delete the metric rollup rows of ``workspace`` whose bucket is before ``before``
        or whose TenantId dimension is ``tenant`` (the tenant then stops being an admitted
        dimension value); how many rollup rows (histogram rows not counted)."""
        ...

    def reclaim(self) -> None:
        """Make the deletions final on disk as far as the engine can while it runs (DuckDB:
        a checkpoint, which folds the write-ahead log; ClickHouse: merges that drop the rows
        from every active part)."""
        ...
