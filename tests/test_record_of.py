"""Building a gateway call's record takes the fast ways, and they give what the plain ways give.

`record_of` is checked against `plain_record_of` below — the straightforward way it was first
written — over facts of every wire format, whole and streamed, with errors, tool calls, cached
tokens, cancelled and cut-short streams, and withheld bodies: the records are equal key for key,
in the same key order, except the random ``recordId``. The event-stream decoder's own frame
reader is checked against botocore's buffer (the plain way, and what boto3 runs), and the SSE
decoder's shortcuts against splitting every event line by line, over arbitrary bytes.
"""

from __future__ import annotations

import base64
import dataclasses
import itertools
import json
import random
import struct
from binascii import crc32
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmtrail.capture.gateway.bedrock import eventstream
from llmtrail.capture.gateway.bedrock.eventstream import (
    EventStreamDecoder,
    MalformedEventStream,
    encode_message,
    event,
    exception,
)
from llmtrail.capture.gateway.facts import (
    ERROR_BODY,
    NO_ANSWER,
    STREAM,
    WHOLE,
    CallFacts,
    Outcome,
    Reader,
    json_or_none,
    record_of,
)
from llmtrail.capture.gateway.readers import readers
from llmtrail.capture.gateway.sse import SSEDecoder
from llmtrail.config import Settings
from llmtrail.record import (
    SCHEMA_TYPE,
    SCHEMA_VERSION,
    InvocationRecord,
    format_timestamp,
    uuid7,
)
from llmtrail.schema import ADDITION_KEYS
from tests.test_response_readers import MISSING, SHAPES, VALUES, facts_of

FIXTURES = Path(__file__).parent / "fixtures"
STARTED = datetime(2026, 12, 1, 10, 20, 30, 456000, tzinfo=UTC)


# -- the plain way ----------------------------------------------------------------------------


def plain_outcome_of(facts: CallFacts, reader: Reader) -> tuple[Outcome, dict[str, Any]]:
    more: dict[str, Any] = {
        "status": facts.status,
        "error": facts.error,
        "error_code": facts.error_code,
    }
    if facts.answer == ERROR_BODY:
        return Outcome(output_body=json_or_none(facts.raw)), more
    if facts.answer == WHOLE:
        try:
            return reader.outcome(facts, json_or_none(facts.raw)), more
        except Exception:
            return Outcome(output_body=json_or_none(facts.raw)), more
    if facts.answer == STREAM:
        try:
            outcome = reader.stream_outcome(facts)
        except Exception:
            outcome = Outcome()
        outcome.estimated = outcome.estimated or facts.truncated
        if facts.status == "CANCELLED":
            more["error_code"] = facts.cancelled_code or "ClientDisconnected"
        elif facts.error_status is not None:
            more["error_code"] = reader.error_code(facts.error_status)
        elif outcome.error is not None:
            more.update(status="ERROR", error=outcome.error, error_code=outcome.error_code)
        return outcome, more
    return Outcome(), more


