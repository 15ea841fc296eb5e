"""Durability end to end, with real ``llmtrail serve`` processes and no mocks of llmtrail code.

* kill -9 at several points of a full-speed ingest: every acknowledged record survives, none is
  doubled, resends of unacknowledged batches are recognised as duplicates where they landed;
* a torn (truncated) or corrupted spool tail: the server starts, quarantines the damage, keeps
  every frame before it and appends new frames right after the good data;
* SIGTERM under gateway load: every call that completed has its record after a restart, and
  the process exits 0;
* a full spool: ingest answers 503 (nothing acknowledged is lost), the gateway fails open and
  counts what it dropped.

No assertion is about timing: delays only decide *where* a kill lands, never what must hold.
"""

from __future__ import annotations

import collections
import http.client
import json
import random
import signal
import struct
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.harness import ServerProcess

pytestmark = pytest.mark.slow

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "bedrock-invocation-logs.jsonl"
TEMPLATES = [json.loads(line) for line in FIXTURE.read_text().splitlines() if line.strip()]
BASE_TIME = datetime(2026, 11, 23, 10, 30, 15, 123000, tzinfo=UTC)
WORDS = ("the", "model", "answers", "each", "question", "with", "care", "and", "a", "short")

# Keep spooled records in the spool: the batch writer waits a minute before storing anything.
HOLD_IN_SPOOL = "[spool]\nbatch_wait_ms = 60000\nbatch_quiet_ms = 60000\nbatch_records = 1000000\n"
SIM_MODEL = "sim/durability"
SIM_BEHAVIOUR = {"x-llmtrail-sim": "latency_ms=150,ttft_ms=40,chunk_delay_ms=25"}


# -- records ---------------------------------------------------------------------------------


def make_record(request_id: str, n: int, filler_chars: int = 800) -> dict[str, Any]:
    """A realistic ~1 KB record: a fixture line with a unique requestId and a prompt body."""
    doc = json.loads(json.dumps(TEMPLATES[n % len(TEMPLATES)]))
    rng = random.Random(n)
    text = ""
    while len(text) < filler_chars:
        text += rng.choice(WORDS) + " "
    doc["requestId"] = request_id
    doc["timestamp"] = (
        (BASE_TIME + timedelta(milliseconds=n))
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )
    doc.setdefault("input", {})["inputBodyJson"] = {
        "messages": [{"role": "user", "content": [{"text": text}]}]
    }
    return doc


def tiny_record(request_id: str, n: int) -> dict[str, Any]:
    return {
        "requestId": request_id,
        "timestamp": (BASE_TIME + timedelta(milliseconds=n)).isoformat().replace("+00:00", "Z"),
    }


def as_body(docs: list[dict[str, Any]], ndjson: bool = False) -> bytes:
    if ndjson:
        return b"".join(json.dumps(d).encode() + b"\n" for d in docs)
    return json.dumps(docs).encode()


# -- HTTP helpers ----------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: Any


def post_records(conn: http.client.HTTPConnection, body: bytes) -> Reply:
    """POST /api/records on a keep-alive connection."""
    conn.request("POST", "/api/records", body=body, headers={"content-type": "application/json"})
    response = conn.getresponse()
    raw = response.read()
    headers = {k.lower(): v for k, v in response.getheaders()}
    return Reply(response.status, headers, json.loads(raw) if raw else None)


def connect(server: ServerProcess) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)


def stored_request_ids(server: ServerProcess) -> list[str]:
    """Every requestId in the store, paging through ``GET /api/records`` (newest first)."""
    ids: list[str] = []
    cursor: str | None = None
    for _ in range(10_000):
        query = "/api/records?limit=1000&bodies=0"
        if cursor:
            query += "&cursor=" + urllib.parse.quote(cursor)
        page = server.get(query)
        ids += [r["requestId"] for r in page["records"]]
        cursor = page["nextCursor"]
        if not cursor:
            return ids
    raise AssertionError("paging never ended")


