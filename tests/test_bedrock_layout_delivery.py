"""Continuous delivery in Bedrock's layout, on a real runtime (DuckDB file, pipeline, the
directory object store): records of a workspace with ``s3Config`` land under its prefix,
each in exactly one object, also when a round is redone after a crash."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from llmtrail.capture.bedrock_delivery import NAMESPACE, BedrockDelivery
from llmtrail.capture.bedrock_layout import decode_batch, parse_key
from llmtrail.config import Settings
from llmtrail.record import InvocationRecord
from llmtrail.security.logging_config import parse_put_body
from llmtrail.server.runtime import Runtime
from llmtrail.store.interfaces import RecordQuery


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    rt = Runtime(Settings(data_dir=tmp_path / "data"))
    rt.start()
    try:
        yield rt
    finally:
        rt.close()


def store(runtime: Runtime, start: int, count: int) -> None:
    docs = [
        {
            "schemaType": "ModelInvocationLog",
            "timestamp": f"2026-12-0{1 + i % 3}T0{i % 4}:00:{i % 60:02d}.25Z",
            "requestId": f"d-{i}",
            "accountId": "123456789012",
            "region": "eu-west-1",
            "operation": "Converse",
            "modelId": "amazon.nova-lite-v1:0",
            "input": {"inputTokenCount": i},
        }
        for i in range(start, start + count)
    ]
    records = [InvocationRecord.from_dict(d, source="ingest") for d in docs]
    _, future = runtime.pipeline.ingest(records)
    future.result()
    deadline = time.monotonic() + 30
    while len(runtime.records.find(RecordQuery(limit=1000)).records) < start + count:
        assert time.monotonic() < deadline, "records not stored"
        time.sleep(0.05)


def delivered(root: Path) -> list[bytes]:
    files = [p for p in root.rglob("*.json.gz") if parse_key(p.relative_to(root).as_posix())]
    return [line for p in files for line in decode_batch(p.read_bytes())]


def test_records_are_delivered_under_the_prefix_once(runtime: Runtime) -> None:
    delivery = BedrockDelivery(runtime.records, runtime.state, runtime.objects)
    store(runtime, 0, 10)
    assert delivery.run_once() == 0  # no s3Config: nothing is delivered
    body = {"loggingConfig": {"s3Config": {"bucketName": "logs", "keyPrefix": "bedrock/a"}}}
    runtime.logging_config.put("default", parse_put_body(body))
    store(runtime, 10, 20)
    assert delivery.run_once() == 20  # what was stored since s3Config was set
    root = runtime.settings.data_dir / "objects" / "logs" / "bedrock" / "a"
    lines = delivered(root)
    expected = {
        orjson.dumps(r.to_dict("bedrock"))
        for r in runtime.records.find(RecordQuery(limit=1000)).records
        if int(r.request_id[2:]) >= 10
    }
    assert sorted(lines) == sorted(expected)
    before = runtime.state.get(NAMESPACE, "default")
    store(runtime, 30, 7)
    assert delivery.run_once() == 7
    # the checkpoint write of that round lost (a crash): the round is redone, same names
    runtime.state.put(NAMESPACE, "default", before)
    store(runtime, 37, 3)
    assert delivery.run_once() == 10
    lines = delivered(root)
    ids = [orjson.loads(x)["requestId"] for x in lines]
    assert sorted(ids) == sorted(f"d-{i}" for i in range(10, 40))  # each once
    assert delivery.run_once() == 0
