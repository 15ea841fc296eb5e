"""Bedrock Converse bodies for the fake: read a request, write a response or its stream events.

Amazon Nova's InvokeModel body is the Converse message shape too (with ``max_new_tokens``), so
the same reader serves both. Shapes written:

* Converse: ``{"output": {"message": {"role", "content": [{"text"}, {"toolUse"}]}},
  "stopReason", "usage": {inputTokens, outputTokens, totalTokens, cacheReadInputTokens,
  cacheWriteInputTokens}, "metrics": {"latencyMs"}}``;
* ConverseStream events, in order: ``messageStart``; for text, ``contentBlockDelta`` with
  ``delta.text`` (Bedrock sends no ``contentBlockStart`` for text) and ``contentBlockStop``; for
  a tool call, ``contentBlockStart`` with ``start.toolUse``, ``contentBlockDelta`` with
  ``delta.toolUse.input`` pieces of JSON text, ``contentBlockStop``; ``messageStop`` with
  ``stopReason``; ``metadata`` with ``usage`` and ``metrics.latencyMs``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from llmtrail.testing.scripted_reply import (
    Conversation,
    InvalidRequest,
    Reply,
    ToolSpec,
    Usage,
    pieces,
)

__all__ = [
    "content_blocks",
    "converse_body",
    "read_converse_request",
    "stream_events",
    "usage_body",
]


def _block_text(block: Any) -> str:
    if not isinstance(block, Mapping):
        return ""
    if isinstance(block.get("text"), str):
        return str(block["text"])
    if isinstance(block.get("toolResult"), Mapping):
        parts = block["toolResult"].get("content")
        out = ""
        for part in parts if isinstance(parts, list) else []:
            if isinstance(part, Mapping) and isinstance(part.get("text"), str):
                out += part["text"]
            elif isinstance(part, Mapping) and "json" in part:
                out += orjson.dumps(part["json"]).decode()
        return out
    if isinstance(block.get("toolUse"), Mapping):
        use = block["toolUse"]
        return str(use.get("name", "")) + orjson.dumps(use.get("input", {})).decode()
    return ""


def read_converse_request(
    body: Mapping[str, Any], *, max_tokens_key: str = "maxTokens"
) -> Conversation:
    """The `Conversation` of a Converse (or Nova InvokeModel) body; raises `InvalidRequest`."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("The messages field is required and must not be empty.")
    for message in messages:
        if not isinstance(message, Mapping) or message.get("role") not in ("user", "assistant"):
            raise InvalidRequest("Each message needs a role of user or assistant.")
        if not isinstance(message.get("content"), list):
            raise InvalidRequest("Each message needs a content list.")
    if messages[0]["role"] != "user":
        raise InvalidRequest(
            "A conversation must start with a user message. Try again after adding a user "
            "message to the start of the conversation."
        )
    config = body.get("inferenceConfig")
    max_tokens = config.get(max_tokens_key) if isinstance(config, Mapping) else None
    if max_tokens is not None and (
        isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1
    ):
        raise InvalidRequest(f"inferenceConfig.{max_tokens_key} must be a positive integer.")
    text, prefix = "", None
    tools: list[ToolSpec] = []
    tool_config = body.get("toolConfig")
    raw_tools = tool_config.get("tools") if isinstance(tool_config, Mapping) else None
    for entry in raw_tools if isinstance(raw_tools, list) else []:
        spec = entry.get("toolSpec") if isinstance(entry, Mapping) else None
        if isinstance(spec, Mapping) and isinstance(spec.get("name"), str):
            schema = spec.get("inputSchema")
            schema = schema.get("json") if isinstance(schema, Mapping) else None
            tools.append(ToolSpec(spec["name"], schema if isinstance(schema, Mapping) else {}))
            text += spec["name"] + orjson.dumps(schema).decode()
        elif isinstance(entry, Mapping) and "cachePoint" in entry:
            prefix = text
    system = body.get("system")
    blocks = list(system) if isinstance(system, list) else []
    for message in messages:
        blocks += message["content"]
    for block in blocks:
        text += _block_text(block)
        if isinstance(block, Mapping) and "cachePoint" in block:
            prefix = text
    last = messages[-1]
    results = [
        _block_text(b) for b in last["content"] if isinstance(b, Mapping) and "toolResult" in b
    ]
    user_turns = [m for m in messages if m["role"] == "user"]
    last_user = "".join(
        str(b["text"])
        for b in user_turns[-1]["content"]
        if isinstance(b, Mapping) and isinstance(b.get("text"), str)
    )
    return Conversation(
        input_text=text,
        last_user_text=last_user,
        tool_result=results[0] if last["role"] == "user" and results else None,
        tools=tuple(tools),
        cache_prefix=prefix,
        max_tokens=max_tokens,
    )


def usage_body(usage: Usage) -> dict[str, int]:
    """Converse's ``usage`` object."""
    return {
        "inputTokens": usage.input_tokens,
        "outputTokens": usage.output_tokens,
        "totalTokens": usage.total,
        "cacheReadInputTokens": usage.cache_read,
        "cacheWriteInputTokens": usage.cache_write,
    }


def content_blocks(reply: Reply) -> list[dict[str, Any]]:
    """The assistant message's content: a text block and/or a ``toolUse`` block."""
    blocks: list[dict[str, Any]] = []
    if reply.text or reply.tool_call is None:
        blocks.append({"text": reply.text})
    if reply.tool_call is not None:
        call = reply.tool_call
        blocks.append({"toolUse": {"toolUseId": call.id, "name": call.name, "input": call.input}})
    return blocks


def converse_body(reply: Reply, *, latency_ms: int) -> dict[str, Any]:
    """The Converse response."""
    return {
        "output": {"message": {"role": "assistant", "content": content_blocks(reply)}},
        "stopReason": reply.stop_reason,
        "usage": usage_body(reply.usage),
        "metrics": {"latencyMs": latency_ms},
    }


def stream_events(reply: Reply) -> list[tuple[str, dict[str, Any]]]:
    """ConverseStream's ``(event type, payload)`` pairs; the last is ``metadata``, whose
    ``metrics.latencyMs`` (0 here) the server sets when it sends it."""
    events: list[tuple[str, dict[str, Any]]] = [("messageStart", {"role": "assistant"})]
    for index, block in enumerate(content_blocks(reply)):
        deltas: list[dict[str, Any]]
        if "text" in block:
            deltas = [{"text": p} for p in pieces(block["text"])] or [{"text": ""}]
        else:
            use = block["toolUse"]
            start = {"toolUse": {"toolUseId": use["toolUseId"], "name": use["name"]}}
            events.append(("contentBlockStart", {"start": start, "contentBlockIndex": index}))
            json_text = orjson.dumps(use["input"]).decode()
            deltas = [{"toolUse": {"input": p}} for p in pieces(json_text, 4)]
        events += [("contentBlockDelta", {"delta": d, "contentBlockIndex": index}) for d in deltas]
        events.append(("contentBlockStop", {"contentBlockIndex": index}))
    events.append(("messageStop", {"stopReason": reply.stop_reason}))
    metadata = {"usage": usage_body(reply.usage), "metrics": {"latencyMs": 0}}
    events.append(("metadata", metadata))
    return events
