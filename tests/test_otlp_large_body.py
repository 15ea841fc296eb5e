"""A large OTLP body is decoded in the receiver's worker process: its spans and model calls
arrive just as a small body's do."""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from llmtrail.capture.otlp import decode_traces
from llmtrail.pipeline.frames import decode_payload, encode_span_payload
from llmtrail.server.traces_api import _POOL_BYTES, _span_view
from tests.harness import ServerProcess
from tests.processes import children, command_line, maps

TRACES, SPANS_PER_TRACE = 40, 10


def _attr(key: str, value: str | int) -> KeyValue:
    any_value = (
        AnyValue(int_value=value) if isinstance(value, int) else AnyValue(string_value=value)
    )
    return KeyValue(key=key, value=any_value)


def _body() -> bytes:
    request = ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    start = 1_764_000_000_000_000_000
    for t in range(TRACES):
        trace_id = os.urandom(16)
        root = os.urandom(8)
        for s in range(SPANS_PER_TRACE):
            span = scope.spans.add()
            span.trace_id, span.span_id = trace_id, root if s == 0 else os.urandom(8)
            if s:
                span.parent_span_id = root
            span.start_time_unix_nano = start + t * 10**9 + s * 10**6
            span.end_time_unix_nano = span.start_time_unix_nano + 5 * 10**5
            span.kind = Span.SPAN_KIND_CLIENT if s == 1 else Span.SPAN_KIND_INTERNAL
            if s == 1:  # one model call per trace
                span.name = "chat sim/demo"
                span.attributes.extend(
                    [
                        _attr("gen_ai.operation.name", "chat"),
                        _attr("gen_ai.provider.name", "openai"),
                        _attr("gen_ai.request.model", "gpt-4o-mini"),
                        _attr("gen_ai.usage.input_tokens", 100 + t),
                        _attr("gen_ai.usage.output_tokens", 20),
                    ]
                )
            else:
                span.name = f"step {s}"
                span.attributes.extend(
                    [_attr("llmtrail.span.kind", "tool"), _attr("llmtrail.input", "x" * 400)]
                )
    return request.SerializeToString()


# The model calls are priced from this price of the test's own, not from the installed
# genai-prices data, which changes with every release of that package. USD per million tokens.
PRICE = {
    "id": "large-body",
    "provider": "openai",
    "model": "gpt-4o-mini",
    "prices": {"input_mtok": "1", "output_mtok": "5"},
    "effective_from": "2020-01-01",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with ServerProcess(tmp_path_factory.mktemp("otlp-large") / "data") as proc:
        request = urllib.request.Request(
            proc.url + "/api/prices",
            data=json.dumps(PRICE).encode(),
            method="PUT",
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 201
        yield proc


def _export(server: ServerProcess, body: bytes) -> None:
    request = urllib.request.Request(
        server.url + "/v1/traces",
        data=body,
        method="POST",
        headers={"content-type": "application/x-protobuf"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.status == 200


def test_a_large_body_goes_through_the_worker_process(server: ServerProcess) -> None:
    body = _body()
    assert len(body) >= _POOL_BYTES
    _export(server, body)
    server.settle()
    traces = server.get(f"/api/traces?start=2025-11-24T00:00:00Z&limit={TRACES + 10}")["traces"]
    assert len(traces) == TRACES
    assert {t["spanCount"] for t in traces} == {SPANS_PER_TRACE}
    assert {t["llmCalls"] for t in traces} == {1}
    records = server.get("/api/records?limit=1000&start=2025-11-24T00:00:00Z")["records"]
    otlp = [r for r in records if r.get("source") == "otlp"]
    assert sorted(r["input"]["inputTokenCount"] for r in otlp) == [100 + t for t in range(TRACES)]
    for r in otlp:  # priced in the worker process, with the price set on the server
        tokens = (r["input"]["inputTokenCount"], r["output"]["outputTokenCount"])
        expected = (Decimal(tokens[0]) * 1 + Decimal(tokens[1]) * 5) / 1_000_000
        assert "totalUsd" in r["cost"], json.dumps(r["cost"])
        assert (Decimal(r["cost"]["totalUsd"]), r["cost"]["priceVersion"]) == (
            expected,
            "override:large-body",
        )


def test_a_large_bodys_spans_are_stored_as_decoded(server: ServerProcess) -> None:
    """The worker process frames the spans that are not model calls and converts them to
    the rows stored (`SpanFrames`); with nothing for the workspace's policies to change,
    they are stored as they are: each reads back as decoding the body in-process gives it,
    and a replay of their frames would give it."""
    _stored_as_decoded(server)
    # the worker converted the spans with pyarrow, which never loaded pandas there
    assert server.proc is not None
    recorder = int(server.metrics()["recorder_pid"])
    workers = [
        p for p in children(server.proc.pid) if "spawn_main" in command_line(p) and p != recorder
    ]
    assert workers and all("pyarrow/lib" in maps(p) for p in workers if _decoded_in(p))
    assert not [p for p in workers if "/pandas/" in maps(p)]


def test_without_the_recorder_framed_spans_are_read_back_and_stored(tmp_path: Path) -> None:
    """With the record path in the serving process (``recorder_process = false``) the
    worker's framed spans are read back from their frames and prepared one by one: stored
    the same."""
    env = {"LLMTRAIL_SERVER__RECORDER_PROCESS": "false"}
    with ServerProcess(tmp_path / "data", env=env) as server:
        assert server.metrics().get("recorder_pid", 0) == 0
        _stored_as_decoded(server)


def _stored_as_decoded(server: ServerProcess) -> None:
    """Export a large body; its spans read back as decoding it in-process gives them."""
    body = _body()
    decoded = decode_traces(body, "application/x-protobuf", workspace="default")
    _export(server, body)
    server.settle()
    expected = {(s.trace_id, s.span_id): s for s in decoded.spans}
    assert len(expected) == TRACES * (SPANS_PER_TRACE - 1)
    for trace_id in sorted({s.trace_id for s in decoded.spans})[:5]:
        stored = server.get(f"/api/traces/{trace_id}")["spans"]
        spans = [s for s in stored if (trace_id, s["spanId"]) in expected]
        assert len(spans) == SPANS_PER_TRACE - 1
        for got in spans:
            span = expected[(trace_id, got["spanId"])]
            assert got == json.loads(json.dumps(_span_view(span)))
            assert decode_payload(encode_span_payload(span)) == span


def _decoded_in(pid: int) -> bool:
    """Whether worker ``pid`` ran a job (it imported the OTLP decoder)."""
    mapped = maps(pid)
    return "google/_upb" in mapped or "protobuf" in mapped