def get_record(server: ServerProcess, request_id: str) -> dict[str, Any] | None:
    url = server.url + "/api/records/" + urllib.parse.quote(request_id, safe="")
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return json.loads(response.read())  # type: ignore[no-any-return]
    except urllib.error.HTTPError as exc:
        with exc:
            if exc.code == 404:
                return None
            raise


def wait_until(
    what: str, condition: Callable[[], bool], server: ServerProcess, timeout: float = 90.0
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out waiting for {what}; metrics: {server.metrics()}\n{server.log()[-3000:]}"
            )
        time.sleep(0.05)


def ensure_dead(*servers: ServerProcess) -> None:
    for server in servers:
        if server.proc is not None and server.proc.poll() is None:
            server.kill()


def assert_no_duplicates(ids: list[str]) -> None:
    doubled = {k: v for k, v in collections.Counter(ids).items() if v > 1}
    assert not doubled, f"{len(doubled)} requestIds stored more than once, e.g. {list(doubled)[:5]}"


# -- spool files (format from llmtrail.pipeline.spool, parsed independently here) ------------

FRAME_HEADER = struct.Struct("<4sBBHII")


@dataclass
class Frame:
    start: int
    end: int
    request_id: str


def read_frames(path: Path) -> list[Frame]:
    """Every frame of an undamaged segment; fails on anything that is not a clean frame."""
    data = path.read_bytes()
    frames, offset = [], 0
    while offset < len(data):
        magic, version, flags, reserved, length, crc = FRAME_HEADER.unpack_from(data, offset)
        assert (magic, version, flags, reserved) == (b"LTSP", 1, 0, 0), f"bad frame at {offset}"
        payload = data[offset + FRAME_HEADER.size : offset + FRAME_HEADER.size + length]
        assert len(payload) == length and zlib.crc32(payload) == crc, f"bad frame at {offset}"
        end = offset + FRAME_HEADER.size + length
        frames.append(Frame(offset, end, json.loads(payload)["r"]["requestId"]))
        offset = end
    return frames


def segments(data_dir: Path) -> list[Path]:
    return sorted((data_dir / "spool").glob("segment-*.spool"))


# -- 1. kill -9 during a full-speed ingest -----------------------------------------------------

THREADS = 3
BATCH = 250
MAX_BATCHES_PER_THREAD = 200  # a safety cap; the kill always comes long before


