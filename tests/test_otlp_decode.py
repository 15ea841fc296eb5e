"""OTLP trace decoding: requests built with the real protobuf classes and as OTLP/JSON, in the
GenAI conventions before and after v1.37 and OpenInference's, checked field by field."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import orjson
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    InstrumentationScope,
    KeyValue,
    KeyValueList,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Status
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan

from llmtrail.capture.otlp import (
    DecodedTraces,
    decode_json,
    decode_protobuf,
    decode_traces,
)
from llmtrail.errors import ValidationError
from llmtrail.record import InvocationRecord
from llmtrail.span import Span, SpanError
from llmtrail.store.duckdb import Database, DuckDBRecordStore
from llmtrail.store.duckdb.spans import DuckDBSpanStore
from llmtrail.store.spans import TraceQuery

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
T0_NS = int(T0.timestamp()) * 10**9
RESOURCE = {"service.name": "support-bot", "deployment.environment.name": "prod"}


def sid(n: int) -> str:
    return f"{n:016x}"


def at(ms: int) -> datetime:
    return T0 + timedelta(milliseconds=ms)


@dataclass
class TestSpan:
    """A span to send, encoded as protobuf or as JSON by the functions below."""

    __test__ = False

    n: int
    name: str
    start_ms: int
    end_ms: int
    attrs: dict[str, Any]
    parent: int | None = None
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    status: tuple[int, str] = (0, "")


# -- the two encodings ---------------------------------------------------------------------------


def pb_value(value: Any) -> AnyValue:
    if isinstance(value, str):
        return AnyValue(string_value=value)
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, list):
        return AnyValue(array_value=ArrayValue(values=[pb_value(v) for v in value]))
    assert isinstance(value, dict)
    return AnyValue(kvlist_value=KeyValueList(values=pb_attrs(value)))


def pb_attrs(attrs: dict[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=k, value=pb_value(v)) for k, v in attrs.items()]


def to_protobuf(spans: list[TestSpan], resource: dict[str, Any] = RESOURCE) -> bytes:
    pb_spans = [
        PbSpan(
            trace_id=bytes.fromhex(TRACE),
            span_id=bytes.fromhex(sid(s.n)),
            parent_span_id=bytes.fromhex(sid(s.parent)) if s.parent else b"",
            name=s.name,
            kind=PbSpan.SPAN_KIND_CLIENT,
            start_time_unix_nano=T0_NS + s.start_ms * 10**6,
            end_time_unix_nano=T0_NS + s.end_ms * 10**6,
            attributes=pb_attrs(s.attrs),
            events=[
                PbSpan.Event(
                    name=name, time_unix_nano=T0_NS + s.start_ms * 10**6, attributes=pb_attrs(a)
                )
                for name, a in s.events
            ],
            status=Status(code=cast(Any, s.status[0]), message=s.status[1]),
        )
        for s in spans
    ]
    request = ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=Resource(attributes=pb_attrs(resource)),
                scope_spans=[ScopeSpans(scope=InstrumentationScope(name="test"), spans=pb_spans)],
            )
        ]
    )
    return request.SerializeToString()


def json_value(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}  # 64-bit integers travel as strings
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, list):
        return {"arrayValue": {"values": [json_value(v) for v in value]}}
    return {"kvlistValue": {"values": json_attrs(value)}}


def json_attrs(attrs: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"key": k, "value": json_value(v)} for k, v in attrs.items()]


def to_json_doc(spans: list[TestSpan], resource: dict[str, Any] = RESOURCE) -> dict[str, Any]:
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": json_attrs(resource)},
                "scopeSpans": [
                    {
                        "scope": {"name": "test"},
                        "spans": [
                            {
                                "traceId": TRACE.upper(),  # hex is case-insensitive
                                "spanId": sid(s.n),
                                "parentSpanId": sid(s.parent) if s.parent else "",
                                "name": s.name,
                                "kind": 3,
                                "startTimeUnixNano": str(T0_NS + s.start_ms * 10**6),
                                "endTimeUnixNano": T0_NS + s.end_ms * 10**6,
                                "attributes": json_attrs(s.attrs),
                                "events": [
                                    {
                                        "timeUnixNano": str(T0_NS + s.start_ms * 10**6),
                                        "name": name,
                                        "attributes": json_attrs(a),
                                    }
                                    for name, a in s.events
                                ],
                                "status": {"code": s.status[0], "message": s.status[1]},
                                "droppedAttributesCount": 0,
                            }
                            for s in spans
                        ],
                    }
                ],
            }
        ]
    }


def via_protobuf(spans: list[TestSpan], resource: dict[str, Any] = RESOURCE) -> DecodedTraces:
    return decode_protobuf(to_protobuf(spans, resource))


def via_json(spans: list[TestSpan], resource: dict[str, Any] = RESOURCE) -> DecodedTraces:
    return decode_json(orjson.dumps(to_json_doc(spans, resource)))


Decode = Callable[..., DecodedTraces]


@pytest.fixture(params=["protobuf", "json"])
def decode(request: pytest.FixtureRequest) -> Decode:
    return via_protobuf if request.param == "protobuf" else via_json


# -- GenAI semantic conventions from v1.37 -------------------------------------------------------

INPUT_MESSAGES = [
    {"role": "user", "parts": [{"type": "text", "content": "Tell me a joke about OpenTelemetry"}]}
]
OUTPUT_MESSAGES = [
    {
        "role": "assistant",
        "parts": [{"type": "text", "content": "It always knows how to trace the fun!"}],
        "finish_reason": "stop",
    }
]
SYSTEM = [{"type": "text", "content": "You are a helpful bot"}]


def test_genai_chat_span_after_1_37(decode: Decode) -> None:
    chat = TestSpan(
        2,
        "chat gpt-4o",
        100,
        1609,
        parent=1,
        attrs={
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.request.max_tokens": 200,
            "gen_ai.request.temperature": 0.5,
            "gen_ai.response.model": "gpt-4o-2024-08-06",
            "gen_ai.response.id": "chatcmpl-9J3uIL87gldCFtiIbyaOvTeYBRA3l",
            "gen_ai.response.finish_reasons": ["stop"],
            "gen_ai.usage.input_tokens": 52,
            "gen_ai.usage.output_tokens": 47,
            "gen_ai.usage.cache_read.input_tokens": 12,
            "gen_ai.usage.cache_creation.input_tokens": 3,
            "gen_ai.conversation.id": "conv-7",
            "gen_ai.response.time_to_first_chunk": 0.21,
            "gen_ai.system_instructions": json.dumps(SYSTEM),
            "gen_ai.input.messages": json.dumps(INPUT_MESSAGES),
            "gen_ai.output.messages": json.dumps(OUTPUT_MESSAGES),
        },
    )
    decoded = decode([chat])
    assert decoded.spans == []
    (doc,) = decoded.records
    assert doc == {
        "schemaType": "ModelInvocationLog",
        "schemaVersion": "1.0",
        "timestamp": "2026-11-23T10:00:00.100Z",
        "requestId": f"otlp-{TRACE}-{sid(2)}",
        "operation": "Chat",
        "modelId": "gpt-4o",
        "requestMetadata": {"application_name": "support-bot", "environment": "prod"},
        "input": {
            "inputContentType": "application/json",
            "inputBodyJson": {
                "model": "gpt-4o",
                "max_tokens": 200,
                "temperature": 0.5,
                "messages": INPUT_MESSAGES,
                "system_instructions": SYSTEM,
            },
            "inputTokenCount": 52,
            "cacheReadInputTokenCount": 12,
            "cacheWriteInputTokenCount": 3,
        },
        "output": {
            "outputContentType": "application/json",
            "outputBodyJson": {
                "id": "chatcmpl-9J3uIL87gldCFtiIbyaOvTeYBRA3l",
                "model": "gpt-4o-2024-08-06",
                "messages": OUTPUT_MESSAGES,
            },
            "outputTokenCount": 47,
        },
        "provider": "openai",
        "resolvedModelId": "gpt-4o-2024-08-06",
        "responseId": "chatcmpl-9J3uIL87gldCFtiIbyaOvTeYBRA3l",
        "latencyMs": 1509,
        "timeToFirstTokenMs": 210,
        "stopReason": "stop",
        "status": "OK",
        "trace": {
            "traceId": TRACE,
            "spanId": sid(2),
            "parentSpanId": sid(1),
            "sessionId": "conv-7",
            "spanKind": "llm",
            "name": "chat gpt-4o",
        },
        "source": "otlp",
    }
    record = InvocationRecord.from_dict(copy.deepcopy(doc), source="otlp")
    assert record.data["provider"] == "openai" and record.data["source"] == "otlp"


def test_content_capture_off_leaves_no_output_body(decode: Decode) -> None:
    chat = TestSpan(
        2,
        "chat claude",
        0,
        5,
        attrs={
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "anthropic",
            "gen_ai.request.model": "claude-sonnet-4",
            "gen_ai.usage.input_tokens": 3,
        },
    )
    (doc,) = decode([chat], {"service.name": "unknown_service:python"}).records
    assert doc["input"] == {
        "inputContentType": "application/json",
        "inputBodyJson": {"model": "claude-sonnet-4"},
        "inputTokenCount": 3,
    }
    assert doc["output"] == {"outputContentType": "application/json"}
    assert "requestMetadata" not in doc and doc["provider"] == "anthropic"
    assert "parentSpanId" not in doc["trace"] and "sessionId" not in doc["trace"]


# -- GenAI semantic conventions before v1.37 -----------------------------------------------------


def test_genai_chat_span_before_1_37_with_message_events(decode: Decode) -> None:
    chat = TestSpan(
        2,
        "chat anthropic.claude-3-haiku",
        0,
        800,
        attrs={
            "gen_ai.system": "aws.bedrock",
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "anthropic.claude-3-haiku",
            "gen_ai.usage.prompt_tokens": 30,
            "gen_ai.usage.completion_tokens": 9,
            "gen_ai.response.finish_reasons": ["end_turn"],
        },
        events=[
            ("gen_ai.system.message", {"gen_ai.system": "aws.bedrock", "content": "Be brief."}),
            ("gen_ai.user.message", {"gen_ai.system": "aws.bedrock", "content": "Hi"}),
            (
                "gen_ai.choice",
                {
                    "gen_ai.system": "aws.bedrock",
                    "index": 0,
                    "finish_reason": "end_turn",
                    "message": {"role": "assistant", "content": "Hello!"},
                },
            ),
        ],
    )
    (doc,) = decode([chat]).records
    assert doc["provider"] == "bedrock"
    assert doc["modelId"] == "anthropic.claude-3-haiku" and "resolvedModelId" not in doc
    assert doc["input"] == {
        "inputContentType": "application/json",
        "inputBodyJson": {
            "model": "anthropic.claude-3-haiku",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hi"},
            ],
        },
        "inputTokenCount": 30,
    }
    assert doc["output"] == {
        "outputContentType": "application/json",
        "outputBodyJson": {
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "end_turn",
                    "message": {"role": "assistant", "content": "Hello!"},
                }
            ]
        },
        "outputTokenCount": 9,
    }
    assert doc["stopReason"] == "end_turn" and "responseId" not in doc
    assert doc["latencyMs"] == 800 and doc["trace"]["spanKind"] == "llm"


def test_oldest_genai_spans_prompt_and_completion_events(decode: Decode) -> None:
    prompt = [{"role": "user", "content": "2+2?"}]
    completion = [{"role": "assistant", "content": "4"}]
    call = TestSpan(
        2,
        "openai.chat",  # no gen_ai.operation.name yet: gen_ai.system makes it a model call
        0,
        10,
        attrs={"gen_ai.system": "openai", "gen_ai.request.model": "gpt-3.5-turbo"},
        events=[
            ("gen_ai.content.prompt", {"gen_ai.prompt": json.dumps(prompt)}),
            ("gen_ai.content.completion", {"gen_ai.completion": json.dumps(completion)}),
        ],
    )
    (doc,) = decode([call]).records
    assert doc["operation"] == "Chat" and doc["provider"] == "openai"
    assert doc["input"]["inputBodyJson"] == {"model": "gpt-3.5-turbo", "messages": prompt}
    assert doc["output"]["outputBodyJson"] == {"choices": completion}


# -- OpenInference -------------------------------------------------------------------------------

OI_REQUEST = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}
OI_RESPONSE = {
    "id": "chatcmpl-oi-1",
    "object": "chat.completion",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "Hello"}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 20, "completion_tokens": 5},
}


def test_openinference_llm_span_with_json_bodies(decode: Decode) -> None:
    llm = TestSpan(
        2,
        "ChatCompletion",
        50,
        450,
        parent=1,
        attrs={
            "openinference.span.kind": "LLM",
            "llm.model_name": "gpt-4o-mini",
            "llm.provider": "openai",
            "llm.system": "openai",
            "llm.token_count.prompt": 20,
            "llm.token_count.completion": 5,
            "llm.token_count.total": 25,
            "llm.token_count.prompt_details.cache_read": 4,
            "input.value": json.dumps(OI_REQUEST),
            "input.mime_type": "application/json",
            "output.value": json.dumps(OI_RESPONSE),
            "output.mime_type": "application/json",
            "llm.input_messages.0.message.role": "user",
            "llm.input_messages.0.message.content": "Hi",
            "llm.output_messages.0.message.role": "assistant",
            "llm.output_messages.0.message.content": "Hello",
            "llm.invocation_parameters": json.dumps({"temperature": 0}),
            "session.id": "sess-9",
            "user.id": "u-1",
            "metadata": json.dumps({"tenant_id": "acme", "retries": 2}),
            "tag.tags": ["beta"],
        },
    )
    (doc,) = decode([llm]).records
    assert doc["input"] == {
        "inputContentType": "application/json",
        "inputBodyJson": OI_REQUEST,
        "inputTokenCount": 20,
        "cacheReadInputTokenCount": 4,
    }
    assert doc["output"] == {
        "outputContentType": "application/json",
        "outputBodyJson": OI_RESPONSE,
        "outputTokenCount": 5,
    }
    assert doc["requestMetadataTruncated"] is True  # 2 became "2"
    assert doc["requestMetadata"] == {
        "tenant_id": "acme",
        "retries": "2",
        "application_name": "support-bot",
        "user_id": "u-1",
        "environment": "prod",
    }
    assert (doc["operation"], doc["modelId"], doc["provider"]) == ("Chat", "gpt-4o-mini", "openai")
    assert (doc["responseId"], doc["stopReason"], doc["latencyMs"]) == (
        "chatcmpl-oi-1",
        "stop",
        400,
    )
    assert doc["trace"] == {
        "traceId": TRACE,
        "spanId": sid(2),
        "parentSpanId": sid(1),
        "sessionId": "sess-9",
        "spanKind": "llm",
        "name": "ChatCompletion",
    }
    InvocationRecord.from_dict(doc, source="otlp")  # a valid record


def test_openinference_flattened_messages_become_the_bodies(decode: Decode) -> None:
    llm = TestSpan(
        2,
        "Messages",
        0,
        20,
        attrs={
            "openinference.span.kind": "LLM",
            "llm.model_name": "claude-3-5-sonnet",
            "llm.provider": "anthropic",
            "input.value": "Hi",
            "input.mime_type": "text/plain",
            "llm.input_messages.0.message.role": "system",
            "llm.input_messages.0.message.content": "Be brief",
            "llm.input_messages.1.message.role": "user",
            "llm.input_messages.1.message.contents.0.message_content.type": "text",
            "llm.input_messages.1.message.contents.0.message_content.text": "Hi",
            "llm.output_messages.0.message.role": "assistant",
            "llm.output_messages.0.message.tool_calls.0.tool_call.id": "call_1",
            "llm.output_messages.0.message.tool_calls.0.tool_call.function.name": "get_weather",
            "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments": '{"c": 1}',
            "llm.token_count.prompt_details.cache_write": 7,
        },
    )
    (doc,) = decode([llm]).records
    assert doc["input"]["inputBodyJson"] == {
        "model": "claude-3-5-sonnet",
        "messages": [
            {"role": "system", "content": "Be brief"},
            {"role": "user", "contents": [{"type": "text", "text": "Hi"}]},
        ],
    }
    assert doc["output"]["outputBodyJson"] == {
        "messages": [
            {
                "role": "assistant",
                "tool_calls": [
                    {"id": "call_1", "function": {"name": "get_weather", "arguments": '{"c": 1}'}}
                ],
            }
        ]
    }
    assert doc["input"]["cacheWriteInputTokenCount"] == 7 and doc["provider"] == "anthropic"
    assert "inputTokenCount" not in doc["input"]


# -- the other spans -----------------------------------------------------------------------------


def agent_trace() -> list[TestSpan]:
    """An agent request: a chain, an agent, a model call, a failed tool, a retrieval, an
    embedding call, a Traceloop task and a plain HTTP span."""
    return [
        TestSpan(
            1,
            "handle request",
            0,
            3000,
            attrs={
                "openinference.span.kind": "CHAIN",
                "input.value": "What's the weather?",
                "input.mime_type": "text/plain",
                "output.value": json.dumps({"answer": "Rainy"}),
                "output.mime_type": "application/json",
                "session.id": "s-1",
                "tag.tags": ["prod", "v2"],
                "http.route": "/ask",
            },
        ),
        TestSpan(
            2,
            "invoke_agent weather",
            10,
            2900,
            parent=1,
            attrs={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "weather"},
        ),
        TestSpan(
            3,
            "chat gpt-4o",
            20,
            900,
            parent=2,
            attrs={
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.usage.input_tokens": 40,
                "gen_ai.usage.output_tokens": 10,
            },
        ),
        TestSpan(
            4,
            "execute_tool get_weather",
            1000,
            1500,
            parent=2,
            attrs={
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": "get_weather",
                "gen_ai.tool.call.id": "call_1",
                "gen_ai.tool.call.arguments": json.dumps({"city": "Paris"}),
                "error.type": "TimeoutError",
            },
            events=[
                (
                    "exception",
                    {
                        "exception.type": "builtins.TimeoutError",
                        "exception.message": "weather API timed out",
                        "exception.stacktrace": "Traceback (most recent call last): …",
                    },
                )
            ],
            status=(2, "weather API timed out"),
        ),
        TestSpan(
            5, "retrieve docs", 1600, 1700, parent=2, attrs={"openinference.span.kind": "RETRIEVER"}
        ),
        TestSpan(
            6,
            "embeddings text-embedding-3-small",
            1610,
            1650,
            parent=5,
            attrs={
                "gen_ai.operation.name": "embeddings",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "text-embedding-3-small",
                "gen_ai.usage.input_tokens": 8,
            },
        ),
        TestSpan(7, "summarise.task", 1800, 1900, parent=2, attrs={"traceloop.span.kind": "task"}),
        TestSpan(8, "GET", 1810, 1820, parent=7, attrs={"http.request.method": "GET"}),
    ]


def test_other_spans_keep_the_trace_context(decode: Decode) -> None:
    decoded = decode(agent_trace())
    assert [(d["trace"]["spanId"], d["trace"]["spanKind"]) for d in decoded.records] == [
        (sid(3), "llm"),
        (sid(6), "embedding"),
    ]
    assert decoded.records[1]["operation"] == "Embeddings"
    assert decoded.records[1]["input"]["inputTokenCount"] == 8
    kinds = {s.span_id: s.kind for s in decoded.spans}
    assert kinds == {
        sid(1): "workflow",
        sid(2): "agent",
        sid(4): "tool",
        sid(5): "retrieval",
        sid(7): "task",
        sid(8): "other",
    }
    root, _, tool, *_ = decoded.spans
    assert root == Span(
        trace_id=TRACE,
        span_id=sid(1),
        parent_span_id=None,
        kind="workflow",
        name="handle request",
        start=at(0),
        end=at(3000),
        status="OK",
        error=None,
        input="What's the weather?",
        output={"answer": "Rainy"},
        attributes={
            "openinference.span.kind": "CHAIN",
            "input.mime_type": "text/plain",
            "output.mime_type": "application/json",
            "http.route": "/ask",
        },
        tags=("prod", "v2"),
        session_id="s-1",
        app="support-bot",
        workspace="default",
        source="otlp",
    )
    assert tool.status == "ERROR" and tool.parent_span_id == sid(2)
    assert tool.error == SpanError(
        "TimeoutError", "weather API timed out", "Traceback (most recent call last): …"
    )
    assert tool.input == {"city": "Paris"} and tool.output is None
    assert tool.attributes == {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "get_weather",
        "gen_ai.tool.call.id": "call_1",
        "error.type": "TimeoutError",
    }
    assert tool.duration_ms == 500


def test_failed_model_call_is_an_error_record(decode: Decode) -> None:
    call = TestSpan(
        2,
        "chat gpt-4o",
        0,
        30,
        attrs={"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o"},
        events=[
            ("exception", {"exception.type": "openai.RateLimitError", "exception.message": "429"})
        ],
        status=(2, "rate limited"),
    )
    (doc,) = decode([call]).records
    assert doc["status"] == "ERROR"
    assert doc["error"] == {"type": "openai.RateLimitError", "message": "429"}
    bare = TestSpan(3, "chat x", 0, 1, attrs={"gen_ai.request.model": "x"}, status=(2, ""))
    (doc,) = decode([bare]).records
    assert doc["error"] == {"type": "_OTHER"} and "provider" not in doc


def test_both_encodings_decode_alike() -> None:
    spans = agent_trace()
    assert via_protobuf(spans) == via_json(spans)


def test_decoded_trace_stored_and_read_back(tmp_path: Path) -> None:
    decoded = via_protobuf(agent_trace())
    db = Database(tmp_path / "llmtrail.duckdb")
    records, spans = DuckDBRecordStore(db), DuckDBSpanStore(db)
    try:
        records.append([InvocationRecord.from_dict(d, source="otlp") for d in decoded.records])
        spans.append(decoded.spans)
        tree = spans.get_trace(TRACE)
        assert [(s.span_id, s.parent_span_id, s.kind) for s in tree] == [
            (sid(1), None, "workflow"),
            (sid(2), sid(1), "agent"),
            (sid(3), sid(2), "llm"),
            (sid(4), sid(2), "tool"),
            (sid(5), sid(2), "retrieval"),
            (sid(6), sid(5), "embedding"),
            (sid(7), sid(2), "task"),
            (sid(8), sid(7), "other"),
        ]
        assert tree[2].record is not None and tree[2].record.data["source"] == "otlp"
        (summary,) = spans.find_traces(TraceQuery()).traces
        assert (summary.name, summary.span_count, summary.llm_calls) == ("handle request", 8, 2)
        assert (summary.error_count, summary.input_tokens, summary.duration_ms) == (1, 48, 3000)
        assert (summary.session_id, summary.app) == ("s-1", "support-bot")
    finally:
        db.close()


def test_content_type_picks_the_decoder() -> None:
    spans = [TestSpan(1, "step", 0, 1, attrs={})]
    by_json = decode_traces(
        orjson.dumps(to_json_doc(spans)), "application/json; charset=utf-8", workspace="w"
    )
    by_pb = decode_traces(to_protobuf(spans), "application/x-protobuf", workspace="w")
    assert by_json == by_pb and by_pb.spans[0].workspace == "w"
    assert decode_json({"resourceSpans": []}) == DecodedTraces()
    with pytest.raises(ValidationError) as err:
        decode_traces(b"", "text/plain")
    assert err.value.field == "content-type"


# -- bad input -----------------------------------------------------------------------------------

WHERE = "resourceSpans[0].scopeSpans[0].spans[0]"


def test_bad_protobuf_names_the_body() -> None:
    with pytest.raises(ValidationError) as err:
        decode_protobuf(b"\xff\xff\xff not protobuf")
    assert err.value.field == "body"


@pytest.mark.parametrize(
    ("field_name", "raw", "expected"),
    [
        ("trace_id", b"\x01" * 17, f"{WHERE}.traceId"),
        ("trace_id", b"\x00" * 16, f"{WHERE}.traceId"),
        ("span_id", b"\x01" * 4, f"{WHERE}.spanId"),
        ("parent_span_id", b"\x01" * 9, f"{WHERE}.parentSpanId"),
    ],
)
def test_protobuf_ids_of_the_wrong_size(field_name: str, raw: bytes, expected: str) -> None:
    request = ExportTraceServiceRequest()
    request.ParseFromString(to_protobuf([TestSpan(1, "s", 0, 1, attrs={})]))
    setattr(request.resource_spans[0].scope_spans[0].spans[0], field_name, raw)
    with pytest.raises(ValidationError) as err:
        decode_protobuf(request.SerializeToString())
    assert err.value.field == expected


def _json_with(change: Callable[[dict[str, Any]], None]) -> bytes:
    doc = to_json_doc([TestSpan(1, "s", 0, 1, attrs={"k": 1})])
    change(doc)
    return orjson.dumps(doc)


def _span_of(doc: dict[str, Any]) -> dict[str, Any]:
    span: dict[str, Any] = doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    return span


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d.update(resourceSpans={}), "resourceSpans"),
        (lambda d: d["resourceSpans"].append(3), "resourceSpans[1]"),
        (lambda d: d["resourceSpans"][0].update(scopeSpans="x"), "resourceSpans[0].scopeSpans"),
        (lambda d: _span_of(d).update(traceId="abc"), f"{WHERE}.traceId"),
        (lambda d: _span_of(d).update(traceId="g" * 32), f"{WHERE}.traceId"),
        (lambda d: _span_of(d).update(traceId="ab" * 17), f"{WHERE}.traceId"),
        (lambda d: _span_of(d).pop("traceId"), f"{WHERE}.traceId"),
        (lambda d: _span_of(d).update(spanId="AAAAAAAAAAAAAAAAAA"), f"{WHERE}.spanId"),
        (lambda d: _span_of(d).update(spanId="S5Z5Z5Z5Z5E="), f"{WHERE}.spanId"),  # base64
        (lambda d: _span_of(d).update(parentSpanId="0" * 16), f"{WHERE}.parentSpanId"),
        (lambda d: _span_of(d).update(name=5), f"{WHERE}.name"),
        (lambda d: _span_of(d).update(name="n" * 1025), f"{WHERE}.name"),
        (lambda d: _span_of(d).update(startTimeUnixNano="soon"), f"{WHERE}.startTimeUnixNano"),
        (lambda d: _span_of(d).pop("startTimeUnixNano"), f"{WHERE}.startTimeUnixNano"),
        (lambda d: _span_of(d).update(endTimeUnixNano=1), f"{WHERE}.endTimeUnixNano"),
        (lambda d: _span_of(d).update(status={"code": 7}), f"{WHERE}.status.code"),
        (lambda d: _span_of(d).update(attributes={"k": 1}), f"{WHERE}.attributes"),
        (
            lambda d: _span_of(d).update(attributes=[{"key": "k", "value": {"intValue": "1.5"}}]),
            f"{WHERE}.attributes.k",
        ),
        (
            lambda d: _span_of(d).update(
                attributes=[{"key": "k", "value": {"intValue": str(2**63)}}]
            ),
            f"{WHERE}.attributes.k",
        ),
        (
            lambda d: _span_of(d).update(attributes=[{"key": "k", "value": {"boolValue": "yes"}}]),
            f"{WHERE}.attributes.k",
        ),
        (
            lambda d: _span_of(d)["events"].append({"name": "e", "attributes": "x"}),
            f"{WHERE}.events[0].attributes",
        ),
    ],
)
def test_bad_json_names_the_field(change: Callable[[dict[str, Any]], None], expected: str) -> None:
    with pytest.raises(ValidationError) as err:
        decode_json(_json_with(change))
    assert err.value.field == expected


@pytest.mark.parametrize(
    ("body", "expected"), [(b"{not json", "body"), (b"[1, 2]", "body"), (b'"x"', "body")]
)
def test_json_that_is_not_a_request(body: bytes, expected: str) -> None:
    with pytest.raises(ValidationError) as err:
        decode_json(body)
    assert err.value.field == expected


@pytest.mark.parametrize("value", [-1, 1.5, "12", True])
def test_token_counts_must_be_counts(decode: Decode, value: Any) -> None:
    call = TestSpan(
        2,
        "chat m",
        0,
        1,
        attrs={"gen_ai.operation.name": "chat", "gen_ai.usage.input_tokens": value},
    )
    with pytest.raises(ValidationError) as err:
        decode([call])
    assert err.value.field == f"{WHERE}.attributes.gen_ai.usage.input_tokens"


def test_deeply_nested_json_attribute_is_refused() -> None:
    value: dict[str, Any] = {"stringValue": "leaf"}
    for _ in range(40):
        value = {"arrayValue": {"values": [value]}}

    def nest(d: dict[str, Any]) -> None:
        _span_of(d)["attributes"] = [{"key": "deep", "value": value}]

    with pytest.raises(ValidationError) as err:
        decode_json(_json_with(nest))
    assert err.value.field.startswith(f"{WHERE}.attributes.deep")
