"""The background export: valid OTLP JSON, batching, flush, a down or failing server, a full
queue, shutdown and the flush at exit — against a real local HTTP server."""

from __future__ import annotations

import base64
import contextlib
import copy
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import orjson
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from llmtrail import sdk
from tests.sdk.collector import Collector
from tests.sdk.conftest import deterministic, exported

SRC = Path(__file__).resolve().parents[2] / "src"


def closed_port_url() -> str:
    """A URL nothing listens on: connections are refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def ids_as_base64(document: Any) -> Any:
    """OTLP/JSON carries ids as hex; protobuf's generic JSON parser expects base64."""
    if isinstance(document, dict):
        return {
            k: base64.b64encode(bytes.fromhex(v)).decode()
            if k in ("traceId", "spanId", "parentSpanId")
            else ids_as_base64(v)
            for k, v in document.items()
        }
    if isinstance(document, list):
        return [ids_as_base64(v) for v in document]
    return document


def test_the_body_is_a_valid_otlp_export_request(traced: Collector) -> None:
    @sdk.llm(name="call")
    def call(messages: list[dict[str, str]]) -> str:
        sdk.annotate(usage={"input_tokens": 2**40}, tags=["a", "b"], metadata={"ratio": 0.5})
        sdk.current_span().set_attribute("x.nan", float("nan"))  # type: ignore[union-attr]
        raise RuntimeError("model down")

    with sdk.span("outer", kind="workflow"), contextlib.suppress(RuntimeError):
        call([{"role": "user", "content": "hi"}])
    exported(traced)
    [post] = traced.trace_posts()
    assert post.headers["content-type"] == "application/json"
    document = post.json()
    message = json_format.Parse(
        orjson.dumps(ids_as_base64(copy.deepcopy(document))), ExportTraceServiceRequest()
    )
    spans = message.resource_spans[0].scope_spans[0].spans
    assert message.resource_spans[0].scope_spans[0].scope.name == "llmtrail.sdk"
    assert [s.name for s in spans] == ["call", "outer"]
    call_span, outer_span = spans
    assert call_span.trace_id == bytes.fromhex(f"{1:032x}")
    assert len(call_span.span_id) == 8
    assert call_span.parent_span_id == outer_span.span_id
    assert call_span.kind == 3  # SPAN_KIND_CLIENT
    assert call_span.status.code == 2  # STATUS_CODE_ERROR
    assert call_span.events[0].name == "exception"
    assert call_span.end_time_unix_nano > call_span.start_time_unix_nano
    attrs = {kv.key: kv.value for kv in call_span.attributes}
    assert attrs["gen_ai.usage.input_tokens"].int_value == 2**40
    assert [v.string_value for v in attrs["llmtrail.tags"].array_value.values] == ["a", "b"]
    assert attrs["llmtrail.metadata.ratio"].double_value == 0.5
    assert attrs["x.nan"].double_value != attrs["x.nan"].double_value  # NaN survived
    resource = {
        kv.key: kv.value.string_value for kv in message.resource_spans[0].resource.attributes
    }
    assert resource["service.name"] == "test-app"


def test_authorization_and_endpoint(collector: Collector) -> None:
    deterministic(collector, api_key="lt-key-123", url=collector.url + "/")
    with sdk.span("x"):
        pass
    exported(collector)
    [post] = collector.trace_posts()
    assert post.path == "/v1/traces"
    assert post.headers["authorization"] == "Bearer lt-key-123"


def test_batches_go_by_size_without_a_flush(collector: Collector) -> None:
    deterministic(collector, max_batch=2)
    for i in range(4):
        with sdk.span(f"s{i}"):
            pass
    assert collector.wait_for(lambda: len(collector.trace_posts()) == 2)
    sizes = [
        len(p.json()["resourceSpans"][0]["scopeSpans"][0]["spans"]) for p in collector.trace_posts()
    ]
    assert sizes == [2, 2]
    assert sdk.flush(timeout=30)
    assert sdk.stats()["exported"] == 4


def test_batches_go_by_time_without_a_flush(collector: Collector) -> None:
    deterministic(collector, export_interval=0.05)
    with sdk.span("lonely"):
        pass
    assert collector.wait_for(lambda: len(collector.spans()) == 1)
    assert collector.span_named("lonely")


