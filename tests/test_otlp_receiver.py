"""The OTLP/HTTP receiver: what the llmtrail SDK and the OpenTelemetry Python SDK send, decoded
and stored; damaged protobuf never crashes the decoder; bad input refused whole; model-call
spans merged into gateway records.

Golden files (``tests/fixtures/otlp/*.json``) put what was sent — span names, parents, times
as offsets, attributes, events, status — beside what the running server stored: the records
(``GET /api/records/{requestId}``) and the trace (``GET /api/traces/{traceId}``), field for
field. Trace and span ids, and the absolute times, change every run: ids are replaced by the
name of the span they belong to, times are dropped (durations stay). Regenerate after an
intended change with ``LLMTRAIL_REGENERATE_GOLDENS=1 .venv/bin/pytest tests/test_otlp_receiver.py``
and review the diff.
"""

from __future__ import annotations

import gzip
import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import orjson
import pytest
from google.rpc.error_details_pb2 import BadRequest
from google.rpc.status_pb2 import Status as RpcStatus
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry import trace as otel_trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    InstrumentationScope,
    KeyValue,
    KeyValueList,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource as PbResource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan
from opentelemetry.proto.trace.v1.trace_pb2 import Status as PbStatus
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from llmtrail.capture.otlp import decode_json, decode_protobuf, parse_protobuf
from llmtrail.errors import ValidationError
from llmtrail.sdk.otlp_json import export_body
from llmtrail.sdk.spans import ExceptionInfo, FinishedSpan
from llmtrail.span import Span, SpanError
from tests.harness import ServerProcess

GOLDENS = Path(__file__).resolve().parent / "fixtures" / "otlp"
REGENERATE = os.environ.get("LLMTRAIL_REGENERATE_GOLDENS") == "1"
MAX_BODY = 256 * 1024  # the server's max_ingest_bytes here

# -- the llmtrail SDK's own attributes (decoding only) ------------------------------------------

TRACE = "0af7651916cd43dd8448eb211c80319c"
T0_NS = 1_795_000_000_000_000_000  # 2026-11-18T…


def sdk_span(n: int, name: str, kind: Any, parent: int | None = None, **kw: Any) -> FinishedSpan:
    return FinishedSpan(
        trace_id=TRACE,
        span_id=f"{n:016x}",
        parent_span_id=f"{parent:016x}" if parent else None,
        name=name,
        kind=kind,
        start_ns=T0_NS + n * 1_000_000,
        end_ns=T0_NS + n * 1_000_000 + 500_000_000,
        **kw,
    )


CHAT_RESPONSE = {
    "id": "chatcmpl-42",
    "object": "chat.completion",
    "model": "gpt-4o-mini",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Tomorrow."},
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
}


def sdk_trace() -> list[FinishedSpan]:
    """What the SDK exports for one request: a workflow with tags, metadata and a session, a
    task, an agent, a failed tool, a retrieval, a model call and a cancelled model call."""
    return [
        sdk_span(
            1,
            "handle",
            "workflow",
            session_id="sess-9",
            input='{"question":"Where is my parcel?"}',
            output='"Tomorrow."',
            tags=("prod", "v2"),
            metadata={"tenant": "acme", "retry": 1},
        ),
        sdk_span(
            2, "plan", "task", 1, input='{"goal":"find parcel"}', output='["lookup","answer"]'
        ),
        sdk_span(3, "support", "agent", 1, session_id="sess-9"),
        sdk_span(
            4,
            "lookup",
            "tool",
            3,
            input='{"order":"A-1"}',
            status="ERROR",
            exception=ExceptionInfo(
                "ValueError", "no such order", "Traceback (most recent call last): …", T0_NS
            ),
        ),
        sdk_span(5, "search", "retrieval", 3, input='"parcel"', output='["doc-1","doc-2"]'),
        sdk_span(
            6,
            "answer",
            "llm",
            3,
            input=json.dumps(
                {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "When?"}]}
            ),
            output=json.dumps(CHAT_RESPONSE),
            metadata={"tenant": "acme"},
            tags=("beta",),
        ),
        sdk_span(
            7,
            "draft",
            "llm",
            1,
            status="CANCELLED",
            input='"hello"',
            exception=ExceptionInfo("asyncio.exceptions.CancelledError", "", "…", T0_NS),
        ),
    ]


