"""The audit chain's format: where entries live in the StateStore, how an entry is hashed,
and how its target is kept small.

Every server appends to its own chain, so that servers sharing one store never contend for
a sequence number. A chain is a run of entries numbered from 0; entry ``n`` names the hash
of entry ``n-1`` in ``prev`` (entry 0 names the chain's genesis value, derived from the
server id, so that one server's entries cannot be passed off as another's), and its own
``hash`` is SHA-256 over the entry without ``hash``, serialised canonically (orjson, keys
sorted). Changing, removing, inserting or reordering an entry breaks a link that `verify`
finds; recomputing every hash after a change is only caught by the head (below) — the chain
is tamper-evident against edits, not against someone who rewrites the whole log and its head.

Layout in the StateStore (namespaces are listed whole, so a chain is cut into buckets of
`BUCKET` entries, and a read of one page or of the tail never loads the whole log):

- ``audit/<server>/<bucket>`` key ``<seq>``: the entries (both numbers zero-padded, so
  ``list`` returns them in order);
- ``audit-chains`` key ``<server>``: the registry of chains, written when a chain starts;
- ``audit-heads`` key ``<server>``: the chain's head, ``{"seq", "hash", "time"}`` of the last
  entry indexed, so a tail cut off (entries removed from the end) is detected;
- ``audit-reads/<workspace>/<requestId>`` key ``<server>/<seq>``: the reads index (see
  `audit_index`).
"""

from __future__ import annotations

import hashlib
import re
import urllib.parse
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

BUCKET = 1000
MAX_TARGET_IDS = 1000  # request ids listed in one entry's target; the rest only counted
MAX_TEXT = 512  # characters kept of an action, surface, source, actor …
MAX_TARGET_BYTES = 256 * 1024
CHAINS = "audit-chains"
HEADS = "audit-heads"
SERVER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
# what every well-formed entry holds, besides ``hash``
FIELDS = frozenset(
    {"seq", "time", "server", "actor", "role", "keyId", "workspace", "action", "surface"}
    | {"source", "target", "outcome", "prev"}
)


def check_server_id(server_id: str) -> str:
    """``server_id`` if it can name a chain (letters, digits, ``. _ -``; up to 100)."""
    if not isinstance(server_id, str) or SERVER_ID.fullmatch(server_id) is None:
        raise ValueError(
            f"an audit server id must be 1 to 100 letters, digits, '.', '_' or '-', "
            f"got {server_id!r}"
        )
    return server_id


def genesis(server_id: str) -> str:
    """The ``prev`` of a chain's first entry."""
    return hashlib.sha256(f"llmtrail audit chain genesis/{server_id}".encode()).hexdigest()


def bucket_of(seq: int) -> int:
    return seq // BUCKET


def bucket_namespace(server_id: str, bucket: int) -> str:
    return f"audit/{server_id}/{bucket:09d}"


def entry_namespace(server_id: str, seq: int) -> str:
    return bucket_namespace(server_id, bucket_of(seq))


def entry_key(seq: int) -> str:
    return f"{seq:012d}"


def reads_namespace(workspace: str, request_id: str) -> str:
    """The reads index of one record; both parts percent-encoded, so neither can contain
    the separator."""
    quote = urllib.parse.quote
    return f"audit-reads/{quote(workspace, safe='')}/{quote(request_id, safe='')}"


def reads_key(server_id: str, seq: int) -> str:
    return f"{server_id}/{entry_key(seq)}"


def entry_hash(entry: Mapping[str, Any]) -> str:
    """SHA-256 over the canonical serialisation of ``entry`` without its ``hash``."""
    body = {k: v for k, v in entry.items() if k != "hash"}
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


def utc_text(moment: datetime) -> str:
    """UTC, ISO 8601 with microseconds and ``Z``: sorts as text in time order."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def short_text(value: Any) -> str | None:
    """A text field of an entry: None stays None, anything else is text cut at `MAX_TEXT`."""
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    return text[:MAX_TEXT]


def small_target(target: Mapping[str, Any] | None) -> dict[str, Any]:
    """``target`` as JSON that hashes the same after a trip through the store: request ids
    capped at `MAX_TARGET_IDS` with their full ``count`` kept, anything orjson cannot write
    replaced by a description of it, and the whole bounded in size."""
    found = dict(target or {})
    ids = found.get("requestIds")
    if ids is not None:
        listed = [str(i) for i in ids] if isinstance(ids, list | tuple | set) else [str(ids)]
        found["requestIds"] = listed[:MAX_TARGET_IDS]
        found.setdefault("count", len(listed))
        if len(listed) > MAX_TARGET_IDS:
            found["idsTruncated"] = True
    try:
        text = orjson.dumps(found, option=orjson.OPT_NON_STR_KEYS)
    except TypeError as exc:
        return {"unserialisable": short_text(f"{exc}: {found!r}")}
    if len(text) > MAX_TARGET_BYTES:
        return {"truncated": True, "bytes": len(text), "keys": sorted(map(str, found))[:100]}
    value: dict[str, Any] = orjson.loads(text)
    return value


def request_ids(entry: Mapping[str, Any]) -> list[str]:
    """The request ids an entry's target lists (empty for a management change)."""
    target = entry.get("target")
    ids = target.get("requestIds") if isinstance(target, dict) else None
    return [i for i in ids if isinstance(i, str)] if isinstance(ids, list) else []


def summary(entry: Mapping[str, Any]) -> dict[str, Any]:
    """What the reads index keeps of an entry: everything but the target's id list."""
    kept = {k: v for k, v in entry.items() if k != "target"}
    target = entry.get("target")
    if isinstance(target, dict):
        kept["target"] = {k: v for k, v in target.items() if k != "requestIds"}
    return kept
