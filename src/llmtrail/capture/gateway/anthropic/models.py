"""Anthropic Messages payloads: what a response used, and the message a stream amounts to.

The same event vocabulary arrives two ways: as server-sent events from ``POST /v1/messages``
and as the decoded ``chunk`` JSON of Bedrock's InvokeModelWithResponseStream for Claude. One
assembler serves both. It follows the merge rules of Anthropic's own SDK
(``anthropic.lib.streaming._messages.accumulate_event``): ``message_start`` opens the message,
content blocks grow by index, and the usage counts on ``message_delta`` are cumulative totals
that overwrite, never add to, those of ``message_start`` (a count the delta leaves out keeps
its ``message_start`` value).

These are pure functions of the payloads. Upstream data can be odd (an event out of order, a
count that is a string, a tool call whose JSON was cut off); every such case is absorbed and
reported through ``None`` counts or ``tool_input_malformed``, never raised, because logging
must not break the call it logs.
"""

from __future__ import annotations

from typing import Any

import orjson

from llmtrail.capture.gateway.usage import (
    Usage,
    as_dict,
    as_list,
    block_index,
    label,
    token_count,
    tool_input,
)

STREAM_EVENT_TYPES = frozenset(
    {
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
        "ping",
        "error",
    }
)
# Content blocks whose ``input`` arrives as ``input_json_delta`` fragments.
_TOOL_BLOCKS = frozenset({"tool_use", "server_tool_use", "mcp_tool_use"})
_DELTA_BLOCK = {"text_delta": "text", "input_json_delta": "tool_use", "thinking_delta": "thinking"}


def message_text(content: Any) -> str:
    """The text of a message's content: its ``text`` blocks joined (a plain string as is)."""
    if isinstance(content, str):
        return content
    return "".join(
        block["text"]
        for block in as_list(content)
        if isinstance(block, dict)
        and block.get("type", "text") == "text"
        and isinstance(block.get("text"), str)
    )


def messages_usage(response: dict[str, Any]) -> Usage:
    """Tokens, stop reason, text and id of a Messages response (or an assembled stream).

    ``cache_creation_input_tokens`` is the cache write count, ``cache_read_input_tokens`` the
    cache read count; ``input_tokens`` excludes both, as Anthropic reports it.
    """
    if not isinstance(response, dict):
        return Usage()
    usage = as_dict(response.get("usage"))
    return Usage(
        input_tokens=token_count(usage.get("input_tokens")),
        output_tokens=token_count(usage.get("output_tokens")),
        cache_read_tokens=token_count(usage.get("cache_read_input_tokens")),
        cache_write_tokens=token_count(usage.get("cache_creation_input_tokens")),
        stop_reason=label(response.get("stop_reason")),
        text=message_text(response.get("content")),
        response_id=label(response.get("id")),
    )