def test_sdk_spans_keep_kind_input_output_tags_and_metadata() -> None:
    body = export_body(sdk_trace(), {"service.name": "support-bot"}, "0.1")
    decoded = decode_json(body)
    by_name = {s.name: s for s in decoded.spans}
    assert {s.name: s.kind for s in decoded.spans} == {
        "handle": "workflow",
        "plan": "task",  # only llmtrail.span.kind says task: there is no GenAI operation for it
        "support": "agent",
        "lookup": "tool",
        "search": "retrieval",
    }
    handle = by_name["handle"]
    assert handle.input == {"question": "Where is my parcel?"}
    assert handle.output == "Tomorrow."
    assert handle.tags == ("prod", "v2")
    assert handle.session_id == "sess-9" and handle.app == "support-bot"
    assert handle.attributes == {
        "gen_ai.operation.name": "invoke_workflow",
        "llmtrail.metadata.tenant": "acme",
        "llmtrail.metadata.retry": 1,
    }
    assert by_name["plan"].input == {"goal": "find parcel"}
    assert by_name["plan"].output == ["lookup", "answer"]
    assert by_name["plan"].attributes == {}
    assert by_name["lookup"] == Span(
        trace_id=TRACE,
        span_id=f"{4:016x}",
        parent_span_id=f"{3:016x}",
        kind="tool",
        name="lookup",
        start=by_name["lookup"].start,
        end=by_name["lookup"].end,
        status="ERROR",
        error=SpanError("ValueError", "no such order", "Traceback (most recent call last): …"),
        input={"order": "A-1"},
        output=None,
        attributes={
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": "lookup",
            "error.type": "ValueError",
        },
        tags=(),
        session_id=None,
        app="support-bot",
        workspace="default",
        source="otlp",
    )
    assert by_name["lookup"].duration_ms == 500
    assert by_name["search"].output == ["doc-1", "doc-2"]


def test_sdk_model_calls_become_records() -> None:
    body = export_body(sdk_trace(), {"service.name": "support-bot"}, "0.1")
    answer, draft = decode_json(body).records
    assert answer["modelId"] == "gpt-4o-mini" and answer["operation"] == "Chat"
    assert answer["responseId"] == "chatcmpl-42"
    assert answer["input"]["inputTokenCount"] == 12
    assert answer["output"]["outputTokenCount"] == 3
    assert answer["input"]["inputBodyJson"]["messages"] == [
        {"role": "user", "parts": [{"type": "text", "content": "When?"}]}
    ]
    assert answer["requestMetadata"] == {"tenant": "acme", "application_name": "support-bot"}
    assert answer["trace"] == {
        "traceId": TRACE,
        "spanId": f"{6:016x}",
        "parentSpanId": f"{3:016x}",
        "spanKind": "llm",
        "name": "answer",
    }
    assert answer["status"] == "OK" and answer["stopReason"] == "stop"
    assert draft["status"] == "CANCELLED"
    assert draft["error"] == {"type": "asyncio.exceptions.CancelledError"}
    assert draft["input"]["inputBodyJson"]["messages"][0]["parts"][0]["content"] == "hello"
    assert draft["modelId"] == "unknown"


def test_sdk_model_call_without_messages_keeps_its_arguments_as_the_body() -> None:
    span = sdk_span(1, "classify", "llm", input='{"ticket":"T-1","labels":["a","b"]}')
    (doc,) = decode_json(export_body([span], {}, "0.1")).records
    assert doc["input"]["inputBodyJson"] == {"input": {"ticket": "T-1", "labels": ["a", "b"]}}
    assert "outputBodyJson" not in doc["output"]


# -- protobuf bodies: whatever the bytes, a clear refusal or spans --------------------------------


texts = st.text(max_size=300)
scalars = st.one_of(
    texts,
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
    st.binary(max_size=40),
)


def any_value(draw_value: Any) -> AnyValue:
    if isinstance(draw_value, str):
        return AnyValue(string_value=draw_value)
    if isinstance(draw_value, bool):
        return AnyValue(bool_value=draw_value)
    if isinstance(draw_value, int):
        return AnyValue(int_value=draw_value)
    if isinstance(draw_value, float):
        return AnyValue(double_value=draw_value)
    if isinstance(draw_value, bytes):
        return AnyValue(bytes_value=draw_value)
    if isinstance(draw_value, list):
        return AnyValue(array_value=ArrayValue(values=[any_value(v) for v in draw_value]))
    return AnyValue(kvlist_value=KeyValueList(values=key_values(draw_value)))


def key_values(attrs: dict[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=k, value=any_value(v)) for k, v in attrs.items()]


values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=20), inner, max_size=4)
    ),
    max_leaves=12,
)
KNOWN_KEYS = (
    "llmtrail.span.kind",
    "llmtrail.input",
    "llmtrail.output",
    "llmtrail.tags",
    "llmtrail.status",
    "llmtrail.metadata.tenant",
    "gen_ai.operation.name",
    "gen_ai.provider.name",
    "gen_ai.request.model",
    "gen_ai.response.id",
    "gen_ai.response.finish_reasons",
    "gen_ai.response.time_to_first_chunk",
    "gen_ai.usage.input_tokens",
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "openinference.span.kind",
    "input.value",
    "output.value",
    "llm.input_messages.0.message.content",
    "session.id",
    "tag.tags",
    "metadata",
    "error.type",
)
kinds = st.sampled_from(["llm", "tool", "task", "chat", "LLM", "CHAIN", "embeddings", "x"])
attribute_maps = st.dictionaries(
    st.one_of(st.sampled_from(KNOWN_KEYS), st.text(max_size=40)),
    st.one_of(values, kinds),
    max_size=8,
)
ids16 = st.binary(min_size=16, max_size=16).filter(any)
ids8 = st.binary(min_size=8, max_size=8).filter(any)


