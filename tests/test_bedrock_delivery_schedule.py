"""Continuous Bedrock-layout delivery as the server runs it: a real ``llmtrail serve`` whose
workspace sets ``s3Config`` writes its gateway records as ``AWSLogs/…/*.json.gz`` objects
under that prefix on its own, and of two servers sharing a store only the lease holder
delivers."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import openai
import orjson

from llmtrail.capture.bedrock_delivery import BedrockDelivery
from llmtrail.capture.bedrock_layout import decode_batch, parse_key
from llmtrail.server.delivery_schedule import DeliverySchedule
from llmtrail.store.memory import MemoryRecordStore, MemoryStateStore
from llmtrail.store.objects import MemoryObjectStore
from tests.harness import ServerProcess, call


def delivered_ids(root: Path) -> list[str]:
    files = [p for p in root.rglob("*.json.gz") if parse_key(p.relative_to(root).as_posix())]
    return [orjson.loads(line)["requestId"] for p in files for line in decode_batch(p.read_bytes())]


def test_a_running_server_delivers_its_records_under_the_s3_config_prefix(
    tmp_path: Path,
) -> None:
    env = {"LLMTRAIL_OBJECTS__DELIVERY_INTERVAL_S": "0.5"}
    with ServerProcess(tmp_path / "data", env=env) as server:
        body = {"loggingConfig": {"s3Config": {"bucketName": "logs", "keyPrefix": "team/a"}}}
        status, answer = call(server.url, "PUT", "/api/logging-configuration", body)
        assert status == 200, answer
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="sk-test", max_retries=0)
        with client:
            ids = [
                client.chat.completions.with_raw_response.create(
                    model="sim/fast", messages=[{"role": "user", "content": f"call {i}"}]
                ).headers["x-llmtrail-request-id"]
                for i in range(5)
            ]
        root = server.data_dir / "objects"
        deadline = time.monotonic() + 60
        while sorted(delivered_ids(root)) != sorted(ids):
            assert time.monotonic() < deadline, (delivered_ids(root), ids)
            time.sleep(0.2)
        keys = [p.relative_to(root).as_posix() for p in root.rglob("*.json.gz")]
        assert keys and all("/team/a/AWSLogs/" in f"/{k}" for k in keys), keys


def test_of_two_servers_only_the_lease_holder_delivers() -> None:
    state = MemoryStateStore()
    clock = [datetime(2026, 12, 6, 12, 0, tzinfo=UTC)]
    delivery = BedrockDelivery(MemoryRecordStore(), state, MemoryObjectStore())
    first = DeliverySchedule(delivery, state, interval_s=60, clock=lambda: clock[0], holder="a")
    second = DeliverySchedule(delivery, state, interval_s=60, clock=lambda: clock[0], holder="b")
    assert first.run_once() is True
    assert second.run_once() is False  # "a" holds the lease
    clock[0] += timedelta(minutes=2)
    assert second.run_once() is False  # still within three intervals of "a"'s round
    clock[0] += timedelta(minutes=3)
    assert second.run_once() is True  # "a" went quiet: "b" takes over
    assert first.run_once() is False
