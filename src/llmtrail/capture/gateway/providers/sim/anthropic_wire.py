"""``sim`` in Anthropic's Messages format: read a request into a `Conversation`; write
message objects and the SSE event sequence (``message_start``, ``content_block_*``, ``ping``,
``message_delta`` with usage, ``message_stop``). A ``cache_control`` marker on a tool, system
block or message block ends the cacheable prefix (see `plan`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

from llmtrail.capture.gateway.providers.sim.plan import Conversation, Reply, Tool


def conversation(body: dict[str, Any]) -> Conversation:
    """The `Conversation` of a Messages body (Claude's InvokeModel body too): the tools'
    definitions, the system blocks and every message block, in cache order; the tool choice;
    the last turn's tool result; ``max_tokens``."""
    conv = Conversation()
    for tool in body.get("tools") or []:
        if isinstance(tool, dict):
            name, schema = str(tool.get("name", "")), tool.get("input_schema")
            conv.tools.append(Tool(name, schema if isinstance(schema, dict) else {}))
            conv.read(name + orjson.dumps(schema).decode(), cache=_marked(tool))
    system = body.get("system")
    for block in _listed(system) if system is not None else []:
        conv.read(block_text(block), cache=_marked(block))
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    for message in messages:
        for block in _listed(message.get("content")):
            conv.read(block_text(block), cache=_marked(block))
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        if choice.get("type") == "none":
            conv.tools_allowed = False
        elif choice.get("type") == "any":
            conv.forced_tool = ""
        elif choice.get("type") == "tool":
            conv.forced_tool = str(choice.get("name", ""))
    users = [m for m in messages if m.get("role") == "user"]
    if users:
        conv.last_user_text = "".join(
            block_text(b)
            for b in _listed(users[-1].get("content"))
            if isinstance(b, str) or (isinstance(b, dict) and b.get("type") == "text")
        )
    last = messages[-1] if messages else {}
    results = [
        b
        for b in _listed(last.get("content"))
        if isinstance(b, dict) and b.get("type") == "tool_result"
    ]
    if last.get("role") == "user" and results:
        conv.tool_result = block_text(results[-1])
        conv.tool_result_name = _tool_name(messages, results[-1].get("tool_use_id"))
    limit = body.get("max_tokens")
    conv.max_tokens = limit if type(limit) is int else None
    return conv


def block_text(block: Any) -> str:
    """What the model reads in a content block: text, a tool result's content, a tool use's
    name and input."""
    if isinstance(block, str):
        return block
    if not isinstance(block, dict):
        return ""
    kind = block.get("type")
    if kind == "text":
        return str(block.get("text", ""))
    if kind == "tool_result":
        return "".join(block_text(b) for b in _listed(block.get("content", "")))
    if kind == "tool_use":
        return str(block.get("name", "")) + orjson.dumps(block.get("input", {})).decode()
    return ""


def _listed(content: Any) -> list[Any]:
    return content if isinstance(content, list) else [content]


def _marked(block: Any) -> bool:
    return isinstance(block, dict) and isinstance(block.get("cache_control"), dict)


def _tool_name(messages: list[dict[str, Any]], use_id: Any) -> str | None:
    for message in reversed(messages):
        for block in _listed(message.get("content")):
            if (
                isinstance(block, dict)
                and block.get("type") == "tool_use"
                and block.get("id") == use_id
            ):
                return str(block.get("name") or "") or None
    return None


def usage(reply: Reply, *, output_tokens: int | None = None) -> dict[str, int]:
    """Anthropic's ``usage``."""
    use = reply.usage
    return {
        "input_tokens": use.input_tokens,
        "cache_creation_input_tokens": use.cache_write,
        "cache_read_input_tokens": use.cache_read,
        "output_tokens": use.output_tokens if output_tokens is None else output_tokens,
    }


def _blocks(reply: Reply) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if reply.text:
        blocks.append({"type": "text", "text": reply.text})
    if reply.tool_call is not None:
        call = reply.tool_call
        blocks.append({"type": "tool_use", "id": call.id, "name": call.name, "input": call.input})
    return blocks


def message(message_id: str, model: str, reply: Reply) -> dict[str, Any]:
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": _blocks(reply),
        "stop_reason": reply.stop_reason,
        "stop_sequence": None,
        "usage": usage(reply),
    }


def _event(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


async def stream(message_id: str, model: str, reply: Reply, pace: Any) -> AsyncIterator[bytes]:
    from llmtrail.capture.gateway.providers.sim.openai_wire import pieces

    start = message(message_id, model, reply)
    start.update(content=[], stop_reason=None, usage=usage(reply, output_tokens=1))
    await pace.first()
    yield _event("message_start", {"type": "message_start", "message": start})
    index = 0
    block: dict[str, Any]
    if reply.text:
        block = {"type": "text", "text": ""}
        yield _event(
            "content_block_start",
            {"type": "content_block_start", "index": index, "content_block": block},
        )
        yield _event("ping", {"type": "ping"})
        for piece in pieces(reply.text, pace.words):
            delta = {"type": "text_delta", "text": piece}
            yield _event(
                "content_block_delta",
                {"type": "content_block_delta", "index": index, "delta": delta},
            )
            await pace.between()
        yield _event("content_block_stop", {"type": "content_block_stop", "index": index})
        index += 1
    if reply.tool_call is not None:
        call = reply.tool_call
        block = {
            "type": "tool_use",
            "id": call.id,
            "name": call.name,
            "input": {},
        }
        yield _event(
            "content_block_start",
            {"type": "content_block_start", "index": index, "content_block": block},
        )
        args = call.input_json
        for i in range(0, len(args), 16):
            delta = {"type": "input_json_delta", "partial_json": args[i : i + 16]}
            yield _event(
                "content_block_delta",
                {"type": "content_block_delta", "index": index, "delta": delta},
            )
        yield _event("content_block_stop", {"type": "content_block_stop", "index": index})
    yield _event(
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": reply.stop_reason, "stop_sequence": None},
            "usage": {"output_tokens": reply.usage.output_tokens},
        },
    )
    yield _event("message_stop", {"type": "message_stop"})


def error(status: int, message_text: str) -> dict[str, Any]:
    kind = {
        400: "invalid_request_error",
        401: "authentication_error",
        403: "permission_error",
        404: "not_found_error",
        413: "request_too_large",
        429: "rate_limit_error",
        529: "overloaded_error",
    }.get(status, "api_error")
    return {"type": "error", "error": {"type": kind, "message": message_text}}
