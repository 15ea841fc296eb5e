"""An OTLP model-call span merges only into a gateway call of the workspace that exported it,
on a real server with keys: a span that workspace ``acme`` exports for ``acme``'s own call
leaves that call's gateway record as the only record; one that another workspace exports for
it is that workspace's own record, and a span ``acme`` exports for a call of ``default`` does
not take that call either. Each runs on both decoding paths of ``POST /v1/traces``: a body
under `_POOL_BYTES` is decoded in the serving process, a larger one (padded by a tool span's
input) in a worker process.

The span names the call as an OpenTelemetry exporter does: the gateway call carried
``traceparent: 00-<trace>-<span>-01``, and the model-call span is that span. It is exported
once the gateway's record is stored, as an exporter's batch delay would have it.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from llmtrail.server.traces_api import _POOL_BYTES
from tests.harness import ServerProcess

PADDINGS = pytest.mark.parametrize(
    "padding", [0, 70_000], ids=["decoded-in-process", "decoded-in-worker"]
)


@dataclass(frozen=True)
class Workspace:
    """A workspace and the keys its test traffic uses: one that calls models, one that
    exports spans, one that reads (three keys of one workspace, or one admin key for all)."""

    name: str
    gateway: str
    ingester: str
    reader: str


def send(
    server: ServerProcess,
    key: str | None,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Message, bytes]:
    """Status, headers and body of one request as ``key`` (error answers included)."""
    auth = {"authorization": f"Bearer {key}"} if key else {}
    request = urllib.request.Request(
        server.url + path, data=body, method=method, headers={**auth, **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.headers, error.read()


def create_key(server: ServerProcess, by: str | None, **spec: Any) -> str:
    json_body = json.dumps(spec).encode()
    head = {"content-type": "application/json"}
    status, _, body = send(server, by, "POST", "/api/keys", json_body, head)
    assert status == 201, body
    return str(json.loads(body)["key"])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    running = ServerProcess(tmp_path_factory.mktemp("otlp-workspaces") / "data")
    with running:
        # open until the first key: anyone on loopback makes the operator (default's admin)
        running.key = create_key(running, None, role="admin", name="operator")
        yield running


@pytest.fixture(scope="module")
def spaces(server: ServerProcess) -> dict[str, Workspace]:
    operator = server.key
    assert operator is not None
    acme = Workspace(
        "acme",
        gateway=create_key(server, operator, role="gateway", workspace="acme", models=["sim/*"]),
        ingester=create_key(server, operator, role="ingester", workspace="acme"),
        reader=create_key(server, operator, role="reader", workspace="acme"),
    )
    return {"acme": acme, "default": Workspace("default", operator, operator, operator)}


def gateway_call(server: ServerProcess, caller: Workspace, model: str) -> tuple[str, str, str]:
    """A chat completion through the gateway as ``caller``, inside a client span named by
    ``traceparent``: the call's trace id, that span's id and the gateway's requestId, once
    the gateway's record is stored."""
    trace_id, span_id = os.urandom(16).hex(), os.urandom(8).hex()
    chat = {"model": model, "messages": [{"role": "user", "content": "Where is my parcel?"}]}
    head = {"content-type": "application/json", "traceparent": f"00-{trace_id}-{span_id}-01"}
    status, headers, body = send(
        server, caller.gateway, "POST", "/v1/chat/completions", json.dumps(chat).encode(), head
    )
    assert status == 200, body
    request_id = headers["x-llmtrail-request-id"]
    deadline = time.monotonic() + 30
    while send(server, caller.reader, "GET", f"/api/records/{request_id}")[0] == 404:
        assert time.monotonic() < deadline, "the gateway's record was never stored"
        time.sleep(0.05)
    return trace_id, span_id, request_id


def _attr(key: str, value: str | int) -> KeyValue:
    any_value = (
        AnyValue(int_value=value) if isinstance(value, int) else AnyValue(string_value=value)
    )
    return KeyValue(key=key, value=any_value)


