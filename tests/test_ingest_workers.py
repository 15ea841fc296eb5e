"""Ingest bodies prepared in the recorder's worker processes (`pipeline/ingest_frames.py`).

In one process: a body prepared for a worker gives the same results, spool frames and Arrow
tables as the record path's own way, its records prepared under the workspace's logging
configuration and redaction as the recorder prepares them; records that cannot cross framed
cross untouched; framed records checked before a policy changed are prepared again before
the spool. End to end, on
a real server: large bodies go to the workers once they are warm, and are stored as the
recorder stores a small body's; a secret in one is redacted; a resent body is a duplicate; a
worker killed with SIGKILL is replaced; the workers leave with the server.
"""

from __future__ import annotations

import os
import signal
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pyarrow as pa
import pytest

from llmtrail.capture.ingest_body import validate_batch
from llmtrail.config import DEFAULT_PROMOTED_KEYS, Settings
from llmtrail.pipeline.enrich import Enricher, enriched
from llmtrail.pipeline.frames import encode_payload
from llmtrail.pipeline.ingest_frames import (
    WORKER_BYTES,
    IngestRules,
    PreparedBody,
    _Fixed,
    prepare_body,
)
from llmtrail.pipeline.packed import Packed, RecordFrames
from llmtrail.record import InvocationRecord
from llmtrail.schema import RecordSchema
from llmtrail.security.logging_config import DEFAULT as DEFAULT_LOGGING
from llmtrail.security.logging_config import LoggingConfig
from llmtrail.security.record_policy import RecordPolicy
from llmtrail.security.redaction import Redactor
from llmtrail.security.redaction_policy import DEFAULT_POLICY, RedactionPolicy, parse_policy
from llmtrail.server.record_path import LocalRecording
from llmtrail.server.runtime import Runtime
from llmtrail.store.duckdb.records import batch_tables
from tests.conftest import bedrock_fixture_lines
from tests.harness import ServerProcess

SECRET = "AKIACN4RYQ7B2VXK9MZP"
HASH_KEY = b"k" * 32
MODELS = (
    "anthropic.claude-3-haiku-20240307-v1:0",
    "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
    "amazon.nova-lite-v1:0",
    "no-such-model",
)


def _record(tag: str, i: int, text: str = "", rejected: bool = True) -> dict[str, Any]:
    """A valid record of a kind chosen by ``i``: plain, with metadata and bodies, with its
    own cost, with an error, with cache tokens, with text beyond ASCII."""
    doc: dict[str, Any] = {
        "schemaType": "ModelInvocationLog",
        "schemaVersion": "1.0",
        "timestamp": f"2026-11-20T08:{i // 60 % 60:02d}:{i % 60:02d}.{i % 1000:03d}Z",
        "accountId": "123456789012",
        "region": "us-east-1",
        "requestId": f"{tag}-{i}",
        "operation": ("Converse", "ConverseStream", "InvokeModel")[i % 3],
        "modelId": MODELS[i % len(MODELS)],
        "input": {"inputTokenCount": 100 + i % 97},
        "output": {"outputTokenCount": 10 + i % 53},
    }
    kind = i % 6
    if kind in (1, 4, 5):
        doc["requestMetadata"] = {"application_name": f"app-{i % 3}", "tenant_id": f"t{i % 7}"}
        doc["identity"] = {"arn": f"arn:aws:iam::123456789012:user/u{i % 5}"}
        doc["input"]["inputBodyJson"] = {
            "messages": [{"role": "user", "content": [{"text": f"question {i} {text}"}]}]
        }
        doc["output"]["outputBodyJson"] = {
            "output": {"message": {"role": "assistant", "content": [{"text": f"answer {i}"}]}},
            "stopReason": "end_turn",
        }
    if kind == 2:
        doc["cost"] = {"totalUsd": "0.25", "priceVersion": "contract"}
    if kind == 3:
        doc["errorCode"] = "ThrottlingException"
        doc["output"] = {}
    if kind == 4:
        doc["input"]["cacheReadInputTokenCount"] = 40
        doc["input"]["cacheWriteInputTokenCount"] = 8
    if kind == 5:
        doc["input"]["inputBodyJson"]["messages"][0]["content"][0]["text"] += " naïve – 東京 ✓"
    if rejected and i % 97 == 96:  # now and then one the validation rejects
        doc["requestMetadata"] = {"note": "naïve"}
    return doc


