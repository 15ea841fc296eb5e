"""Erasure: a person's or a tenant's data removed everywhere llmtrail keeps it, within one
workspace, with a report of what went from where.

What is erased, for ``requestIds``, a ``user`` (``requestMetadata.user_id``) or a ``tenant``
(``requestMetadata.tenant_id``):

* the matching **records**, their **body rows** and their **body objects**;
* **spans** of the traces those records belong to (a model call is the span of a trace: the
  steps around it are the same person's activity), and spans whose attributes name the user
  (`USER_ATTRIBUTES`) or the tenant (`TENANT_ATTRIBUTES`);
* **rollups**: a tenant's rows (its TenantId dimension) are deleted outright, and the rollups
  from the earliest erased record on are rebuilt from the records left (`MetricStore.rebuild`),
  so no count still includes the erased records;
* **archives** (`llmtrail.security.archive`): the Parquet files are rewritten without them;
* **dead letters**: the pipeline's NDJSON files are rewritten without them;
* the **spool**: the pipeline is flushed first (``flush``, which the server passes), so that
  nothing waiting there is stored again after the erasure; then the segments wholly stored
  are deleted. Records still there afterwards (a flush that timed out) are counted in
  ``spoolPending``: a replay would store them again, so the erasure should be run again.

The de-duplication window holds only ``(workspace, requestId)`` pairs in memory and is left
alone. What the engine itself keeps after a delete is said in ``notes`` (DuckDB's free blocks:
see `llmtrail.store.duckdb.erasure`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from llmtrail.errors import ValidationError
from llmtrail.record import METADATA_VALUE_MAX, format_timestamp
from llmtrail.security.archive import erase_from_archives
from llmtrail.security.erasure_files import (
    erase_dead_letters,
    pending_in_spool,
    record_matcher,
    release_stored,
    remove_object,
)
from llmtrail.store.interfaces import DataEraser, MetricStore, RecordSelection, SpanSelection
from llmtrail.store.objects import ObjectStore

MAX_REQUEST_IDS = 10_000
REQUEST_ID_MAX = 1024
DEFAULT_PAGE = 5000
_TRACES_A_STEP = 1000


@dataclass
class ErasureReport:
    """What one erasure removed, per place."""

    workspace: str
    request_ids: list[str] = field(default_factory=list)
    user: str | None = None
    tenant: str | None = None
    records: int = 0
    bodies: int = 0
    objects: int = 0
    spans: int = 0
    rollups_deleted: int = 0
    rollups_rebuilt_since: datetime | None = None
    archive_records: int = 0
    archive_spans: int = 0
    archive_files: int = 0
    dead_letters: int = 0
    dead_letter_files: int = 0
    spool_segments_deleted: int = 0
    spool_pending: int = 0
    flushed: bool = False
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        since = self.rollups_rebuilt_since
        return {
            "workspace": self.workspace,
            "requestIds": self.request_ids or None,
            "user": self.user,
            "tenant": self.tenant,
            "removed": {
                "records": self.records,
                "bodies": self.bodies,
                "objects": self.objects,
                "spans": self.spans,
                "rollupRows": self.rollups_deleted,
                "archiveRecords": self.archive_records,
                "archiveSpans": self.archive_spans,
                "archiveFiles": self.archive_files,
                "deadLetters": self.dead_letters,
                "deadLetterFiles": self.dead_letter_files,
                "spoolSegments": self.spool_segments_deleted,
            },
            "rollupsRebuiltSince": format_timestamp(since) if since else None,
            "spoolPending": self.spool_pending,
            "flushed": self.flushed,
            "notes": self.notes,
        }


def check_request(request_ids: Sequence[Any], user: Any, tenant: Any) -> None:
    """Exactly one of ``requestIds`` (non-empty), ``user``, ``tenant``, within their limits;
    raises `ValidationError` naming the field."""
    given = [n for n, v in (("requestIds", request_ids), ("user", user), ("tenant", tenant)) if v]
    if len(given) != 1:
        raise ValidationError(
            "requestIds" if not given else given[1],
            "give exactly one of requestIds, user or tenant",
        )
    if request_ids:
        if len(request_ids) > MAX_REQUEST_IDS:
            raise ValidationError("requestIds", f"at most {MAX_REQUEST_IDS} ids at a time")
        for i, rid in enumerate(request_ids):
            if not isinstance(rid, str) or not rid or len(rid) > REQUEST_ID_MAX:
                raise ValidationError(
                    f"requestIds[{i}]", f"must be a string of 1 to {REQUEST_ID_MAX} characters"
                )
    for name, value in (("user", user), ("tenant", tenant)):
        if value is not None and (
            not isinstance(value, str) or not value or len(value) > METADATA_VALUE_MAX
        ):
            raise ValidationError(name, f"must be a string of 1 to {METADATA_VALUE_MAX} characters")


class Eraser:
    """Erases through ``eraser`` (the store) and the files around it. Every part but the
    eraser is optional: a place not given is not searched."""

    def __init__(
        self,
        eraser: DataEraser,
        *,
        metric_store: MetricStore | None = None,
        objects: ObjectStore | None = None,
        archive_root: Path | None = None,
        dead_letter_dir: Path | None = None,
        spool: Any = None,  # llmtrail.pipeline.spool.Spool
        committed: Callable[[], str | None] | None = None,
        flush: Callable[[], None] | None = None,
        page: int = DEFAULT_PAGE,
        spool_ops: Any = None,
    ) -> None:
        self.eraser = eraser
        self.metric_store = metric_store
        self.objects = objects
        self.archive_root = archive_root
        self.dead_letter_dir = dead_letter_dir
        self.spool = spool
        self.committed = committed
        self.flush = flush
        self.page = page
        # the spool's owner, when another process owns it (the recorder): its
        # ``release_stored()`` and ``pending_in_spool(workspace, ids, user, tenant)``
        self.spool_ops = spool_ops

    def erase(
        self,
        workspace: str,
        request_ids: Sequence[str] = (),
        user: str | None = None,
        tenant: str | None = None,
    ) -> ErasureReport:
        check_request(request_ids, user, tenant)
        ids = tuple(dict.fromkeys(request_ids))
        report = ErasureReport(workspace, list(ids), user, tenant)
        if self.flush is not None:
            self.flush()
            report.flushed = True
        else:
            report.notes.append("the pipeline was not flushed: records not yet stored remain")
        traces, first = self._records(workspace, ids, user, tenant, report)
        self._spans(workspace, traces, user, tenant, report)
        if tenant is not None:
            report.rollups_deleted = self.eraser.delete_rollups(workspace, tenant=tenant)
        if first is not None and self.metric_store is not None:
            self.metric_store.rebuild(first)
            report.rollups_rebuilt_since = first
        self._files(workspace, ids, user, tenant, traces, report)
        if report.records or report.spans or report.rollups_deleted:
            self.eraser.reclaim()  # a checkpoint: not worth holding the writer for nothing
        residue = getattr(self.eraser, "RESIDUE", None)
        if residue and report.records + report.spans:
            report.notes.append(residue)
        return report

    def _records(
        self,
        workspace: str,
        ids: tuple[str, ...],
        user: str | None,
        tenant: str | None,
        report: ErasureReport,
    ) -> tuple[set[str], datetime | None]:
        selection = RecordSelection(workspace, request_ids=ids, user=user, tenant=tenant)
        traces: set[str] = set()
        first: datetime | None = None
        while True:  # each page deleted before the next is read: no cursor needed
            page = self.eraser.select(selection, self.page)
            if not page.record_ids:
                return traces, first
            traces |= page.trace_ids
            if page.first is not None:
                first = page.first if first is None else min(first, page.first)
            if self.objects is not None:
                report.objects += sum(remove_object(self.objects, uri) for uri in page.objects)
            report.bodies += page.bodies
            report.records += self.eraser.delete_records(workspace, page.record_ids)
            if page.after is None:
                return traces, first

    def _spans(
        self,
        workspace: str,
        traces: set[str],
        user: str | None,
        tenant: str | None,
        report: ErasureReport,
    ) -> None:
        ordered = sorted(traces)
        steps = [
            tuple(ordered[i : i + _TRACES_A_STEP]) for i in range(0, len(ordered), _TRACES_A_STEP)
        ]
        selections = [SpanSelection(workspace, trace_ids=step) for step in steps]
        if user is not None or tenant is not None:
            selections.append(SpanSelection(workspace, user=user, tenant=tenant))
        for selection in selections:
            while True:
                count = self.eraser.delete_spans(selection, self.page)
                report.spans += count
                if count < self.page:
                    break

    def _files(
        self,
        workspace: str,
        ids: tuple[str, ...],
        user: str | None,
        tenant: str | None,
        traces: set[str],
        report: ErasureReport,
    ) -> None:
        if self.archive_root is not None:
            archived = erase_from_archives(
                self.archive_root,
                workspace,
                request_ids=ids,
                user=user,
                tenant=tenant,
                trace_ids=traces,
                objects=self.objects,
            )
            report.archive_records = archived.records
            report.archive_spans = archived.spans
            report.archive_files = archived.files_rewritten + archived.files_removed
        matches = record_matcher(workspace, frozenset(ids), user, tenant)
        if self.dead_letter_dir is not None:
            dead = erase_dead_letters(self.dead_letter_dir, matches)
            report.dead_letters = dead.records
            report.dead_letter_files = dead.files_rewritten + dead.files_removed
        if self.spool_ops is not None:
            report.spool_segments_deleted = self.spool_ops.release_stored()
            report.spool_pending = self.spool_ops.pending_in_spool(
                workspace, frozenset(ids), user, tenant
            )
        elif self.spool is not None and self.committed is not None:
            committed = self.committed()
            report.spool_segments_deleted = release_stored(self.spool, committed)
            report.spool_pending = pending_in_spool(self.spool, self.committed(), matches)
        if report.spool_pending:
            report.notes.append(
                f"{report.spool_pending} matching records are still in the spool and "
                "would be stored by a replay: run the erasure again once they are stored"
            )