def export_body(trace_id: str, span_id: str, model: str, padding: int) -> bytes:
    """An OTLP/protobuf export of the model-call span ``span_id`` (GenAI conventions) and a
    tool span under it whose input is ``padding`` characters (or a short one)."""
    request = ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    start = time.time_ns() - 50_000_000
    call = scope.spans.add()
    call.trace_id, call.span_id = bytes.fromhex(trace_id), bytes.fromhex(span_id)
    call.name, call.kind = f"chat {model}", Span.SPAN_KIND_CLIENT
    call.start_time_unix_nano, call.end_time_unix_nano = start, start + 40_000_000
    call.attributes.extend(
        [
            _attr("gen_ai.operation.name", "chat"),
            _attr("gen_ai.provider.name", "openai"),
            _attr("gen_ai.request.model", model),
            _attr("gen_ai.usage.input_tokens", 12),
            _attr("gen_ai.usage.output_tokens", 30),
        ]
    )
    tool = scope.spans.add()
    tool.trace_id, tool.span_id, tool.parent_span_id = call.trace_id, os.urandom(8), call.span_id
    tool.name, tool.kind = "look up parcel", Span.SPAN_KIND_INTERNAL
    tool.start_time_unix_nano, tool.end_time_unix_nano = start + 1_000_000, start + 2_000_000
    tool.attributes.extend(
        [
            _attr("llmtrail.span.kind", "tool"),
            _attr("llmtrail.input", "x" * padding if padding else "A-1"),
        ]
    )
    return request.SerializeToString()


def export(server: ServerProcess, exporter: Workspace, body: bytes, padding: int) -> str:
    """``POST /v1/traces`` as ``exporter``, once the body is known to take the decoding path
    ``padding`` chooses: the answer's ``x-llmtrail-merged``, everything it accepted stored."""
    assert (len(body) >= _POOL_BYTES) == (padding > 0), len(body)
    head = {"content-type": "application/x-protobuf"}
    status, headers, answer = send(server, exporter.ingester, "POST", "/v1/traces", body, head)
    assert status == 200, answer
    server.settle()
    return str(headers["x-llmtrail-merged"])


def records_of(server: ServerProcess, reader: Workspace, model: str) -> list[dict[str, Any]]:
    status, _, body = send(server, reader.reader, "GET", f"/api/records?model={model}&limit=100")
    assert status == 200, body
    return list(json.loads(body)["records"])


def trace_spans(server: ServerProcess, reader: Workspace, trace_id: str) -> list[dict[str, Any]]:
    status, _, body = send(server, reader.reader, "GET", f"/api/traces/{trace_id}")
    assert status == 200, body
    return list(json.loads(body)["spans"])


@PADDINGS
def test_a_span_the_calls_own_workspace_exports_merges_into_its_gateway_record(
    server: ServerProcess, spaces: dict[str, Workspace], padding: int
) -> None:
    acme, default = spaces["acme"], spaces["default"]
    model = f"sim/own-{padding}"
    trace_id, span_id, request_id = gateway_call(server, acme, model)
    body = export_body(trace_id, span_id, model, padding)
    assert export(server, acme, body, padding) == "1"
    (record,) = records_of(server, acme, model)  # the gateway's only: no record of the span
    assert (record["requestId"], record["source"]) == (request_id, "gateway")
    assert send(server, acme.reader, "GET", f"/api/records/otlp-{trace_id}-{span_id}")[0] == 404
    # the span stays in the trace as the call's place: one node, the record fused into it
    (call,) = [s for s in trace_spans(server, acme, trace_id) if s["spanKind"] == "llm"]
    assert (call["spanId"], call["requestId"], call["source"]) == (span_id, request_id, "gateway")
    assert records_of(server, default, model) == []


@PADDINGS
@pytest.mark.parametrize(
    ("caller", "exporter"),
    [("acme", "default"), ("default", "acme")],
    ids=["default-exports-for-acme", "acme-exports-for-default"],
)
def test_a_span_another_workspace_exports_stays_that_workspaces_own_record(
    server: ServerProcess, spaces: dict[str, Workspace], caller: str, exporter: str, padding: int
) -> None:
    calling, exporting = spaces[caller], spaces[exporter]
    model = f"sim/{exporter}-for-{caller}-{padding}"
    trace_id, span_id, request_id = gateway_call(server, calling, model)
    body = export_body(trace_id, span_id, model, padding)
    assert export(server, exporting, body, padding) == "0"
    (gateway,) = records_of(server, calling, model)
    assert (gateway["requestId"], gateway["source"]) == (request_id, "gateway")
    (own,) = records_of(server, exporting, model)
    assert (own["requestId"], own["source"], own["workspace"]) == (
        f"otlp-{trace_id}-{span_id}",
        "otlp",
        exporter,
    )
    assert own["trace"]["spanId"] == span_id
    # the caller's trace holds its gateway record alone: the foreign span left no link there
    (call,) = trace_spans(server, calling, trace_id)
    assert (call["requestId"], call["parentSpanId"]) == (request_id, span_id)
    assert call["spanId"] != span_id
