"""One retention run: every workspace's data past its policy deleted (or counted, dry).

Per workspace with a policy (`llmtrail.security.retention`), in this order:

1. records older than ``recordsDays``, a page at a time (oldest first): archived (with the
   bodies of their objects inline) when the policy says so, their objects deleted, then the
   records and their body rows in one short write;
2. bodies of the records older than ``bodiesDays`` that remain: archived the same way, then
   their body rows and objects deleted and their object paths cleared; the records stay;
3. spans older than ``spansDays``, a page at a time, archived first likewise;
4. rollup rows older than ``recordsDays`` (rollups carry their workspace);

then one `DataEraser.reclaim`. Objects go before the rows that name them, so a crash between
the two leaves a record whose body object is missing (its path still says where it was) rather
than an object nothing names. ``now`` is given, never read here, so tests set the clock.

Archives go where `archive_location` says: ``archive_root`` while the object store is a local
directory, the object store's ``archive/`` prefix when it is shared (S3), so that whichever
server runs retention writes where every server, and erasure, finds them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from llmtrail.record import format_timestamp
from llmtrail.security.archive import ArchiveWriter, archive_location, inline_bodies
from llmtrail.security.erasure_files import remove_object
from llmtrail.security.retention import RetentionPolicies, RetentionPolicy
from llmtrail.span import Span
from llmtrail.store.interfaces import DataEraser, RecordSelection, SpanSelection, StateStore
from llmtrail.store.objects import ObjectStore

DEFAULT_PAGE = 2000  # records or spans a write (DuckDB: well under a second)


@dataclass
class WorkspaceRetention:
    """What one workspace's run deleted (or, dry, would delete)."""

    workspace: str
    policy: dict[str, Any]
    records: int = 0
    bodies: int = 0
    objects: int = 0
    spans: int = 0
    rollups: int = 0
    archived: list[str] = field(default_factory=list)


@dataclass
class RetentionReport:
    at: datetime
    dry_run: bool
    archive_dir: str | None
    workspaces: list[WorkspaceRetention] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": format_timestamp(self.at),
            "dryRun": self.dry_run,
            "archiveDir": self.archive_dir,
            "workspaces": [asdict(w) for w in self.workspaces],
        }


class RetentionRunner:
    """Applies the retention policies stored in ``state`` through ``eraser``."""

    def __init__(
        self,
        state: StateStore,
        eraser: DataEraser,
        objects: ObjectStore | None = None,
        archive_root: Path | None = None,
        page: int = DEFAULT_PAGE,
    ) -> None:
        self.policies = RetentionPolicies(state)
        self.eraser = eraser
        self.objects = objects
        self.archive_root = archive_root
        self.page = page

    def run(
        self, now: datetime, dry_run: bool = False, workspace: str | None = None
    ) -> RetentionReport:
        """Apply every workspace's policy at ``now`` (only ``workspace``'s when given)."""
        policies = self.policies.all()
        if workspace is not None:
            policies = {workspace: policies.get(workspace, RetentionPolicy())}
        files = (
            archive_location(self.archive_root, self.objects)
            if self.archive_root is not None
            else None
        )
        report = RetentionReport(now, dry_run, files.location if files is not None else None)
        writer = (
            ArchiveWriter(files, f"{now:%Y%m%dT%H%M%S}Z")
            if files is not None and not dry_run
            else None
        )
        for name, policy in sorted(policies.items()):
            done = WorkspaceRetention(name, policy.to_dict())
            if policy.deletes:
                archive = writer if policy.archive else None
                self._records(name, policy, now, dry_run, archive, done)
                self._bodies(name, policy, now, dry_run, archive, done)
                self._spans(name, policy, now, dry_run, archive, done)
                before = policy.cutoff(policy.records_days, now)
                if before is not None:
                    done.rollups = self.eraser.delete_rollups(name, before=before, dry_run=dry_run)
            if writer is not None:
                done.archived = list(writer.written.get(name, []))
            report.workspaces.append(done)
        if not dry_run and any(w.records or w.bodies or w.spans for w in report.workspaces):
            self.eraser.reclaim()
        return report

    def _records(
        self,
        workspace: str,
        policy: RetentionPolicy,
        now: datetime,
        dry_run: bool,
        archive: ArchiveWriter | None,
        done: WorkspaceRetention,
    ) -> None:
        before = policy.cutoff(policy.records_days, now)
        if before is None:
            return
        self._pages(RecordSelection(workspace, before=before), dry_run, archive, done, False)

    def _bodies(
        self,
        workspace: str,
        policy: RetentionPolicy,
        now: datetime,
        dry_run: bool,
        archive: ArchiveWriter | None,
        done: WorkspaceRetention,
    ) -> None:
        before = policy.cutoff(policy.bodies_days, now)
        if before is None:
            return
        start = policy.cutoff(policy.records_days, now)  # older ones went with their records
        selection = RecordSelection(workspace, start=start, before=before, with_body=True)
        self._pages(selection, dry_run, archive, done, True)

    def _pages(
        self,
        selection: RecordSelection,
        dry_run: bool,
        archive: ArchiveWriter | None,
        done: WorkspaceRetention,
        bodies_only: bool,
    ) -> None:
        after = None
        while True:
            page = self.eraser.select(
                dataclasses.replace(selection, after=after),
                self.page,
                full=archive is not None,
            )
            if not page.record_ids:
                return
            if not bodies_only:
                done.records += len(page.record_ids)
            done.bodies += page.bodies
            done.objects += len(page.objects)
            if not dry_run:
                if archive is not None:
                    read = self.objects.get if self.objects is not None else _unreadable
                    archive.records(
                        selection.workspace, [inline_bodies(r, read) for r in page.records]
                    )
                if self.objects is not None:
                    for uri in page.objects:
                        remove_object(self.objects, uri)
                self.eraser.delete_records(selection.workspace, page.record_ids, bodies_only)
            if page.after is None:
                return
            after = page.after

    def _spans(
        self,
        workspace: str,
        policy: RetentionPolicy,
        now: datetime,
        dry_run: bool,
        archive: ArchiveWriter | None,
        done: WorkspaceRetention,
    ) -> None:
        before = policy.cutoff(policy.spans_days, now)
        if before is None:
            return
        selection = SpanSelection(workspace, before=before)
        if dry_run:
            done.spans = self.eraser.delete_spans(selection, self.page, dry_run=True)
            return
        keep = None
        if archive is not None:

            def keep(spans: list[Span], writer: ArchiveWriter = archive) -> None:
                writer.spans(workspace, spans)

        while True:
            count = self.eraser.delete_spans(selection, self.page, keep=keep)
            done.spans += count
            if count < self.page:
                return


def _unreadable(uri: str) -> bytes:
    raise FileNotFoundError(uri)
