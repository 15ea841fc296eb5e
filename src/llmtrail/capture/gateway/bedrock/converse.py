"""Bedrock Converse payloads: what a Converse response used, and the response a ConverseStream
amounts to.

Amazon Nova's native InvokeModel payloads use the very same shapes (``output.message``,
``stopReason``, ``usage`` and, streamed, ``messageStart`` … ``metadata``), so the Nova family
of `models` is read with these functions too; the only difference is that Nova's
native usage spells its cache counts ``cacheReadInputTokenCount`` /
``cacheWriteInputTokenCount`` where Converse says ``cacheReadInputTokens`` /
``cacheWriteInputTokens``, and both are accepted.

Events are taken as boto3 presents them, one key naming the event: ``{"contentBlockDelta":
{"delta": {...}, "contentBlockIndex": 0}}``. Shapes follow botocore's service model for
``bedrock-runtime`` (``ConverseStreamOutput``). Pure functions of the payloads; odd input is
absorbed, never raised.
"""

from __future__ import annotations

import base64
from typing import Any

from llmtrail.capture.gateway.usage import (
    Usage,
    as_dict,
    as_list,
    block_index,
    label,
    token_count,
    tool_input,
)

STREAM_EVENT_KEYS = frozenset(
    {
        "messageStart",
        "contentBlockStart",
        "contentBlockDelta",
        "contentBlockStop",
        "messageStop",
        "metadata",
    }
)
_METADATA_KEYS = ("usage", "metrics", "trace", "performanceConfig", "serviceTier")


def _first_count(values: dict[str, Any], *keys: str) -> int | None:
    for key in keys:
        found = token_count(values.get(key))
        if found is not None:
            return found
    return None


def content_text(content: Any) -> str:
    """The text of Converse content blocks: ``text`` blocks (and the generated text inside
    ``citationsContent``) joined in order."""
    parts: list[str] = []
    for block in as_list(content):
        block = as_dict(block)
        if isinstance(block.get("text"), str):
            parts.append(block["text"])
        for piece in as_list(as_dict(block.get("citationsContent")).get("content")):
            if isinstance(as_dict(piece).get("text"), str):
                parts.append(piece["text"])
    return "".join(parts)


def converse_usage(response: dict[str, Any]) -> Usage:
    """Tokens, stop reason, text and upstream latency of a Converse response, an assembled
    ConverseStream, or an Amazon Nova InvokeModel body."""
    if not isinstance(response, dict):
        return Usage()
    usage = as_dict(response.get("usage"))
    message = as_dict(as_dict(response.get("output")).get("message"))
    return Usage(
        input_tokens=token_count(usage.get("inputTokens")),
        output_tokens=token_count(usage.get("outputTokens")),
        cache_read_tokens=_first_count(usage, "cacheReadInputTokens", "cacheReadInputTokenCount"),
        cache_write_tokens=_first_count(
            usage, "cacheWriteInputTokens", "cacheWriteInputTokenCount"
        ),
        stop_reason=label(response.get("stopReason")),
        text=content_text(message.get("content")),
        latency_ms=token_count(as_dict(response.get("metrics")).get("latencyMs")),
    )


def _json_safe(value: Any) -> Any:
    """Blob fields arrive as bytes from boto3 and as base64 text on the wire; keep text."""
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    return value