@st.composite
def pb_spans(draw: st.DrawFn) -> PbSpan:
    start = draw(
        st.one_of(
            st.integers(min_value=1_600_000_000 * 10**9, max_value=1_900_000_000 * 10**9),
            st.integers(min_value=0, max_value=2**64 - 1),
        )
    )
    return PbSpan(
        trace_id=draw(ids16),
        span_id=draw(ids8),
        parent_span_id=draw(st.one_of(st.just(b""), ids8)),
        trace_state=draw(st.text(max_size=10)),
        name=draw(st.text(max_size=200)),
        kind=cast(Any, draw(st.sampled_from([0, 1, 2, 3]))),
        start_time_unix_nano=start,
        end_time_unix_nano=min(2**64 - 1, start + draw(st.integers(0, 10**10))),
        attributes=key_values(draw(attribute_maps)),
        dropped_attributes_count=draw(st.integers(min_value=0, max_value=5)),
        events=[
            PbSpan.Event(
                name=draw(st.text(max_size=30)),
                time_unix_nano=draw(st.integers(min_value=0, max_value=2**64 - 1)),
                attributes=key_values(draw(attribute_maps)),
            )
            for _ in range(draw(st.integers(min_value=0, max_value=2)))
        ],
        links=[PbSpan.Link(trace_id=draw(ids16), span_id=draw(ids8))],
        status=PbStatus(
            code=cast(Any, draw(st.sampled_from([0, 1, 2]))), message=draw(st.text(max_size=50))
        ),
        flags=draw(st.integers(min_value=0, max_value=2**32 - 1)),
    )


@st.composite
def requests(draw: st.DrawFn) -> bytes:
    request = ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=PbResource(attributes=key_values(draw(attribute_maps))),
                scope_spans=[
                    ScopeSpans(
                        scope=InstrumentationScope(name=draw(st.text(max_size=20)), version="1"),
                        spans=draw(st.lists(pb_spans(), max_size=3)),
                    )
                    for _ in range(draw(st.integers(min_value=0, max_value=2)))
                ],
                schema_url="https://opentelemetry.io/schemas/1.37.0",
            )
            for _ in range(draw(st.integers(min_value=0, max_value=2)))
        ]
    )
    return request.SerializeToString()


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests(), st.data())
def test_any_body_is_decoded_or_refused_never_crashes(body: bytes, data: Any) -> None:
    """Generated requests with attributes of every convention and of any type, whole or cut
    and damaged: the decoder (protobuf and the mapping) answers spans or `ValidationError`."""
    cut = body[: data.draw(st.integers(min_value=0, max_value=len(body)))]
    if cut and data.draw(st.booleans()):
        at = data.draw(st.integers(min_value=0, max_value=len(cut) - 1))
        cut = cut[:at] + bytes([data.draw(st.integers(0, 255))]) + cut[at + 1 :]
    for candidate in (body, cut):
        try:
            decoded = decode_protobuf(candidate)
        except ValidationError as exc:
            assert exc.field == "body" or exc.field.startswith("resourceSpans[")
        else:
            assert len(decoded.spans) + len(decoded.records) == len(parse_protobuf(candidate))


def test_generated_requests_decode_to_their_spans() -> None:
    body = ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=PbResource(attributes=key_values({"service.name": "svc"})),
                scope_spans=[
                    ScopeSpans(
                        scope=InstrumentationScope(name="s"),
                        spans=[
                            PbSpan(
                                trace_id=b"\x01" * 16,
                                span_id=b"\x02" * 8,
                                name="abc",
                                attributes=key_values({"n": -5, "b": b"\x00\xff", "l": [1.5]}),
                            )
                        ],
                    )
                ],
            )
        ]
    ).SerializeToString()
    (span,) = parse_protobuf(body)
    assert (span.trace_id, span.span_id, span.name, span.scope) == ("01" * 16, "02" * 8, "abc", "s")
    assert span.attributes == {"n": -5, "b": "AP8=", "l": [1.5]}
    assert span.resource == {"service.name": "svc"}
    with pytest.raises(ValidationError) as err:
        parse_protobuf(body[:-3])
    assert err.value.field == "body"


# -- the OpenTelemetry Python SDK against a running server -----------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, engine: str) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("otlp")
    config = f"[limits]\nmax_ingest_bytes = {MAX_BODY}\n"
    with ServerProcess(root / "data", config=config, engine=engine) as s:
        for override in GOLDEN_PRICES:
            put_json(s.url + "/api/prices", override)
        yield s