def _body(tag: str, n: int, text: str = "", rejected: bool = True) -> bytes:
    return b"\n".join(orjson.dumps(_record(tag, i, text, rejected)) for i in range(n))


def _rules(**changes: Any) -> IngestRules:
    settings = Settings()
    limits = settings.limits
    rules = {
        "max_bytes": limits.max_ingest_bytes,
        "max_records": limits.max_ingest_records,
        "max_depth": limits.max_json_depth,
        "promoted_keys": tuple(DEFAULT_PROMOTED_KEYS),
        "provider_aliases": (),
        "offload_bytes": settings.offload_bytes,
        "price_overrides": (),
        "logging": DEFAULT_LOGGING,
        "redaction": DEFAULT_POLICY,
        "hash_key": HASH_KEY,
        "policies": 0,
        **changes,
    }
    return IngestRules(**rules)


def _without_ids(table: pa.Table) -> pa.Table:
    """A table less what differs between two decodings of the same body: the record ids
    (new for every record read) and when the batch was made."""
    return table.drop_columns([c for c in ("record_id", "ingested_at") if c in table.column_names])


def _frame_doc(frame: bytes) -> dict[str, Any]:
    doc: dict[str, Any] = orjson.loads(frame)
    doc["r"].pop("recordId", None)
    return doc


@pytest.mark.parametrize("source", ["varied", "bedrock fixtures"])
def test_a_body_prepared_for_a_worker_is_what_the_record_path_makes_of_it(source: str) -> None:
    if source == "varied":
        raw = _body("same", 600)
    else:
        lines = bedrock_fixture_lines()
        raw = "\n".join(lines).encode()
    prepared = prepare_body(raw, False, "default", _rules())
    assert isinstance(prepared.records, RecordFrames)
    if source == "varied":  # the rejected ones answered in their places
        assert [r["index"] for r in prepared.results if r["status"] == "rejected"] == [
            96,
            193,
            290,
            387,
            484,
            581,
        ]

    limits = Settings().limits
    results, valid, where = validate_batch(
        raw, False, limits.max_ingest_bytes, limits.max_ingest_records, limits.max_json_depth
    )
    records = enriched(valid, Enricher())
    # nothing here is anything the default redaction would change
    assert not Redactor(DEFAULT_POLICY, b"k" * 32).to_redact([r.data for r in records])
    assert prepared.results == results and prepared.where == where
    framed = prepared.records
    assert len(framed) == len(records) > 0
    assert framed.keys == [(r.workspace, r.request_id) for r in records]
    assert [_frame_doc(f) for f in framed.frames] == [
        _frame_doc(encode_payload(r)) for r in records
    ]
    rows, bodies = framed.tables()
    want_rows, want_bodies = batch_tables(records, RecordSchema(DEFAULT_PROMOTED_KEYS), _now())
    assert _without_ids(rows).equals(_without_ids(want_rows))
    assert _without_ids(bodies).equals(_without_ids(want_bodies))
    assert rows.column("cost_total_usd").null_count < rows.num_rows  # priced, not left empty
    # the frames read back as the records they were made of
    assert [r.data["requestId"] for r in framed.records()] == [r.request_id for r in records]


def _as_the_recorder_prepares(
    raw: bytes, config: LoggingConfig, policy: RedactionPolicy
) -> tuple[list[InvocationRecord], RecordPolicy]:
    """``raw``'s records as the recorder's spool thread prepares them."""
    limits = Settings().limits
    _, valid, _ = validate_batch(
        raw, False, limits.max_ingest_bytes, limits.max_ingest_records, limits.max_json_depth
    )
    records = enriched(valid, Enricher())
    prepare = RecordPolicy(_Fixed(config), _Fixed(Redactor(policy, HASH_KEY)))
    prepare.prepare_all(records)
    return records, prepare


HASHING = parse_policy({"actions": {"bodies": "hash", "metadata": "hash", "errors": "mask"}})


