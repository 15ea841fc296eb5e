"""A large OTLP export is decoded in a worker process and crosses the serving process
packed (`decode_packed`, `sort_packed_calls`): the same records, links, refusals and spans
as the same export sorted out in the serving process (`sort_calls`)."""

from __future__ import annotations

import math
import os
import pickle
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from llmtrail.capture.merge import MERGED_INTO, GatewayCallIndex
from llmtrail.capture.otlp import decode_traces
from llmtrail.pipeline.frames import decode_payload, encode_payload, encode_span_payload
from llmtrail.pipeline.link import from_ipc
from llmtrail.pipeline.packed import Packed, SpanFrames, span_batch, span_count
from llmtrail.record import InvocationRecord
from llmtrail.security.logging_config import LoggingConfigs, LoggingConfigStore, parse_put_body
from llmtrail.security.record_policy import RecordPolicy
from llmtrail.security.redaction_store import RedactionPolicies
from llmtrail.server.otlp_intake import decode_packed, sort_calls, sort_packed_calls
from llmtrail.span import Span, SpanError
from llmtrail.store.arrow import latest_of, span_table
from llmtrail.store.memory import MemoryStateStore

PROTOBUF = "application/x-protobuf"
NAN = math.nan
WORKSPACE = "w1"


def _attr(key: str, value: str | int) -> KeyValue:
    any_value = (
        AnyValue(int_value=value) if isinstance(value, int) else AnyValue(string_value=value)
    )
    return KeyValue(key=key, value=any_value)


def _export() -> tuple[bytes, list[tuple[str, str]]]:
    """Ten traces, each a workflow span and a model call under it; calls 0, 3, 6 and 9 name a
    model longer than a record allows, and odd calls failed. Returns the body and each call's
    trace and span id."""
    request = ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    calls = []
    for t in range(10):
        trace_id, root, call_id = os.urandom(16), os.urandom(8), os.urandom(8)
        start = 1_764_000_000_000_000_000 + t * 10**9
        for span_id, parent in ((root, None), (call_id, root)):
            span = scope.spans.add()
            span.trace_id, span.span_id = trace_id, span_id
            if parent is not None:
                span.parent_span_id = parent
            span.start_time_unix_nano, span.end_time_unix_nano = start, start + 5 * 10**8
            if parent is None:
                span.name = "handle"
                span.attributes.extend([_attr("llmtrail.span.kind", "workflow")])
                continue
            span.name = "chat"
            model = "m" * 3000 if t % 3 == 0 else "gpt-4o-mini"
            span.attributes.extend(
                [
                    _attr("gen_ai.operation.name", "chat"),
                    _attr("gen_ai.provider.name", "openai"),
                    _attr("gen_ai.request.model", model),
                    _attr("gen_ai.response.id", f"chatcmpl-{t}"),
                    _attr("gen_ai.usage.input_tokens", 100 + t),
                    _attr("gen_ai.usage.output_tokens", 20),
                    _attr("llmtrail.metadata.application_name", "packed"),
                ]
            )
            if t % 2:
                span.status.code, span.status.message = 2, f"upstream said no to call {t}"
            calls.append((trace_id.hex(), call_id.hex()))
    return request.SerializeToString(), calls


def _index(calls: list[tuple[str, str]]) -> GatewayCallIndex:
    """Gateway calls of the exporter's workspace that calls 1, 3 and 4 describe too (1 and 3
    by their trace and span, 4 by the upstream's response id), and calls of another
    workspace that calls 2 and 5 would describe, were they that workspace's."""
    index = GatewayCallIndex()
    for n, workspace in ((1, WORKSPACE), (3, WORKSPACE), (2, "default")):
        trace_id, span_id = calls[n]
        doc: dict[str, Any] = {"trace": {"traceId": trace_id, "parentSpanId": span_id}}
        index.note(InvocationRecord({**doc, "workspace": workspace, "requestId": f"gw-{n}"}))
    for n, workspace in ((4, WORKSPACE), (5, "default")):
        doc = {"workspace": workspace, "requestId": f"gw-{n}", "responseId": f"chatcmpl-{n}"}
        index.note(InvocationRecord(doc))
    return index


def _without_ids(records: list[InvocationRecord]) -> list[dict[str, Any]]:
    """What differs between two decodings of one export is only each record's new id."""
    return [{k: v for k, v in r.data.items() if k != "recordId"} for r in records]