# The golden records' costs come from these prices, not from the installed genai-prices data,
# which changes with every release of that package.
GOLDEN_PRICES = [
    {
        "id": "golden-gpt-4o-mini",
        "provider": "openai",
        "model": "gpt-4o-mini*",
        "prices": {"input_mtok": "0.15", "output_mtok": "0.6"},
        "effective_from": "2020-01-01",
    },
    {
        "id": "golden-claude-sonnet-4",
        "provider": "anthropic",
        "model": "claude-sonnet-4*",
        "prices": {
            "input_mtok": "3",
            "output_mtok": "15",
            "cache_read_mtok": "0.3",
            "cache_write_mtok": "3.75",
        },
        "effective_from": "2020-01-01",
    },
    {
        "id": "golden-titan-embed",
        "provider": "bedrock",
        "model": "amazon.titan-embed-text-v2*",
        "prices": {"input_mtok": "0.02"},
        "effective_from": "2020-01-01",
    },
]


def put_json(url: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"content-type": "application/json"}, method="PUT"
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


@dataclass
class Sent:
    """A span the test sends: times in ms from the test's start, parent by name."""

    name: str
    start_ms: int
    end_ms: int
    attributes: dict[str, Any]
    parent: str | None = None
    events: list[tuple[str, int, dict[str, Any]]] = field(default_factory=list)
    error: str | None = None
    kind: SpanKind = SpanKind.CLIENT

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "name": self.name,
            "parent": self.parent,
            "kind": self.kind.name,
            "startMs": self.start_ms,
            "endMs": self.end_ms,
            "attributes": self.attributes,
        }
        if self.events:
            doc["events"] = [{"name": n, "atMs": t, "attributes": a} for n, t, a in self.events]
        if self.error is not None:
            doc["status"] = {"code": "ERROR", "message": self.error}
        return doc


def export_with_otel(url: str, spans: list[Sent], service: str) -> dict[str, tuple[str, str]]:
    """Send ``spans`` (parents listed first) through the OpenTelemetry SDK's own OTLP/HTTP
    protobuf exporter, in one batch; their (traceId, spanId) by name."""
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(
        BatchSpanProcessor(
            OTLPSpanExporter(endpoint=url + "/v1/traces"), schedule_delay_millis=60_000
        )
    )
    tracer = provider.get_tracer("llmtrail-golden-test", "1.0")
    base = _now_ms() * 1_000_000
    live: dict[str, Any] = {}
    for s in spans:
        context = otel_trace.set_span_in_context(live[s.parent]) if s.parent else None
        span = tracer.start_span(
            s.name,
            context=context,
            kind=s.kind,
            attributes=s.attributes,
            start_time=base + s.start_ms * 1_000_000,
        )
        for name, at_ms, attributes in s.events:
            span.add_event(name, attributes, timestamp=base + at_ms * 1_000_000)
        if s.error is not None:
            span.set_status(Status(StatusCode.ERROR, s.error))
        live[s.name] = span
    for s in reversed(spans):
        live[s.name].end(end_time=base + s.end_ms * 1_000_000)
    assert provider.force_flush(30_000)
    provider.shutdown()
    ids = {}
    for name, span in live.items():
        context = span.get_span_context()
        ids[name] = (f"{context.trace_id:032x}", f"{context.span_id:016x}")
    return ids


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def stored(server: ServerProcess, ids: dict[str, tuple[str, str]], models: list[str]) -> Any:
    """The stored records of the spans named in ``models`` and the trace they belong to, with
    volatile fields dropped and ids replaced by span names."""
    names = {span_id: f"<{name}>" for name, (_, span_id) in ids.items()}
    (trace_id,) = {t for t, _ in ids.values()}
    server.settle()
    records = {}
    for name in models:
        request_id = f"otlp-{trace_id}-{ids[name][1]}"
        record = server.wait_for_record(request_id)
        assert record.pop("requestId") == request_id
        assert record.pop("recordId") and record.pop("timestamp")
        records[name] = _named(record, names, trace_id)
    view = server.get(f"/api/traces/{trace_id}")
    spans = []
    for span in view["spans"]:
        assert span.pop("start") and span.pop("end")
        span.pop("requestId", None)
        spans.append(_named(span, names, trace_id))
    return {"records": records, "trace": sorted(spans, key=lambda s: s["name"])}


def _named(value: Any, names: dict[str, str], trace_id: str) -> Any:
    if isinstance(value, dict):
        return {k: _named(v, names, trace_id) for k, v in value.items()}
    if isinstance(value, list):
        return [_named(v, names, trace_id) for v in value]
    if value == trace_id:
        return "<trace>"
    return names.get(value, value) if isinstance(value, str) else value


