"""Reading the audit log: pages of entries, newest first, over every chain in the store.

Each chain is read backwards bucket by bucket from its tail; the chains are merged by
``(time, server, seq)``. The cursor holds, per chain, the last sequence number handed out,
so the next page continues each chain where it stopped without reading it again. A page
reads at most `MAX_SCAN` entries: with a selective filter over a long log it may come back
short (even empty) with a cursor, and the caller asks again. ``since`` stops a chain's walk at
the first bucket older than it (a chain's entries are in time order, being appended under
one lock with the clock read there).

With both ``workspace`` and ``request_id``, the reads index answers instead of a walk
(`audit_index.viewers_in_index`), and each entry found is read whole from its chain.
"""

from __future__ import annotations

import base64
import binascii
import heapq
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from llmtrail.errors import ValidationError
from llmtrail.security.audit_chain import (
    BUCKET,
    CHAINS,
    HEADS,
    bucket_namespace,
    bucket_of,
    entry_key,
    entry_namespace,
    request_ids,
    utc_text,
)
from llmtrail.store.interfaces import StateStore

MAX_LIMIT = 1000
MAX_SCAN = 50_000


@dataclass(frozen=True)
class EntryFilter:
    """Which entries a page holds; None matches anything."""

    since: datetime | None = None
    until: datetime | None = None  # exclusive
    actor: str | None = None
    workspace: str | None = None
    request_id: str | None = None

    def matches(self, entry: dict[str, Any]) -> bool:
        time = str(entry.get("time"))
        return (
            (self.since is None or time >= utc_text(self.since))
            and (self.until is None or time < utc_text(self.until))
            and (self.actor is None or entry.get("actor") == self.actor)
            and (self.workspace is None or entry.get("workspace") == self.workspace)
            and (self.request_id is None or self.request_id in request_ids(entry))
        )


@dataclass
class AuditPage:
    """One page: the entries, newest first, and the cursor of the next (None at the end)."""

    entries: list[dict[str, Any]]
    cursor: str | None
    scanned: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"entries": self.entries, "nextCursor": self.cursor, "scanned": self.scanned}


def order_key(entry: dict[str, Any]) -> tuple[str, str, int]:
    seq = entry.get("seq")
    return str(entry.get("time")), str(entry.get("server")), seq if isinstance(seq, int) else -1


def encode_cursor(value: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(value)).decode().rstrip("=")


def decode_cursor(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (ValueError, binascii.Error, orjson.JSONDecodeError):
        value = None
    if not isinstance(value, dict) or not isinstance(value.get("pos", {}), dict):
        raise ValidationError("cursor", "is not a cursor of this audit log")
    return value


def check_limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise ValidationError("limit", f"must be an integer from 1 to {MAX_LIMIT}, got {limit!r}")
    return limit


def later_entries(state: StateStore, server: str, after: int) -> list[dict[str, Any]]:
    """The entries of a chain after sequence number ``after``, in order, read from the
    bucket holding ``after + 1`` onwards until a bucket ends short (the tail)."""
    found: list[dict[str, Any]] = []
    bucket = bucket_of(after + 1)
    while True:
        listed = state.list(bucket_namespace(server, bucket))
        for key, entry in listed.items():
            if key.isdigit() and int(key) > after and isinstance(entry, dict):
                found.append(entry)
        if entry_key((bucket + 1) * BUCKET - 1) not in listed:
            return found
        bucket += 1


def chain_tails(state: StateStore) -> dict[str, int]:
    """Every chain's last sequence number: its head, and any entries written after it."""
    tails: dict[str, int] = {}
    heads = state.list(HEADS)
    for server in sorted(set(heads) | set(state.list(CHAINS))):
        head = heads.get(server)
        seq = head.get("seq") if isinstance(head, dict) else None
        at = seq if isinstance(seq, int) else -1
        later = later_entries(state, server, at)
        tails[server] = later[-1]["seq"] if later and isinstance(later[-1].get("seq"), int) else at
    return tails


def descending(
    state: StateStore, server: str, start: int, since: datetime | None
) -> Iterator[dict[str, Any]]:
    """A chain's entries from ``start`` down to 0 (or to the first bucket older than
    ``since``)."""
    floor = utc_text(since) if since is not None else None
    bucket = bucket_of(start) if start >= 0 else -1
    while bucket >= 0:
        listed = state.list(bucket_namespace(server, bucket))
        newest = ""
        for key in sorted(listed, reverse=True):
            entry = listed[key]
            if not key.isdigit() or int(key) > start or not isinstance(entry, dict):
                continue
            newest = max(newest, str(entry.get("time")))
            yield entry
        if floor is not None and listed and newest < floor:
            return
        bucket -= 1


def scan_page(
    state: StateStore,
    tails: dict[str, int],
    where: EntryFilter,
    limit: int,
    cursor: dict[str, Any] | None,
) -> AuditPage:
    """A page by walking the chains (see the module's docstring)."""
    positions: dict[str, int] = dict(tails)
    if cursor is not None:  # chains started after the first page hold nothing older
        positions = {s: int(p) for s, p in cursor.get("pos", {}).items() if isinstance(p, int)}
    walks = [
        _tagged(server, descending(state, server, start, where.since))
        for server, start in positions.items()
        if start >= 0
    ]
    merged = heapq.merge(*walks, key=lambda pair: order_key(pair[1]), reverse=True)
    found: list[dict[str, Any]] = []
    scanned = 0
    more = False
    for server, entry in merged:
        scanned += 1
        seq = entry.get("seq")
        positions[server] = (seq if isinstance(seq, int) else positions[server]) - 1
        if where.matches(entry):
            found.append(entry)
        if len(found) >= limit or scanned >= MAX_SCAN:
            more = any(p >= 0 for p in positions.values())
            break
    next_cursor = encode_cursor({"pos": positions}) if more else None
    return AuditPage(found, next_cursor, scanned)


def _tagged(server: str, entries: Iterator[dict[str, Any]]) -> Iterator[tuple[str, Any]]:
    for entry in entries:
        yield server, entry


def index_page(
    state: StateStore,
    viewers: Callable[[str, str], list[dict[str, Any]]],
    where: EntryFilter,
    limit: int,
    cursor: dict[str, Any] | None,
) -> AuditPage:
    """A page of the entries naming one request id, from the reads index."""
    assert where.workspace is not None and where.request_id is not None
    after = cursor.get("after") if cursor else None
    found: list[dict[str, Any]] = []
    listed = viewers(where.workspace, where.request_id)
    for brief in listed:
        key = order_key(brief)
        seq = brief.get("seq")
        if not isinstance(seq, int) or (isinstance(after, list) and list(key) >= after):
            continue
        entry = state.get(entry_namespace(str(brief["server"]), seq), entry_key(seq))
        if isinstance(entry, dict) and where.matches(entry):
            found.append(entry)
            if len(found) == limit:
                break
    last = order_key(found[-1]) if found else None
    more = last is not None and len(found) == limit and list(order_key(listed[-1])) < list(last)
    return AuditPage(
        found, encode_cursor({"after": list(last)}) if more and last else None, len(listed)
    )
