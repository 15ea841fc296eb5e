"""One rule for a token count, whichever wire format carried the answer.

The same usage values go into each format's answer shape — an OpenAI chat completion and its
stream, an Anthropic message and its stream, a Bedrock Converse answer and its stream, and a
Bedrock InvokeModel answer and stream for an Anthropic model — and through the reader the
record path runs (`readers(Settings())`). A count is believed when `token_count` accepts it
(``12``, ``"12"``, ``12.0``); anything else is treated exactly as a missing count: counted
offline, the record flagged as estimated, a cache count left unknown.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from llmtrail.capture.gateway.bedrock.eventstream import event
from llmtrail.capture.gateway.facts import STREAM, WHOLE, CallFacts, Outcome, Reader, record_of
from llmtrail.capture.gateway.readers import readers
from llmtrail.capture.gateway.usage import token_count
from llmtrail.capture.tokens import count_tokens
from llmtrail.config import Settings
from llmtrail.record import INT_MAX, STRING_LIMITS, check_types

PROMPT = "How many tokens does this question take, counted by the upstream or offline?"
REPLY = ["Twelve", " tokens,", " more or less,", " as the upstream counts them."]
MISSING = object()  # the count's key left out of the answer

# each value, and the count every format must read from it (None: not believed)
VALUES: list[tuple[Any, int | None]] = [
    (12, 12),
    ("12", 12),
    (12.0, 12),
    ("12.5", None),
    (-1, None),
    (True, None),
    (2**63, None),
    (None, None),
    ("abc", None),
]


@dataclass
class Answer:
    wire: str
    operation: str
    model: str
    body: dict[str, Any]
    answer: str  # WHOLE or STREAM
    raw: bytes


def _put(target: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    if value is not MISSING:
        target[key] = value
    return target


def _sse(events: list[tuple[str | None, Any]]) -> bytes:
    out = b""
    for name, data in events:
        if name is not None:
            out += b"event: " + name.encode() + b"\n"
        text = data if isinstance(data, str) else json.dumps(data)
        out += b"data: " + text.encode() + b"\n\n"
    return out


def _anthropic_message(v: Any) -> dict[str, Any]:
    usage: dict[str, Any] = {}
    for key in ("input_tokens", "output_tokens", "cache_read_input_tokens"):
        _put(usage, key, v)
    return {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-3-5-haiku-20241022",
        "content": [{"type": "text", "text": "".join(REPLY)}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": usage,
    }


def _anthropic_events(v: Any) -> list[dict[str, Any]]:
    start = _anthropic_message(v)
    start["content"], start["stop_reason"] = [], None
    delta_usage = _put({}, "output_tokens", v)
    return [
        {"type": "message_start", "message": start},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        *(
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": t}}
            for t in REPLY
        ),
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": delta_usage},
        {"type": "message_stop"},
    ]


def openai_chat(v: Any) -> Answer:
    usage: dict[str, Any] = {}
    _put(usage, "prompt_tokens", v)
    _put(usage, "completion_tokens", v)
    if v is not MISSING:
        usage["prompt_tokens_details"] = {"cached_tokens": v}
    answer: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "gpt-4o-mini",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "".join(REPLY)},
                "finish_reason": "stop",
            }
        ],
    }
    if usage:
        answer["usage"] = usage
    return Answer(
        "openai",
        "ChatCompletions",
        "gpt-4o-mini",
        {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": PROMPT}]},
        WHOLE,
        json.dumps(answer).encode(),
    )


def openai_stream(v: Any) -> Answer:
    base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "gpt-4o-mini"}
    chunks: list[tuple[str | None, Any]] = [
        (None, {**base, "choices": [{"index": 0, "delta": {"role": "assistant"}}]})
    ]
    chunks += [(None, {**base, "choices": [{"index": 0, "delta": {"content": t}}]}) for t in REPLY]
    chunks.append((None, {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}))
    if v is not MISSING:
        usage = {"prompt_tokens": v, "completion_tokens": v}
        usage["prompt_tokens_details"] = {"cached_tokens": v}
        chunks.append((None, {**base, "choices": [], "usage": usage}))
    chunks.append((None, "[DONE]"))
    whole = openai_chat(v)
    return Answer(whole.wire, whole.operation, whole.model, whole.body, STREAM, _sse(chunks))


def anthropic_message(v: Any) -> Answer:
    return Answer(
        "anthropic",
        "Messages",
        "claude-3-5-haiku-20241022",
        {
            "model": "claude-3-5-haiku-20241022",
            "max_tokens": 64,
            "messages": [{"role": "user", "content": PROMPT}],
        },
        WHOLE,
        json.dumps(_anthropic_message(v)).encode(),
    )


def anthropic_stream(v: Any) -> Answer:
    whole = anthropic_message(v)
    events = [(e["type"], e) for e in _anthropic_events(v)]
    return Answer(whole.wire, whole.operation, whole.model, whole.body, STREAM, _sse(events))


CLAUDE_ON_BEDROCK = "anthropic.claude-3-5-haiku-20241022-v1:0"
CONVERSE_BODY = {"messages": [{"role": "user", "content": [{"text": PROMPT}]}]}
INVOKE_BODY = {
    "anthropic_version": "bedrock-2023-05-31",
    "max_tokens": 64,
    "messages": [{"role": "user", "content": [{"type": "text", "text": PROMPT}]}],
}


def _converse_usage(v: Any) -> dict[str, Any]:
    usage: dict[str, Any] = {}
    for key in ("inputTokens", "outputTokens", "cacheReadInputTokens"):
        _put(usage, key, v)
    return usage


def bedrock_converse(v: Any) -> Answer:
    answer = {
        "output": {"message": {"role": "assistant", "content": [{"text": "".join(REPLY)}]}},
        "stopReason": "end_turn",
        "usage": _converse_usage(v),
        "metrics": {"latencyMs": 40},
    }
    raw = json.dumps(answer).encode()
    return Answer("bedrock", "Converse", CLAUDE_ON_BEDROCK, CONVERSE_BODY, WHOLE, raw)


def bedrock_converse_stream(v: Any) -> Answer:
    frames = [event("messageStart", {"role": "assistant"})]
    frames += [
        event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": t}}) for t in REPLY
    ]
    frames.append(event("contentBlockStop", {"contentBlockIndex": 0}))
    frames.append(event("messageStop", {"stopReason": "end_turn"}))
    frames.append(event("metadata", {"usage": _converse_usage(v), "metrics": {"latencyMs": 40}}))
    raw = b"".join(frames)
    return Answer("bedrock", "ConverseStream", CLAUDE_ON_BEDROCK, CONVERSE_BODY, STREAM, raw)


def bedrock_invoke(v: Any) -> Answer:
    raw = json.dumps(_anthropic_message(v)).encode()
    return Answer("bedrock", "InvokeModel", CLAUDE_ON_BEDROCK, INVOKE_BODY, WHOLE, raw)


def bedrock_invoke_stream(v: Any) -> Answer:
    events = _anthropic_events(v)
    metrics: dict[str, Any] = {"invocationLatency": 40, "firstByteLatency": 10}
    _put(metrics, "inputTokenCount", v)
    _put(metrics, "outputTokenCount", v)
    events[-1] = {**events[-1], "amazon-bedrock-invocationMetrics": metrics}
    frames = [
        event("chunk", {"bytes": base64.b64encode(json.dumps(e).encode()).decode()}) for e in events
    ]
    raw = b"".join(frames)
    operation = "InvokeModelWithResponseStream"
    return Answer("bedrock", operation, CLAUDE_ON_BEDROCK, INVOKE_BODY, STREAM, raw)


SHAPES: dict[str, Callable[[Any], Answer]] = {
    "openai chat completion": openai_chat,
    "openai stream": openai_stream,
    "anthropic message": anthropic_message,
    "anthropic stream": anthropic_stream,
    "bedrock converse": bedrock_converse,
    "bedrock converse stream": bedrock_converse_stream,
    "bedrock invoke (claude)": bedrock_invoke,
    "bedrock invoke stream (claude)": bedrock_invoke_stream,
}


@pytest.fixture(scope="module")
def by_wire() -> dict[str, Reader]:
    return readers(Settings())


def facts_of(answer: Answer) -> CallFacts:
    """The facts the serving process hands over for this answer."""
    return CallFacts(
        wire=answer.wire,
        operation=answer.operation,
        started=datetime(2026, 12, 1, tzinfo=UTC),
        request_id="req-1",
        latency_ms=50,
        model_id=answer.model,
        workspace="default",
        input_body=answer.body,
        answer=answer.answer,
        raw=answer.raw,
    )


def read(by_wire: dict[str, Reader], answer: Answer) -> Outcome:
    """What the record path reads from the answer: the wire format's reader, given the facts."""
    reader = by_wire[answer.wire]
    if answer.answer == STREAM:
        return reader.stream_outcome(facts_of(answer))
    return reader.outcome(facts_of(answer), orjson.loads(answer.raw))