def check_golden(name: str, actual: dict[str, Any]) -> None:
    path = GOLDENS / f"{name}.json"
    if REGENERATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(actual, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    expected = json.loads(path.read_text(encoding="utf-8"))
    for part in ("sent", "records", "trace"):
        assert actual[part] == expected[part], f"{name}: {part} differs from {path}"


def _messages(*items: tuple[str, str]) -> str:
    return json.dumps([{"role": r, "parts": [{"type": "text", "content": c}]} for r, c in items])


BEFORE_1_37 = [
    Sent(
        "invoke_agent weather",
        0,
        2400,
        {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "weather"},
        kind=SpanKind.INTERNAL,
    ),
    Sent(
        "chat gpt-4o-mini",
        10,
        910,
        {
            "gen_ai.system": "openai",
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.request.temperature": 0.2,
            "gen_ai.request.max_tokens": 200,
            "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
            "gen_ai.response.id": "chatcmpl-B1",
            "gen_ai.response.finish_reasons": ["tool_calls"],
            "gen_ai.usage.input_tokens": 52,
            "gen_ai.usage.output_tokens": 18,
            "server.address": "api.openai.com",
        },
        parent="invoke_agent weather",
        events=[
            ("gen_ai.system.message", 10, {"gen_ai.system": "openai", "content": "Be brief."}),
            ("gen_ai.user.message", 10, {"gen_ai.system": "openai", "content": "Paris weather?"}),
            (
                "gen_ai.choice",
                910,
                {
                    "gen_ai.system": "openai",
                    "index": 0,
                    "finish_reason": "tool_calls",
                    "message": json.dumps(
                        {
                            "role": "assistant",
                            "tool_calls": [
                                {
                                    "id": "call_1",
                                    "type": "function",
                                    "function": {"name": "get_weather", "arguments": "{}"},
                                }
                            ],
                        }
                    ),
                },
            ),
        ],
    ),
    Sent(
        "execute_tool get_weather",
        920,
        1300,
        {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": "get_weather",
            "gen_ai.tool.call.id": "call_1",
        },
        parent="invoke_agent weather",
        kind=SpanKind.INTERNAL,
    ),
    Sent(
        "chat gpt-4o-mini answer",  # the oldest spelling: prompt/completion tokens and events
        1310,
        2390,
        {
            "gen_ai.system": "openai",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.usage.prompt_tokens": 80,
            "gen_ai.usage.completion_tokens": 9,
        },
        parent="invoke_agent weather",
        events=[
            ("gen_ai.content.prompt", 1310, {"gen_ai.prompt": _messages(("user", "Paris?"))}),
            (
                "gen_ai.content.completion",
                2390,
                {
                    "gen_ai.completion": json.dumps(
                        [{"role": "assistant", "content": "Rainy, 12 °C.", "finish_reason": "stop"}]
                    )
                },
            ),
        ],
    ),
    Sent(
        "chat claude-3-haiku",
        2395,
        2399,
        {
            "gen_ai.system": "anthropic",
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "claude-3-haiku",
            "error.type": "overloaded_error",
        },
        parent="invoke_agent weather",
        events=[
            (
                "exception",
                2399,
                {"exception.type": "anthropic.APIStatusError", "exception.message": "Overloaded"},
            )
        ],
        error="Overloaded",
    ),
]

FROM_1_37 = [
    Sent(
        "invoke_workflow triage",
        0,
        3000,
        {
            "gen_ai.operation.name": "invoke_workflow",
            "gen_ai.conversation.id": "conv-7",
            "input.value": "Is order A-1 late?",
        },
        kind=SpanKind.INTERNAL,
    ),
    Sent(
        "chat claude-sonnet-4",
        5,
        1405,
        {
            "gen_ai.provider.name": "anthropic",
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "claude-sonnet-4",
            "gen_ai.request.max_tokens": 512,
            "gen_ai.response.model": "claude-sonnet-4-20250514",
            "gen_ai.response.id": "msg_01",
            "gen_ai.response.finish_reasons": ["tool_use"],
            "gen_ai.usage.input_tokens": 310,
            "gen_ai.usage.output_tokens": 41,
            "gen_ai.usage.cache_read.input_tokens": 256,
            "gen_ai.usage.cache_creation.input_tokens": 12,
            "gen_ai.conversation.id": "conv-7",
            "gen_ai.system_instructions": json.dumps([{"type": "text", "content": "Be exact."}]),
            "gen_ai.input.messages": _messages(("user", "Is order A-1 late?")),
            "gen_ai.output.messages": json.dumps(
                [
                    {
                        "role": "assistant",
                        "parts": [
                            {
                                "type": "tool_call",
                                "id": "toolu_1",
                                "name": "order_status",
                                "arguments": {"order": "A-1"},
                            }
                        ],
                        "finish_reason": "tool_use",
                    }
                ]
            ),
        },
        parent="invoke_workflow triage",
    ),
    Sent(
        "execute_tool order_status",
        1410,
        1600,
        {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": "order_status",
            "gen_ai.tool.call.id": "toolu_1",
            "gen_ai.tool.call.arguments": json.dumps({"order": "A-1"}),
            "gen_ai.tool.call.result": json.dumps({"status": "late", "days": 2}),
        },
        parent="invoke_workflow triage",
        kind=SpanKind.INTERNAL,
    ),
    Sent(
        "embeddings titan-embed",
        1610,
        1650,
        {
            "gen_ai.provider.name": "aws.bedrock",
            "gen_ai.operation.name": "embeddings",
            "gen_ai.request.model": "amazon.titan-embed-text-v2:0",
            "gen_ai.usage.input_tokens": 7,
        },
        parent="invoke_workflow triage",
    ),
    Sent(
        "chat claude-sonnet-4 answer",
        1660,
        2990,
        {
            "gen_ai.provider.name": "anthropic",
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "claude-sonnet-4",
            "gen_ai.response.id": "msg_02",
            "gen_ai.usage.input_tokens": 380,
            "gen_ai.usage.output_tokens": 22,
            "gen_ai.response.time_to_first_chunk": 0.35,
            "gen_ai.input.messages": _messages(("user", "Is order A-1 late?")),
            "gen_ai.output.messages": json.dumps(
                [
                    {
                        "role": "assistant",
                        "parts": [{"type": "text", "content": "Yes, by two days."}],
                        "finish_reason": "end_turn",
                    }
                ]
            ),
        },
        parent="invoke_workflow triage",
    ),
]

GENERATIONS = {
    "genai_before_1_37": (
        BEFORE_1_37,
        ["chat gpt-4o-mini", "chat gpt-4o-mini answer", "chat claude-3-haiku"],
    ),
    "genai_from_1_37": (
        FROM_1_37,
        ["chat claude-sonnet-4", "embeddings titan-embed", "chat claude-sonnet-4 answer"],
    ),
}


@pytest.mark.parametrize("generation", sorted(GENERATIONS))
def test_opentelemetry_sdk_spans_stored_field_for_field(
    server: ServerProcess, generation: str
) -> None:
    spans, models = GENERATIONS[generation]
    ids = export_with_otel(server.url, spans, f"golden-{generation.replace('_', '-')}")
    actual = {"sent": [s.to_dict() for s in spans], **stored(server, ids, models)}
    check_golden(generation, actual)


# -- bad input -----------------------------------------------------------------------------------


def post(
    server: ServerProcess, body: bytes, content_type: str, encoding: str | None = None
) -> tuple[int, bytes, str]:
    headers = {"content-type": content_type}
    if encoding:
        headers["content-encoding"] = encoding
    request = urllib.request.Request(server.url + "/v1/traces", body, headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, answer.read(), answer.headers["content-type"]
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read(), exc.headers["content-type"]


def status_of(body: bytes, content_type: str) -> tuple[int, str, list[tuple[str, str]]]:
    """(code, message, field violations) of an OTLP error body, protobuf or JSON."""
    if content_type == "application/x-protobuf":
        status = RpcStatus()
        status.ParseFromString(body)
        violations = []
        for detail in status.details:
            bad = BadRequest()
            assert detail.Unpack(bad)
            violations += [(v.field, v.description) for v in bad.field_violations]
        return status.code, status.message, violations
    doc = json.loads(body)
    violations = [
        (v["field"], v["description"])
        for d in doc.get("details", [])
        if d["@type"] == "type.googleapis.com/google.rpc.BadRequest"
        for v in d["fieldViolations"]
    ]
    return doc["code"], doc["message"], violations


def json_request(spans: list[dict[str, Any]]) -> bytes:
    return orjson.dumps(
        {"resourceSpans": [{"scopeSpans": [{"scope": {"name": "t"}, "spans": spans}]}]}
    )


def json_span(trace_id: str, span_id: str, **more: Any) -> dict[str, Any]:
    now = _now_ms() * 1_000_000
    return {
        "traceId": trace_id,
        "spanId": span_id,
        "name": more.pop("name", "step"),
        "startTimeUnixNano": str(now),
        "endTimeUnixNano": str(now + 5_000_000),
        "attributes": [{"key": "llmtrail.span.kind", "value": {"stringValue": "task"}}],
        **more,
    }


GOOD_TRACE = "5b8efff798038103d269b633813fc60c"
PB = "application/x-protobuf"
JS = "application/json"
VALID_PB = ExportTraceServiceRequest(
    resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=[PbSpan()])])]
).SerializeToString()
BAD_INPUTS = {
    "garbage protobuf": (b"\xff\xff\xff not protobuf", PB, None, 400, "body"),
    "truncated protobuf": (VALID_PB[:-1], PB, None, 400, "body"),
    "protobuf trace id of 3 bytes": (
        ExportTraceServiceRequest(
            resource_spans=[
                ResourceSpans(
                    scope_spans=[ScopeSpans(spans=[PbSpan(trace_id=b"abc", span_id=b"\x01" * 8)])]
                )
            ]
        ).SerializeToString(),
        PB,
        None,
        400,
        "resourceSpans[0].scopeSpans[0].spans[0].traceId",
    ),
    "malformed JSON": (b'{"resourceSpans": [', JS, None, 400, "body"),
    "JSON of the wrong shape": (b'{"resourceSpans": {"a": 1}}', JS, None, 400, "resourceSpans"),
    "JSON span ending before it starts": (
        json_request(
            [
                json_span(GOOD_TRACE.replace("5", "6"), "00f067aa0ba902b7"),
                json_span(
                    GOOD_TRACE.replace("5", "7"),
                    "00f067aa0ba902b8",
                    startTimeUnixNano="2000000000000000000",
                    endTimeUnixNano="1000000000000000000",
                ),
            ]
        ),
        JS,
        None,
        400,
        "resourceSpans[0].scopeSpans[0].spans[1].endTimeUnixNano",
    ),
    "not gzip": (b"plain bytes", PB, "gzip", 400, "body"),
    "truncated gzip": (gzip.compress(VALID_PB * 50)[:-12], PB, "gzip", 400, "body"),
    "oversize": (b"\x0a" * (MAX_BODY + 1), PB, None, 413, "body"),
    "gzip bomb": (gzip.compress(b"\x00" * (MAX_BODY * 4)), JS, "gzip", 413, "body"),
    "wrong content type": (b"{}", "application/xml", None, 400, "content-type"),
    "unknown content encoding": (b"{}", JS, "br", 400, "content-encoding"),
}