@pytest.mark.parametrize(
    ("config", "policy"),
    [
        (DEFAULT_LOGGING, DEFAULT_POLICY),  # the key is masked
        (DEFAULT_LOGGING, HASHING),  # the key is hashed with the server's key
        (LoggingConfig(text_data_delivery_enabled=False), DEFAULT_POLICY),  # text withheld
        (DEFAULT_LOGGING, parse_policy({"detectors": ["email", "phone", "card", "iban", "ip"]})),
    ],
    ids=["mask", "hash", "no text", "every detector"],
)
def test_a_worker_prepares_what_the_policies_change_as_the_recorder_would(
    config: LoggingConfig, policy: RedactionPolicy
) -> None:
    raw = _body("secret", 300, text=f"my key {SECRET} or mail a.b@example.com")
    prepared = prepare_body(raw, False, "default", _rules(logging=config, redaction=policy))
    framed = prepared.records
    assert isinstance(framed, RecordFrames)
    want, prepare = _as_the_recorder_prepares(raw, config, policy)
    assert prepared.prepared > 0 and prepared.redactions == prepare.redactions
    assert [_frame_doc(f) for f in framed.frames] == [_frame_doc(encode_payload(r)) for r in want]
    rows, bodies = framed.tables()
    want_rows, want_bodies = batch_tables(want, RecordSchema(DEFAULT_PROMOTED_KEYS), _now())
    assert _without_ids(rows).equals(_without_ids(want_rows))
    assert _without_ids(bodies).equals(_without_ids(want_bodies))
    assert SECRET.encode() not in b"".join(framed.frames)


def test_records_that_cannot_cross_framed_cross_as_records_untouched() -> None:
    secret = _body("secret", 300, text=f"my key {SECRET}")

    def crossed(**changes: Any) -> PreparedBody:
        return prepare_body(secret, False, "default", _rules(**changes))

    assert isinstance(crossed().records, RecordFrames)
    for prepared in (
        crossed(offload_bytes=200),  # bodies to offload to the object store
        crossed(logging=None),  # the workspace's policies could not be read
    ):
        packed = prepared.records
        assert isinstance(packed, Packed)
        records = packed.unpack()
        assert len(records) == len(prepared.where) == 297
        assert all(r.data.get("cost") for r in records)
        # prepared by the recorder, not here: the key is still in them
        assert SECRET in orjson.dumps([r.data for r in records]).decode()
        assert prepared.redactions == 0 and prepared.prepared == 0


@pytest.mark.parametrize("policy_changed", [False, True])
def test_framed_records_checked_before_a_policy_change_are_prepared_again(
    tmp_path: Path, policy_changed: bool
) -> None:
    """Framed records carry the policies' generation they were checked under; where it
    moved on before the spool, they are prepared there as any record is. The records here
    were framed unchecked (no redaction), so the unchanged case stores the key as it came:
    what shows that only the change made the difference."""
    runtime = Runtime(Settings(data_dir=tmp_path / "data"))
    runtime.start(warm=False)
    try:
        assert isinstance(runtime.recording, LocalRecording)
        path = runtime.recording.path
        rules = _rules(redaction=None, policies=path.policy.generation)
        framed = prepare_body(_body("gen", 100, text=f"key {SECRET}"), False, "default", rules)
        assert isinstance(framed.records, RecordFrames)
        if policy_changed:
            path.policy.changed()
        fresh, spooled = path.pipeline.ingest((), framed=framed.records)
        n = len(framed.records)
        assert n == 99 and fresh == [True] * n
        spooled.result(30)
        path.flush()
        stored = runtime.records.get("gen-1")
        assert stored is not None
        text = orjson.dumps(stored.data).decode()
        assert (SECRET in text) is not policy_changed
        assert path.pipeline.counters.stored == n
    finally:
        runtime.close()


def _now() -> datetime:
    return datetime.now(UTC)


# -- end to end -------------------------------------------------------------------------------