@pytest.mark.parametrize("kill_after_acks", [1, 6, 14])
def test_kill_9_during_full_speed_ingest_loses_nothing_and_doubles_nothing(
    tmp_path: Path, kill_after_acks: int
) -> None:
    server = ServerProcess(tmp_path / "data")
    lock = threading.Condition()
    sent: dict[str, list[dict[str, Any]]] = {}  # batch name -> records, registered before POST
    acked: dict[str, Reply] = {}
    order: list[str] = []  # acknowledged batches, in the order the answers came
    unexpected: list[str] = []
    killed = threading.Event()
    counter = iter(range(10**9))

    def client(k: int) -> None:
        conn = connect(server)
        try:
            for b in range(MAX_BATCHES_PER_THREAD):
                name = f"t{k}-b{b}"
                with lock:
                    first = next(counter) * BATCH
                docs = [make_record(f"{name}-r{i}", first + i) for i in range(BATCH)]
                with lock:
                    sent[name] = docs
                try:
                    reply = post_records(conn, as_body(docs, ndjson=k == 1))
                except (OSError, http.client.HTTPException) as exc:
                    if not killed.is_set():
                        unexpected.append(f"{name}: {exc!r}")
                    return
                if reply.status != 200:
                    if not killed.is_set():
                        unexpected.append(f"{name}: {reply.status} {reply.body}")
                    return
                with lock:
                    acked[name] = reply
                    order.append(name)
                    if len(acked) == kill_after_acks:  # kill at once, while others are in flight
                        killed.set()
                        assert server.proc is not None
                        server.proc.kill()
                    lock.notify_all()
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(THREADS)]
    try:
        server.start()
        for t in threads:
            t.start()
        with lock:
            lock.wait_for(
                lambda: killed.is_set() or not any(t.is_alive() for t in threads), timeout=90
            )
        killed.set()
        server.kill()
        for t in threads:
            t.join(60)
        assert not unexpected, unexpected
        assert len(acked) >= kill_after_acks, "the ingest never got going"
        for name, reply in acked.items():
            assert reply.body["stored"] == BATCH, (name, reply.body)
            assert reply.body["duplicate"] == reply.body["rejected"] == 0
        # every client thread had a batch registered and not acknowledged when the kill hit
        unacked = [name for name in sent if name not in acked]
        assert len(unacked) == THREADS
        all_ids = [d["requestId"] for docs in sent.values() for d in docs]
        acked_ids = {d["requestId"] for name in acked for d in sent[name]}

        server.start()  # same data dir, same port
        after_restart = server.metrics()
        assert after_restart["replayed"] >= 0
        assert after_restart["stored"] == after_restart["replayed"]
        present = stored_request_ids(server)
        assert_no_duplicates(present)
        missing = acked_ids - set(present)
        assert not missing, f"{len(missing)} acknowledged records lost, e.g. {sorted(missing)[:5]}"
        assert set(present) <= set(all_ids)

        # resend every batch that was not acknowledged; those that made it are duplicates
        statuses: collections.Counter[str] = collections.Counter()
        conn = connect(server)
        try:
            for name in unacked:
                reply = post_records(conn, as_body(sent[name]))
                assert reply.status == 200, (reply.status, reply.body)
                for result, doc in zip(reply.body["results"], sent[name], strict=True):
                    assert result["requestId"] == doc["requestId"]
                    expected = "duplicate" if doc["requestId"] in present else "stored"
                    assert result["status"] == expected, (result, expected)
                    statuses[result["status"]] += 1
            # a client that missed the answers resends acknowledged batches too: the oldest
            # (in the store before the kill, most likely) and the newest (most likely replayed)
            # must both be recognised after the restart and stored nothing
            for name in sorted({order[0], order[-1]}):
                reply = post_records(conn, as_body(sent[name]))
                assert reply.status == 200, (reply.status, reply.body)
                assert reply.body["duplicate"] == BATCH, (name, reply.body)
                statuses["duplicate"] += BATCH
        finally:
            conn.close()

        wait_until(
            "the resent records to be stored",
            lambda: server.metrics()["stored"] >= after_restart["replayed"] + statuses["stored"],
            server,
        )
        final_metrics = server.metrics()
        assert final_metrics["stored"] == after_restart["replayed"] + statuses["stored"]
        assert final_metrics["duplicates"] == statuses["duplicate"]
        final = stored_request_ids(server)
        assert_no_duplicates(final)
        assert sorted(final) == sorted(set(all_ids))
        assert len(final) == len(set(all_ids)) == len(all_ids)
    finally:
        killed.set()
        ensure_dead(server)
        for t in threads:
            t.join(60)


# -- 2. a torn or corrupted spool tail ---------------------------------------------------------


def damage_segment(path: Path, frames: list[Frame], how: str) -> tuple[int, bytes]:
    """Damage the segment; return (index of the first lost frame, the bytes to quarantine)."""
    data = path.read_bytes()
    if how == "truncate-payload":  # torn in the middle of the last frame's payload
        first_bad = len(frames) - 1
        cut = frames[-1].end - 7
        path.write_bytes(data[:cut])
        return first_bad, data[frames[first_bad].start : cut]
    if how == "truncate-header":  # only part of the last frame's header made it to disk
        first_bad = len(frames) - 1
        cut = frames[-1].start + 5
        path.write_bytes(data[:cut])
        return first_bad, data[frames[first_bad].start : cut]
    if how == "corrupt":  # garbage over bytes near the end: inside the third-last frame
        first_bad = len(frames) - 3
        at = frames[first_bad].start + FRAME_HEADER.size + 20
        damaged = data[:at] + b"\xde\xad\xbe\xef" * 4 + data[at + 16 :]
        assert len(damaged) == len(data)
        path.write_bytes(damaged)
        return first_bad, damaged[frames[first_bad].start :]
    raise ValueError(how)


