"""Verifying the audit chains: every chain in the store, every link, and each chain's head.

A chain is read bucket by bucket in sequence order. For each key the walk checks that it is a
sequence number in its bucket, that the entry there is well formed, carries that number and
this chain's server, hashes to its ``hash`` (else it was **changed**), names the previous
entry's hash in ``prev`` (else an entry was **inserted**, **reordered** or replaced), and
that no number is skipped (else entries were **removed**). The head (`audit_chain.HEADS`)
must name an entry that exists with the same hash: a head beyond the last entry means the
tail was **cut off**. Entries after the head are normal for a moment (the head is written
just after the entries, see `audit_index`) and are reported as a note, not a problem.

The chains walked are the union of the registry (`audit_chain.CHAINS`), the heads and any
server ids the caller names, so deleting a chain's registry entry does not hide it while
its head remains — and a head without a registry entry is itself reported.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from llmtrail.security.audit_chain import (
    CHAINS,
    FIELDS,
    HEADS,
    bucket_namespace,
    bucket_of,
    entry_hash,
    genesis,
)
from llmtrail.store.interfaces import StateStore

_KEY = re.compile(r"[0-9]{12}")
MAX_PROBLEMS = 100  # per chain; a rewritten log would otherwise list every entry


@dataclass(frozen=True)
class Problem:
    """What is wrong at one place of one chain. ``seq`` is the entry's sequence number (None
    for the chain as a whole), ``key`` where in the store it was found."""

    server: str
    seq: int | None
    key: str | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"server": self.server, "seq": self.seq, "key": self.key, "reason": self.reason}

    def __str__(self) -> str:
        where = f"entry {self.seq}" if self.seq is not None else "chain"
        return f"{self.server} {where}: {self.reason}"


@dataclass
class ChainReport:
    server: str
    entries: int = 0
    last_seq: int | None = None
    head_seq: int | None = None
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "server": self.server,
            "ok": self.ok,
            "entries": self.entries,
            "lastSeq": self.last_seq,
            "headSeq": self.head_seq,
            "problems": [p.to_dict() for p in self.problems],
            "notes": self.notes,
        }


@dataclass
class VerifyReport:
    """Every chain's report; ``ok`` when none has a problem."""

    chains: list[ChainReport] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.chains)

    @property
    def problems(self) -> list[Problem]:
        return [p for c in self.chains for p in c.problems]

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "chains": [c.to_dict() for c in self.chains],
            "entries": sum(c.entries for c in self.chains),
            "problems": [p.to_dict() for p in self.problems],
        }


def verify_chains(state: StateStore, also: Iterable[str] = ()) -> VerifyReport:
    """Walk every chain the store knows of (and those of ``also``)."""
    registered = state.list(CHAINS)
    heads = state.list(HEADS)
    servers = sorted(set(registered) | set(heads) | set(also))
    report = VerifyReport()
    for server in servers:
        chain = verify_chain(state, server, heads.get(server))
        if server not in registered:
            chain.problems.insert(
                0, Problem(server, None, None, "the chain is missing from the registry")
            )
        report.chains.append(chain)
    return report


def verify_chain(state: StateStore, server: str, head: Any) -> ChainReport:
    """One chain's report; ``head`` is its head as read before the walk (so entries
    appended during the walk are after it)."""
    report = ChainReport(server)
    walk = _Walk(report, genesis(server))
    head_seq = head.get("seq") if isinstance(head, dict) else None
    if head is not None and not isinstance(head_seq, int):
        walk.problem(None, None, f"its head is malformed: {head!r:.200}")
        head_seq = None
    report.head_seq = head_seq
    bucket = 0
    last_bucket = bucket_of(head_seq) if head_seq is not None and head_seq >= 0 else 0
    while True:
        found = state.list(bucket_namespace(server, bucket))
        if not found and bucket > last_bucket:
            break
        for key, entry in found.items():
            walk.entry(bucket, key, entry)
        bucket += 1
    _check_head(walk, head, head_seq)
    return report


class _Walk:
    """The state of one chain's walk: the last good link and what was found wrong."""

    def __init__(self, report: ChainReport, first_prev: str) -> None:
        self.report = report
        self.expected_seq = 0
        self.prev_hash: str | None = first_prev
        self.hashes: dict[int, str] = {}

    def problem(self, seq: int | None, key: str | None, reason: str) -> None:
        problems = self.report.problems
        if len(problems) < MAX_PROBLEMS:
            problems.append(Problem(self.report.server, seq, key, reason))
        elif len(problems) == MAX_PROBLEMS:
            problems.append(Problem(self.report.server, None, None, "more problems not listed"))

    def entry(self, bucket: int, key: str, entry: Any) -> None:
        self.report.entries += 1
        if _KEY.fullmatch(key) is None or bucket_of(int(key)) != bucket:
            self.problem(None, key, f"an unexpected key in bucket {bucket} (inserted)")
            return
        at = int(key)
        if not isinstance(entry, dict) or not entry.keys() >= FIELDS or "hash" not in entry:
            self.problem(at, key, "not a well-formed entry (changed)")
            self._skip_to(at, None)
            return
        seq = entry["seq"]
        if seq != at:
            self.problem(at, key, f"holds entry {seq!r}: moved here (inserted or reordered)")
        if entry["server"] != self.report.server:
            self.problem(at, key, f"belongs to the chain of {entry['server']!r}")
        if entry_hash(entry) != entry["hash"]:
            self.problem(at, key, "changed: its content does not match its hash")
        if at > self.expected_seq:
            gone = f"{self.expected_seq}" if at == self.expected_seq + 1 else (
                f"{self.expected_seq} to {at - 1}"
            )  # fmt: skip
            self.problem(at, key, f"entries {gone} before it are missing (removed)")
        elif self.prev_hash is not None and entry["prev"] != self.prev_hash:
            self.problem(
                at,
                key,
                f"its prev does not match the hash of entry {at - 1} "
                "(an entry was inserted, reordered or replaced)",
            )
        self._skip_to(at, entry["hash"] if isinstance(entry["hash"], str) else None)

    def _skip_to(self, at: int, hash_: str | None) -> None:
        self.expected_seq = at + 1
        self.prev_hash = hash_
        if hash_ is not None:
            self.hashes[at] = hash_
        self.report.last_seq = at


def _check_head(walk: _Walk, head: Any, head_seq: int | None) -> None:
    report = walk.report
    last = report.last_seq
    if head_seq is None:
        if last is not None and head is None:
            report.notes.append(
                f"no head yet; {last + 1} entries not covered by one (a chain started a "
                "moment ago, or its server stopped before writing its head)"
            )
        return
    if head_seq < 0:
        return
    if last is None or head_seq > last:
        ends = "has no entries" if last is None else f"ends at entry {last}"
        walk.problem(
            head_seq, None, f"truncated: the head names entry {head_seq} but the chain {ends}"
        )
        return
    # an entry missing at the head was reported as removed
    if head_seq in walk.hashes and walk.hashes[head_seq] != head.get("hash"):
        walk.problem(head_seq, None, "the head's hash does not match this entry (rewritten)")
    if last > head_seq:
        report.notes.append(f"{last - head_seq} entries after the head (written a moment ago)")