class ConverseStreamAssembler:
    """Builds the Converse response a stream of ConverseStream events amounts to.

    Feed each event to `add` in order. `result` is the response in the non-stream Converse
    shape (``output.message.content``, ``stopReason``, ``usage``, ``metrics``, …), with text
    and reasoning joined and each tool call's ``input`` parsed from its concatenated partial
    JSON; `text` equals the concatenation of the text deltas. An exception event
    (``throttlingException``, ``modelStreamErrorException``, …) sets `error_code` and
    `error_message`.
    """

    def __init__(self) -> None:
        self.role = "assistant"
        self._kinds: dict[int, str] = {}  # text | toolUse | reasoningContent | toolResult
        self._meta: dict[int, dict[str, Any]] = {}
        self._parts: dict[int, list[str]] = {}
        self._extra: dict[int, list[Any]] = {}  # citations, or tool-result content
        self._stop: dict[str, Any] = {}
        self._metadata: dict[str, Any] = {}
        self.error_code: str | None = None
        self.error_message: str | None = None

    def add(self, event: Any) -> None:
        """Take one event ``{name: payload}``; unknown names and non-objects are ignored."""
        if not isinstance(event, dict):
            return
        for name, payload in event.items():
            if isinstance(name, str):
                self.add_event(name, payload)

    def add_event(self, name: str, payload: Any) -> None:
        """Take one event given as its event-stream ``:event-type`` and its JSON payload."""
        payload = as_dict(payload)
        if name == "contentBlockDelta":  # the commonest first
            index = block_index(payload.get("contentBlockIndex", 0))
            if index is not None:
                self._delta(index, as_dict(payload.get("delta")))
        elif name == "messageStart":
            self.role = label(payload.get("role")) or self.role
        elif name == "contentBlockStart":
            index = block_index(payload.get("contentBlockIndex", 0))
            if index is not None:
                self._start(index, as_dict(payload.get("start")))
        elif name == "messageStop":
            self._stop = {
                k: payload[k]
                for k in ("stopReason", "additionalModelResponseFields")
                if k in payload
            }
        elif name == "metadata":
            self._metadata.update({k: payload[k] for k in _METADATA_KEYS if k in payload})
        elif name.endswith("Exception"):
            self.error_code = name[:1].upper() + name[1:]
            self.error_message = label(payload.get("message"), 4096)

    def _open(self, index: int, kind: str, meta: dict[str, Any] | None = None) -> bool:
        """Make block ``index`` of ``kind`` if it is new; False if it exists as another kind."""
        if index not in self._kinds:
            self._kinds[index] = kind
            self._meta[index] = meta or {}
            self._parts[index] = []
            self._extra[index] = []
        return self._kinds[index] == kind

    def _start(self, index: int, start: dict[str, Any]) -> None:
        for kind in ("toolUse", "toolResult", "image"):
            if isinstance(start.get(kind), dict):
                self._open(index, kind, dict(start[kind]))
                return

    def _delta(self, index: int, delta: dict[str, Any]) -> None:
        text = delta.get("text")
        if isinstance(text, str) and self._open(index, "text"):
            self._parts[index].append(text)
            if len(delta) == 1:  # a text delta and nothing else, as most are
                return
        citation = delta.get("citation")
        if isinstance(citation, dict) and self._open(index, "text"):
            self._extra[index].append(citation)
        piece = as_dict(delta.get("toolUse")).get("input")
        if isinstance(piece, str) and self._open(index, "toolUse"):
            self._parts[index].append(piece)
        reasoning = delta.get("reasoningContent")
        if isinstance(reasoning, dict) and self._open(index, "reasoningContent"):
            if isinstance(reasoning.get("text"), str):
                self._parts[index].append(reasoning["text"])
            if isinstance(reasoning.get("signature"), str):
                self._meta[index]["signature"] = reasoning["signature"]
            if reasoning.get("redactedContent") is not None:
                self._meta[index]["redactedContent"] = _json_safe(reasoning["redactedContent"])
        results = delta.get("toolResult")
        if isinstance(results, list) and self._open(index, "toolResult"):
            self._extra[index].extend(r for r in results if isinstance(r, dict))

    def _block(self, index: int) -> tuple[dict[str, Any], bool]:
        kind, meta, parts = self._kinds[index], self._meta[index], self._parts[index]
        text = "".join(parts)
        if kind == "text" and self._extra[index]:
            citations = {"content": [{"text": text}], "citations": list(self._extra[index])}
            return {"citationsContent": citations}, True
        if kind == "text":
            return {"text": text}, True
        if kind == "toolUse":
            value, ok = tool_input(parts, meta.get("input"))
            return {"toolUse": {**meta, "input": value}}, ok
        if kind == "reasoningContent":
            if "redactedContent" in meta and not parts:
                return {"reasoningContent": {"redactedContent": meta["redactedContent"]}}, True
            reasoning: dict[str, Any] = {"text": text}
            if "signature" in meta:
                reasoning["signature"] = meta["signature"]
            return {"reasoningContent": {"reasoningText": reasoning}}, True
        if kind == "toolResult":
            return {"toolResult": {**meta, "content": list(self._extra[index])}}, True
        return {kind: dict(meta)}, True

    @property
    def text(self) -> str:
        """The concatenated text deltas, in block order."""
        return "".join(
            "".join(self._parts[i]) for i in sorted(self._kinds) if self._kinds[i] == "text"
        )

    @property
    def tool_input_malformed(self) -> bool:
        """True when a tool call's streamed input does not parse as JSON."""
        return not all(self._block(i)[1] for i in self._kinds)

    def result(self) -> dict[str, Any]:
        """The response in the non-stream Converse shape; keys the stream never sent (for a
        stream cut short: ``stopReason``, ``usage``, ``metrics``) are left out."""
        content = [self._block(i)[0] for i in sorted(self._kinds)]
        out: dict[str, Any] = {"output": {"message": {"role": self.role, "content": content}}}
        out.update(self._stop)
        out.update(self._metadata)
        return out

    def usage(self) -> Usage:
        """What the stream used, read from `result` exactly as `converse_usage` does."""
        return converse_usage(self.result())