def test_bad_input_is_refused_whole_and_loses_nothing(server: ServerProcess) -> None:
    good = json_request([json_span(GOOD_TRACE, "00f067aa0ba902b7", name="kept")])
    assert post(server, good, JS)[0] == 200
    stored_before = server.settle()["stored"]
    before = server.get(f"/api/traces/{GOOD_TRACE}")
    for case, (body, content_type, encoding, status, field_name) in BAD_INPUTS.items():
        code, answer, answer_type = post(server, body, content_type, encoding)
        assert code == status, (case, answer)
        expected_type = PB if content_type == PB else JS
        assert answer_type == expected_type, case
        rpc_code, message, violations = status_of(answer, answer_type)
        assert rpc_code == 3, case  # INVALID_ARGUMENT
        assert message.startswith(f"{field_name}: "), (case, message)
        assert violations == [(field_name, message)], case
    # the valid first span of the refused JSON request was not stored either
    with pytest.raises(urllib.error.HTTPError) as missing:
        server.get(f"/api/traces/{GOOD_TRACE.replace('5', '6')}")
    missing.value.close()
    assert missing.value.code == 404
    assert server.get(f"/api/traces/{GOOD_TRACE}") == before
    assert server.settle()["stored"] == stored_before


def test_accepted_answers_are_otlp_responses(server: ServerProcess) -> None:
    code, answer, answer_type = post(
        server, json_request([json_span(GOOD_TRACE[::-1], "1111111111111111")]), JS
    )
    assert (code, json.loads(answer), answer_type) == (200, {}, JS)
    body = ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                scope_spans=[
                    ScopeSpans(
                        spans=[
                            PbSpan(
                                trace_id=bytes.fromhex(GOOD_TRACE[::-1]),
                                span_id=b"\x22" * 8,
                                name="gzipped",
                                start_time_unix_nano=_now_ms() * 1_000_000,
                                end_time_unix_nano=_now_ms() * 1_000_000 + 1,
                            )
                        ]
                    )
                ]
            )
        ]
    ).SerializeToString()
    code, answer, answer_type = post(server, gzip.compress(body), PB, "gzip")
    assert (code, answer, answer_type) == (200, b"", PB)  # an empty ExportTraceServiceResponse
    server.settle()  # spooled, then stored
    names = {s["name"] for s in server.get(f"/api/traces/{GOOD_TRACE[::-1]}")["spans"]}
    assert names == {"step", "gzipped"}