def plain_record_of(
    facts: CallFacts,
    settings: Settings,
    reader: Reader,
    enrich: Callable[[dict[str, Any]], None] | None = None,
    withhold: Callable[[dict[str, Any]], object] | None = None,
) -> InvocationRecord:
    o, more = plain_outcome_of(facts, reader)
    doc: dict[str, Any] = {
        "schemaType": SCHEMA_TYPE,
        "schemaVersion": SCHEMA_VERSION,
        "timestamp": format_timestamp(facts.started),
        "accountId": settings.account_id,
        "region": settings.region,
        "requestId": facts.request_id,
        "operation": facts.operation,
        "modelId": facts.model_id,
    }
    if facts.identity is not None:
        doc["identity"] = {"arn": facts.identity[0]}
    if facts.metadata:
        doc["requestMetadata"] = facts.metadata
    inp: dict[str, Any] = {"inputContentType": "application/json"}
    if facts.input_body is not None:
        inp["inputBodyJson"] = facts.input_body
    if o.input_tokens is not None:
        inp["inputTokenCount"] = o.input_tokens
    if o.cache_read_tokens is not None:
        inp["cacheReadInputTokenCount"] = o.cache_read_tokens
    if o.cache_write_tokens is not None:
        inp["cacheWriteInputTokenCount"] = o.cache_write_tokens
    out: dict[str, Any] = {"outputContentType": "application/json"}
    if o.output_body is not None:
        out["outputBodyJson"] = o.output_body
    if o.output_tokens is not None:
        out["outputTokenCount"] = o.output_tokens
    doc["input"], doc["output"] = inp, out
    if more["error_code"]:
        doc["errorCode"] = more["error_code"]
    doc.update(
        recordId=uuid7(facts.started),
        workspace=facts.workspace,
        source="gateway",
        status=more["status"],
        latencyMs=facts.latency_ms,
    )
    optional = {
        "provider": facts.provider,
        "resolvedModelId": facts.resolved_model,
        "responseId": o.response_id,
        "stopReason": o.stop_reason,
        "error": more["error"],
        "trace": facts.trace,
        "timeToFirstTokenMs": facts.time_to_first_token_ms,
        "identityType": facts.identity[1] if facts.identity is not None else None,
        "requestMetadataTruncated": True if facts.metadata_truncated else None,
        "tokenCountEstimated": True if o.estimated else None,
        "requestHeaders": facts.headers or None,
    }
    doc.update({k: v for k, v in optional.items() if v is not None})
    doc.update(facts.additions)
    if enrich is not None:
        enrich(doc)
    if withhold is not None and facts.no_log:
        withhold(doc)
    return InvocationRecord(doc, tuple(k for k in doc if k in ADDITION_KEYS))


# -- the facts --------------------------------------------------------------------------------


def _facts(wire: str, operation: str, model: str, body: Any, answer: str, raw: bytes) -> CallFacts:
    return CallFacts(
        wire=wire,
        operation=operation,
        started=STARTED,
        request_id="req-1",
        latency_ms=50,
        model_id=model,
        workspace="default",
        input_body=body,
        answer=answer,
        raw=raw,
    )


def _fixture_facts() -> list[CallFacts]:
    """Tool calls, thinking, cached tokens and every InvokeModel family, from the golden files."""
    out = []
    for path in sorted((FIXTURES / "bedrock" / "invoke").glob("*.json")):
        d = json.loads(path.read_text())
        raw = json.dumps(d["response"]).encode()
        f = _facts("bedrock", "InvokeModel", d["model_id"], d.get("request"), WHOLE, raw)
        out.append(dataclasses.replace(f, response_headers=d.get("headers") or {}))
    for path in sorted((FIXTURES / "bedrock" / "stream").glob("*.json")):
        d = json.loads(path.read_text())
        raw = b"".join(
            event("chunk", {"bytes": base64.b64encode(json.dumps(c).encode()).decode()})
            for c in d["chunks"]
        )
        operation = "InvokeModelWithResponseStream"
        out.append(_facts("bedrock", operation, d["model_id"], d.get("request"), STREAM, raw))
    converse = json.loads(
        (FIXTURES / "bedrock" / "converse" / "stream_reasoning_tool_use.json").read_text()
    )
    raw = b"".join(event(k, v) for e in converse["events"] for k, v in e.items())
    body = {"messages": [{"role": "user", "content": [{"text": "weather?"}]}]}
    out.append(_facts("bedrock", "ConverseStream", "amazon.nova-lite-v1:0", body, STREAM, raw))
    # an exception frame in the middle of a stream, and at its end
    out.append(
        dataclasses.replace(
            out[-1], raw=raw[:200] + exception("throttlingException", "slow") + raw[200:]
        )
    )
    out.append(dataclasses.replace(out[-2], raw=raw + exception("modelStreamErrorException", "x")))
    whole = json.loads((FIXTURES / "bedrock" / "converse" / "tool_use_response.json").read_text())
    raw = json.dumps(whole["response"]).encode()
    out.append(_facts("bedrock", "Converse", "amazon.nova-lite-v1:0", body, WHOLE, raw))
    claude = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 10,
        "messages": [{"role": "user", "content": "hi"}],
    }
    for path in sorted((FIXTURES / "anthropic").glob("*.sse")):
        out.append(
            _facts("anthropic", "Messages", "claude-sonnet-4-5", claude, STREAM, path.read_bytes())
        )
    cached = json.loads((FIXTURES / "anthropic" / "message_cache.json").read_text())
    raw = json.dumps(cached["response"]).encode()
    out.append(_facts("anthropic", "Messages", "claude-sonnet-4-5", claude, WHOLE, raw))
    return out + _openai_tool_calls()


