"""The audit log: who changed what and who read which prompts, append-only and hash-chained.

Surfaces call `AuditLog.record` once per request — a management change, or a read of
bodies naming the request ids it returned (one entry per request, not per record). It costs
one StateStore put on the caller's thread and never raises into the request: a failure is
logged and counted (`failures`), the request goes on. Each server appends to its own chain
(`audit_chain` describes the format and layout), keeping the next sequence number and the
last hash in memory under a lock; a new `AuditLog` over the same store and server id loads
the chain's tail and continues it. The reads index and the head are written just behind, by
one thread (`audit_index`). `verify` walks every chain in the store (`audit_verify`).

The server id must be stable across restarts and unique among the servers sharing a store
(two processes appending to one chain would fork it): `server_identity` keeps one in the data
directory.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import socket
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from llmtrail.security.audit_chain import (
    CHAINS,
    HEADS,
    check_server_id,
    entry_hash,
    entry_key,
    entry_namespace,
    genesis,
    short_text,
    small_target,
    utc_text,
)
from llmtrail.security.audit_entries import (
    AuditPage,
    EntryFilter,
    chain_tails,
    check_limit,
    decode_cursor,
    index_page,
    later_entries,
    scan_page,
)
from llmtrail.security.audit_index import IndexWriter, viewers_in_index
from llmtrail.security.audit_verify import VerifyReport, verify_chains
from llmtrail.security.principal import Principal
from llmtrail.store.interfaces import StateStore

__all__ = ["AuditLog", "AuditPage", "VerifyReport", "server_identity"]

log = logging.getLogger("llmtrail.audit")
SERVER_ID_FILE = "server-id"
Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class AuditLog:
    """One server's chain in ``state``, and reads over every chain there."""

    def __init__(self, state: StateStore, server_id: str, clock: Clock = _utc_now) -> None:
        self.state = state
        self.server_id = check_server_id(server_id)
        self.clock = clock
        self.failures = 0  # entries that could not be written
        self._lock = threading.Lock()
        if state.get(CHAINS, server_id) is None:
            created = {
                "server": server_id,
                "created": utc_text(clock()),
                "genesis": genesis(server_id),
            }
            state.put(CHAINS, server_id, created)
        self._next_seq, self._prev, unindexed = self._load_tail()
        self._index = IndexWriter(state, server_id)
        self._index.submit(unindexed)

    def _load_tail(self) -> tuple[int, str, list[dict[str, Any]]]:
        """The next sequence number, the last hash, and the entries after the head."""
        head = self.state.get(HEADS, self.server_id)
        head_seq = head.get("seq") if isinstance(head, dict) else None
        at = head_seq if isinstance(head_seq, int) else -1
        later = [e for e in later_entries(self.state, self.server_id, at) if _seq(e) is not None]
        if later:
            return int(later[-1]["seq"]) + 1, str(later[-1].get("hash")), later
        if at >= 0 and isinstance(head, dict):
            if self.state.get(entry_namespace(self.server_id, at), entry_key(at)) is None:
                log.warning(
                    "audit: the chain of %s ends before its head (entry %d): continuing after "
                    "the head, so verify reports the missing entries",
                    self.server_id,
                    at,
                )
            return at + 1, str(head.get("hash")), []
        return 0, genesis(self.server_id), []

    def record(
        self,
        principal: Principal,
        action: str,
        *,
        surface: str,
        source: str | None,
        target: Mapping[str, Any] | None = None,
        outcome: int = 200,
        workspace: str | None = None,
    ) -> None:
        """Append one entry; never raises. ``action`` is what was done (``PUT
        /api/budgets/x``, ``read-bodies``), ``surface`` through what (api, query, ui,
        export, cli, traces …), ``source`` the client's address, ``target`` a small dict:
        ``{"requestIds": [...]}`` for a read of bodies (capped at 1,000 ids, ``count``
        keeps the total), or the resource changed. ``workspace`` defaults to the
        principal's."""
        try:
            self.append(
                principal,
                action,
                surface=surface,
                source=source,
                target=target,
                outcome=outcome,
                workspace=workspace,
            )
        except Exception:
            with self._lock:
                self.failures += 1
            log.exception("audit: could not record %r by %s", action, _actor_of(principal))

    def append(
        self,
        principal: Principal,
        action: str,
        *,
        surface: str,
        source: str | None,
        target: Mapping[str, Any] | None = None,
        outcome: int = 200,
        workspace: str | None = None,
    ) -> dict[str, Any]:
        """`record`, raising what the store raised; the entry written."""
        fields: dict[str, Any] = {
            "actor": short_text(principal.actor),
            "role": short_text(principal.role),
            "keyId": short_text(principal.key_id),
            "workspace": short_text(workspace if workspace is not None else principal.workspace),
            "action": short_text(action),
            "surface": short_text(surface),
            "source": short_text(source),
            "target": small_target(target),
            "outcome": outcome if isinstance(outcome, int) and not isinstance(outcome, bool) else 0,
            "server": self.server_id,
        }
        with self._lock:
            seq = self._next_seq
            entry = {**fields, "seq": seq, "time": utc_text(self.clock()), "prev": self._prev}
            digest = entry_hash(entry)
            entry["hash"] = digest
            self.state.put(entry_namespace(self.server_id, seq), entry_key(seq), entry)
            self._next_seq = seq + 1
            self._prev = digest
            self._index.submit([entry])
        return entry

    def entries(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        actor: str | None = None,
        workspace: str | None = None,
        request_id: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> AuditPage:
        """A page of entries of every chain, newest first (`audit_entries`). Raises
        `ValidationError` for a bad limit or cursor."""
        check_limit(limit)
        where = EntryFilter(since, until, actor, workspace, request_id)
        position = decode_cursor(cursor)
        if workspace is not None and request_id is not None:
            return index_page(self.state, self.viewers, where, limit, position)
        tails = chain_tails(self.state)
        with self._lock:
            tails[self.server_id] = self._next_seq - 1
        return scan_page(self.state, tails, where, limit, position)

    def viewers(self, workspace: str, request_id: str) -> list[dict[str, Any]]:
        """Every entry naming ``request_id`` in ``workspace`` (who read its prompt and
        answer, and when), newest first, from the reads index: one ``list`` of that record's
        namespace, never a scan of the log. Entries hold everything but the target's id
        list."""
        return viewers_in_index(self.state, workspace, request_id, self._index.pending)

    def verify(self) -> VerifyReport:
        """Walk every chain in the store; the report says which entries are wrong and why."""
        return verify_chains(self.state, also=[self.server_id])

    @property
    def index_failures(self) -> int:
        """Batches of the reads index and head whose writing failed (then retried)."""
        return self._index.failures

    def flush(self) -> None:
        """Wait until the reads index and the head cover every entry appended."""
        self._index.flush()

    def close(self) -> None:
        """Write what the index still owes and stop its thread (the store stays open)."""
        self._index.close()


def _seq(entry: dict[str, Any]) -> int | None:
    seq = entry.get("seq")
    return seq if isinstance(seq, int) and not isinstance(seq, bool) else None


def _actor_of(principal: Any) -> str:
    try:
        return str(principal.actor)
    except Exception:
        return repr(principal)


def server_identity(data_dir: Path) -> str:
    """This server's audit chain id, kept in ``DATA_DIR/server-id``: made at first start
    from the host name and 8 random hex digits (so two servers with their own data
    directories never share a chain, even on one host), then read back on every start."""
    path = Path(data_dir) / SERVER_ID_FILE
    try:
        return check_server_id(path.read_text().strip())
    except FileNotFoundError:
        pass
    host = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname()).strip(".-_")[:60] or "server"
    made = f"{host}-{secrets.token_hex(4)}"
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{SERVER_ID_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
    draft.write_text(made + "\n")
    try:
        os.link(draft, path)  # whole or not at all, and never over another process's id
    except FileExistsError:
        made = check_server_id(path.read_text().strip())
    finally:
        draft.unlink()
    return made
