"""``sim`` in Anthropic's Messages format: message objects and the SSE event sequence
(``message_start``, ``content_block_*``, ``ping``, ``message_delta`` with usage,
``message_stop``). Blocks marked ``cache_control`` are cached by prefix: the first call
writes the cache, later calls with the same prefix read it."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from typing import Any

import orjson

from llmtrail.capture.gateway.providers.sim.script import Conversation, Reply, Tool, text_of
from llmtrail.capture.tokens import count_tokens

_STOP = {"stop": "end_turn", "length": "max_tokens", "tool": "tool_use"}


def conversation(body: dict[str, Any]) -> Conversation:
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    tools = [
        Tool(str(t.get("name", "")), t.get("input_schema") or {})
        for t in body.get("tools") or []
        if isinstance(t, dict)
    ]
    prompt = [text_of(body.get("system"))] + [text_of(m.get("content")) for m in messages]
    conv = Conversation(prompt="\n".join(p for p in prompt if p), tools=tools)
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
        blocks = users[-1].get("content")
        conv.last_user_text = text_of(
            [b for b in blocks if isinstance(b, dict) and b.get("type") == "text"]
            if isinstance(blocks, list)
            else blocks
        )
    last = messages[-1] if messages else {}
    results = [
        b
        for b in last.get("content") or []
        if isinstance(b, dict) and b.get("type") == "tool_result"
    ]
    if last.get("role") == "user" and results:
        conv.tool_result = text_of(results[-1].get("content"))
        conv.tool_result_name = _tool_name(messages, results[-1].get("tool_use_id"))
    return conv


def _tool_name(messages: list[dict[str, Any]], use_id: Any) -> str | None:
    for message in reversed(messages):
        for block in message.get("content") or []:
            if (
                isinstance(block, dict)
                and block.get("type") == "tool_use"
                and block.get("id") == use_id
            ):
                return str(block.get("name") or "") or None
    return None


class PromptCache:
    """Prefixes already written to the (simulated) prompt cache; `usage` runs in threads."""

    def __init__(self, capacity: int = 10_000) -> None:
        self.seen: dict[str, None] = {}
        self.capacity = capacity
        self._lock = threading.Lock()

    def usage(self, body: dict[str, Any], model: str) -> dict[str, int]:
        """Input token counts, split between uncached, cache-write and cache-read tokens."""
        parts: list[tuple[str, bool]] = []
        system = body.get("system")
        for block in system if isinstance(system, list) else [system]:
            parts.append((text_of(block), _cached(block)))
        for message in body.get("messages") or []:
            content = message.get("content") if isinstance(message, dict) else None
            for block in content if isinstance(content, list) else [content]:
                parts.append((text_of(block), _cached(block)))
        marks = [i for i, (_, cached) in enumerate(parts) if cached]
        total = sum(count_tokens(text, model) for text, _ in parts) + 4 * len(parts)
        out = {"input_tokens": total, "cache_creation_input_tokens": 0}
        out["cache_read_input_tokens"] = 0
        if not marks:
            return out
        prefix = parts[: marks[-1] + 1]
        cached = sum(count_tokens(text, model) for text, _ in prefix) + 4 * len(prefix)
        key = orjson.dumps([model, prefix]).decode()
        out["input_tokens"] = total - cached
        with self._lock:
            if key in self.seen:
                out["cache_read_input_tokens"] = cached
            else:
                out["cache_creation_input_tokens"] = cached
                if len(self.seen) >= self.capacity:
                    self.seen.pop(next(iter(self.seen)))
                self.seen[key] = None
        return out


def _cached(block: Any) -> bool:
    return isinstance(block, dict) and isinstance(block.get("cache_control"), dict)


def output_tokens(reply: Reply, model: str) -> int:
    out = count_tokens(reply.text, model)
    if reply.tool_call is not None:
        out += count_tokens(reply.tool_call.name + orjson.dumps(reply.tool_call.arguments).decode())
    return out


def _blocks(reply: Reply) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if reply.text:
        blocks.append({"type": "text", "text": reply.text})
    if reply.tool_call is not None:
        call = reply.tool_call
        blocks.append(
            {"type": "tool_use", "id": call.call_id, "name": call.name, "input": call.arguments}
        )
    return blocks


def message(message_id: str, model: str, reply: Reply, use: dict[str, int]) -> dict[str, Any]:
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": _blocks(reply),
        "stop_reason": _STOP[reply.stop],
        "stop_sequence": None,
        "usage": use,
    }


def _event(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


async def stream(
    message_id: str, model: str, reply: Reply, use: dict[str, int], pace: Any
) -> AsyncIterator[bytes]:
    from llmtrail.capture.gateway.providers.sim.openai_wire import pieces

    start = message(message_id, model, reply, {**use, "output_tokens": 1})
    start.update(content=[], stop_reason=None)
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
            "id": call.call_id,
            "name": call.name,
            "input": {},
        }
        yield _event(
            "content_block_start",
            {"type": "content_block_start", "index": index, "content_block": block},
        )
        args = orjson.dumps(call.arguments).decode()
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
            "delta": {"stop_reason": _STOP[reply.stop], "stop_sequence": None},
            "usage": {"output_tokens": use["output_tokens"]},
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
