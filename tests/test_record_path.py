"""The record path in its own process (docs/record-path.md), end to end on real servers.

Each test starts ``llmtrail serve`` (which starts its recorder process), sends real calls
through the official OpenAI client and real ingest batches, and kills processes with
SIGKILL: the recorder alone, the serving process alone, and both. What was acknowledged is
never lost, and the server recovers by itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import openai
import pytest

from llmtrail.testing.openai_upstream import OpenAIUpstream
from tests.harness import ServerProcess, call
from tests.processes import maps
from tests.wall_clock import wait_out_month_end

MODEL = "sim/record-path"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped by its parent) is gone too
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def _wait_gone(pid: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while _alive(pid):
        assert time.monotonic() < deadline, f"process {pid} is still alive"
        time.sleep(0.05)


def _recorder_pid(server: ServerProcess) -> int:
    pid = int(server.metrics()["recorder_pid"])
    assert pid > 0 and pid != server.proc.pid  # type: ignore[union-attr]
    return pid


def _records(n: int, tag: str) -> list[dict[str, Any]]:
    return [
        {
            "timestamp": "2026-12-01T10:00:00.000Z",
            "requestId": f"{tag}-{i}",
            "modelId": "anthropic.claude-3-haiku-20240307-v1:0",
            "operation": "Converse",
            "input": {"inputTokenCount": 10 + i},
            "output": {"outputTokenCount": 5},
        }
        for i in range(n)
    ]


def _ingest(server: ServerProcess, records: list[dict[str, Any]]) -> dict[str, Any]:
    status, answer = call(server.url, "POST", "/api/records", records)
    assert status == 200, answer
    return answer  # type: ignore[no-any-return]


def _client(server: ServerProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key="sk-test-not-a-key", max_retries=0)


def _chat(client: openai.OpenAI, text: str, **extra: Any) -> str:
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=[{"role": "user", "content": text}], **extra
    )
    return str(raw.headers["x-llmtrail-request-id"])


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    with ServerProcess(tmp_path / "data") as running:
        yield running


def test_the_recorder_is_a_child_holding_the_record_work(tmp_path: Path) -> None:
    """Through a real OpenAI-compatible upstream that reports no usage, the tokens are
    counted: in the recorder, whose maps hold the tokenizer, never in the serving process;
    and pandas is loaded by neither."""
    with OpenAIUpstream() as upstream:
        config = (
            f'[providers.up]\ntype = "openai"\nbase_url = "{upstream.base_url}"\n\n'
            '[[routes]]\nmatch = "nousage"\nprovider = "up"\n'
        )
        with ServerProcess(tmp_path / "data", config=config) as server:
            assert server.proc is not None
            recorder = _recorder_pid(server)
            assert Path(f"/proc/{recorder}/stat").read_text().split()[3] == str(server.proc.pid)
            with _client(server) as client:
                raw = client.chat.completions.with_raw_response.create(
                    model="nousage", messages=[{"role": "user", "content": "count me, please"}]
                )
            server.settle()
            record = server.wait_for_record(raw.headers["x-llmtrail-request-id"])
            assert record["input"]["inputTokenCount"] > 0
            assert record["tokenCountEstimated"] is True
            assert "bpe_openai/_bindings" in maps(recorder)
            assert "bpe_openai/_bindings" not in maps(server.proc.pid)
            # the batch was converted to Arrow there and inserted here, and neither process
            # loaded pandas (pyarrow's list conversion would, unrefused)
            assert "pyarrow/lib" in maps(recorder) and "pyarrow/lib" in maps(server.proc.pid)
            assert "/pandas/" not in maps(recorder)
            assert "/pandas/" not in maps(server.proc.pid)


def _nice(pid: int, tid: int) -> int:
    stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2 :].split()[16])


def test_the_record_path_yields_the_cores_to_the_relay(tmp_path: Path) -> None:
    """The recorder, the serving process's store writer and the threads DuckDB runs for the
    store run at ``recorder_nice``; the event loop that relays calls, and every other thread,
    at the server's own priority."""
    config = "[server]\nrecorder_nice = 7\n"
    with ServerProcess(tmp_path / "data", config=config) as server:
        assert server.proc is not None
        pid = server.proc.pid
        recorder = _recorder_pid(server)
        assert {_nice(recorder, int(t.name)) for t in Path(f"/proc/{recorder}/task").iterdir()} == {
            7
        }
        niceness = [_nice(pid, int(t.name)) for t in Path(f"/proc/{pid}/task").iterdir()]
        assert _nice(pid, pid) == 0
        assert niceness.count(7) >= 2  # the DuckDB writer thread and DuckDB's own
        assert niceness.count(0) >= 5  # the event loop, the link's threads, …
        assert set(niceness) == {0, 7}