def test_a_packed_export_sorts_out_as_the_same_export_unpacked() -> None:
    body, calls = _export()
    index = _index(calls)
    plain = decode_traces(body, PROTOBUF, workspace=WORKSPACE)
    records, links, rejected = sort_calls(index, plain.records, WORKSPACE)
    export = pickle.loads(  # as it comes back from the worker process
        pickle.dumps(decode_packed(body, PROTOBUF, workspace=WORKSPACE, max_json_depth=64))
    )
    packed, packed_links, packed_rejected = sort_packed_calls(index, export, WORKSPACE)
    # 10 calls: 1, 3 (invalid too) and 4 merged; 0, 6 and 9 refused; 2, 5, 7 and 8 kept
    # (2 and 5 match only another workspace's gateway calls)
    assert len(export.calls) == 10
    assert [r.data["responseId"] for r in records] == [f"chatcmpl-{n}" for n in (2, 5, 7, 8)]
    assert [link.attributes[MERGED_INTO] for link in links] == ["gw-1", "gw-3", "gw-4"]
    assert [link.status for link in links] == ["ERROR", "ERROR", "OK"]
    assert links[0].error is not None and links[0].error.message == "upstream said no to call 1"
    assert len(rejected) == 3 and "modelId" in rejected[0]
    assert len(packed) == 4
    assert _without_ids(packed.unpack()) == _without_ids(records)
    assert packed_links == links
    assert packed_rejected == rejected
    # the other spans come framed: their frames read back as the spans, their rows as stored
    assert isinstance(export.spans, SpanFrames) and len(export.spans) == 10
    assert export.spans.spans() == plain.spans
    assert [encode_span_payload(s) for s in plain.spans] == export.spans.frames
    assert from_ipc(export.spans.rows).equals(span_table(plain.spans))


def test_packed_values_select_by_position_and_unpack_after_crossing() -> None:
    whole = Packed(["a", "b", "c"])
    assert len(whole) == 3 and whole.unpack() == ["a", "b", "c"]
    assert pickle.loads(pickle.dumps(whole)).unpack() == ["a", "b", "c"]
    with pytest.raises(TypeError):
        whole.select([0])
    each = Packed.each(["a", "b", "c"])
    chosen = each.select([2, 0])
    assert len(chosen) == 2
    assert pickle.loads(pickle.dumps(chosen)).unpack() == ["c", "a"]
    assert each.unpack() == ["a", "b", "c"]  # selecting leaves the original as it was
    none = each.select([])
    assert not none and len(none) == 0 and none.unpack() == []
    assert not Packed([]) and Packed([]).unpack() == []


def test_records_cross_as_json_as_the_spool_would_replay_them() -> None:
    """Records cross as JSON: each comes back as its spool frame would give it back (a
    tuple as a list, NaN as null); one orjson cannot write crosses as a pickle, exactly."""
    plain = InvocationRecord.from_dict(
        {"requestId": "r1", "timestamp": "2026-01-01T00:00:00Z", "modelId": "m"}
    )
    odd = InvocationRecord(
        {**plain.data, "requestId": "r2", "input": {"inputBodyJson": {"t": (1, 2), "x": NAN}}},
        ("cost",),
    )
    unwritable = InvocationRecord({**plain.data, "requestId": "r3", "big": 2**70, 7: "seven"})
    packed = Packed.records([plain, odd, unwritable])
    assert len(packed) == 3
    crossed = pickle.loads(pickle.dumps(packed.select([2, 0, 1]))).unpack()
    assert [r.request_id for r in crossed] == ["r3", "r1", "r2"]
    assert crossed[0].data == unwritable.data and crossed[0].data["big"] == 2**70
    for record, back in ((plain, crossed[1]), (odd, crossed[2])):
        replayed = decode_payload(encode_payload(record))
        assert back.data == replayed.data and back.derived == replayed.derived == record.derived
    assert crossed[2].data["input"]["inputBodyJson"] == {"t": [1, 2], "x": None}
    assert crossed[1].data == plain.data
    assert Packed.records([]).unpack() == []