@pytest.mark.parametrize("how", ["truncate-payload", "truncate-header", "corrupt"])
def test_damaged_spool_tail_is_quarantined_and_good_frames_are_kept(
    tmp_path: Path, how: str
) -> None:
    data_dir = tmp_path / "data"
    holding = ServerProcess(data_dir, config=HOLD_IN_SPOOL)
    recovering = ServerProcess(data_dir, config=HOLD_IN_SPOOL)
    final = ServerProcess(data_dir)
    try:
        holding.start()
        sent: list[str] = []
        conn = connect(holding)
        try:
            for b in range(4):
                docs = [make_record(f"spooled-b{b}-r{i}", b * 50 + i) for i in range(50)]
                reply = post_records(conn, as_body(docs))
                assert reply.status == 200 and reply.body["stored"] == 50, reply.body
                sent += [d["requestId"] for d in docs]
        finally:
            conn.close()
        before_kill = holding.metrics()
        assert before_kill["spooled"] == len(sent)
        assert before_kill["stored"] == 0, "records reached the store; the test needs them spooled"
        holding.kill()

        (segment,) = segments(data_dir)
        frames = read_frames(segment)
        assert [f.request_id for f in frames] == sent
        first_bad, bad_tail = damage_segment(segment, frames, how)
        kept, lost = sent[:first_bad], sent[first_bad:]

        recovering.start()  # waits for /readyz: damage must not stop the server
        m = recovering.metrics()
        assert m["spool_quarantined_frames"] >= 1
        assert m["spool_quarantined_bytes"] == len(bad_tail)
        assert m["replayed"] == len(kept)
        quarantine = data_dir / "spool" / "quarantine"
        assert quarantine.is_dir()
        (bad_file,) = quarantine.glob("*.bad")
        assert bad_file.read_bytes() == bad_tail
        present = stored_request_ids(recovering)
        assert_no_duplicates(present)
        assert sorted(present) == sorted(kept)

        # new ingests work, and the lost records are not mistaken for duplicates
        conn = connect(recovering)
        try:
            new_docs = [make_record(f"after-r{i}", 10_000 + i) for i in range(20)]
            reply = post_records(conn, as_body(new_docs))
            assert reply.status == 200 and reply.body["stored"] == 20, reply.body
            resent = [make_record(rid, 20_000 + i) for i, rid in enumerate(lost)]
            reply = post_records(conn, as_body(resent))
            assert reply.status == 200, reply.body
            assert reply.body["stored"] == len(lost), reply.body
            # ...while replayed ones are
            reply = post_records(conn, as_body([make_record(rid, 30_000) for rid in kept[:5]]))
            assert reply.status == 200 and reply.body["duplicate"] == 5, reply.body
        finally:
            conn.close()
        recovering.kill()

        # the spool is clean again: the good frames, then the new ones, nothing in between
        frames_now = [f.request_id for s in segments(data_dir) for f in read_frames(s)]
        assert frames_now == kept + [d["requestId"] for d in new_docs] + lost

        final.start()
        m = final.metrics()
        assert m["spool_quarantined_frames"] == 0
        present = stored_request_ids(final)
        assert_no_duplicates(present)
        assert sorted(present) == sorted(sent + [d["requestId"] for d in new_docs])
        # records the store already held before this start are still known as duplicates
        conn = connect(final)
        try:
            reply = post_records(conn, as_body([make_record(rid, 30_000) for rid in kept[:5]]))
        finally:
            conn.close()
        assert reply.status == 200 and reply.body["duplicate"] == 5, reply.body
    finally:
        ensure_dead(holding, recovering, final)


