"""The audit chain on a real DuckDB file and in memory: appends, continuation by a second
`AuditLog`, tampering found by verify (through the StateStore and through the DuckDB file
itself), concurrent appends, a failing store that never reaches the caller, the reads index,
and paging."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest

from llmtrail.errors import ValidationError
from llmtrail.security.audit import AuditLog, server_identity
from llmtrail.security.audit_chain import (
    BUCKET,
    CHAINS,
    HEADS,
    MAX_TARGET_IDS,
    entry_hash,
    entry_key,
    entry_namespace,
    genesis,
)
from llmtrail.security.principal import OPEN, ROLES, Principal
from llmtrail.store.duckdb import Database, DuckDBStateStore
from llmtrail.store.interfaces import StateStore
from llmtrail.store.memory import MemoryStateStore

ALICE = Principal("admin", "team-a", "k_alice", ROLES["admin"], via="bearer")
BOB = Principal("reader", "team-a", "k_bob", ROLES["reader"], via="bearer")
CAROL = Principal("admin", "team-b", "k_carol", ROLES["admin"], via="bearer")


class Clock:
    """A clock the test moves: one second per reading."""

    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture(params=["duckdb", "memory"])
def state(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateStore]:
    store: StateStore
    if request.param == "duckdb":
        store = DuckDBStateStore(Database(tmp_path / "llmtrail.duckdb"))
    else:
        store = MemoryStateStore()
    yield store
    store.close()


@pytest.fixture
def logs() -> Iterator[Callable[..., AuditLog]]:
    """Makes `AuditLog`s and closes them after the test."""
    made: list[AuditLog] = []

    def make(state: StateStore, server_id: str = "srv-1", **kwargs: Any) -> AuditLog:
        audit = AuditLog(state, server_id, **kwargs)
        made.append(audit)
        return audit

    yield make
    for audit in made:
        audit.close()


def read(audit: AuditLog, principal: Principal, *ids: str, surface: str = "api") -> None:
    audit.record(
        principal,
        "read-bodies",
        surface=surface,
        source="127.0.0.1",
        target={"requestIds": list(ids)},
    )


def change(audit: AuditLog, principal: Principal, name: str) -> None:
    target = {"resource": f"budgets/{name}"}
    audit.record(principal, f"PUT /api/budgets/{name}", surface="api", source="::1", target=target)


def chain(state: StateStore, server: str = "srv-1") -> list[dict[str, Any]]:
    """Every stored entry of a chain, in key order, read through the store."""
    found: list[dict[str, Any]] = []
    bucket = 0
    while listed := state.list(f"audit/{server}/{bucket:09d}"):
        found += listed.values()
        bucket += 1
    return found


def problems(audit: AuditLog) -> list[tuple[int | None, str]]:
    return [(p.seq, p.reason) for p in audit.verify().problems]


# -- appending -------------------------------------------------------------------------------


def test_entries_are_chained_and_hold_who_what_where(state: StateStore, logs: Any) -> None:
    clock = Clock()
    audit = logs(state, clock=clock)
    change(audit, ALICE, "monthly")
    read(audit, BOB, "r-1", "r-2", surface="query")
    audit.flush()
    first, second = chain(state)
    assert first["prev"] == genesis("srv-1")
    assert second["prev"] == first["hash"]
    for entry in (first, second):
        assert entry["hash"] == entry_hash(entry)
    assert {k: second[k] for k in ("seq", "actor", "role", "keyId", "workspace", "surface")} == {
        "seq": 1,
        "actor": "key/k_bob",
        "role": "reader",
        "keyId": "k_bob",
        "workspace": "team-a",
        "surface": "query",
    }
    assert second["target"] == {"requestIds": ["r-1", "r-2"], "count": 2}
    assert second["time"] == "2026-12-01T09:00:03.000000Z"  # the registry read the clock first
    assert first["action"] == "PUT /api/budgets/monthly" and first["outcome"] == 200
    assert state.get(HEADS, "srv-1") == {"seq": 1, "hash": second["hash"], "time": second["time"]}
    assert audit.verify().ok


def test_a_second_log_continues_the_chain(state: StateStore, logs: Any) -> None:
    first = logs(state)
    for n in range(3):
        change(first, ALICE, f"b{n}")
    first.close()
    second = logs(state)
    change(second, CAROL, "b3")
    entries = chain(state)
    assert [e["seq"] for e in entries] == [0, 1, 2, 3]
    assert entries[3]["prev"] == entries[2]["hash"]
    assert second.verify().ok and second.failures == 0


def test_a_chain_continues_across_buckets(logs: Any) -> None:
    state = MemoryStateStore()
    audit = logs(state)
    for n in range(BUCKET + 5):
        change(audit, ALICE, f"b{n}")
    audit.close()
    again = logs(state)
    change(again, ALICE, "last")
    entries = chain(state)
    assert [e["seq"] for e in entries] == list(range(BUCKET + 6))
    assert state.get(entry_namespace("srv-1", BUCKET), entry_key(BUCKET)) == entries[BUCKET]
    report = again.verify()
    assert report.ok and report.chains[0].entries == BUCKET + 6


def test_a_large_read_lists_a_thousand_ids_and_counts_them_all(
    state: StateStore, logs: Any
) -> None:
    audit = logs(state)
    ids = [f"r-{n}" for n in range(MAX_TARGET_IDS + 500)]
    read(audit, BOB, *ids)
    (entry,) = chain(state)
    assert entry["target"]["requestIds"] == ids[:MAX_TARGET_IDS]
    assert entry["target"]["count"] == len(ids) and entry["target"]["idsTruncated"] is True


# -- tampering -------------------------------------------------------------------------------


def five(state: StateStore, logs: Any) -> AuditLog:
    audit = logs(state)
    for n in range(5):
        change(audit, ALICE, f"b{n}")
    audit.flush()
    assert audit.verify().ok
    return audit


def put_entry(state: StateStore, seq: int, entry: dict[str, Any]) -> None:
    state.put(entry_namespace("srv-1", seq), entry_key(seq), entry)


def test_verify_finds_a_changed_field(state: StateStore, logs: Any) -> None:
    audit = five(state, logs)
    entry = chain(state)[2]
    put_entry(state, 2, {**entry, "actor": "key/someone-else"})
    assert problems(audit) == [(2, "changed: its content does not match its hash")]


def test_verify_finds_a_removed_entry(state: StateStore, logs: Any) -> None:
    audit = five(state, logs)
    state.delete(entry_namespace("srv-1", 1), entry_key(1))
    assert problems(audit) == [(2, "entries 1 before it are missing (removed)")]


def test_verify_finds_an_inserted_entry(state: StateStore, logs: Any) -> None:
    audit = five(state, logs)
    entries = chain(state)
    for entry in reversed(entries[2:]):  # make room at 2: 2..4 move to 3..5
        put_entry(state, entry["seq"] + 1, entry)
    forged = {**entries[1], "seq": 2, "prev": entries[1]["hash"], "action": "nothing to see"}
    forged["hash"] = entry_hash(forged)  # a well-made entry that links to its predecessor
    put_entry(state, 2, forged)
    found = problems(audit)
    assert found[0][0] == 3 and "holds entry 2: moved here" in found[0][1]
    assert any(seq == 3 and "prev does not match" in reason for seq, reason in found)


def test_verify_finds_reordered_entries(state: StateStore, logs: Any) -> None:
    audit = five(state, logs)
    entries = chain(state)
    put_entry(state, 1, entries[3])
    put_entry(state, 3, entries[1])
    found = problems(audit)
    assert {seq for seq, _ in found} == {1, 2, 3, 4}  # every link into and out of a swap
    assert (1, "holds entry 3: moved here (inserted or reordered)") in found


def test_verify_finds_renumbered_entries_by_their_hash(state: StateStore, logs: Any) -> None:
    audit = five(state, logs)
    entries = chain(state)
    put_entry(state, 1, {**entries[3], "seq": 1})
    put_entry(state, 3, {**entries[1], "seq": 3})
    found = problems(audit)
    assert (1, "changed: its content does not match its hash") in found
    assert (3, "changed: its content does not match its hash") in found


def test_verify_finds_a_cut_off_tail(state: StateStore, logs: Any) -> None:
    audit = five(state, logs)
    for seq in (3, 4):
        state.delete(entry_namespace("srv-1", seq), entry_key(seq))
    assert problems(audit) == [
        (4, "truncated: the head names entry 4 but the chain ends at entry 2")
    ]


def test_verify_finds_a_rewritten_suffix_by_the_head(state: StateStore, logs: Any) -> None:
    audit = five(state, logs)
    entries = chain(state)
    prev = entries[1]["hash"]
    for entry in entries[2:]:  # change entry 2 and recompute every later link
        rewritten = {**entry, "prev": prev}
        if entry["seq"] == 2:
            rewritten["actor"] = "key/someone-else"
        rewritten["hash"] = prev = entry_hash(rewritten)
        put_entry(state, entry["seq"], rewritten)
    assert problems(audit) == [(4, "the head's hash does not match this entry (rewritten)")]


def test_a_log_started_on_a_cut_chain_keeps_the_gap_visible(state: StateStore, logs: Any) -> None:
    five(state, logs).close()
    for seq in (3, 4):
        state.delete(entry_namespace("srv-1", seq), entry_key(seq))
    again = logs(state)
    change(again, ALICE, "after")
    assert chain(state)[-1]["seq"] == 5
    assert problems(again) == [(5, "entries 3 to 4 before it are missing (removed)")]


def test_verify_finds_tampering_in_the_duckdb_file(tmp_path: Path, logs: Any) -> None:
    path = tmp_path / "llmtrail.duckdb"
    state = DuckDBStateStore(Database(path))
    five(state, logs).close()
    state.close()
    with duckdb.connect(str(path)) as conn:
        (value,) = conn.execute(
            "SELECT value FROM state WHERE namespace = ? AND key = ?",
            [entry_namespace("srv-1", 3), entry_key(3)],
        ).fetchone() or (None,)
        entry = orjson.loads(value)
        entry["outcome"] = 403
        conn.execute(
            "UPDATE state SET value = ? WHERE namespace = ? AND key = ?",
            [orjson.dumps(entry).decode(), entry_namespace("srv-1", 3), entry_key(3)],
        )
        conn.execute(
            "DELETE FROM state WHERE namespace = ? AND key = ?",
            [entry_namespace("srv-1", 1), entry_key(1)],
        )
    reopened = DuckDBStateStore(Database(path))
    try:
        audit = logs(reopened)
        assert problems(audit) == [
            (2, "entries 1 before it are missing (removed)"),
            (3, "changed: its content does not match its hash"),
        ]
        audit.close()
    finally:
        reopened.close()


def test_verify_walks_every_server_of_the_store(state: StateStore, logs: Any) -> None:
    one, two = logs(state, "srv-1"), logs(state, "srv-2")
    for n in range(3):
        change(one, ALICE, f"one-{n}")
        change(two, CAROL, f"two-{n}")
    one.flush()
    two.flush()
    report = one.verify()
    assert report.ok and [(c.server, c.entries) for c in report.chains] == [
        ("srv-1", 3),
        ("srv-2", 3),
    ]
    moved = {**chain(state, "srv-1")[1], "server": "srv-2"}
    state.put(entry_namespace("srv-2", 1), entry_key(1), moved)
    state.delete(CHAINS, "srv-1")
    found = [(p.server, p.seq, p.reason) for p in one.verify().problems]
    assert ("srv-1", None, "the chain is missing from the registry") in found
    assert ("srv-2", 1, "changed: its content does not match its hash") in found


# -- concurrency and failures ----------------------------------------------------------------


def test_concurrent_appends_keep_one_valid_chain(state: StateStore, logs: Any) -> None:
    audit = logs(state)
    per_thread = 40
    principals = [ALICE, BOB, CAROL, OPEN]

    def work(principal: Principal) -> None:
        for n in range(per_thread):
            read(audit, principal, f"{principal.actor}-{n}")

    threads = [threading.Thread(target=work, args=(p,)) for p in principals]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    audit.flush()
    entries = chain(state)
    assert [e["seq"] for e in entries] == list(range(per_thread * len(principals)))
    assert audit.verify().ok and audit.failures == 0
    for p in principals:  # every thread's entries, in its own order
        mine = [e["target"]["requestIds"][0] for e in entries if e["actor"] == p.actor]
        assert mine == [f"{p.actor}-{n}" for n in range(per_thread)]


class FailingStore(MemoryStateStore):
    """A StateStore whose writes fail while ``failing`` is set (a disk full, a lost
    connection)."""

    def __init__(self) -> None:
        super().__init__()
        self.failing = False

    def put(self, namespace: str, key: str, value: Any) -> None:
        if self.failing:
            raise OSError("No space left on device")
        super().put(namespace, key, value)


def test_record_never_raises_when_the_store_fails(logs: Any, caplog: Any) -> None:
    state = FailingStore()
    audit = logs(state)
    change(audit, ALICE, "before")
    audit.flush()
    state.failing = True
    change(audit, ALICE, "lost")  # must not raise
    read(audit, BOB, "r-1")
    assert audit.failures == 2
    assert "could not record 'PUT /api/budgets/lost' by key/k_alice" in caplog.text
    state.failing = False
    change(audit, ALICE, "after")
    audit.flush()
    assert [e["target"].get("resource") for e in chain(state)] == [
        "budgets/before",
        "budgets/after",
    ]
    assert audit.verify().ok  # the failed entries took no sequence number


# -- the reads index -------------------------------------------------------------------------


def test_viewers_of_a_record(state: StateStore, logs: Any) -> None:
    audit = logs(state, clock=Clock())
    read(audit, BOB, "r-1", "r-2", surface="query")
    change(audit, ALICE, "unrelated")
    read(audit, ALICE, "r-1", surface="ui")
    audit.record(CAROL, "read-bodies", surface="api", source=None, target={"requestIds": ["r-1"]})
    seen = audit.viewers("team-a", "r-1")  # before the index is written: this log's pending
    audit.flush()
    assert audit.viewers("team-a", "r-1") == seen
    assert [(v["actor"], v["surface"]) for v in seen] == [
        ("key/k_alice", "ui"),
        ("key/k_bob", "query"),
    ]
    assert seen[0]["time"] > seen[1]["time"]
    assert "requestIds" not in seen[0]["target"]
    assert [v["actor"] for v in audit.viewers("team-b", "r-1")] == ["key/k_carol"]
    assert audit.viewers("team-a", "r-3") == []


def test_the_index_catches_up_after_a_stop(state: StateStore, logs: Any) -> None:
    audit = logs(state)
    read(audit, BOB, "r-1")
    read(audit, ALICE, "r-1")
    audit.close()
    for key in state.list("audit-reads/team-a/r-1"):  # as if the server stopped before indexing
        state.delete("audit-reads/team-a/r-1", key)
    state.delete(HEADS, "srv-1")
    assert not audit.verify().problems  # entries after the head are a note, not tampering
    again = logs(state)
    again.flush()
    assert [v["actor"] for v in again.viewers("team-a", "r-1")] == ["key/k_alice", "key/k_bob"]
    assert (state.get(HEADS, "srv-1") or {}).get("seq") == 1


def test_viewers_span_servers(state: StateStore, logs: Any) -> None:
    clock = Clock()
    one, two = logs(state, "srv-1", clock=clock), logs(state, "srv-2", clock=clock)
    read(one, BOB, "r-1")
    read(two, ALICE, "r-1")
    one.flush()
    two.flush()
    assert [(v["server"], v["actor"]) for v in one.viewers("team-a", "r-1")] == [
        ("srv-2", "key/k_alice"),
        ("srv-1", "key/k_bob"),
    ]


# -- listing ---------------------------------------------------------------------------------


def test_entries_page_through_every_chain_newest_first(state: StateStore, logs: Any) -> None:
    clock = Clock()
    one, two = logs(state, "srv-1", clock=clock), logs(state, "srv-2", clock=clock)
    for n in range(7):
        change(one if n % 2 else two, ALICE if n % 3 else CAROL, f"b{n}")
    everything = [e["target"]["resource"] for e in one.entries(limit=100).entries]
    assert everything == [f"budgets/b{n}" for n in reversed(range(7))]
    pages: list[str] = []
    cursor = None
    while True:
        page = one.entries(limit=2, cursor=cursor)
        pages += [e["target"]["resource"] for e in page.entries]
        if page.cursor is None:
            break
        cursor = page.cursor
    assert pages == everything
    team_a = one.entries(workspace="team-a").entries
    assert {e["actor"] for e in team_a} == {"key/k_alice"} and len(team_a) == 4


def test_entries_filter_by_time_actor_and_request(state: StateStore, logs: Any) -> None:
    clock = Clock()
    audit = logs(state, clock=clock)
    read(audit, BOB, "r-1")
    start = clock.now
    read(audit, ALICE, "r-2")
    read(audit, BOB, "r-1")
    end = clock.now
    change(audit, BOB, "b")

    def seqs(**where: Any) -> list[int]:
        return [e["seq"] for e in audit.entries(**where).entries]

    assert seqs(since=start + timedelta(microseconds=1)) == [3, 2, 1]
    assert seqs(since=start, until=end) == [1, 0]  # since inclusive, until exclusive
    assert seqs(actor="key/k_bob") == [3, 2, 0]
    assert seqs(request_id="r-1") == [2, 0]  # a walk of the chain
    assert seqs(request_id="r-1", workspace="team-a") == [2, 0]  # the reads index
    first = audit.entries(request_id="r-1", workspace="team-a", limit=1)
    assert [e["seq"] for e in first.entries] == [2] and first.cursor
    rest = audit.entries(request_id="r-1", workspace="team-a", limit=1, cursor=first.cursor)
    assert [e["seq"] for e in rest.entries] == [0] and rest.cursor is None
    assert seqs(request_id="r-1", workspace="team-b") == []


def test_entries_refuse_a_bad_limit_or_cursor(logs: Any) -> None:
    audit = logs(MemoryStateStore())
    with pytest.raises(ValidationError) as bad_limit:
        audit.entries(limit=0)
    assert bad_limit.value.field == "limit"
    with pytest.raises(ValidationError) as bad_cursor:
        audit.entries(cursor="not-a-cursor")
    assert bad_cursor.value.field == "cursor"


# -- the server id ---------------------------------------------------------------------------


def test_the_server_id_is_made_once_per_data_directory(tmp_path: Path) -> None:
    first = server_identity(tmp_path / "a")
    assert server_identity(tmp_path / "a") == first
    assert (tmp_path / "a" / "server-id").read_text().strip() == first
    assert server_identity(tmp_path / "b") != first
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["server-id"]


def test_a_server_id_must_be_able_to_name_a_chain() -> None:
    with pytest.raises(ValueError, match="audit server id"):
        AuditLog(MemoryStateStore(), "a/b")


# -- several servers on one ClickHouse store -------------------------------------------------


def test_servers_sharing_a_clickhouse_store(request: pytest.FixtureRequest, logs: Any) -> None:
    from llmtrail.store.clickhouse import ClickHouseDatabase, ClickHouseStateStore

    url = request.getfixturevalue("clickhouse_url")
    state = ClickHouseStateStore(
        ClickHouseDatabase.open(url, request.getfixturevalue("clickhouse_database"))
    )
    try:
        clock = Clock()
        one, two = logs(state, "srv-1", clock=clock), logs(state, "srv-2", clock=clock)
        read(one, BOB, "r-1")
        read(two, ALICE, "r-1")
        change(one, ALICE, "b")
        one.close()
        again = logs(state, "srv-1", clock=clock)  # srv-1 restarts and continues
        change(again, ALICE, "c")
        two.flush()
        again.flush()
        report = again.verify()
        assert report.ok and [(c.server, c.entries) for c in report.chains] == [
            ("srv-1", 3),
            ("srv-2", 1),
        ]
        assert [v["server"] for v in again.viewers("team-a", "r-1")] == ["srv-2", "srv-1"]
        actions = [e["action"] for e in again.entries().entries]
        assert actions == ["PUT /api/budgets/c", "PUT /api/budgets/b", "read-bodies", "read-bodies"]
        put_entry(state, 1, {**chain(state)[1], "actor": "key/someone-else"})
        state.delete(entry_namespace("srv-2", 0), entry_key(0))
        found = [(p.server, p.seq, p.reason) for p in again.verify().problems]
        assert found == [
            ("srv-1", 1, "changed: its content does not match its hash"),
            ("srv-2", 0, "truncated: the head names entry 0 but the chain has no entries"),
        ]
    finally:
        state.close()
