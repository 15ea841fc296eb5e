"""Wire formats for the streaming benchmark: one small adapter per API, shared by the upstream
(what to send on each clock tick), the load generator (what to request, how to count events
in the bytes it receives) and the orchestrator (how to route the gateway, what the stored
record must say).

Why adapters: the benchmark's clock, measurements and tables do not depend on the wire format;
only these few pure functions do, so each API is one class here, not a second benchmark.

A stream of ``n`` chunks is ``n`` clock frames: frame ``i`` is sent at ``start + i / rate``
and carries one text delta. Frame 0 also carries the events that open the stream (Anthropic:
``message_start``, ``content_block_start``; Bedrock: ``messageStart``) before its delta, and the
last frame the events that close it (OpenAI: the finish chunk, the usage chunk, ``[DONE]``), so
a stream lasts ``(n - 1) / rate`` seconds. Everything is deterministic in the stream's index,
so the bytes of stream ``k`` are the same direct and through the gateway.
"""

from __future__ import annotations

import struct
from binascii import crc32
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

MODEL = "bench-stream"
CREATED = 1767225600  # a fixed `created`: the same bytes in every phase
PROMPT_TOKENS = 24


@dataclass(frozen=True)
class StreamRequest:
    """What the load generator sends for one stream."""

    path: str  # relative to the target's base URL
    body: bytes
    headers: dict[str, str]


class EventCounter(Protocol):
    """Client side: counts the complete events in a byte stream fed in arbitrary pieces."""

    def feed(self, data: bytes) -> int:
        """Feed the next piece of the body; returns how many events it completed."""
        ...


class StreamFormat(Protocol):
    """One wire format: what each side of the benchmark needs to know about it."""

    name: str
    path: str  # the route's path, relative to the base URL of the gateway or upstream
    content_type: str  # of the upstream's streamed answer
    lead_events: int  # events in frame 0 before its text delta

    def request(self, index: int, chunks: int) -> StreamRequest:
        """The request for stream ``index`` asking for ``chunks`` clock frames."""
        ...

    def parse_request(self, body: bytes) -> tuple[int, int]:
        """Upstream side: ``(index, chunks)`` of a request body (ValueError when malformed)."""
        ...

    def frame(self, index: int, chunks: int, i: int) -> bytes:
        """Upstream side: clock frame ``i`` of ``chunks`` of stream ``index``, as wire bytes.
        Built when it is sent, so every phase pays the same small cost per frame."""
        ...

    def events(self, chunks: int) -> int:
        """How many events a complete stream of ``chunks`` frames holds."""
        ...

    def counter(self) -> EventCounter:
        """A fresh client-side event counter."""
        ...

    def record_text(self, record: dict[str, Any]) -> str | None:
        """The text a stored record's assembled output holds (None if it has none)."""
        ...

    def provider_toml(self, upstream: str) -> str:
        """The gateway's ``[providers.up]`` table for an upstream at base URL ``upstream``."""
        ...

    def gateway_env(self) -> dict[str, str]:
        """Environment the gateway needs for this provider (e.g. AWS credentials to sign)."""
        ...


def token(i: int) -> str:
    """The text of clock frame ``i``: a short word, like one model token."""
    return f" w{i}"


def expected_text(chunks: int) -> str:
    """The text any stream of ``chunks`` frames adds up to."""
    return "".join(token(i) for i in range(chunks))


def _dig(doc: Any, *path: str | int) -> Any:
    for key in path:
        try:
            doc = doc[key]
        except (KeyError, IndexError, TypeError):
            return None
    return doc


def _user_index(user: Any) -> int:
    if not isinstance(user, str) or not user.startswith("stream-"):
        raise ValueError("the stream's user id must be stream-<index>")
    return int(user.removeprefix("stream-"))


