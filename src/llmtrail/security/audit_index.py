"""The reads index and the chain's head, written behind the appends by one thread.

"Who viewed this record's prompt" must not scan the log. Each entry whose target lists
request ids is also written, once per id, under ``audit-reads/<workspace>/<requestId>``
(key ``<server>/<seq>``, value the entry without its id list), so the viewers of one record
are one ``list`` of a small namespace. A bulk read naming 1,000 ids is 1,000 index entries
(one `StateStore.put_many` per batch), which is why this work is not done in
`AuditLog.record` (one put, on the caller's thread): appended
entries are handed to an `IndexWriter` thread, which writes their index entries and then the
chain's head (`audit_chain.HEADS`) — so the head is also the index's watermark. At start the
log catches up from the head to the chain's tail (entries a stopped server did not index),
so the index is complete again after a crash; until then `pending` holds the entries not yet
written, and `AuditLog.viewers` adds them, so this server's own reads show at once.

The index is derived data: `verify` checks the chain, not the index.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterable
from typing import Any

from llmtrail.security.audit_chain import (
    HEADS,
    reads_key,
    reads_namespace,
    request_ids,
    summary,
)
from llmtrail.store.interfaces import StateStore

log = logging.getLogger("llmtrail.audit")
RETRY_S = 1.0
_STOP = object()


class IndexWriter:
    """One daemon thread writing the reads index and head of one chain, in chain order."""

    def __init__(self, state: StateStore, server_id: str) -> None:
        self.state = state
        self.server_id = server_id
        self.failures = 0  # batches whose writing failed (and was retried)
        self._queue: queue.Queue[Any] = queue.Queue()
        self._pending: list[dict[str, Any]] = []  # submitted, not yet written, in order
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"llmtrail-audit-index-{server_id}", daemon=True
        )
        self._thread.start()

    def submit(self, entries: Iterable[dict[str, Any]]) -> None:
        """Index ``entries`` (appended entries, in sequence order) and move the head on."""
        batch = list(entries)
        if not batch:
            return
        with self._lock:
            self._pending.extend(batch)
        self._queue.put(batch)

    def pending(self) -> list[dict[str, Any]]:
        """Entries submitted but not yet written."""
        with self._lock:
            return list(self._pending)

    def flush(self) -> None:
        """Wait until every submitted entry is written (or the writer stopped)."""
        with self._idle:
            self._idle.wait_for(lambda: not self._pending or not self._thread.is_alive())

    def close(self) -> None:
        """Write what was submitted (one attempt each), then stop the thread."""
        self._queue.put(_STOP)
        self._stopping.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                break
            batch: list[dict[str, Any]] = list(item)
            while True:  # take whatever else is waiting: one head put for all of it
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is _STOP:
                    self._queue.put(_STOP)
                    break
                batch.extend(more)
            self._write_until_done(batch)
        with self._idle:
            self._pending.clear()  # what is left is caught up at the next start
            self._idle.notify_all()

    def _write_until_done(self, batch: list[dict[str, Any]]) -> None:
        while True:
            try:
                write_index(self.state, self.server_id, batch)
                break
            except Exception:
                self.failures += 1
                log.exception("audit: writing the reads index of %d entries failed", len(batch))
                if self._stopping.wait(RETRY_S):
                    break  # closing: the next start catches up from the head
        with self._idle:
            del self._pending[: len(batch)]
            self._idle.notify_all()


def write_index(state: StateStore, server_id: str, entries: list[dict[str, Any]]) -> None:
    """The index entries of ``entries``, then the head naming the last of them."""
    items: list[tuple[str, str, Any]] = []
    for entry in entries:
        ids = request_ids(entry)
        if not ids:
            continue
        kept = summary(entry)
        workspace = str(entry.get("workspace"))
        key = reads_key(server_id, entry["seq"])
        items.extend((reads_namespace(workspace, rid), key, kept) for rid in dict.fromkeys(ids))
    state.put_many(items)  # one write for the whole batch, not one per record
    last = entries[-1]
    state.put(HEADS, server_id, {"seq": last["seq"], "hash": last["hash"], "time": last["time"]})


def viewers_in_index(
    state: StateStore,
    workspace: str,
    request_id: str,
    pending: Callable[[], list[dict[str, Any]]] | None = None,
) -> list[dict[str, Any]]:
    """Every entry naming ``request_id`` of ``workspace``, newest first: the index, and the
    ``pending`` entries of this server not yet in it."""
    found = {
        (e.get("server"), e.get("seq")): e
        for e in state.list(reads_namespace(workspace, request_id)).values()
        if isinstance(e, dict)
    }
    for entry in pending() if pending else []:
        if entry.get("workspace") == workspace and request_id in request_ids(entry):
            found.setdefault((entry.get("server"), entry.get("seq")), summary(entry))
    return sorted(
        found.values(),
        key=lambda e: (str(e.get("time")), str(e.get("server")), e.get("seq") or 0),
        reverse=True,
    )