def _span(n: int, **fields: Any) -> Span:
    start = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=n)
    given: dict[str, Any] = {
        "trace_id": f"{n % 3:032x}",
        "span_id": f"{n:016x}",
        "name": f"step {n}",
        "start": start,
        "end": start + timedelta(milliseconds=5),
        "kind": "tool",
        "input": {"question": f"what is {n}?"},
        "attributes": {"tool.name": "lookup", "n": n},
        "workspace": WORKSPACE,
        "source": "otlp",
    }
    return Span(**{**given, **fields})


def test_a_batch_of_prepared_and_framed_spans_stores_the_last_copy_of_each() -> None:
    """`span_batch` reads framed spans' rows as they are, and keeps the last copy of a span
    sent twice, wherever the copies are: as `latest_of` over the spans themselves would."""
    first = [_span(n) for n in range(4)]
    framed = [_span(1, name="again"), _span(5), _span(6)]
    last = [_span(6, name="third"), _span(7)]
    frames = SpanFrames.of(framed, WORKSPACE)
    assert isinstance(frames, SpanFrames) and len(frames) == 3
    crossed = pickle.loads(pickle.dumps(frames))
    batch = span_batch([*first, crossed, *last])
    expected = span_table(latest_of([*first, *framed, *last]))

    def rows(table: Any) -> list[dict[str, Any]]:
        return sorted(table.to_pylist(), key=lambda r: r["span_id"])

    assert rows(batch) == rows(expected) and batch.num_rows == 7
    assert {r["span_id"]: r["name"] for r in rows(batch)}[f"{1:016x}"] == "again"
    assert {r["span_id"]: r["name"] for r in rows(batch)}[f"{6:016x}"] == "third"
    assert span_batch([crossed]).equals(span_table(framed))  # no copies: the rows as they came
    assert span_count([*first, crossed, *last]) == 9


def test_spans_orjson_cannot_write_cross_pickled() -> None:
    odd = [_span(1), _span(2, attributes={"big": 2**70})]
    packed = SpanFrames.of(odd, WORKSPACE)
    assert isinstance(packed, Packed) and packed.unpack() == odd


SECRET = "AKIAIOSFODNN7EXAMPLE"  # what the default policy's AWS key detector finds


@pytest.mark.parametrize(
    "secret",
    [
        {"input": f"my key is {SECRET}"},
        {"output": [{"text": SECRET}]},
        {"attributes": {"note": SECRET}},
        {"tags": ("billing", SECRET)},
        {"session_id": SECRET},
        {"app": f"svc {SECRET}"},
        {"error": SpanError(type=SECRET)},
        {"error": SpanError(message=f"denied for {SECRET}")},
        {"error": SpanError(stack_trace=f"line 1\n  key={SECRET}")},
    ],
    ids=lambda s: next(iter(s)),
)
def test_framed_spans_go_as_they_are_only_where_the_policy_leaves_each_alone(
    secret: dict[str, Any],
) -> None:
    """`RecordPolicy.leaves_spans` is true only when `prepare_span` would change none of the
    spans: a secret in any field it redacts makes it false (and `prepare_span` does change
    that span), as does a workspace delivering no text or no images."""
    state = MemoryStateStore()
    configs = LoggingConfigs(LoggingConfigStore(state))
    policy = RecordPolicy(configs, RedactionPolicies(state, b"k" * 32))
    clean = [_span(n) for n in range(5)]
    assert policy.leaves_spans(WORKSPACE, [encode_span_payload(s) for s in clean])
    for s in clean:
        before = encode_span_payload(s)
        policy.prepare_span(s)
        assert encode_span_payload(s) == before
    spans = [*clean, _span(9, **secret)]
    frames = [encode_span_payload(s) for s in spans]
    assert not policy.leaves_spans(WORKSPACE, frames)
    policy.prepare_span(spans[-1])
    assert SECRET not in encode_span_payload(spans[-1]).decode()  # it did change
    plain = RecordPolicy(configs, None)  # no redaction: only the logging configuration
    assert plain.leaves_spans(WORKSPACE, frames)
    for flags in ({"textDataDeliveryEnabled": False}, {"imageDataDeliveryEnabled": False}):
        config = {"textDataDeliveryEnabled": True, **flags}
        LoggingConfigStore(state).put(WORKSPACE, parse_put_body({"loggingConfig": config}))
        configs.invalidate(WORKSPACE)
        assert not plain.leaves_spans(WORKSPACE, [encode_span_payload(s) for s in clean])
