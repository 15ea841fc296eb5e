"""The AWS event-stream encoder and decoder, checked against botocore (the parser boto3 runs),
the official smithy test vectors, and boto3 reading a stream served by the fake Bedrock."""

from __future__ import annotations

import base64
import itertools
import json
import struct
import uuid
from binascii import crc32
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.eventstream import ChecksumMismatch, EventStreamBuffer
from botocore.exceptions import EventStreamError
from hypothesis import given, settings
from hypothesis import strategies as st

from llmtrail.capture.gateway.bedrock import eventstream
from llmtrail.capture.gateway.bedrock.eventstream import (
    Byte,
    EventStreamDecoder,
    Long,
    MalformedEventStream,
    Short,
    decode_all,
    encode_message,
)
from llmtrail.testing.bedrock_upstream import BedrockUpstream

# Official vectors: smithy-lang/smithy-typescript packages/eventstream-codec/test_vectors.
VECTORS = {
    "empty_message": "AAAAEAAAAAAFwkjrfZjI/w==",
    "int32_header": "AAAALQAAABBBxCS4CmV2ZW50LXR5cGUEAACgDHsnZm9vJzonYmFyJ3029ICg",
    "payload_no_headers": "AAAAHQAAAAD9Uoxaeydmb28nOidiYXInfcNlOTY=",
    "payload_one_str_header": (
        "AAAAPQAAACAH/YOWDGNvbnRlbnQtdHlwZQcAEGFwcGxpY2F0aW9uL2pzb257J2Zvbyc6J2Jhcid9jZwIsQ=="
    ),
    "all_headers": (
        "AAAAzAAAAK8PrmTKCmV2ZW50LXR5cGUEAACgDAxjb250ZW50LXR5cGUHABBhcHBsaWNhdGlvbi9qc29uCmJvb2wg"
        "ZmFsc2UBCWJvb2wgdHJ1ZQAEYnl0ZQLPCGJ5dGUgYnVmBgAUSSdtIGEgbGl0dGxlIHRlYXBvdCEJdGltZXN0YW1w"
        "CAAAAAAAhF/tBWludDE2AwAqBWludDY0BQAAAAACh1eyBHV1aWQJAQIDBAUGBwgJCgsMDQ4PEHsnZm9vJzonYmFy"
        "J32rpfEM"
    ),
}
CORRUPTED = {
    "corrupted_header_len": (
        "AAAAPQAAACEH/YOWDGNvbnRlbnQtdHlwZQcAEGFwcGxpY2F0aW9uL2pzb257J2Zvbyc6J2Jhcid9jZwIsQ=="
    ),
    "corrupted_headers": (
        "AAAAPQAAACAH/YOWDGNvbnRlbnQtdHlwZQcAEGFwcGxpY2F0aW9uL2pzb257YWZvbyc6J2Jhcid9jZwIsQ=="
    ),
    "corrupted_length": (
        "AAAAPgAAACAH/YOWDGNvbnRlbnQtdHlwZQcAEGFwcGxpY2F0aW9uL2pzb257J2Zvbyc6J2Jhcid9jZwIsQ=="
    ),
    "corrupted_payload": "AAAAHQAAAAD9UoxaWydmb28nOidiYXInfcNlOTY=",
}
FOO = b"{'foo':'bar'}"
ALL_HEADERS: dict[str, eventstream.HeaderValue] = {
    "event-type": 40972,
    "content-type": "application/json",
    "bool false": False,
    "bool true": True,
    "byte": Byte(-49),
    "byte buf": b"I'm a little teapot!",
    "timestamp": datetime.fromtimestamp(8675.309, tz=UTC),
    "int16": Short(42),
    "int64": Long(42424242),
    "uuid": uuid.UUID(bytes=bytes(range(1, 17))),
}


def botocore_decode(data: bytes) -> list[tuple[dict[str, Any], bytes]]:
    buffer = EventStreamBuffer()
    buffer.add_data(data)
    return [(m.headers, m.payload) for m in buffer]


@pytest.mark.parametrize(
    ("name", "headers", "payload"),
    [
        ("empty_message", {}, b""),
        ("int32_header", {"event-type": 40972}, FOO),
        ("payload_no_headers", {}, FOO),
        ("payload_one_str_header", {"content-type": "application/json"}, FOO),
        ("all_headers", ALL_HEADERS, FOO),
    ],
)
def test_encoder_reproduces_the_official_vectors(
    name: str, headers: dict[str, eventstream.HeaderValue], payload: bytes
) -> None:
    assert base64.b64encode(encode_message(headers, payload)).decode() == VECTORS[name]


