"""OTLP spans whose attributes nest too deep are stored, not a 500 or a retryable 503.

JSON text in an attribute (``input.value``, ``llmtrail.input``, ``gen_ai.input.messages``, an
event's ``gen_ai.prompt``) is parsed only down to ``[limits] max_json_depth``; deeper text is
kept as the string it came as. Flattened keys (``llm.input_messages.0.a.a.…``) expand to at
most `KEY_DEPTH_MAX` levels, and only ASCII digits are indexes. Each payload is sent as
protobuf and as JSON, small (decoded in the server process) and over `_POOL_BYTES` (decoded in
the worker process), and the server's log shows no traceback afterwards.
"""

from __future__ import annotations

import os
import pickle
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from llmtrail.capture.otlp import MAX_DEPTH, decode_traces
from llmtrail.capture.otlp_content import KEY_DEPTH_MAX
from llmtrail.errors import ValidationError
from llmtrail.server.traces_api import _POOL_BYTES
from tests.harness import ServerProcess

PB, JS = "application/x-protobuf", "application/json"
DEPTH_LIMIT = 40  # the server's [limits] max_json_depth in these tests


def nested(depth: int) -> str:
    """JSON text ``depth`` objects deep."""
    return '{"a":' * depth + "1" + "}" * depth


DEEP = nested(300)


@dataclass
class Payload:
    attributes: dict[str, str]
    events: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    model_call: bool = False


TOOL = {"llmtrail.span.kind": "tool"}
CHAT = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "deep-model"}
OPENINFERENCE_LLM = {"openinference.span.kind": "LLM", "llm.model_name": "deep-model"}
LONG_KEY = "llm.input_messages.0." + "a." * 2000 + "b"
SUPERSCRIPT_KEY = "llm.input_messages.0.message.contents.\u00b2"

PAYLOADS = {
    "input.value 300 deep on a tool span": Payload({**TOOL, "input.value": DEEP}),
    "llmtrail.input 300 deep on a tool span": Payload({**TOOL, "llmtrail.input": DEEP}),
    "input.value 300 deep on a model call": Payload({**CHAT, "input.value": DEEP}, [], True),
    "gen_ai.input.messages 300 deep": Payload({**CHAT, "gen_ai.input.messages": DEEP}, [], True),
    "an event's gen_ai.prompt 300 deep": Payload(
        dict(CHAT), [("gen_ai.content.prompt", {"gen_ai.prompt": DEEP})], True
    ),
    "a flattened key 2,000 levels deep": Payload({**OPENINFERENCE_LLM, LONG_KEY: "x"}, [], True),
    "a superscript digit in a flattened key": Payload(
        {**OPENINFERENCE_LLM, SUPERSCRIPT_KEY: "x"}, [], True
    ),
}


def expected_input(name: str) -> Any:
    """What the span's input (or the record's ``inputBodyJson``) holds afterwards."""
    if name.startswith(("input.value", "llmtrail.input")) and "tool" in name:
        return DEEP
    if name == "input.value 300 deep on a model call":
        return {"model": "deep-model", "input": DEEP}
    if name in ("gen_ai.input.messages 300 deep", "an event's gen_ai.prompt 300 deep"):
        return {"model": "deep-model", "messages": DEEP}
    if name == "a flattened key 2,000 levels deep":
        message: Any = {"a." * (2000 - KEY_DEPTH_MAX + 1) + "b": "x"}
        for _ in range(KEY_DEPTH_MAX - 1):
            message = {"a": message}
        return {"model": "deep-model", "messages": [message]}
    return {"model": "deep-model", "messages": [{"contents": {"\u00b2": "x"}}]}


def ids() -> tuple[str, str]:
    return os.urandom(16).hex(), os.urandom(8).hex()


NOW = 1_764_000_000_000_000_000
PADDING = "p" * (_POOL_BYTES + 1000)  # a second span that takes the body to the worker process


def request_body(
    payload: Payload, trace_id: str, span_id: str, large: bool, encoding: str
) -> bytes:
    spans = [(span_id, payload.attributes, payload.events)]
    if large:
        spans.append((os.urandom(8).hex(), {**TOOL, "llmtrail.input": PADDING}, []))
    if encoding == PB:
        request = ExportTraceServiceRequest()
        scope = request.resource_spans.add().scope_spans.add()
        for sid, attributes, events in spans:
            span = scope.spans.add()
            span.trace_id, span.span_id = bytes.fromhex(trace_id), bytes.fromhex(sid)
            span.name = "deep"
            span.start_time_unix_nano, span.end_time_unix_nano = NOW, NOW + 10**6
            span.attributes.extend(pb_attributes(attributes))
            for name, event_attributes in events:
                event = span.events.add()
                event.name, event.time_unix_nano = name, NOW
                event.attributes.extend(pb_attributes(event_attributes))
        return request.SerializeToString()
    json_spans = [
        {
            "traceId": trace_id,
            "spanId": sid,
            "name": "deep",
            "startTimeUnixNano": str(NOW),
            "endTimeUnixNano": str(NOW + 10**6),
            "attributes": json_attributes(attributes),
            "events": [
                {"name": name, "timeUnixNano": str(NOW), "attributes": json_attributes(a)}
                for name, a in events
            ],
        }
        for sid, attributes, events in spans
    ]
    return orjson.dumps({"resourceSpans": [{"scopeSpans": [{"spans": json_spans}]}]})