def counts(o: Outcome) -> tuple[int | None, int | None, int | None, bool]:
    return o.input_tokens, o.output_tokens, o.cache_read_tokens, o.estimated


@pytest.mark.parametrize(("value", "believed"), VALUES, ids=[repr(v) for v, _ in VALUES])
def test_every_format_reads_a_count_by_the_same_rule(
    by_wire: dict[str, Reader], value: Any, believed: int | None
) -> None:
    seen = {}
    for name, shape in SHAPES.items():
        offline = read(by_wire, shape(MISSING))  # the same answer without any count
        assert offline.estimated and offline.cache_read_tokens is None, name
        assert offline.input_tokens is not None and offline.input_tokens > 0, name
        assert offline.output_tokens == count_tokens("".join(REPLY)), name
        if believed is None:
            expected = (offline.input_tokens, offline.output_tokens, None, True)
        else:
            expected = (believed, believed, believed, False)
        seen[name] = counts(read(by_wire, shape(value)))
        assert seen[name] == expected, name
    # and so every format agrees on what was believed and on the flag
    assert len({(o[2], o[3]) for o in seen.values()}) == 1, seen


@pytest.mark.parametrize("shape", list(SHAPES.values()), ids=list(SHAPES))
def test_each_shape_is_an_answer_its_reader_understands(
    by_wire: dict[str, Reader], shape: Callable[[Any], Answer]
) -> None:
    outcome = read(by_wire, shape(12))
    assert outcome.stop_reason in ("stop", "end_turn")
    assert outcome.error is None and outcome.output_body