def test_flush_sends_everything_and_stats_count_it(traced: Collector) -> None:
    for i in range(5):
        with sdk.span(f"s{i}"):
            pass
    assert sdk.stats()["exported"] == 0  # nothing due yet: interval is an hour
    assert sdk.flush(timeout=30)
    assert [s["name"] for s in traced.spans()] == [f"s{i}" for i in range(5)]
    stats = sdk.stats()
    assert (stats["exported"], stats["dropped"], stats["failed_batches"]) == (5, 0, 0)
    assert stats["queued"] == 0


def test_a_down_server_raises_nothing_and_drops_are_counted(tmp_path: Path) -> None:
    sdk.configure(
        url=closed_port_url(),
        max_queue=5,
        max_batch=2,
        export_interval=3600.0,
        max_retries=2,
        retry_delay=0.001,
    )

    @sdk.task
    def step(i: int) -> int:
        return i

    for i in range(20):
        assert step(i) == i
    assert sdk.stats()["queued"] <= 5  # bounded memory, whatever the server does
    assert sdk.flush(timeout=30)
    assert sdk.shutdown(timeout=30)
    stats = sdk.stats()
    assert stats["exported"] == 0
    assert stats["dropped"] == 20
    assert stats["dropped_queue_full"] + stats["dropped_export"] == 20
    assert stats["failed_batches"] >= 1
    assert stats["retries"] == 2 * stats["failed_batches"]


def test_a_failing_server_is_retried_until_it_recovers(collector: Collector) -> None:
    collector.trace_status = 503
    deterministic(collector, max_retries=1000, retry_delay=0.001)
    with sdk.span("patient"):
        pass
    sdk.flush(timeout=0)  # send now, without waiting
    assert collector.wait_for(lambda: len(collector.trace_posts()) >= 2)
    collector.trace_status = 200
    assert sdk.flush(timeout=30)
    stats = sdk.stats()
    assert (stats["exported"], stats["dropped"], stats["failed_batches"]) == (1, 0, 0)
    assert stats["retries"] >= 1


def test_a_rejected_batch_is_not_retried(collector: Collector) -> None:
    collector.trace_status = 400
    deterministic(collector)
    with sdk.span("bad"):
        pass
    assert sdk.flush(timeout=30)
    stats = sdk.stats()
    assert (stats["exported"], stats["dropped_export"], stats["failed_batches"]) == (0, 1, 1)
    assert stats["retries"] == 0
    assert len(collector.trace_posts()) == 1


def test_a_full_queue_drops_and_counts_without_blocking(collector: Collector) -> None:
    collector.hold_traces()
    deterministic(collector, max_queue=3, max_batch=1)
    with sdk.span("first"):
        pass
    sdk.flush(timeout=0)
    assert collector.wait_for(lambda: len(collector.trace_posts()) == 1)  # exporter is stuck
    for i in range(5):
        with sdk.span(f"more{i}"):
            pass
    stats = sdk.stats()
    assert (stats["queued"], stats["dropped_queue_full"]) == (3, 2)
    collector.release()
    assert sdk.flush(timeout=30)
    assert [s["name"] for s in collector.spans()] == ["first", "more0", "more1", "more2"]
    stats = sdk.stats()
    assert (stats["exported"], stats["dropped"]) == (4, 2)


def test_shutdown_stops_recording_and_keeps_the_stats(traced: Collector) -> None:
    @sdk.task
    def work() -> int:
        return 1

    work()
    scope = sdk.span("open across shutdown")
    scope.__enter__()
    assert sdk.shutdown(timeout=30)
    scope.__exit__(None, None, None)
    assert work() == 1
    assert [s["name"] for s in traced.spans()] == [
        "test_shutdown_stops_recording_and_keeps_the_stats.<locals>.work"
    ]
    stats = sdk.stats()
    assert (stats["exported"], stats["dropped_after_shutdown"]) == (1, 1)


def run_script(body: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(body)],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(SRC)},
        timeout=120,
    )


def test_spans_still_queued_are_sent_at_exit(collector: Collector) -> None:
    done = run_script(
        f"""
        from llmtrail import sdk
        sdk.configure(url={collector.url!r}, app="exiting", export_interval=3600)

        @sdk.workflow(name="last words")
        def main():
            return "bye"

        main()
        """
    )
    assert done.returncode == 0, done.stderr
    assert collector.span_named("last words")["resource"]["service.name"] == "exiting"


def test_a_program_exits_cleanly_when_the_server_is_down() -> None:
    done = run_script(
        f"""
        from llmtrail import sdk
        sdk.configure(url={closed_port_url()!r}, exit_timeout=2, retry_delay=0.01)
        with sdk.span("unsent"):
            pass
        print("done")
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "done"
    assert done.stderr == ""