# -- merging model-call spans into gateway records (pure parts) ----------------------------------


def gateway_record(request_id: str, trace: dict[str, str] | None, response_id: str) -> Any:
    from llmtrail.record import InvocationRecord

    doc: dict[str, Any] = {
        "timestamp": "2026-11-23T10:00:00.100Z",
        "requestId": request_id,
        "operation": "ChatCompletions",
        "modelId": "sim/x",
        "latencyMs": 50,
        "responseId": response_id,
        "input": {"inputTokenCount": 5},
        "output": {"outputTokenCount": 7},
    }
    if trace is not None:
        doc["trace"] = {**trace, "spanKind": "llm"}
    return InvocationRecord.from_dict(doc, source="gateway")


CALLED_FROM_1 = {"traceId": TRACE, "spanId": "a" * 16, "parentSpanId": "1" * 16}


def span_doc(span_id: str, parent: str | None, response_id: str, trace_id: str = TRACE) -> Any:
    trace = {"traceId": trace_id, "spanId": span_id, "spanKind": "llm", "name": "answer"}
    if parent:
        trace["parentSpanId"] = parent
    return {
        "timestamp": "2026-11-23T10:00:00.090Z",
        "requestId": f"otlp-{trace_id}-{span_id}",
        "latencyMs": 80,
        "responseId": response_id,
        "status": "OK",
        "trace": trace,
    }