def test_all_header_types_decode_in_botocore() -> None:
    [(headers, payload)] = botocore_decode(encode_message(ALL_HEADERS, FOO))
    assert payload == FOO
    assert headers == {
        "event-type": 40972,
        "content-type": "application/json",
        "bool false": False,
        "bool true": True,
        "byte": -49,
        "byte buf": b"I'm a little teapot!",
        "timestamp": 8675309,
        "int16": 42,
        "int64": 42424242,
        "uuid": bytes(range(1, 17)),
    }


def test_int_width_follows_the_value() -> None:
    raw = eventstream.encode_headers({"a": 7, "b": -(2**40), "c": Long(7)})
    assert raw == (
        b"\x01a\x04" + struct.pack("!i", 7)
        + b"\x01b\x05" + struct.pack("!q", -(2**40))
        + b"\x01c\x05" + struct.pack("!q", 7)
    )  # fmt: skip


@pytest.mark.parametrize("name", sorted(CORRUPTED))
def test_corrupted_vectors_are_refused(name: str) -> None:
    data = base64.b64decode(CORRUPTED[name])
    with pytest.raises(MalformedEventStream):
        decode_all(data)
    with pytest.raises(ChecksumMismatch):
        botocore_decode(data)


def test_event_frame_as_bedrock_sends_it() -> None:
    frame = eventstream.event(
        "contentBlockDelta", {"delta": {"text": "hé"}, "contentBlockIndex": 0}
    )
    [(headers, payload)] = botocore_decode(frame)
    assert headers == {
        ":event-type": "contentBlockDelta",
        ":content-type": "application/json",
        ":message-type": "event",
    }
    assert json.loads(payload) == {"delta": {"text": "hé"}, "contentBlockIndex": 0}
    [message] = decode_all(frame)
    assert (message.message_type, message.event_type, message.exception_type) == (
        "event",
        "contentBlockDelta",
        None,
    )
    assert message.size == len(frame)
    assert message.json() == json.loads(payload)


def test_exception_frame() -> None:
    [message] = decode_all(eventstream.exception("throttlingException", "slow down"))
    assert dict(message.headers) == {
        ":exception-type": "throttlingException",
        ":content-type": "application/json",
        ":message-type": "exception",
    }
    assert message.message_type == "exception"
    assert message.exception_type == "throttlingException"
    assert message.json() == {"message": "slow down"}


def test_json_of_a_non_json_payload_is_malformed() -> None:
    [message] = decode_all(encode_message({":message-type": "event"}, b"\xff not json"))
    with pytest.raises(MalformedEventStream):
        message.json()


@pytest.mark.parametrize(
    ("headers", "error"),
    [
        ({"": "x"}, ValueError),
        ({"n" * 256: "x"}, ValueError),
        ({"v": "x" * 32768}, ValueError),
        ({"v": b"x" * 32768}, ValueError),
        ({"v": 2**63}, ValueError),
        ({"v": Byte(128)}, ValueError),
        ({"v": Short(-(2**15) - 1)}, ValueError),
        ({"v": datetime(2026, 1, 1)}, ValueError),  # naive on purpose
        ({"v": 1.5}, TypeError),
    ],
)
def test_encoder_refuses_what_the_format_cannot_carry(
    headers: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        encode_message(headers)


def test_limits_at_the_edge_are_accepted() -> None:
    frame = encode_message({"n" * 255: "x" * 32767})
    [(headers, _)] = botocore_decode(frame)
    assert headers == {"n" * 255: "x" * 32767}


def test_oversized_payload_is_refused() -> None:
    with pytest.raises(ValueError, match="payload"):
        encode_message({}, b"x" * (24 * 1024 * 1024 + 1))


def test_truncated_stream_is_detected_on_close() -> None:
    frames = eventstream.event("a", {"n": 1}) + eventstream.event("b", {"n": 2})
    decoder = EventStreamDecoder()
    assert [m.event_type for m in decoder.feed(frames[:-3])] == ["a"]
    assert decoder.pending == len(eventstream.event("b", {"n": 2})) - 3
    with pytest.raises(MalformedEventStream, match="inside a frame"):
        decoder.close()
    assert [m.event_type for m in decoder.feed(frames[-3:])] == ["b"]
    decoder.close()
    assert decoder.pending == 0


def test_decoder_stays_failed_after_corruption() -> None:
    frame = bytearray(eventstream.event("a", {"n": 1}))
    frame[20] ^= 0x01
    decoder = EventStreamDecoder()
    with pytest.raises(MalformedEventStream):
        decoder.feed(bytes(frame))
    with pytest.raises(MalformedEventStream):
        decoder.feed(eventstream.event("b", {}))
    with pytest.raises(MalformedEventStream):
        decoder.close()


def test_impossible_lengths_with_valid_crc_are_refused() -> None:
    prelude = struct.pack("!II", 16, 100)  # a 16-byte frame cannot hold 100 bytes of headers
    head = prelude + struct.pack("!I", crc32(prelude))
    with pytest.raises(MalformedEventStream, match="shorter than its headers"):
        EventStreamDecoder().feed(head + struct.pack("!I", crc32(head)))


@given(index=st.integers(min_value=0), flip=st.integers(min_value=1, max_value=255))
def test_any_single_corrupted_byte_is_detected(index: int, flip: int) -> None:
    frame = bytearray(eventstream.event("messageStop", {"stopReason": "end_turn"}))
    frame[index % len(frame)] ^= flip
    with pytest.raises(MalformedEventStream):
        decode_all(bytes(frame))


header_values = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.binary(max_size=40),
    st.text(max_size=40),
    st.uuids(),
)
frames = st.lists(
    st.tuples(
        st.dictionaries(st.text(min_size=1, max_size=20), header_values, max_size=5),
        st.binary(max_size=300),
    ),
    min_size=1,
    max_size=6,
)


