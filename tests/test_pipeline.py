"""The pipeline in-process, on a real spool directory and a real DuckDB file."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmtrail.config import SpoolSettings
from llmtrail.errors import Unavailable
from llmtrail.pipeline.dedup import RecentRequestIds
from llmtrail.pipeline.frames import encode_payload
from llmtrail.pipeline.offload import offload_bodies
from llmtrail.pipeline.pipeline import Pipeline
from llmtrail.pipeline.spool import Spool
from llmtrail.record import InvocationRecord
from llmtrail.store.duckdb import Database, DuckDBRecordStore
from llmtrail.store.interfaces import RecordQuery
from llmtrail.store.objects import MemoryObjectStore


def rec(i: int, body: str = "hi") -> InvocationRecord:
    return InvocationRecord.from_dict(
        {
            "requestId": f"p-{i}",
            "timestamp": "2026-11-23T10:00:00.000Z",
            "modelId": "m",
            "input": {"inputBodyJson": {"text": body}},
        }
    )


class Env:
    def __init__(self, root: Path, **spool: int) -> None:
        self.root = root
        self.settings = SpoolSettings(batch_wait_ms=10, **spool)  # type: ignore[arg-type]
        self.objects = MemoryObjectStore()
        self.open()

    def open(self) -> None:
        self.db = Database(self.root / "db.duckdb")
        self.store = DuckDBRecordStore(self.db)
        self.spool = Spool(self.root / "spool", max_bytes=self.settings.max_bytes)
        self.told_stored: list[str] = []  # what the pipeline said the store holds
        self.pipeline = Pipeline(
            self.spool,
            self.store,
            objects=self.objects,
            settings=self.settings,
            offload_bytes=1000,
            stored=lambda records: self.told_stored.extend(r.request_id for r in records),
        )

    def close(self) -> None:
        self.pipeline.stop()
        self.db.close()

    def ids(self) -> list[str]:
        return [r.request_id for r in self.store.find(RecordQuery(limit=10_000)).records]


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    e = Env(tmp_path)
    yield e
    e.close()


def test_submit_and_ingest_reach_the_store(env: Env) -> None:
    env.pipeline.start()
    assert env.pipeline.submit(rec(1))
    fresh, future = env.pipeline.ingest([rec(2), rec(3), rec(2)])
    assert fresh == [True, True, False]
    future.result(10)
    env.close()
    assert sorted(env.told_stored) == ["p-1", "p-2", "p-3"]
    env.open()
    assert sorted(env.ids()) == ["p-1", "p-2", "p-3"]
    assert env.store.committed_position() is not None


def test_spooled_but_unstored_records_are_replayed_once(env: Env) -> None:
    env.spool.append([encode_payload(rec(i)) for i in range(5)])  # as if killed before storing
    env.pipeline.start()
    assert sorted(env.ids()) == [f"p-{i}" for i in range(5)]
    assert env.pipeline.counters.replayed == 5
    env.close()
    env.open()
    env.pipeline.start()
    assert env.pipeline.counters.replayed == 0
    assert len(env.ids()) == 5
    fresh, future = env.pipeline.ingest([rec(0), rec(9)])  # the resend index was warmed
    future.result(10)
    assert fresh == [False, True]


def test_large_bodies_are_offloaded_before_storing(env: Env) -> None:
    env.pipeline.start()
    _, future = env.pipeline.ingest([rec(1, "x" * 5000), rec(2, "small")])
    future.result(10)
    env.pipeline.stop()
    big = env.store.get("p-1")
    small = env.store.get("p-2")
    assert big is not None and small is not None
    path = big.data["input"]["inputBodyS3Path"]
    assert path in env.objects.objects and "inputBodyJson" not in big.data["input"]
    assert small.data["input"]["inputBodyJson"] == {"text": "small"}


def test_full_spool_refuses_ingest_and_counts_gateway_drops(tmp_path: Path) -> None:
    env = Env(tmp_path, max_bytes=3000, batch_records=10**6)
    env.settings.batch_wait_ms = env.settings.batch_quiet_ms = 60_000  # keep it in the spool
    env.pipeline.start()
    try:
        accepted = 0
        with pytest.raises(Unavailable):
            for i in range(100):
                env.pipeline.ingest([rec(i, "y" * 200)])[1].result(10)
                accepted += 1
        assert 0 < accepted < 100
        assert env.pipeline.counters.ingest_refused_spool_full == 1
        refused = f"p-{accepted}"
        assert env.pipeline.submit(rec(1000, "z" * 200))  # fail-open: submit never raises
        for _ in range(200):
            if env.pipeline.counters.dropped_spool_full:
                break
            import time

            time.sleep(0.01)
        assert env.pipeline.counters.dropped_spool_full == 1
        fresh, _ = env.pipeline.ingest([rec(accepted, "y")])  # the refused id was released
        assert fresh == [True], refused
    finally:
        env.close()


def test_queue_full_drops_are_counted(tmp_path: Path) -> None:
    env = Env(tmp_path, queue_records=2)
    try:
        results = [env.pipeline.submit(rec(i)) for i in range(5)]  # threads not started
        assert results == [True, True, False, False, False]
        assert env.pipeline.counters.dropped_queue_full == 3
    finally:
        env.close()


def test_a_run_of_gateway_records_is_one_queue_item(tmp_path: Path) -> None:
    env = Env(tmp_path, queue_records=2)
    try:
        assert env.pipeline.submit_all([rec(i) for i in range(3)]) == 3  # threads not started
        assert env.pipeline.submit_all([]) == 0
        assert env.pipeline.submit(rec(3))
        assert env.pipeline.submit_all([rec(4), rec(5)]) == 0  # the queue holds two items
        assert env.pipeline.counters.dropped_queue_full == 2
        assert env.pipeline.counters.accepted == 4
        env.pipeline.start()
        deadline = time.monotonic() + 30
        while sorted(env.ids()) != ["p-0", "p-1", "p-2", "p-3"]:
            assert time.monotonic() < deadline, env.ids()
            time.sleep(0.01)
    finally:
        env.close()


def test_a_failing_stored_callback_never_stores_a_batch_twice(env: Env) -> None:
    def fails(records: list[InvocationRecord]) -> None:
        raise RuntimeError("the listener broke")

    env.pipeline.stored = fails
    env.pipeline.start()
    _, future = env.pipeline.ingest([rec(1), rec(2)])
    future.result(10)
    env.close()
    assert env.pipeline.counters.stored == 2 and env.pipeline.counters.store_errors == 0
    env.open()
    assert sorted(env.ids()) == ["p-1", "p-2"]  # once each, and the position committed
    env.pipeline.start()
    assert env.pipeline.counters.replayed == 0


def test_resend_window() -> None:
    now = [0.0]
    index = RecentRequestIds(window_s=10, max_entries=3, clock=lambda: now[0])
    assert index.claim([("w", "a"), ("w", "b"), ("w", "a")]) == [True, True, False]
    now[0] = 5
    assert index.claim([("w", "a")]) == [False]
    now[0] = 11
    assert index.claim([("w", "a"), ("x", "a")]) == [True, True]
    index.claim([("w", "c"), ("w", "d")])
    assert len(index) == 3  # the oldest were forgotten first


def test_offload_is_idempotent() -> None:
    objects = MemoryObjectStore()
    record = rec(1, "x" * 2000)
    assert offload_bodies(record, objects, 1000) == 1
    assert offload_bodies(record, objects, 1000) == 0
    assert len(objects.objects) == 1


def test_a_record_the_store_refuses_is_dead_lettered_and_the_rest_stored(env: Env) -> None:
    env.pipeline.start()
    poison = InvocationRecord({**rec(2).data, "requestHeaders": {"a": 1}}, ())  # unvalidated
    env.pipeline.submit(rec(1))
    env.pipeline.submit(poison)
    env.pipeline.submit(rec(3))
    env.pipeline.stop()
    assert env.pipeline.counters.dead_lettered == 1
    (path,) = (env.spool.directory / "deadletter").glob("batch-*-invalid.ndjson")
    lines = path.read_text().splitlines()
    assert [json.loads(line)["requestId"] for line in lines] == ["p-2"]
    env.db.close()
    env.open()
    assert sorted(env.ids()) == ["p-1", "p-3"]
    assert env.pipeline.counters.replayed == 0


def test_a_cancelled_ingest_caller_does_not_hurt_the_pipeline(env: Env) -> None:
    env.pipeline.start()
    _, future = env.pipeline.ingest([rec(1)])
    future.cancel()  # what asyncio does to a wrapped future when its request is cancelled
    _, other = env.pipeline.ingest([rec(2)])
    other.result(10)
    env.pipeline.stop()
    assert env.pipeline.counters.thread_failures == 0
    env.db.close()
    env.open()
    assert sorted(env.ids()) == ["p-1", "p-2"]


def test_a_refused_original_fails_its_own_caller_not_a_later_resend(tmp_path: Path) -> None:
    now = [0.0]
    env = Env(tmp_path, max_bytes=1500)
    env.pipeline.dedup = RecentRequestIds(window_s=10, clock=lambda: now[0])
    env.pipeline.ready.set()  # accept ingests before the threads run, so both stay queued
    try:
        _, original = env.pipeline.ingest([rec(2, "b" * 3000)])  # can never fit the spool
        now[0] = 100  # the index forgot the key while the original was queued
        fresh, resend = env.pipeline.ingest([rec(2, "small")])
        assert fresh == [True]
        env.pipeline.start()
        with pytest.raises(Unavailable):
            original.result(10)
        resend.result(10)
        env.pipeline.stop()
        assert env.pipeline.counters.thread_failures == 0
        stored = env.store.get("p-2")
        assert stored is not None and stored.data["input"]["inputBodyJson"] == {"text": "small"}
    finally:
        env.close()


class _RefusingStore(DuckDBRecordStore):
    """A real DuckDB store whose Arrow conversion fails for requestIds starting ``bad``, as
    the conversion of a record that passes validation but not the store would."""

    def arrow_tables(self, records, ingested_at):  # type: ignore[no-untyped-def]
        if any(r.request_id.startswith("bad") for r in records):
            raise ValueError("Rescaling Decimal value would cause data loss")
        return super().arrow_tables(records, ingested_at)


def test_a_record_the_store_refuses_is_dead_lettered_alone(tmp_path: Path) -> None:
    """A record that passes validation but fails the store's conversion: only it goes to the
    dead-letter file, its batch-mates are stored with the batch's spool position, nothing is
    replayed at the next start, and a resend of it is taken again, not called a duplicate."""
    env = Env(tmp_path, batch_records=1000)
    env.settings.batch_wait_ms = env.settings.batch_quiet_ms = 300  # one batch
    env.store = _RefusingStore(env.db)
    env.pipeline.store = env.store
    env.pipeline.start()
    good = [rec(i) for i in range(7)]
    bad = InvocationRecord.from_dict({**rec(0).data, "requestId": "bad-1"})
    fresh, future = env.pipeline.ingest([*good[:3], bad, *good[3:]])
    assert all(fresh)
    future.result(10)
    deadline = time.monotonic() + 20
    while env.pipeline.counters.dead_lettered == 0:
        assert time.monotonic() < deadline, "the batch was never isolated"
        time.sleep(0.02)
    assert sorted(env.ids()) == sorted(r.request_id for r in good)
    assert sorted(env.told_stored) == sorted(r.request_id for r in good)  # never bad-1
    assert env.pipeline.counters.stored == 7 and env.pipeline.counters.dead_lettered == 1
    (path,) = (env.spool.directory / "deadletter").glob("batch-*-refused.ndjson")
    assert [json.loads(line)["requestId"] for line in path.read_text().splitlines()] == ["bad-1"]
    fresh, _ = env.pipeline.ingest(
        [InvocationRecord.from_dict({**rec(0).data, "requestId": "bad-1"})]
    )
    assert fresh == [True]  # it left the resend index
    env.close()  # the resend is refused again and stays in the spool
    env.open()  # a store that takes it
    env.pipeline.start()
    assert env.pipeline.counters.replayed == 1  # the resend, never the batch again
    assert sorted(env.ids()) == sorted(["bad-1", *(r.request_id for r in good)])


def test_gateway_groups_are_fsynced_once_a_batch_and_ingest_groups_before_their_answer(
    tmp_path: Path,
) -> None:
    env = Env(tmp_path)
    env.pipeline.gateway_linger_s = 0.0  # every submit its own group
    try:
        env.pipeline.start()
        for i in range(30):
            assert env.pipeline.submit(rec(i))
            time.sleep(0.002)
        deadline = time.monotonic() + 30
        while len(env.ids()) < 30:
            assert time.monotonic() < deadline, env.ids()
            time.sleep(0.01)
        batches = env.pipeline.counters.batches
        assert 1 <= env.spool.stats.fsyncs <= batches < 30  # once a batch, not once a group
        before = env.spool.stats.fsyncs
        _, future = env.pipeline.ingest([rec(100)])
        future.result(10)
        assert env.spool.stats.fsyncs > before  # durable before the caller's answer
    finally:
        env.close()