def _post(server: ServerProcess, raw: bytes) -> dict[str, Any]:
    answer = httpx.post(
        server.url + "/api/records",
        content=raw,
        headers={"content-type": "application/x-ndjson"},
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def _wait_metric(server: ServerProcess, name: str, at_least: float, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while server.metrics().get(name, 0) < at_least:
        assert time.monotonic() < deadline, (name, server.metrics().get(name))
        time.sleep(0.05)


def _children(pid: int) -> set[int]:
    out = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = task / "children"
        if children.exists():
            out |= {int(c) for c in children.read_text().split()}
    return out


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def _same(record: dict[str, Any]) -> dict[str, Any]:
    """A stored record less what differs between two records made of the same document
    under another request id: that id and the record's own."""
    return {k: v for k, v in record.items() if k not in ("requestId", "recordId", "ingestedAt")}


def test_large_bodies_are_prepared_in_the_workers_and_stored_as_the_recorder_stores_them(
    tmp_path: Path,
) -> None:
    n = 400
    large = _body("large", n, rejected=False)
    assert len(large) >= WORKER_BYTES
    with ServerProcess(tmp_path / "data") as server:
        recorder = int(server.metrics()["recorder_pid"])
        # the first large body starts the workers and is prepared by the recorder itself
        assert _post(server, _body("first", n, rejected=False))["stored"] == n
        _wait_metric(server, "ingest_workers_warm", 1)
        workers = _children(recorder)
        assert len(workers) == 2
        assert server.metrics()["ingest_in_workers"] == 0

        assert _post(server, large)["stored"] == n
        metrics = server.metrics()
        assert metrics["ingest_in_workers"] == n and metrics["ingest_framed"] == n
        # the same documents in small bodies, prepared by the recorder
        for start in range(0, n, 40):
            small = b"\n".join(
                orjson.dumps({**_record("large", i, rejected=False), "requestId": f"small-{i}"})
                for i in range(start, start + 40)
            )
            assert len(small) < WORKER_BYTES
            assert _post(server, small)["stored"] == 40
        assert server.metrics()["ingest_in_workers"] == n
        server.settle()
        for i in range(n):
            framed = server.wait_for_record(f"large-{i}")
            assert _same(framed) == _same(server.wait_for_record(f"small-{i}"))

        # a resend: every record a duplicate, nothing stored twice
        again = _post(server, large)
        assert again["stored"] == 0 and again["duplicate"] == n

        # a secret: redacted in a worker before the spool, and framed
        redactions = server.metrics()["redactions"]
        secret = _body("secret", n, text=f"my key {SECRET}", rejected=False)
        answer = _post(server, secret)
        assert answer["stored"] == n
        metrics = server.metrics()
        assert metrics["ingest_in_workers"] == 3 * n and metrics["ingest_framed"] == 3 * n
        holding = sum(SECRET in line for line in secret.decode().splitlines())
        assert holding > 100 and metrics["redactions"] == redactions + holding
        server.settle()
        stored = server.wait_for_record("secret-1")
        assert SECRET not in orjson.dumps(stored).decode()
        assert "my key" in orjson.dumps(stored).decode()
        for segment in (tmp_path / "data" / "spool").glob("*.spool"):
            assert SECRET.encode() not in segment.read_bytes()

        # bad input through a worker: the API's own error, naming the field and the limit
        bad = httpx.post(server.url + "/api/records", content=b"[" + b" " * WORKER_BYTES + b"{")
        assert bad.status_code == 400 and bad.json()["field"] == "body"
        many = b"\n".join(orjson.dumps(_record("many", i, rejected=False)) for i in range(50_001))
        too_many = httpx.post(server.url + "/api/records", content=many, timeout=60)
        assert too_many.status_code == 413, too_many.text
        assert "50000" in too_many.text.replace(",", "")

        # a worker killed with SIGKILL: the next body is answered, by a new one
        os.kill(sorted(workers)[0], signal.SIGKILL)
        assert _post(server, _body("after-kill", n, rejected=False))["stored"] == n
        assert server.metrics()["ingest_worker_restarts"] >= 1
        assert server.wait_for_record(f"after-kill-{n - 1}")["requestId"] == f"after-kill-{n - 1}"
        workers = _children(recorder)
        assert len(workers) == 2
    # stopped: the recorder and its workers are gone
    deadline = time.monotonic() + 15
    while any(_alive(pid) for pid in (recorder, *workers)):
        assert time.monotonic() < deadline, "a process of the record path is still alive"
        time.sleep(0.05)


def test_without_workers_the_recorder_prepares_every_body(tmp_path: Path) -> None:
    config = "[server]\ningest_workers = 0\n"
    with ServerProcess(tmp_path / "data", config=config) as server:
        recorder = int(server.metrics()["recorder_pid"])
        for k in range(2):
            assert _post(server, _body(f"b{k}", 400, rejected=False))["stored"] == 400
        assert "ingest_in_workers" not in server.metrics()
        assert _children(recorder) == set()