def _expected(value: Any) -> Any:
    return value.bytes if isinstance(value, uuid.UUID) else value


@settings(max_examples=150, deadline=None)
@given(frames=frames, cuts=st.lists(st.integers(min_value=0), max_size=12))
def test_frames_split_at_arbitrary_boundaries(
    frames: list[tuple[dict[str, Any], bytes]], cuts: list[int]
) -> None:
    data = b"".join(encode_message(h, p) for h, p in frames)
    points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    decoder, botocore_buffer = EventStreamDecoder(), EventStreamBuffer()
    ours: list[tuple[dict[str, Any], bytes]] = []
    theirs: list[tuple[dict[str, Any], bytes]] = []
    for start, end in itertools.pairwise(points):
        ours += [(dict(m.headers), m.payload) for m in decoder.feed(data[start:end])]
        botocore_buffer.add_data(data[start:end])
        theirs += [(m.headers, m.payload) for m in botocore_buffer]
    decoder.close()
    expected = [({k: _expected(v) for k, v in h.items()}, p) for h, p in frames]
    assert ours == expected
    assert theirs == expected


# boto3 reading frames this encoder wrote, served by the fake Bedrock over HTTP


@pytest.fixture(scope="module")
def bedrock() -> Iterator[Any]:
    with BedrockUpstream(response_bytes=120) as upstream:
        client = boto3.client(
            "bedrock-runtime",
            endpoint_url=upstream.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id=upstream.access_key_id,
            aws_secret_access_key=upstream.secret_access_key,
            config=Config(retries={"total_max_attempts": 1}),
        )
        with closing(client):
            yield client


def test_boto3_parses_a_converse_stream(bedrock: Any) -> None:
    response = bedrock.converse_stream(
        modelId="amazon.nova-lite-v1:0",
        messages=[{"role": "user", "content": [{"text": "hello"}]}],
    )
    events = list(response["stream"])
    assert [next(iter(e)) for e in events[:2]] == ["messageStart", "contentBlockDelta"]
    assert [next(iter(e)) for e in events[-3:]] == ["contentBlockStop", "messageStop", "metadata"]
    text = "".join(
        e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e
    )
    assert text == ("echo: hello " * 10)[:120]
    assert all("p" not in next(iter(e.values())) for e in events)  # padding: not in the shape
    usage = events[-1]["metadata"]["usage"]
    assert usage["outputTokens"] == 120 // 4 + 1


def test_boto3_parses_invoke_model_chunks(bedrock: Any) -> None:
    body = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 500}
    body["messages"] = [{"role": "user", "content": "hi"}]
    response = bedrock.invoke_model_with_response_stream(
        modelId="anthropic.claude-3-haiku-20240307-v1:0", body=json.dumps(body)
    )
    chunks = [json.loads(e["chunk"]["bytes"]) for e in response["body"]]
    assert [c["type"] for c in chunks[:2]] == ["message_start", "content_block_start"]
    assert chunks[-1]["type"] == "message_stop"
    assert chunks[-1]["amazon-bedrock-invocationMetrics"]["outputTokenCount"] == 120 // 4 + 1


def test_boto3_raises_on_an_exception_frame(bedrock: Any) -> None:
    response = bedrock.converse_stream(
        modelId="streamfail-429", messages=[{"role": "user", "content": [{"text": "hello"}]}]
    )
    seen: list[dict[str, Any]] = []
    with closing(response["stream"]), pytest.raises(EventStreamError) as info:
        for item in response["stream"]:
            seen.append(item)
    assert info.value.response["Error"]["Code"] == "throttlingException"
    assert "Too many requests" in info.value.response["Error"]["Message"]
    assert [next(iter(e)) for e in seen] == ["messageStart", "contentBlockDelta"]
