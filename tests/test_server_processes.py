"""The server's worker processes, end to end: they leave with the server, kill -9 included; a
bad body handled in a worker (or in the recorder process, for ingest) leaves them fit for every
later request."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.harness import ServerProcess
from tests.processes import alive, children, command_line

WORKER_BYTES = 256 * 1024  # a large ingest body (decoded by the recorder process)
OTLP_WORKER_BYTES = 64 * 1024  # what the OTLP receiver hands to a worker (server/traces_api.py)
CONFIG = "[limits]\nmax_ingest_bytes = 4000000\nmax_ingest_records = 2000\n"


def ndjson_records(prefix: str, count: int, pad: int = 200) -> bytes:
    lines = [
        json.dumps(
            {
                "timestamp": "2026-11-23T10:00:00.000Z",
                "requestId": f"{prefix}-{i}",
                "modelId": "sim/demo",
                "operation": "Converse",
                "requestMetadata": {"tenant_id": "acme", "note": "x" * pad},
            }
        )
        for i in range(count)
    ]
    return "\n".join(lines).encode()


def otlp_json(trace_id: str, size: int) -> bytes:
    span = {
        "traceId": trace_id,
        "spanId": "00f067aa0ba902b7",
        "name": "retrieve documents",
        "kind": 1,
        "startTimeUnixNano": str(time.time_ns() - 1_000_000),
        "endTimeUnixNano": str(time.time_ns()),
        "attributes": [{"key": "documents", "value": {"stringValue": "d" * size}}],
    }
    doc = {"resourceSpans": [{"resource": {}, "scopeSpans": [{"scope": {}, "spans": [span]}]}]}
    return json.dumps(doc).encode()


def ingest(server: ServerProcess, body: bytes) -> httpx.Response:
    return httpx.post(server.url + "/api/records", content=body, timeout=60)


def start_workers(server: ServerProcess) -> list[int]:
    """Make the server start its workers (a large OTLP body) and return their pids."""
    answer = httpx.post(
        server.url + "/v1/traces",
        content=otlp_json("4bf92f3577b34da6a3ce929d0e0e4736", OTLP_WORKER_BYTES),
        headers={"content-type": "application/json"},
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    assert server.proc is not None
    deadline = time.monotonic() + 10
    while len(workers(server.proc.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(workers(server.proc.pid)) == 2, children(server.proc.pid)
    return children(server.proc.pid)  # the workers, the recorder, multiprocessing's tracker


def workers(pid: int) -> list[int]:
    """The worker processes: spawned children other than the recorder process."""
    recorder = int(server_metrics(pid).get("recorder_pid", 0))
    return [c for c in children(pid) if "spawn_main" in command_line(c) and c != recorder]


_SERVERS: dict[int, ServerProcess] = {}


def server_metrics(pid: int) -> dict[str, float]:
    return _SERVERS[pid].metrics()


def wait_gone(pids: list[int], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while (left := [p for p in pids if alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    with ServerProcess(tmp_path / "data", config=CONFIG) as proc:
        assert proc.proc is not None
        _SERVERS[proc.proc.pid] = proc
        yield proc


def test_workers_die_within_5_s_of_a_server_killed_with_sigkill(server: ServerProcess) -> None:
    workers = start_workers(server)
    assert server.proc is not None
    os.kill(server.proc.pid, signal.SIGKILL)
    server.proc.wait(10)
    assert wait_gone(workers, timeout=5.0) == []


def test_workers_stop_with_a_server_stopped_by_sigterm(server: ServerProcess) -> None:
    workers = start_workers(server)
    assert server.terminate() == 0
    assert wait_gone(workers, timeout=5.0) == []


def test_a_killed_worker_is_replaced(server: ServerProcess) -> None:
    start_workers(server)
    assert server.proc is not None
    first, second = workers(server.proc.pid)
    os.kill(first, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        now = workers(server.proc.pid)
        if len(now) == 2 and first not in now:
            break
        time.sleep(0.05)
    assert first not in now and second in now and len(now) == 2
    answer = ingest(server, ndjson_records("after-kill", 1200))
    assert answer.status_code == 200 and answer.json()["stored"] == 1200


def test_a_bad_large_body_leaves_the_workers_fit_for_the_next_request(
    server: ServerProcess,
) -> None:
    bad = b'[{"requestId": "broken", "modelId": ' + b"x" * (300 * 1024)
    for _ in range(3):  # more than there are workers
        answer = ingest(server, bad)
        assert answer.status_code == 400, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert answer.json()["field"] == "body"
    good = ndjson_records("after-bad", 1200)
    assert len(good) >= WORKER_BYTES
    answer = ingest(server, good)
    assert answer.status_code == 200, answer.text
    assert answer.json()["stored"] == 1200
    assert server.wait_for_record("after-bad-1199")["modelId"] == "sim/demo"
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    span_body = otlp_json(trace_id, OTLP_WORKER_BYTES)
    answer = httpx.post(
        server.url + "/v1/traces",
        content=span_body,
        headers={"content-type": "application/json"},
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    server.settle()
    spans = server.get(f"/api/traces/{trace_id}")["spans"]
    assert [s["name"] for s in spans] == ["retrieve documents"]