def _openai_tool_calls() -> list[CallFacts]:
    """A chat completion calling a tool, whole and streamed (with cached tokens), and an
    embeddings answer."""
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "weather?"}]}
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather"}}
    usage = {
        "prompt_tokens": 40,
        "completion_tokens": 9,
        "prompt_tokens_details": {"cached_tokens": 32},
    }
    message = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {**call, "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}
        ],
    }
    whole = {
        "id": "chatcmpl-2",
        "object": "chat.completion",
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}],
        "usage": usage,
    }
    head = {
        "id": "chatcmpl-2",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4o-mini",
        "system_fingerprint": "fp",
    }
    deltas: list[dict[str, Any]] = [
        {"role": "assistant", "content": None, "refusal": None},
        {
            "tool_calls": [
                {"index": 0, **call, "function": {"name": "get_weather", "arguments": ""}}
            ]
        },
        {"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]},
        {"content": "and"},
        {"content": " text"},
    ]
    chunks = [
        {**head, "choices": [{"index": 0, "delta": d, "finish_reason": None}]} for d in deltas
    ]
    chunks.append({**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})
    chunks.append({**head, "choices": [], "usage": usage})
    raw = b"".join(b"data: " + orjson.dumps(c) + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"
    embeddings = {"model": "text-embedding-3-small", "input": ["one", "two"]}
    vectors = {
        "object": "list",
        "data": [{"object": "embedding", "index": i, "embedding": [0.5]} for i in range(2)],
        "usage": {"prompt_tokens": 2, "total_tokens": 2},
    }
    return [
        _facts("openai", "ChatCompletions", "gpt-4o-mini", body, WHOLE, orjson.dumps(whole)),
        _facts("openai", "ChatCompletions", "gpt-4o-mini", body, STREAM, raw),
        _facts(
            "openai",
            "Embeddings",
            "text-embedding-3-small",
            embeddings,
            WHOLE,
            orjson.dumps(vectors),
        ),
    ]


def _varied(base: list[CallFacts]) -> list[CallFacts]:
    """Each of ``base`` as it is, cut short, corrupted, cancelled, failed mid-stream, with
    everything the serving process may know of the call, and with its bodies withheld."""
    rng = random.Random(18)
    out = list(base)
    for f in base:
        if f.raw:
            for _ in range(3):
                out.append(
                    dataclasses.replace(f, raw=f.raw[: rng.randrange(len(f.raw))], truncated=True)
                )
            flipped = bytearray(f.raw)
            flipped[rng.randrange(len(flipped))] ^= rng.randrange(1, 256)
            out.append(dataclasses.replace(f, raw=bytes(flipped)))
        if f.answer == STREAM and f.wire != "bedrock":
            out.append(dataclasses.replace(f, raw=f.raw.replace(b"\n", b"\r\n")))
        if f.answer == WHOLE:
            for raw in (b"", b"null", b"[1, 2]", b"not json", b'{"usage": {"prompt_tokens": "7"}}'):
                out.append(dataclasses.replace(f, raw=raw))
            out.append(
                dataclasses.replace(
                    f,
                    answer=ERROR_BODY,
                    status="ERROR",
                    raw=b'{"error": {"type": "x"}}',
                    error={"type": "x", "message": "", "httpStatus": 500},
                    error_code="InternalServerException",
                )
            )
        if f.answer == STREAM:
            out.append(
                dataclasses.replace(
                    f, status="CANCELLED", cancelled_code=rng.choice([None, "DrainTimeout"])
                )
            )
            idle = {"type": "upstream_stream_idle", "message": "idle", "httpStatus": 504}
            out.append(dataclasses.replace(f, status="ERROR", error=idle, error_status=504))
        out.append(
            dataclasses.replace(
                f,
                started=f.started + timedelta(microseconds=rng.randrange(1, 10**6)),
                identity=("arn:aws:iam::123456789012:user/app", "AccessKey"),
                trace={"traceId": "a" * 32, "spanId": "b" * 16},
                metadata={"application_name": "app", "team": "search"},
                metadata_truncated=True,
                headers={"user-agent": "openai-python/1.50"},
                additions={"inferenceProfile": {"arn": "arn:aws:bedrock:::profile/p"}},
                time_to_first_token_ms=12,
                provider="sim",
                resolved_model="model",
                no_log=True,
            )
        )
        out.append(
            dataclasses.replace(
                f, identity=("arn:x", None), additions={"status": "OK", "extra": 1}, input_body=None
            )
        )
    out.append(
        dataclasses.replace(
            base[0],
            answer=NO_ANSWER,
            status="ERROR",
            error={"type": "model_not_found", "message": "no"},
            error_code="ResourceNotFoundException",
        )
    )
    return out


def all_facts() -> list[CallFacts]:
    base = [facts_of(shape(v)) for shape in SHAPES.values() for v, _ in [*VALUES, (MISSING, None)]]
    return _varied(base + _fixture_facts())


def _enrich(doc: dict[str, Any]) -> None:
    doc["cost"] = {"totalCost": "0.000001", "currency": "USD"}


def _withhold(doc: dict[str, Any]) -> None:
    doc["input"].pop("inputBodyJson", None)
    doc["output"].pop("outputBodyJson", None)


def _comparable(record: InvocationRecord) -> tuple[bytes, tuple[str, ...]]:
    doc = dict(record.data)
    assert isinstance(doc.pop("recordId"), str)
    return orjson.dumps(doc), record.derived  # the bytes keep the key order


@pytest.fixture(scope="module")
def by_wire() -> dict[str, Reader]:
    return readers(Settings())


def test_records_are_what_the_plain_way_builds(by_wire: dict[str, Reader]) -> None:
    facts = all_facts()
    assert len(facts) > 500
    seen = set()
    for f in facts:
        settings_ = Settings()
        ours = record_of(f, settings_, by_wire[f.wire], enrich=_enrich, withhold=_withhold)
        plain = plain_record_of(f, settings_, by_wire[f.wire], enrich=_enrich, withhold=_withhold)
        assert _comparable(ours) == _comparable(plain), f
        seen.add((f.wire, f.answer, ours.data["status"], "errorCode" in ours.data))
    # the corpus reaches every way a record is built
    assert {(w, a) for w, a, _, _ in seen} >= {
        (w, a) for w in ("openai", "anthropic", "bedrock") for a in (WHOLE, STREAM, ERROR_BODY)
    }
    assert {s for _, _, s, _ in seen} == {"OK", "ERROR", "CANCELLED"}


def test_a_request_handed_over_as_its_bytes_records_as_the_parsed_body(
    by_wire: dict[str, Reader],
) -> None:
    """The serving process hands the request body over as the bytes it received
    (`CallFacts.request_raw`), not parsed: the record, the token counts estimated from the
    request included, is the one the parsed body gives."""
    compared = 0
    for f in all_facts():
        if f.input_body is None:
            continue
        raw = orjson.dumps(f.input_body)
        as_bytes = dataclasses.replace(f, input_body=None, request_raw=raw)
        ours = record_of(as_bytes, Settings(), by_wire[f.wire], enrich=_enrich)
        parsed = record_of(f, Settings(), by_wire[f.wire], enrich=_enrich)
        assert _comparable(ours) == _comparable(parsed), f
        assert ours.data["input"]["inputBodyJson"] == orjson.loads(raw)
        compared += 1
    assert compared > 300


# -- the event-stream decoder -----------------------------------------------------------------


def plain_frames(pieces: list[bytes]) -> list[tuple[dict[str, Any], bytes, int]] | str:
    """What botocore's buffer (with the decoder's own length check) reads from ``pieces`` fed
    one by one, or "refused"."""
    buffer = eventstream._checked_buffer()()
    out = []
    try:
        for piece in pieces:
            buffer.add_data(piece)
            out += [(m.headers, m.payload, m.prelude.total_length) for m in buffer]
    except Exception:
        return "refused"
    return out


def our_frames(pieces: list[bytes]) -> list[tuple[dict[str, Any], bytes, int]] | str:
    decoder = EventStreamDecoder()
    out = []
    try:
        for piece in pieces:
            out += [(dict(m.headers), m.payload, m.size) for m in decoder.feed(piece)]
    except MalformedEventStream:
        return "refused"
    return out


header_values = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.sampled_from([eventstream.Byte(-3), eventstream.Short(300), eventstream.Long(7)]),
    st.binary(max_size=20),
    st.text(max_size=20),
    st.uuids(),
    st.datetimes(timezones=st.just(UTC)),
)
frames = st.lists(
    st.tuples(
        st.dictionaries(st.text(min_size=1, max_size=12), header_values, max_size=4),
        st.binary(max_size=120),
    ),
    max_size=5,
).map(lambda fs: b"".join(encode_message(h, p) for h, p in fs))


@settings(max_examples=300, deadline=None)
@given(
    data=frames,
    damage=st.lists(st.tuples(st.integers(min_value=0), st.integers(1, 255)), max_size=2),
    cut=st.none() | st.integers(min_value=0),
    splits=st.lists(st.integers(min_value=0), max_size=3),
)
def test_event_stream_frames_are_botocores(
    data: bytes, damage: list[tuple[int, int]], cut: int | None, splits: list[int]
) -> None:
    raw = bytearray(data)
    for at, flip in damage if raw else []:
        raw[at % len(raw)] ^= flip
    if cut is not None:
        raw = raw[: cut % (len(raw) + 1)]
    points = sorted({0, len(raw), *(s % (len(raw) + 1) for s in splits)})
    pieces = [bytes(raw[a:b]) for a, b in itertools.pairwise(points)] or [b""]
    assert our_frames(pieces) == plain_frames(pieces)


def _frame(headers: bytes, payload: bytes = b"{}") -> bytes:
    """A frame with a hand-made headers section and right CRCs."""
    prelude = struct.pack("!II", 16 + len(headers) + len(payload), len(headers))
    head = prelude + struct.pack("!I", crc32(prelude))
    body = head + headers + payload
    return body + struct.pack("!I", crc32(body))


@pytest.mark.parametrize(
    "headers",
    [
        b"\x01a\x07\x00\x05hello",  # plain
        b"\x01a\x07\x00\x09hello",  # a value running past the section
        b"\x01a\x0a\x00",  # an unknown type
        b"\x01a\x07\x00\x01x\x01a\x07\x00\x01y",  # a name twice
        b"\x02\xff\xfe\x07\x00\x01x",  # a name that is not UTF-8
        b"\x01a\x07\x00\x02\xc3\x28",  # a value that is not UTF-8
        b"\x05a",  # a name running past the section
        b"\x01a",  # no type
        b"\x01a\x04\x00\x00",  # an integer cut short
        b"\x01a\x09" + bytes(range(16)),  # a uuid
        b"\x01a\x08" + struct.pack("!q", -5),  # a timestamp
    ],
)
def test_odd_header_sections_read_as_botocore_reads_them(headers: bytes) -> None:
    data = event("a", {"n": 1}) + _frame(headers) + event("b", {"n": 2})
    assert our_frames([data]) == plain_frames([data])


# -- the SSE decoder --------------------------------------------------------------------------


def plain_sse(pieces: list[bytes]) -> list[bytes]:
    """Every complete event split line by line, as the decoder first did."""
    buffer, out = b"", []
    for piece in pieces:
        buffer += piece.replace(b"\r\n", b"\n")
        *events, buffer = buffer.split(b"\n\n")
        for e in events:
            data = [line[5:].lstrip(b" ") for line in e.split(b"\n") if line.startswith(b"data:")]
            if data:
                out.append(b"\n".join(data))
    return out


sse_bytes = st.lists(
    st.sampled_from(
        [
            b"data:",
            b"data: ",
            b"event: x",
            b": ping",
            b"id: 1",
            b"\n",
            b"\n\n",
            b"\r\n",
            b"\r",
            b" ",
            b"{}",
            b"[DONE]",
            b"a",
            b"data",
        ]
    ),
    max_size=30,
).map(b"".join)


@settings(max_examples=400, deadline=None)
@given(raw=sse_bytes, splits=st.lists(st.integers(min_value=0), max_size=3))
def test_sse_payloads_are_the_plain_splits(raw: bytes, splits: list[int]) -> None:
    points = sorted({0, len(raw), *(s % (len(raw) + 1) for s in splits)})
    pieces = [raw[a:b] for a, b in itertools.pairwise(points)] or [b""]
    decoder = SSEDecoder()
    assert [p for piece in pieces for p in decoder.feed(piece)] == plain_sse(pieces)
    assert SSEDecoder().feed(raw + b"\n\n") == plain_sse([raw + b"\n\n"])