@pytest.mark.parametrize(("value", "believed"), VALUES, ids=[repr(v) for v, _ in VALUES])
def test_openai_embeddings_read_by_the_same_rule(
    by_wire: dict[str, Reader], value: Any, believed: int | None
) -> None:
    inputs = ["one short text", "and a second, longer one to embed"]
    answer: dict[str, Any] = {
        "object": "list",
        "model": "text-embedding-3-small",
        "data": [
            {"object": "embedding", "index": i, "embedding": [0.25, -0.5, 0.125]}
            for i in range(len(inputs))
        ],
        "usage": {"prompt_tokens": value, "total_tokens": value},
    }
    body = {"model": "text-embedding-3-small", "input": inputs}
    raw = json.dumps(answer).encode()
    o = read(by_wire, Answer("openai", "Embeddings", body["model"], body, WHOLE, raw))
    offline = sum(count_tokens(t, "text-embedding-3-small") for t in inputs)
    expected = believed if believed is not None else offline
    assert (o.input_tokens, o.output_tokens, o.estimated) == (expected, 0, believed is None)
    assert o.output_body["data"] == [  # the vectors are not kept, their places are
        {"object": "embedding", "index": 0},
        {"object": "embedding", "index": 1},
    ]
    assert o.output_body["usage"] == answer["usage"]


@pytest.mark.parametrize(
    "shape",
    [s for name, s in SHAPES.items() if not name.startswith("bedrock") or "stream" not in name],
    ids=[name for name in SHAPES if not name.startswith("bedrock") or "stream" not in name],
)
def test_a_long_stop_reason_is_cut_to_what_a_record_holds(
    by_wire: dict[str, Reader], shape: Callable[[Any], Answer]
) -> None:
    answer = shape(12)
    long = b'"' + b"r" * 300 + b'"'
    long_reason = replace(
        answer, raw=answer.raw.replace(b'"stop"', long).replace(b'"end_turn"', long)
    )
    assert long_reason.raw != answer.raw
    record = record_of(facts_of(long_reason), Settings(), by_wire[answer.wire])
    assert record.data["stopReason"] == "r" * STRING_LIMITS[("stopReason",)]
    check_types(record.data)  # storable: a longer stop reason would be refused here


def test_openai_ids_and_stop_reasons_are_labels_like_the_others(
    by_wire: dict[str, Reader],
) -> None:
    answer = orjson.loads(openai_chat(12).raw)
    assert read(by_wire, openai_chat(12)).response_id == "chatcmpl-1"
    for odd in (7, 1.5, True, ["x"], {"a": 1}, ""):
        answer["id"], answer["choices"][0]["finish_reason"] = odd, odd
        o = read(by_wire, replace(openai_chat(12), raw=orjson.dumps(answer)))
        assert (o.response_id, o.stop_reason) == (None, None), odd
        assert (o.input_tokens, o.output_tokens, o.estimated) == (12, 12, False)
    answer["id"] = "x" * 300
    long_id = read(by_wire, replace(openai_chat(12), raw=orjson.dumps(answer))).response_id
    assert long_id == "x" * 256  # what a record's responseId holds


@pytest.mark.parametrize(
    ("value", "count"),
    [
        (0, 0),
        (INT_MAX, INT_MAX),
        (INT_MAX + 1, None),
        (str(INT_MAX), INT_MAX),
        (str(INT_MAX + 1), None),
        (1e3, 1000),
        (" 12 ", 12),
        ("0012", 12),
        ("+12", None),
        ("1_000", None),
        ("１２", None),  # fullwidth digits are digits to str.isdigit, not to JSON
        ("", None),
        (float("inf"), None),
        (float("nan"), None),
        (-0.0, 0),
        ([12], None),
        ({"n": 12}, None),
        (False, None),
    ],
)
def test_the_rule_for_a_count(value: Any, count: int | None) -> None:
    assert token_count(value) == count