def _policies(pid: int) -> set[int]:
    policies = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            policies.add(os.sched_getscheduler(int(task.name)))
    return policies


def _wait_policy(pid: int, policy: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while _policies(pid) != {policy}:
        assert time.monotonic() < deadline, f"{pid}'s threads stay {_policies(pid)}"
        time.sleep(0.05)


def test_the_recorder_takes_idle_cores_until_work_waits_on_it(tmp_path: Path) -> None:
    """At rest every thread of the recorder runs under SCHED_IDLE (the root running the
    tests may always leave it); while ingest batches wait for their fsync it runs at its
    niceness, and it goes back to SCHED_IDLE after. The serving process never yields. (The
    policies are read from /proc: a read of /metrics asks the recorder for its stats, which
    presses it too.)"""
    config = "[server]\nrecorder_nice = 7\n"
    with ServerProcess(tmp_path / "data", config=config) as server:
        assert server.proc is not None
        recorder = _recorder_pid(server)
        _wait_policy(recorder, os.SCHED_IDLE)
        assert _policies(server.proc.pid) == {os.SCHED_OTHER}
        deadline = time.monotonic() + 60
        n = 0
        while True:  # a boost lasts a second past the pressure: seen just after a batch
            assert time.monotonic() < deadline, "ingest never took the recorder out of idle"
            _ingest(server, _records(500, f"busy-{n}"))
            n += 1
            if _policies(recorder) == {os.SCHED_OTHER}:
                break
        _wait_policy(recorder, os.SCHED_IDLE)
        assert {_nice(recorder, int(t.name)) for t in Path(f"/proc/{recorder}/task").iterdir()} == {
            7
        }
        assert server.metrics()["recorder_boosts"] >= 1
        deadline = time.monotonic() + 60
        while server.metrics()["stored"] < 500 * n:  # stored after the answer, in the background
            assert time.monotonic() < deadline, "the ingested records were not stored"
            time.sleep(0.1)


def test_without_recorder_idle_the_recorder_keeps_its_niceness_alone(tmp_path: Path) -> None:
    config = "[server]\nrecorder_idle = false\n"
    with ServerProcess(tmp_path / "data", config=config) as server:
        recorder = _recorder_pid(server)
        time.sleep(1.5)  # past the second after which a yielding recorder would be idle
        assert _policies(recorder) == {os.SCHED_OTHER}
        assert server.metrics()["recorder_idle"] == 0


def test_kill_9_of_the_recorder_alone_restarts_it_and_loses_nothing_acknowledged(
    server: ServerProcess,
) -> None:
    first = _recorder_pid(server)
    answer = _ingest(server, _records(300, "before"))
    assert answer["stored"] == 300
    os.kill(first, signal.SIGKILL)
    _wait_gone(first)
    deadline = time.monotonic() + 60
    while True:  # the serving process notices and starts another; /readyz says when
        metrics = server.metrics()
        if metrics["recorder_restarts"] == 1 and metrics["ready"] == 1:
            break
        assert time.monotonic() < deadline, metrics
        time.sleep(0.05)
    second = _recorder_pid(server)
    assert second != first and _alive(second)
    assert _ingest(server, _records(50, "after"))["stored"] == 50
    with _client(server) as client:
        request_id = _chat(client, "still recorded")
    server.settle()
    assert server.wait_for_record(request_id)["requestId"] == request_id
    for tag, n in (("before", 300), ("after", 50)):
        for i in (0, n - 1):
            assert server.wait_for_record(f"{tag}-{i}")["input"]["inputTokenCount"] == 10 + i


def test_kill_9_of_the_serving_process_takes_the_recorder_and_a_restart_recovers(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    first = ServerProcess(data).start()
    recorder = _recorder_pid(first)
    try:
        answer = _ingest(first, _records(500, "acked"))
        assert answer["stored"] == 500
    finally:
        first.kill()  # SIGKILL of the serving process alone
    _wait_gone(recorder)  # the recorder leaves by itself: nothing is left behind
    with ServerProcess(data) as again:
        again.settle()
        for i in (0, 250, 499):
            assert again.wait_for_record(f"acked-{i}")["requestId"] == f"acked-{i}"
        listed = again.get("/api/records?limit=1000")["records"]
        assert len({r["requestId"] for r in listed if r["requestId"].startswith("acked-")}) == 500


def test_kill_9_of_both_loses_nothing_acknowledged(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = ServerProcess(data).start()
    recorder = _recorder_pid(first)
    try:
        assert _ingest(first, _records(200, "both"))["stored"] == 200
        os.kill(recorder, signal.SIGKILL)
    finally:
        first.kill()
    _wait_gone(recorder)
    with ServerProcess(data) as again:
        again.settle()
        listed = again.get("/api/records?limit=1000")["records"]
        assert len({r["requestId"] for r in listed if r["requestId"].startswith("both-")}) == 200
        assert again.metrics()["recorder_restarts"] == 0


def test_a_budget_spent_through_the_recorder_refuses_the_next_call(server: ServerProcess) -> None:
    wait_out_month_end(timedelta(seconds=30))  # spent and refused in one month
    body = {
        "dimension": "requestMetadata.tenant_id",
        "value": "rp-broke",
        "limitUsd": "0.000001",
        "action": "refuse",
    }
    status, made = call(server.url, "PUT", "/api/budgets", body)
    assert status in (200, 201), made
    with _client(server) as client:
        _chat(client, "spend something", metadata={"tenant_id": "rp-broke"})
        deadline = time.monotonic() + 10  # the recorder prices the call, then tells the server
        while not server.get("/api/budgets")["budgets"][0]["refusing"]:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        with pytest.raises(openai.RateLimitError) as refused:
            _chat(client, "and more", metadata={"tenant_id": "rp-broke"})
        assert isinstance(refused.value.body, dict)
        assert refused.value.body["code"] == "budget_exceeded"
        _chat(client, "another tenant pays its own way", metadata={"tenant_id": "rp-fine"})


def test_the_serving_process_can_run_the_record_path_itself(tmp_path: Path) -> None:
    config = "[server]\nrecorder_process = false\n"
    with ServerProcess(tmp_path / "data", config=config) as server:
        assert server.metrics().get("recorder_pid", 0) == 0
        with _client(server) as client:
            request_id = _chat(client, "in one process")
        server.settle()
        assert server.wait_for_record(request_id)["requestId"] == request_id


def test_metrics_show_the_hand_over(server: ServerProcess) -> None:
    with _client(server) as client:
        for i in range(5):
            _chat(client, f"call {i}")
    metrics = server.settle()
    assert metrics["recorder_handed_over"] == 5 and metrics["handover_pending"] == 0
    assert metrics["stored"] == 5 and metrics["dropped_handover_full"] == 0
    with urllib.request.urlopen(server.url + "/readyz", timeout=10) as response:
        assert json.loads(response.read())["status"] == "ready"


def test_a_span_exported_right_after_its_call_merges_into_its_record(
    server: ServerProcess,
) -> None:
    """The serving loop hands a call's facts over through its own pipe, and an OTLP export
    waits for the calls handed over before it (a barrier, on the same pipe after them): a
    span describing a call, exported the moment the call answered, merges into its record
    every time."""
    with _client(server) as client:
        for i in range(5):
            raw = client.chat.completions.with_raw_response.create(
                model=MODEL, messages=[{"role": "user", "content": f"merge {i}"}]
            )
            response_id = raw.parse().id
            now = time.time_ns()
            attributes = [
                {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
                {"key": "gen_ai.request.model", "value": {"stringValue": MODEL}},
                {"key": "gen_ai.response.id", "value": {"stringValue": response_id}},
            ]
            span = {"traceId": f"{i + 1:032x}", "spanId": f"{i + 1:016x}", "name": "chat",
                    "startTimeUnixNano": str(now), "endTimeUnixNano": str(now + 10**6),
                    "attributes": attributes}  # fmt: skip
            body = {"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}
            request = urllib.request.Request(
                server.url + "/v1/traces",
                data=json.dumps(body).encode(),
                headers={"content-type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=30) as response:
                assert response.headers["x-llmtrail-merged"] == "1", i


def test_a_stop_stores_every_call_handed_over_before_it(tmp_path: Path) -> None:
    """SIGTERM right after the last answer: the serving loop writes out the facts it still
    holds before it asks the recorder to stop, and the recorder reads them all first."""
    with ServerProcess(tmp_path / "data") as first, _client(first) as client:
        ids = [_chat(client, f"before the stop {i}") for i in range(40)]
        assert first.terminate() == 0
    with ServerProcess(tmp_path / "data") as second:
        second.settle()
        for request_id in ids:
            assert second.wait_for_record(request_id)["requestId"] == request_id


def _otlp_batch(k: int) -> tuple[str, bytes]:
    """One trace: a model call (a record, through the recorder) and a tool step (a span)."""
    trace = f"{k:032x}"
    now = time.time_ns()

    def attrs(values: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            {
                "key": key,
                "value": {"intValue": str(v)} if isinstance(v, int) else {"stringValue": v},
            }
            for key, v in values.items()
        ]

    chat = {
        "traceId": trace,
        "spanId": f"{k:08x}00000001",
        "name": "chat gpt-4o-mini",
        "startTimeUnixNano": str(now),
        "endTimeUnixNano": str(now + 900_000_000),
        "attributes": attrs(
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.system": "openai",
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.usage.input_tokens": 52,
                "gen_ai.usage.output_tokens": 18,
            }
        ),
    }
    tool = {
        "traceId": trace,
        "spanId": f"{k:08x}00000002",
        "name": "execute_tool lookup",
        "startTimeUnixNano": str(now + 910_000_000),
        "endTimeUnixNano": str(now + 990_000_000),
        "attributes": attrs(
            {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "lookup"}
        ),
    }
    body = {"resourceSpans": [{"scopeSpans": [{"scope": {"name": "t"}, "spans": [chat, tool]}]}]}
    return trace, json.dumps(body).encode()


def test_kill_9_during_otlp_ingest_loses_nothing_acknowledged(tmp_path: Path) -> None:
    """OTLP model calls go through the recorder's spool, other spans straight to the store:
    either way an acknowledged export survives a kill -9 of the serving process."""
    data = tmp_path / "data"
    first = ServerProcess(data).start()
    recorder = _recorder_pid(first)
    acked: list[str] = []
    try:
        for k in range(1, 26):
            trace, body = _otlp_batch(k)
            request = urllib.request.Request(
                first.url + "/v1/traces",
                data=body,
                method="POST",
                headers={"content-type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=30) as response:
                assert response.status == 200
            acked.append(trace)
    finally:
        first.kill()  # right after the last acknowledgement
    _wait_gone(recorder)
    with ServerProcess(data) as again:
        again.settle()
        for trace in acked:
            record = again.wait_for_record(f"otlp-{trace}-{trace[-8:]}00000001")
            assert record["input"]["inputTokenCount"] == 52
            view = again.get(f"/api/traces/{trace}")
            assert {s["name"] for s in view["spans"]} >= {"execute_tool lookup"}, view
