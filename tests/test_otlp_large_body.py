"""A large OTLP body is decoded in the receiver's worker process: its spans and model calls
arrive just as a small body's do."""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Iterator
from decimal import Decimal

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from llmtrail.server.traces_api import _POOL_BYTES
from tests.harness import ServerProcess

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


def test_a_large_body_goes_through_the_worker_process(server: ServerProcess) -> None:
    body = _body()
    assert len(body) >= _POOL_BYTES
    request = urllib.request.Request(
        server.url + "/v1/traces",
        data=body,
        method="POST",
        headers={"content-type": "application/x-protobuf"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.status == 200
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
