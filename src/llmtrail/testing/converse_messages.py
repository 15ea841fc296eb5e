"""Bedrock Converse bodies for the fake: check a request as Bedrock does and read it with
``sim``'s reader; write a response or its stream events.

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

from llmtrail.capture.gateway.providers.sim import bedrock_wire
from llmtrail.capture.gateway.providers.sim.plan import Conversation, Reply, Usage
from llmtrail.testing.scripted_reply import InvalidRequest, pieces

__all__ = [
    "content_blocks",
    "converse_body",
    "read_converse_request",
    "stream_events",
    "usage_body",
]


def read_converse_request(
    body: Mapping[str, Any], *, max_tokens_key: str = "maxTokens"
) -> Conversation:
    """The `Conversation` of a Converse (or Nova InvokeModel) body (``sim``'s reader), after
    the checks Bedrock makes; raises `InvalidRequest`."""
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
    return bedrock_wire.converse_conversation(dict(body), max_tokens_key)


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