class MessagesStreamAssembler:
    """Builds the non-stream ``message`` a stream of Messages events amounts to.

    Feed each parsed event (a dict) to `add`, in order; `result` is the message with its
    content blocks (text joined, thinking joined, tool inputs parsed) and merged usage, and
    `text` equals the concatenation of every ``text_delta``. Both may be read at any time,
    also after a stream that was cut short.
    """

    def __init__(self) -> None:
        self._message: dict[str, Any] = {
            "type": "message",
            "role": "assistant",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
        }
        self._usage: dict[str, Any] = {}
        self._blocks: dict[int, dict[str, Any]] = {}
        self._parts: dict[int, list[str]] = {}  # text, thinking or tool-input fragments
        self.error: dict[str, Any] | None = None  # the ``error`` event's object, if one came
        self.started = False  # message_start seen
        self.finished = False  # message_stop seen

    def add(self, event: Any) -> None:
        """Take one event; anything that is not a known event object is ignored."""
        if not isinstance(event, dict):
            return
        kind = event.get("type")
        if kind == "content_block_delta":  # the commonest first
            index = block_index(event.get("index", 0))
            if index is not None:
                self._delta(index, as_dict(event.get("delta")))
        elif kind == "message_start":
            self._start(as_dict(event.get("message")))
        elif kind == "content_block_start":
            index = block_index(event.get("index", 0))
            block = event.get("content_block")
            if index is not None and isinstance(block, dict):
                self._open(index, block)
        elif kind == "message_delta":
            self._message.update(as_dict(event.get("delta")))
            for key, value in as_dict(event.get("usage")).items():
                if value is not None:  # cumulative totals overwrite; absent ones survive
                    self._usage[key] = value
        elif kind == "message_stop":
            self.finished = True
        elif kind == "error":
            self.error = as_dict(event.get("error")) or {"type": "error"}

    def add_json(self, data: bytes | str) -> None:
        """Take one event as the JSON text of an SSE ``data:`` line; bad JSON is ignored."""
        try:
            self.add(orjson.loads(data))
        except ValueError:
            return

    def _start(self, message: dict[str, Any]) -> None:
        self.started = True
        self._message = {k: v for k, v in message.items() if k != "usage"}
        self._message.setdefault("type", "message")
        self._message.setdefault("role", "assistant")
        self._usage = dict(as_dict(message.get("usage")))
        for index, block in enumerate(as_list(message.get("content"))):
            if isinstance(block, dict):
                self._open(index, block)

    def _open(self, index: int, block: dict[str, Any]) -> None:
        block = dict(block)
        self._blocks[index] = block
        kind = _kind(block.get("type"))
        initial = block.get("thinking" if kind == "thinking" else "text")
        if kind in _TOOL_BLOCKS:
            self._parts[index] = []
        elif kind in ("text", "thinking"):
            self._parts[index] = [initial] if isinstance(initial, str) else []

    def _delta(self, index: int, delta: dict[str, Any]) -> None:
        kind = _kind(delta.get("type"))
        block = self._blocks.get(index)
        if block is None:
            if kind not in _DELTA_BLOCK:
                return
            self._open(index, {"type": _DELTA_BLOCK[kind]})
            block = self._blocks[index]
        block_type = block.get("type")  # compared only: need not be a string
        if kind == "text_delta":
            if block_type == "text":
                self._append(index, delta.get("text"))
        elif kind == "thinking_delta":
            if block_type == "thinking":
                self._append(index, delta.get("thinking"))
        elif kind == "input_json_delta":
            if _kind(block_type) in _TOOL_BLOCKS:
                self._append(index, delta.get("partial_json"))
        elif kind == "signature_delta":
            if isinstance(delta.get("signature"), str):
                block["signature"] = delta["signature"]
        elif kind == "citations_delta" and isinstance(delta.get("citation"), dict):
            citations = block.get("citations")
            block["citations"] = [*as_list(citations), delta["citation"]]

    def _append(self, index: int, piece: Any) -> None:
        if isinstance(piece, str):
            parts = self._parts.get(index)
            if parts is None:
                parts = self._parts[index] = []
            parts.append(piece)

    def _finished_block(self, index: int) -> tuple[dict[str, Any], bool]:
        block = dict(self._blocks[index])
        kind = _kind(block.get("type"))
        parts = self._parts.get(index, [])
        if kind == "text":
            block["text"] = "".join(parts)
        elif kind == "thinking":
            block["thinking"] = "".join(parts)
        elif kind in _TOOL_BLOCKS:
            block["input"], ok = tool_input(parts, block.get("input"))
            return block, ok
        return block, True

    @property
    def text(self) -> str:
        """The concatenated text of the text blocks, in block order."""
        return "".join(
            "".join(self._parts.get(i, []))
            for i in sorted(self._blocks)
            if self._blocks[i].get("type") == "text"
        )

    @property
    def stop_reason(self) -> str | None:
        """The stop reason from ``message_delta`` (None while the stream is open)."""
        return label(self._message.get("stop_reason"))

    @property
    def tool_input_malformed(self) -> bool:
        """True when a tool call's streamed JSON does not parse (e.g. the stream was cut)."""
        return not all(self._finished_block(i)[1] for i in self._blocks)

    def result(self) -> dict[str, Any]:
        """The message in the non-stream Messages response shape."""
        out = dict(self._message)
        out["content"] = [self._finished_block(i)[0] for i in sorted(self._blocks)]
        out["usage"] = dict(self._usage)
        return out

    def usage(self) -> Usage:
        """What the stream used so far, read from `result` exactly as `messages_usage` does."""
        return messages_usage(self.result())


def _kind(value: Any) -> str | None:
    """A ``type`` as a string, or None (a list there must not break a set lookup)."""
    return value if isinstance(value, str) else None