def test_a_span_matches_its_gateway_record_by_parent_or_response_id() -> None:
    from llmtrail.capture.merge import GatewayCall, GatewayCallIndex

    index = GatewayCallIndex(capacity=2)
    index.note(gateway_record("r1", CALLED_FROM_1, "resp-1"))
    assert index.match(span_doc("1" * 16, None, "other"), "default") == GatewayCall(
        "r1", TRACE, "parent"
    )
    assert index.match(span_doc("9" * 16, None, "resp-1", "f" * 32), "default") == GatewayCall(
        "r1", TRACE, "responseId"
    )
    index.note(gateway_record("r2", None, "resp-2"))  # no traceparent: only its response id
    assert index.match(span_doc("9" * 16, None, "resp-2"), "default") == GatewayCall(
        "r2", None, "responseId"
    )
    assert index.match(span_doc("1" * 16, None, "other"), "default") is None  # the oldest key went
    assert index.match(span_doc("1" * 16, None, "resp-1"), "default") == GatewayCall(
        "r1", TRACE, "responseId"
    )


def test_a_merged_span_leaves_a_link_only_where_it_places_the_call() -> None:
    from llmtrail.capture.merge import MERGED_INTO, GatewayCall, merged_link

    link = merged_link(
        span_doc("1" * 16, "2" * 16, "x"), GatewayCall("r1", TRACE, "parent"), workspace="default"
    )
    assert link is not None and link.attributes[MERGED_INTO] == "r1"
    assert (link.kind, link.name, link.parent_span_id, link.duration_ms) == (
        "llm",
        "answer",
        "2" * 16,
        80,
    )
    assert link.input is None and link.output is None  # the record has the bodies
    other = GatewayCall("r1", "e" * 32, "responseId")
    assert (
        merged_link(span_doc("1" * 16, None, "x"), other, workspace="default") is None
    )  # a lone root elsewhere
    assert (
        merged_link(span_doc("1" * 16, "2" * 16, "x"), other, workspace="default") is not None
    )  # placed in a tree


def test_reading_a_trace_puts_each_record_where_its_link_is() -> None:
    from llmtrail.capture.merge import GatewayCall, fuse_links, merged_link
    from llmtrail.span import span_from_record

    root = Span(TRACE, "2" * 16, "handle", *_times(0, 200), kind="workflow")
    record = gateway_record("r1", CALLED_FROM_1, "x")
    link = merged_link(
        span_doc("1" * 16, "2" * 16, "x"), GatewayCall("r1", TRACE), workspace="default"
    )
    assert link is not None
    http = Span(TRACE, "3" * 16, "POST", *_times(95, 150), parent_span_id="1" * 16)
    under_record = Span(TRACE, "4" * 16, "odd", *_times(96, 97), parent_span_id="a" * 16)
    twin = merged_link(
        span_doc("5" * 16, "1" * 16, "x"), GatewayCall("r1", TRACE), workspace="default"
    )
    assert twin is not None
    spans = [root, span_from_record(record), link, http, under_record, twin]
    fused = {s.name: s for s in fuse_links(spans, lambda rid: None)}
    assert set(fused) == {"handle", "answer", "POST", "odd"}
    call = fused["answer"]
    assert (call.span_id, call.parent_span_id, call.record) == ("1" * 16, "2" * 16, record)
    assert (call.kind, call.source, call.duration_ms) == ("llm", "gateway", 50)
    assert fused["POST"].parent_span_id == "1" * 16
    assert fused["odd"].parent_span_id == "1" * 16  # was under the record's own span id
    # a record kept outside the trace (no traceparent) is looked up; a missing one leaves the link
    outside = gateway_record("r1", None, "x")
    (alone,) = fuse_links([link], lambda rid: outside if rid == "r1" else None)
    assert alone.record is not None and alone.record.request_id == "r1"
    assert (alone.trace_id, alone.span_id, alone.parent_span_id) == (TRACE, "1" * 16, "2" * 16)
    assert fuse_links([link], lambda rid: None) == [link]


def _times(start_ms: int, end_ms: int) -> tuple[Any, Any]:
    from datetime import UTC, datetime, timedelta

    t0 = datetime(2026, 11, 23, 10, tzinfo=UTC)
    return t0 + timedelta(milliseconds=start_ms), t0 + timedelta(milliseconds=end_ms)


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=1, max_value=253_370_764_799_999_999))
def test_record_timestamps_are_formatted_as_the_record_module_does(micros: int) -> None:
    from datetime import UTC, datetime, timedelta

    from llmtrail.capture.otlp_genai import _timestamp
    from llmtrail.record import format_timestamp

    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    assert _timestamp(micros) == format_timestamp(epoch + timedelta(microseconds=micros))
    assert _timestamp(micros // 1000 * 1000) == format_timestamp(
        epoch + timedelta(microseconds=micros // 1000 * 1000)
    )
