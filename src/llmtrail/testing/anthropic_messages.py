"""Anthropic Messages bodies for the fakes: check a request as Anthropic does and read it
with ``sim``'s reader; write a message or its stream.

Two fakes speak this format: the Anthropic API itself (`AnthropicUpstream`) and Claude on
Bedrock's InvokeModel (`BedrockUpstream`), whose body is the same Messages JSON with
``anthropic_version`` instead of ``model``. Both render their `Reply` with these functions, so
the shapes live in one place:

* message: ``{"id", "type": "message", "role", "model", "content": [text, tool_use],
  "stop_reason", "stop_sequence", "usage": {input_tokens, cache_creation_input_tokens,
  cache_read_input_tokens, output_tokens}}``;
* stream: ``message_start`` (usage with the input counts, ``output_tokens`` 1), per block
  ``content_block_start`` · ``content_block_delta`` (``text_delta`` / ``input_json_delta``) ·
  ``content_block_stop``, a ``ping`` after the first block start (Anthropic's API only), then
  ``message_delta`` (stop reason, ``usage.output_tokens``) and ``message_stop``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from llmtrail.capture.gateway.providers.sim import anthropic_wire
from llmtrail.capture.gateway.providers.sim.plan import Conversation, Reply
from llmtrail.testing.scripted_reply import InvalidRequest, pieces

__all__ = ["message_body", "read_messages_request", "stream_events"]


def read_messages_request(body: Mapping[str, Any], *, require_model: bool) -> Conversation:
    """The `Conversation` of a Messages request (``sim``'s reader), after the checks Anthropic
    makes; raises `InvalidRequest` naming the field."""
    if require_model and not (isinstance(body.get("model"), str) and body["model"]):
        raise InvalidRequest("model: Field required")
    max_tokens = body.get("max_tokens")
    if max_tokens is None:
        raise InvalidRequest("max_tokens: Field required")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise InvalidRequest("max_tokens: Input should be an integer greater than or equal to 1")
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise InvalidRequest("messages: Field required")
    if not messages:
        raise InvalidRequest("messages: at least one message is required")
    for n, message in enumerate(messages):
        if not isinstance(message, Mapping) or message.get("role") not in ("user", "assistant"):
            raise InvalidRequest(f"messages.{n}.role: Input should be 'user' or 'assistant'")
        if not isinstance(message.get("content"), str | list):
            raise InvalidRequest(f"messages.{n}.content: Field required")
    tools = body.get("tools")
    for n, tool in enumerate(tools if isinstance(tools, list) else []):
        if not isinstance(tool, Mapping) or not isinstance(tool.get("name"), str):
            raise InvalidRequest(f"tools.{n}.name: Field required")
    return anthropic_wire.conversation(dict(body))


def _content(reply: Reply) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if reply.text or reply.tool_call is None:
        blocks.append({"type": "text", "text": reply.text})
    if reply.tool_call is not None:
        call = reply.tool_call
        blocks.append({"type": "tool_use", "id": call.id, "name": call.name, "input": call.input})
    return blocks


def message_body(reply: Reply, *, model: str, message_id: str) -> dict[str, Any]:
    """The non-stream response."""
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": _content(reply),
        "stop_reason": reply.stop_reason,
        "stop_sequence": None,
        "usage": anthropic_wire.usage(reply),
    }


def stream_events(
    reply: Reply, *, model: str, message_id: str, ping: bool
) -> list[tuple[str, dict[str, Any]]]:
    """The stream's ``(event name, data)`` pairs, in order."""
    start = message_body(reply, model=model, message_id=message_id)
    start.update(content=[], stop_reason=None, usage=anthropic_wire.usage(reply, output_tokens=1))
    events: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"type": "message_start", "message": start})
    ]
    for index, block in enumerate(_content(reply)):
        if block["type"] == "text":
            opening: dict[str, Any] = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": p} for p in pieces(block["text"])]
        else:
            opening = {**block, "input": {}}
            parts = ["", *pieces(orjson.dumps(block["input"]).decode(), 4)]
            deltas = [{"type": "input_json_delta", "partial_json": p} for p in parts]
        events.append(
            (
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": opening},
            )
        )
        if ping and index == 0:
            events.append(("ping", {"type": "ping"}))
        events += [
            ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d})
            for d in deltas
        ]
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    delta = {"stop_reason": reply.stop_reason, "stop_sequence": None}
    usage = {"output_tokens": reply.usage.output_tokens}
    events.append(("message_delta", {"type": "message_delta", "delta": delta, "usage": usage}))
    events.append(("message_stop", {"type": "message_stop"}))
    return events