def _chunks(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError("the token limit (the number of chunks) must be a positive integer")
    return value


class SSEEventCounter:
    """Counts server-sent events by their blank-line terminator (``\\n\\n``), also when the
    terminator is split across two pieces. The benchmark's events never start with a newline,
    so the one byte carried over cannot double-count."""

    def __init__(self) -> None:
        self._last = b""

    def feed(self, data: bytes) -> int:
        if not data:
            return 0
        count = (self._last + data).count(b"\n\n")
        self._last = data[-1:]
        return count


class EventStreamCounter:
    """Counts AWS event-stream messages by the total length each one's prelude announces."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> int:
        buffer, count = self._buffer + data, 0
        while len(buffer) >= 4:
            total = int.from_bytes(buffer[:4], "big")
            if total < 16 or len(buffer) < total:
                break
            buffer, count = buffer[total:], count + 1
        self._buffer = buffer
        return count


def event_stream_message(event_type: str, payload: dict[str, Any]) -> bytes:
    """One AWS event-stream message: string headers ``:event-type``, ``:content-type``,
    ``:message-type``, a JSON payload, both CRC32s (big-endian throughout)."""
    headers = b""
    for name, value in (
        (":event-type", event_type),
        (":content-type", "application/json"),
        (":message-type", "event"),
    ):
        raw = value.encode()
        headers += bytes([len(name)]) + name.encode() + b"\x07" + struct.pack(">H", len(raw)) + raw
    body = orjson.dumps(payload)
    prelude = struct.pack(">II", 16 + len(headers) + len(body), len(headers))
    message = prelude + struct.pack(">I", crc32(prelude)) + headers + body
    return message + struct.pack(">I", crc32(message))


class OpenAIChat:
    """``POST /v1/chat/completions`` with ``"stream": true`` and usage in the last chunk."""

    name = "openai"
    path = "/v1/chat/completions"
    content_type = "text/event-stream"
    lead_events = 0

    def request(self, index: int, chunks: int) -> StreamRequest:
        body = {
            "model": MODEL,
            "messages": [
                {"role": "system", "content": "You are a benchmark. Count slowly."},
                {"role": "user", "content": f"Stream {chunks} words, please (stream {index})."},
            ],
            "max_tokens": chunks,
            "stream": True,
            "stream_options": {"include_usage": True},
            "user": f"stream-{index:06d}",
        }
        headers = {
            "content-type": "application/json",
            "authorization": "Bearer sk-bench-not-a-real-key",
        }
        return StreamRequest(self.path, orjson.dumps(body), headers)

    def parse_request(self, body: bytes) -> tuple[int, int]:
        doc = orjson.loads(body)
        if not isinstance(doc, dict) or doc.get("stream") is not True:
            raise ValueError("expected a chat request with stream: true")
        return _user_index(doc.get("user")), _chunks(doc.get("max_tokens"))

    def frame(self, index: int, chunks: int, i: int) -> bytes:
        head = {
            "id": f"chatcmpl-bench{index:06d}",
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": MODEL,
        }

        def event(choices: list[dict[str, Any]], **more: Any) -> bytes:
            return b"data: " + orjson.dumps({**head, "choices": choices, **more}) + b"\n\n"

        def delta(content: dict[str, str], finish: str | None = None) -> dict[str, Any]:
            return {"index": 0, "delta": content, "logprobs": None, "finish_reason": finish}

        content = {"role": "assistant", "content": token(0)} if i == 0 else {"content": token(i)}
        out = event([delta(content)], usage=None)
        if i == chunks - 1:
            usage = {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": chunks}
            usage["total_tokens"] = PROMPT_TOKENS + chunks
            out += event([delta({}, "stop")], usage=None)
            out += event([], usage=usage) + b"data: [DONE]\n\n"
        return out

    def events(self, chunks: int) -> int:
        return chunks + 3  # the chunks, the finish chunk, the usage chunk, [DONE]

    def counter(self) -> EventCounter:
        return SSEEventCounter()

    def record_text(self, record: dict[str, Any]) -> str | None:
        text = _dig(record, "output", "outputBodyJson", "choices", 0, "message", "content")
        return text if isinstance(text, str) else None

    def provider_toml(self, upstream: str) -> str:
        return f'[providers.up]\ntype = "openai"\nbase_url = "{upstream}/v1"\n'

    def gateway_env(self) -> dict[str, str]:
        return {}


class AnthropicMessages:
    """``POST /v1/messages`` with ``"stream": true``: Anthropic's SSE event sequence."""

    name = "anthropic"
    path = "/v1/messages"
    content_type = "text/event-stream"
    lead_events = 2  # message_start, content_block_start

    def request(self, index: int, chunks: int) -> StreamRequest:
        body = {
            "model": MODEL,
            "max_tokens": chunks,
            "system": "You are a benchmark. Count slowly.",
            "messages": [
                {"role": "user", "content": f"Stream {chunks} words, please (stream {index})."}
            ],
            "stream": True,
            "metadata": {"user_id": f"stream-{index:06d}"},
        }
        headers = {
            "content-type": "application/json",
            "x-api-key": "sk-ant-bench-not-a-real-key",
            "anthropic-version": "2023-06-01",
        }
        return StreamRequest(self.path, orjson.dumps(body), headers)

    def parse_request(self, body: bytes) -> tuple[int, int]:
        doc = orjson.loads(body)
        if not isinstance(doc, dict) or doc.get("stream") is not True:
            raise ValueError("expected a Messages request with stream: true")
        return _user_index(_dig(doc, "metadata", "user_id")), _chunks(doc.get("max_tokens"))

    def frame(self, index: int, chunks: int, i: int) -> bytes:
        def event(kind: str, **data: Any) -> bytes:
            return (
                f"event: {kind}\ndata: ".encode() + orjson.dumps({"type": kind, **data}) + b"\n\n"
            )

        out = b""
        if i == 0:
            message: dict[str, Any] = {
                "id": f"msg_bench{index:06d}",
                "type": "message",
                "role": "assistant",
                "model": MODEL,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": PROMPT_TOKENS, "output_tokens": 1},
            }
            out += event("message_start", message=message)
            out += event("content_block_start", index=0, content_block={"type": "text", "text": ""})
        text = {"type": "text_delta", "text": token(i)}
        out += event("content_block_delta", index=0, delta=text)
        if i == chunks - 1:
            out += event("content_block_stop", index=0)
            stop = {"stop_reason": "end_turn", "stop_sequence": None}
            out += event("message_delta", delta=stop, usage={"output_tokens": chunks})
            out += event("message_stop")
        return out

    def events(self, chunks: int) -> int:
        return chunks + 5  # the deltas and five framing events

    def counter(self) -> EventCounter:
        return SSEEventCounter()

    def record_text(self, record: dict[str, Any]) -> str | None:
        text = _dig(record, "output", "outputBodyJson", "content", 0, "text")
        return text if isinstance(text, str) else None

    def provider_toml(self, upstream: str) -> str:
        return f'[providers.up]\ntype = "anthropic"\nbase_url = "{upstream}"\n'

    def gateway_env(self) -> dict[str, str]:
        return {}


class BedrockConverseStream:
    """``POST /model/{modelId}/converse-stream``: AWS event-stream frames."""

    name = "bedrock"
    path = f"/model/{MODEL}/converse-stream"
    content_type = "application/vnd.amazon.eventstream"
    lead_events = 1  # messageStart

    def request(self, index: int, chunks: int) -> StreamRequest:
        text = f"Stream {chunks} words, please (stream {index})."
        body = {
            "system": [{"text": "You are a benchmark. Count slowly."}],
            "messages": [{"role": "user", "content": [{"text": text}]}],
            "inferenceConfig": {"maxTokens": chunks},
            "requestMetadata": {"user_id": f"stream-{index:06d}"},
        }
        headers = {"content-type": "application/json", "accept": self.content_type}
        return StreamRequest(self.path, orjson.dumps(body), headers)

    def parse_request(self, body: bytes) -> tuple[int, int]:
        doc = orjson.loads(body)
        if not isinstance(doc, dict):
            raise ValueError("expected a Converse request")
        index = _user_index(_dig(doc, "requestMetadata", "user_id"))
        return index, _chunks(_dig(doc, "inferenceConfig", "maxTokens"))

    def frame(self, index: int, chunks: int, i: int) -> bytes:
        out = b""
        if i == 0:
            out += event_stream_message("messageStart", {"role": "assistant"})
        delta = {"contentBlockIndex": 0, "delta": {"text": token(i)}}
        out += event_stream_message("contentBlockDelta", delta)
        if i == chunks - 1:
            usage = {"inputTokens": PROMPT_TOKENS, "outputTokens": chunks}
            usage["totalTokens"] = PROMPT_TOKENS + chunks
            out += event_stream_message("contentBlockStop", {"contentBlockIndex": 0})
            out += event_stream_message("messageStop", {"stopReason": "end_turn"})
            metrics = {"latencyMs": chunks * 50}  # nominal, so that every phase's bytes agree
            out += event_stream_message("metadata", {"usage": usage, "metrics": metrics})
        return out

    def events(self, chunks: int) -> int:
        return chunks + 4  # the deltas, messageStart, contentBlockStop, messageStop, metadata

    def counter(self) -> EventCounter:
        return EventStreamCounter()

    def record_text(self, record: dict[str, Any]) -> str | None:
        text = _dig(record, "output", "outputBodyJson", "output", "message", "content", 0, "text")
        return text if isinstance(text, str) else None

    def provider_toml(self, upstream: str) -> str:
        return f'[providers.up]\ntype = "bedrock"\nbase_url = "{upstream}"\nregion = "us-east-1"\n'

    def gateway_env(self) -> dict[str, str]:
        # the gateway re-signs every forward; the benchmark's upstream does not check signatures
        return {
            "AWS_ACCESS_KEY_ID": "AKIABENCHNOTFORAWS00",
            "AWS_SECRET_ACCESS_KEY": "bench-secret-not-for-aws",
            "AWS_EC2_METADATA_DISABLED": "true",
        }


FORMATS: dict[str, StreamFormat] = {
    f.name: f for f in (OpenAIChat(), AnthropicMessages(), BedrockConverseStream())
}


def stream_format(name: str) -> StreamFormat:
    """The adapter for ``name`` (ValueError for an unknown one)."""
    if name not in FORMATS:
        raise ValueError(f"unknown stream format {name!r}; known: {', '.join(FORMATS)}")
    return FORMATS[name]