# -- 3. SIGTERM under gateway load -------------------------------------------------------------


@dataclass
class SigtermRun:
    completed: list[tuple[str, bool]]  # (x-llmtrail-request-id, streamed)
    returncode: int
    marker_left: bool
    records: dict[str, dict[str, Any] | None]
    log: str = field(repr=False)


def one_call(client: openai.OpenAI, stream: bool, k: int, i: int) -> str:
    """One chat completion; returns its x-llmtrail-request-id once it fully completed."""
    messages: list[Any] = [{"role": "user", "content": f"durability thread {k} call {i}"}]
    raw = client.chat.completions.with_raw_response.create(
        model=SIM_MODEL, messages=messages, stream=stream, extra_headers=SIM_BEHAVIOUR
    )
    request_id = raw.headers["x-llmtrail-request-id"]
    if not stream:
        completion = raw.parse()
        assert completion.choices[0].message.content
        return request_id
    finish = None
    with raw.parse() as chunks:
        for chunk in chunks:
            for choice in chunk.choices:
                finish = choice.finish_reason or finish
    assert finish is not None, "the stream ended without a finish_reason"
    return request_id


@pytest.fixture(scope="module")
def sigterm_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SigtermRun]:
    data_dir = tmp_path_factory.mktemp("sigterm") / "data"
    loaded = ServerProcess(data_dir)
    again = ServerProcess(data_dir)
    lock = threading.Condition()
    completed: list[tuple[str, bool]] = []
    unexpected: list[str] = []
    terminating = threading.Event()

    def worker(k: int) -> None:
        stream = k % 2 == 1
        with openai.OpenAI(
            base_url=loaded.url + "/v1", api_key="sk-test", max_retries=0, timeout=60
        ) as client:
            for i in range(10_000):
                try:
                    request_id = one_call(client, stream, k, i)
                except Exception as exc:  # the server went away: this call did not complete
                    if not terminating.is_set():
                        unexpected.append(f"thread {k} call {i}: {exc!r}")
                    return
                with lock:
                    completed.append((request_id, stream))
                    lock.notify_all()

    threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(6)]
    try:
        loaded.start()
        for t in threads:
            t.start()
        with lock:
            lock.wait_for(
                lambda: len(completed) >= 24 or not any(t.is_alive() for t in threads), timeout=90
            )
        terminating.set()
        returncode = loaded.terminate()  # SIGTERM, then wait for the exit
        for t in threads:
            t.join(60)
        assert not unexpected, unexpected
        marker_left = (data_dir / "server.json").exists()
        again.start()
        records = {rid: get_record(again, rid) for rid, _ in completed}
        yield SigtermRun(list(completed), returncode, marker_left, records, loaded.log())
    finally:
        terminating.set()
        ensure_dead(loaded, again)
        for t in threads:
            t.join(60)


def test_sigterm_under_gateway_load_keeps_every_completed_call(sigterm_run: SigtermRun) -> None:
    run = sigterm_run
    assert len(run.completed) >= 24
    assert any(streamed for _, streamed in run.completed)
    assert any(not streamed for _, streamed in run.completed)
    missing = [rid for rid, record in run.records.items() if record is None]
    assert not missing, (
        f"{len(missing)} completed calls have no record: {missing[:5]}\n{run.log[-3000:]}"
    )
    for rid, record in run.records.items():
        assert record is not None
        assert record["requestId"] == rid
        assert record["modelId"] == SIM_MODEL
        assert record["status"] == "OK", record


def test_sigterm_under_gateway_load_exits_0(sigterm_run: SigtermRun) -> None:
    assert sigterm_run.returncode == 0, (
        f"exit code {sigterm_run.returncode} (-{int(signal.SIGTERM)} = killed by SIGTERM)"
    )
    assert not sigterm_run.marker_left, "server.json was left behind"


