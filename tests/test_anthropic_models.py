"""Anthropic Messages payloads: usage of a response, and the message a stream assembles to.

Streams are real SSE byte streams (Anthropic's documented event sequences, in
``tests/fixtures/anthropic``) split into events by the gateway's own `SSEDecoder`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from llmtrail.capture.gateway.anthropic.models import (
    MessagesStreamAssembler,
    message_text,
    messages_usage,
)
from llmtrail.capture.gateway.sse import SSEDecoder
from llmtrail.capture.gateway.usage import Usage

FIXTURES = Path(__file__).parent / "fixtures" / "anthropic"

# JSON as the gateway parses it (orjson): integers fit in 64 bits
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


def mutated(data: st.DataObject, items: list[Any], times: int = 3) -> list[Any]:
    """``items`` (real payloads) with a few values, at any depth, replaced by arbitrary JSON."""
    out = orjson.loads(orjson.dumps(items))
    for _ in range(times):
        holder: Any = out
        key: Any = data.draw(st.integers(0, len(out) - 1))
        while isinstance(holder[key], dict | list) and holder[key] and data.draw(st.booleans()):
            holder = holder[key]
            keys = list(holder) if isinstance(holder, dict) else list(range(len(holder)))
            key = data.draw(st.sampled_from(keys))
        holder[key] = data.draw(json_values)
    return out


def assemble_sse(raw: bytes) -> MessagesStreamAssembler:
    assembler = MessagesStreamAssembler()
    for payload in SSEDecoder().feed(raw):
        assembler.add_json(payload)
    return assembler


def events(text_pieces: list[str], tool_pieces: list[str] | None = None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        {
            "type": "message_start",
            "message": {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "model": "claude-x",
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": 10, "output_tokens": 1},
            },
        },
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    ]
    out += [
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}}
        for p in text_pieces
    ]
    out.append({"type": "content_block_stop", "index": 0})
    if tool_pieces is not None:
        block = {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {}}
        out.append({"type": "content_block_start", "index": 1, "content_block": block})
        out += [
            {
                "type": "content_block_delta",
                "index": 1,
                "delta": {"type": "input_json_delta", "partial_json": p},
            }
            for p in tool_pieces
        ]
        out.append({"type": "content_block_stop", "index": 1})
    out.append(
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": 7},
        }
    )
    out.append({"type": "message_stop"})
    return out


def test_messages_usage_reads_counts_cache_tokens_text_and_id() -> None:
    case = json.loads((FIXTURES / "message_cache.json").read_text())
    assert messages_usage(case["response"]) == Usage(**case["expected"])


def test_a_documented_text_stream_assembles_the_non_stream_message() -> None:
    assembler = assemble_sse((FIXTURES / "stream_text.sse").read_bytes())
    assert assembler.started and assembler.finished
    assert assembler.text == "Hello!"
    assert assembler.result() == {
        "id": "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY",
        "type": "message",
        "role": "assistant",
        "content": [{"type": "text", "text": "Hello!"}],
        "model": "claude-sonnet-4-5-20250929",
        "stop_reason": "end_turn",
        "stop_sequence": None,
        # message_delta's output_tokens overwrites message_start's 1; the cache counts it
        # leaves out keep their message_start values
        "usage": {
            "input_tokens": 25,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 1800,
            "output_tokens": 15,
        },
    }
    assert assembler.usage() == Usage(
        input_tokens=25,
        output_tokens=15,
        cache_read_tokens=1800,
        cache_write_tokens=0,
        stop_reason="end_turn",
        text="Hello!",
        response_id="msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY",
    )


def test_thinking_and_tool_use_stream_assembles_blocks_with_parsed_input() -> None:
    assembler = assemble_sse((FIXTURES / "stream_thinking_tool_use.sse").read_bytes())
    message = assembler.result()
    assert message["content"] == [
        {
            "type": "thinking",
            "thinking": "The user asks about weather; call the tool.",
            "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds",
        },
        {"type": "text", "text": "Okay, let's check the weather for San Francisco, CA:"},
        {
            "type": "tool_use",
            "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
            "name": "get_weather",
            "input": {"location": "San Francisco, CA", "unit": "fahrenheit"},
        },
    ]
    assert message["stop_reason"] == assembler.stop_reason == "tool_use"
    assert message["usage"] == {
        "input_tokens": 472,
        "output_tokens": 89,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }
    assert assembler.text == "Okay, let's check the weather for San Francisco, CA:"
    assert not assembler.tool_input_malformed
    # the assembled message reads exactly like a non-stream response
    assert messages_usage(message) == assembler.usage()


def test_a_stream_cut_inside_tool_json_keeps_the_raw_input_and_says_so() -> None:
    raw = (FIXTURES / "stream_thinking_tool_use.sse").read_bytes()
    cut = raw[: raw.index(b"renheit")]  # the stream ends inside the tool's JSON
    assembler = assemble_sse(cut)
    tool = assembler.result()["content"][2]
    assert tool["input"] == '{"location": "San Francisco, CA", "unit": "fah'
    assert assembler.tool_input_malformed
    usage = assembler.usage()
    assert (usage.input_tokens, usage.output_tokens, usage.stop_reason) == (472, 2, None)
    assert not assembler.finished


def test_a_tool_call_without_arguments_keeps_its_start_input() -> None:
    assembler = MessagesStreamAssembler()
    for event in events(["ok"], tool_pieces=[""]):
        assembler.add(event)
    assert assembler.result()["content"][1]["input"] == {}
    assert not assembler.tool_input_malformed


def test_tool_json_beyond_64_bit_numbers_still_gives_a_storable_message() -> None:
    assembler = MessagesStreamAssembler()
    for event in events(["ok"], tool_pieces=['{"n": ', str(2**70), "}"]):
        assembler.add(event)
    assert assembler.result()["content"][1]["input"] == {"n": float(2**70)}
    orjson.dumps(assembler.result())  # what the record stores must serialise


def test_error_and_ping_events_and_unknown_types_do_not_disturb_the_message() -> None:
    assembler = MessagesStreamAssembler()
    stream = events(["a", "b"])
    stream.insert(2, {"type": "ping"})
    stream.insert(3, {"type": "some_future_event", "index": 0, "delta": {"text": "zzz"}})
    stream.append({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    for event in stream:
        assembler.add(event)
    assert assembler.text == "ab"
    assert assembler.error == {"type": "overloaded_error", "message": "Overloaded"}


def test_odd_events_are_absorbed() -> None:
    assembler = MessagesStreamAssembler()
    odd: list[Any] = [
        None,
        [],
        "message_start",
        {"type": "message_start", "message": "not an object"},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "hi"}},
        {"type": "content_block_delta", "index": "0", "delta": {"type": "text_delta", "text": "X"}},
        {
            "type": "content_block_delta",
            "index": 10**9,
            "delta": {"type": "text_delta", "text": "Y"},
        },
        {
            "type": "content_block_delta",
            "index": True,
            "delta": {"type": "text_delta", "text": "Z"},
        },
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": 5}},
        {"type": "content_block_delta", "index": 0, "delta": "text"},
        {"type": "content_block_start", "index": 1, "content_block": None},
        {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta"}},
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "input_json_delta", "partial_json": "{"},
        },
        {
            "type": "message_delta",
            "delta": None,
            "usage": {"output_tokens": "lots", "input_tokens": -3},
        },
        {"type": "message_delta", "delta": {"stop_reason": 7}, "usage": [1, 2]},
        {"type": "error"},
    ]
    for event in odd:
        assembler.add(event)
    assembler.add_json(b"{not json")
    assembler.add_json(b"\xff\xfe")
    assert assembler.text == "hi"
    message = assembler.result()
    assert message["content"][0] == {"type": "text", "text": "hi"}
    assert assembler.error == {"type": "error"}
    usage = assembler.usage()
    assert (usage.input_tokens, usage.output_tokens, usage.stop_reason) == (None, None, None)
    assert usage.text == "hi"


def test_messages_usage_of_odd_responses_is_unknown_not_an_error() -> None:
    assert messages_usage("nope") == Usage()  # type: ignore[arg-type]
    assert messages_usage({}) == Usage()
    odd = {
        "id": 12,
        "content": "plain text",
        "stop_reason": ["end_turn"],
        "usage": {"input_tokens": True, "output_tokens": 2.5, "cache_read_input_tokens": 2**70},
    }
    assert messages_usage(odd) == Usage(text="plain text")
    assert messages_usage({"usage": {"input_tokens": "12", "output_tokens": 3.0}}) == Usage(
        input_tokens=12, output_tokens=3
    )
    assert (
        message_text([{"type": "tool_use"}, "x", {"text": "a"}, {"type": "text", "text": "b"}])
        == "ab"
    )


@settings(max_examples=150, deadline=None)
@given(st.lists(st.text(max_size=12), max_size=20))
def test_text_split_across_any_deltas_assembles_to_the_same_text(pieces: list[str]) -> None:
    assembler = MessagesStreamAssembler()
    for event in events(pieces):
        assembler.add(event)
    whole = "".join(pieces)
    assert assembler.text == whole
    assert assembler.result()["content"][0]["text"] == whole
    assert assembler.usage().text == whole


@settings(max_examples=100, deadline=None)
@given(
    st.dictionaries(
        st.text(max_size=6),
        st.integers(min_value=-(2**63), max_value=2**63 - 1) | st.text(max_size=6),
        max_size=5,
    ),
    st.lists(st.integers(min_value=0, max_value=40), max_size=6),
)
def test_tool_input_split_anywhere_parses_back(arguments: dict[str, Any], cuts: list[int]) -> None:
    raw = orjson.dumps(arguments).decode()
    points = sorted({min(c, len(raw)) for c in cuts})
    pieces = [raw[a:b] for a, b in zip([0, *points], [*points, len(raw)], strict=True)]
    assembler = MessagesStreamAssembler()
    for event in events(["x"], tool_pieces=pieces):
        assembler.add(event)
    assert assembler.result()["content"][1]["input"] == arguments
    assert not assembler.tool_input_malformed


def _sse_events(name: str) -> list[Any]:
    return [orjson.loads(p) for p in SSEDecoder().feed((FIXTURES / name).read_bytes())]


SSE_EVENTS = _sse_events("stream_thinking_tool_use.sse") + _sse_events("stream_text.sse")


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_mutated_real_streams_never_raise(data: st.DataObject) -> None:
    assembler = MessagesStreamAssembler()
    for event in mutated(data, SSE_EVENTS):
        assembler.add(event)
    orjson.dumps(assembler.result())
    assert isinstance(assembler.usage(), Usage)
    assert isinstance(assembler.text, str)
    assert isinstance(assembler.tool_input_malformed, bool)


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_mutated_real_responses_never_raise(data: st.DataObject) -> None:
    case = json.loads((FIXTURES / "message_cache.json").read_text())
    (response,) = mutated(data, [case["response"]])
    usage = messages_usage(response)
    assert usage.input_tokens is None or isinstance(usage.input_tokens, int)
    assert isinstance(usage.text, str)