def pb_attributes(attributes: dict[str, str]) -> list[KeyValue]:
    return [KeyValue(key=k, value=AnyValue(string_value=v)) for k, v in attributes.items()]


def json_attributes(attributes: dict[str, str]) -> list[dict[str, Any]]:
    return [{"key": k, "value": {"stringValue": v}} for k, v in attributes.items()]


# -- in process ------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", [PB, JS])
@pytest.mark.parametrize("name", list(PAYLOADS))
def test_decoded_values_serialise_and_pickle(name: str, encoding: str) -> None:
    payload = PAYLOADS[name]
    trace_id, span_id = ids()
    body = request_body(payload, trace_id, span_id, False, encoding)
    decoded = decode_traces(body, encoding, max_json_depth=DEPTH_LIMIT)
    if payload.model_call:
        [doc] = decoded.records
        assert doc["input"]["inputBodyJson"] == expected_input(name)
    else:
        [span] = decoded.spans
        assert span.input == expected_input(name)
    orjson.dumps(decoded.records)
    orjson.dumps([s.to_dict() for s in decoded.spans])
    pickle.loads(pickle.dumps(decoded))


@pytest.mark.parametrize("encoding", [PB, JS])
def test_json_in_attributes_is_parsed_down_to_the_limit(encoding: str) -> None:
    trace_id, span_id = ids()
    for depth, parsed in ((DEPTH_LIMIT, True), (DEPTH_LIMIT + 1, False)):
        body = request_body(Payload({**TOOL, "input.value": nested(depth)}), trace_id, span_id,
                            False, encoding)  # fmt: skip
        [span] = decode_traces(body, encoding, max_json_depth=DEPTH_LIMIT).spans
        assert isinstance(span.input, dict) is parsed


@pytest.mark.parametrize("value", ["\u00b2", "--5", "1" * 21, "\u0663"])
def test_json_int_values_are_ascii_digits(value: str) -> None:
    trace_id, span_id = ids()
    span = {
        "traceId": trace_id,
        "spanId": span_id,
        "startTimeUnixNano": str(NOW),
        "endTimeUnixNano": str(NOW + 1),
        "attributes": [{"key": "n", "value": {"intValue": value}}],
    }
    body = orjson.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]})
    with pytest.raises(ValidationError) as refused:
        decode_traces(body, JS)
    assert refused.value.field == "resourceSpans[0].scopeSpans[0].spans[0].attributes.n"


def test_protobuf_arrays_nest_no_deeper_than_json_ones() -> None:
    trace_id, span_id = ids()
    value = AnyValue(string_value="x")
    for _ in range(MAX_DEPTH + 2):
        outer = AnyValue()
        outer.array_value.values.append(value)
        value = outer
    request = ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id, span.span_id = bytes.fromhex(trace_id), bytes.fromhex(span_id)
    span.start_time_unix_nano, span.end_time_unix_nano = NOW, NOW + 1
    span.attributes.extend([KeyValue(key="ok", value=AnyValue(int_value=1))])
    span.attributes.extend([KeyValue(key="deep", value=value)])
    with pytest.raises(ValidationError) as refused:
        decode_traces(request.SerializeToString(), PB)
    assert refused.value.field == "resourceSpans[0].scopeSpans[0].spans[0].attributes.deep"
    assert f"deeper than {MAX_DEPTH}" in refused.value.message


# -- against a running server ------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    config = f"[limits]\nmax_json_depth = {DEPTH_LIMIT}\n"
    with ServerProcess(tmp_path_factory.mktemp("otlp-deep") / "data", config=config) as proc:
        yield proc


def post(server: ServerProcess, body: bytes, content_type: str) -> tuple[int, bytes]:
    request = urllib.request.Request(
        server.url + "/v1/traces", body, {"content-type": content_type}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read()


@pytest.mark.parametrize("large", [False, True], ids=["in-process", "worker"])
@pytest.mark.parametrize("encoding", [PB, JS], ids=["protobuf", "json"])
@pytest.mark.parametrize("name", list(PAYLOADS))
def test_deep_values_are_stored_as_text(
    server: ServerProcess, name: str, encoding: str, large: bool
) -> None:
    payload = PAYLOADS[name]
    trace_id, span_id = ids()
    body = request_body(payload, trace_id, span_id, large, encoding)
    assert (len(body) >= _POOL_BYTES) is large
    status, answer = post(server, body, encoding)
    assert status == 200, answer[:500]
    if payload.model_call:
        record = server.wait_for_record(f"otlp-{trace_id}-{span_id}")
        assert record["input"]["inputBodyJson"] == expected_input(name)
    else:
        server.settle()  # spans are spooled, then stored, like records
        spans = server.get(f"/api/traces/{trace_id}")["spans"]
        [span] = [s for s in spans if s["spanId"] == span_id]
        assert span["input"] == expected_input(name)


def test_the_log_shows_no_traceback(server: ServerProcess) -> None:
    for name, payload in PAYLOADS.items():
        for encoding in (PB, JS):
            for large in (False, True):
                trace_id, span_id = ids()
                body = request_body(payload, trace_id, span_id, large, encoding)
                assert post(server, body, encoding)[0] == 200, name
    server.settle()
    log = server.log()
    assert "Traceback" not in log and "Exception in ASGI application" not in log, log[-3000:]