# -- 4. a full spool ---------------------------------------------------------------------------

SMALL_SPOOL = (
    "[spool]\nmax_bytes = 200000\nbatch_wait_ms = 60000\nbatch_quiet_ms = 60000\n"
    "batch_records = 1000000\n"
)


def test_full_spool_refuses_ingest_fails_open_for_the_gateway_and_loses_nothing(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    full = ServerProcess(data_dir, config=SMALL_SPOOL)
    roomy = ServerProcess(data_dir)
    acked: list[str] = []
    try:
        full.start()
        conn = connect(full)
        try:
            refused_docs: list[dict[str, Any]] = []
            refusal: Reply | None = None
            for b in range(100):
                docs = [make_record(f"fill-b{b}-r{i}", b * 20 + i) for i in range(20)]
                reply = post_records(conn, as_body(docs))
                if reply.status == 503:
                    refused_docs, refusal = docs, reply
                    break
                assert reply.status == 200 and reply.body["stored"] == 20, reply.body
                acked += [d["requestId"] for d in docs]
            assert refusal is not None, "the spool never filled up"
            assert acked, "the very first batch was refused"
            assert refusal.headers["content-type"].startswith("application/problem+json")
            assert refusal.body["status"] == 503
            assert "spool" in refusal.body["detail"].lower(), refusal.body
            assert "retry-after" in refusal.headers

            # the refusal acknowledged nothing: the same batch is refused again, not "duplicate"
            again = post_records(conn, as_body(refused_docs))
            assert again.status == 503, again.body

            # top up with tiny records until not even those fit
            for i in range(5000):
                reply = post_records(conn, as_body([tiny_record(f"tiny-{i}", 100_000 + i)]))
                if reply.status == 503:
                    break
                assert reply.status == 200 and reply.body["stored"] == 1, reply.body
                acked.append(f"tiny-{i}")
            else:
                pytest.fail("tiny records never filled the spool")
        finally:
            conn.close()
        m = full.metrics()
        assert m["ingest_refused_spool_full"] > 0
        assert m["stored"] == 0
        assert m["spooled"] == len(acked)

        # the gateway fails open: calls succeed, their records are dropped and counted
        calls = 0
        with openai.OpenAI(
            base_url=full.url + "/v1", api_key="sk-test", max_retries=0, timeout=60
        ) as client:
            for i in range(6):
                completion = client.chat.completions.create(
                    model=SIM_MODEL, messages=[{"role": "user", "content": f"full spool {i}"}]
                )
                assert completion.choices[0].message.content
                calls += 1
            for i in range(2):
                with client.chat.completions.create(
                    model=SIM_MODEL,
                    messages=[{"role": "user", "content": f"full spool stream {i}"}],
                    stream=True,
                ) as chunks:
                    assert [c for c in chunks if c.choices]
                calls += 1
        wait_until(
            "the gateway records to be dropped",
            lambda: full.metrics()["dropped_spool_full"] >= calls,
            full,
        )
        m = full.metrics()
        assert m["dropped_spool_full"] == calls
        assert m["spooled"] == len(acked)
        full.kill()

        roomy.start()
        m = roomy.metrics()
        assert m["replayed"] == len(acked)
        present = stored_request_ids(roomy)
        assert_no_duplicates(present)
        assert sorted(present) == sorted(acked)
        # the refused batch can be sent again now and is stored, not called a duplicate,
        # while an acknowledged (replayed) batch is
        conn = connect(roomy)
        try:
            replayed_again = post_records(conn, as_body([make_record(acked[0], 0)]))
            reply = post_records(conn, as_body(refused_docs))
        finally:
            conn.close()
        assert replayed_again.status == 200 and replayed_again.body["duplicate"] == 1
        assert reply.status == 200 and reply.body["stored"] == len(refused_docs), reply.body
        for doc in refused_docs[:3]:
            wait_until(
                "a resent record",
                lambda d=doc: get_record(roomy, d["requestId"]) is not None,
                roomy,
            )
    finally:
        ensure_dead(full, roomy)


# -- 5. regressions: bugs found by these tests, fixed ----------------------------------------


def resend_during_refused_ingest(server: ServerProcess, prefix: str) -> tuple[str, Reply]:
    """POST a batch far too big for the spool (claimed, queued, then refused as a whole) and,
    once it is queued, resend its last record on another connection, as a client would that
    gave up waiting. Returns the resent requestId and the answer to the resend."""
    big = [tiny_record(f"{prefix}-big-{i}", i) for i in range(20_000)]
    outcome: list[Reply] = []

    def send_big() -> None:
        conn = connect(server)
        try:
            outcome.append(post_records(conn, as_body(big)))
        finally:
            conn.close()

    queued = server.metrics()["accepted"] + len(big)
    sender = threading.Thread(target=send_big, daemon=True)
    sender.start()
    try:
        wait_until(
            "the big batch to be queued", lambda: server.metrics()["accepted"] >= queued, server
        )
        conn = connect(server)
        try:
            probe = post_records(conn, as_body([big[-1]]))
        finally:
            conn.close()
    finally:
        sender.join(90)
    assert outcome and outcome[0].status == 503, outcome
    return big[-1]["requestId"], probe


def test_resend_while_the_original_is_in_flight_is_acknowledged_only_once_durable(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    full = ServerProcess(data_dir, config=SMALL_SPOOL)
    roomy = ServerProcess(data_dir)
    acknowledged: list[str] = []
    try:
        full.start()
        for attempt in range(3):
            probe_id, probe = resend_during_refused_ingest(full, f"a{attempt}")
            if probe.status == 200:
                acknowledged.append(probe_id)
            if probe.status == 503 or probe.body["duplicate"]:
                break  # the resend met the in-flight original: that is the case under test
        full.kill()

        roomy.start()
        lost = [rid for rid in acknowledged if get_record(roomy, rid) is None]
        assert not lost, f"acknowledged (200) but never stored: {lost}"
    finally:
        ensure_dead(full, roomy)


def test_damage_in_stored_spool_frames_does_not_hide_later_records_from_replay(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    storing = ServerProcess(data_dir)
    holding = ServerProcess(data_dir, config=HOLD_IN_SPOOL)
    final = ServerProcess(data_dir)
    try:
        storing.start()
        conn = connect(storing)
        try:
            docs = [make_record(f"stored-r{i}", i) for i in range(50)]
            reply = post_records(conn, as_body(docs))
            assert reply.status == 200 and reply.body["stored"] == 50, reply.body
        finally:
            conn.close()
        wait_until("the batch to be stored", lambda: storing.metrics()["stored"] == 50, storing)
        storing.kill()

        # bit rot inside frames the store already holds (in the active segment)
        (segment,) = segments(data_dir)
        frames = read_frames(segment)
        data = bytearray(segment.read_bytes())
        at = frames[10].start + FRAME_HEADER.size + 20
        data[at : at + 8] = b"\xff" * 8
        segment.write_bytes(bytes(data))

        holding.start()
        assert holding.metrics()["spool_quarantined_frames"] >= 1
        conn = connect(holding)
        try:
            later = [make_record(f"later-r{i}", 1000 + i) for i in range(20)]
            reply = post_records(conn, as_body(later))
            assert reply.status == 200 and reply.body["stored"] == 20, reply.body
        finally:
            conn.close()
        holding.kill()  # acknowledged, spooled, not yet stored

        final.start()
        present = set(stored_request_ids(final))
        assert {d["requestId"] for d in docs} <= present
        lost = [d["requestId"] for d in later if d["requestId"] not in present]
        assert not lost, f"{len(lost)} acknowledged records were not replayed: {lost[:5]}"
    finally:
        ensure_dead(storing, holding, final)
