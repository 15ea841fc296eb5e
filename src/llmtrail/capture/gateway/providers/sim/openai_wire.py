"""``sim`` in OpenAI's wire format: read a chat completions request into a `Conversation`;
write ``chat.completion`` objects and their SSE chunks."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import orjson

from llmtrail.capture.gateway.providers.sim.plan import Conversation, Reply, Tool
from llmtrail.capture.tokens import message_text

FINISH = {"end_turn": "stop", "max_tokens": "length", "tool_use": "tool_calls"}
"""A reply's stop reason → OpenAI's ``finish_reason``."""


def conversation(body: dict[str, Any]) -> Conversation:
    """The `Conversation` of a chat completions body: the tools' definitions, then each
    message's text and tool calls; the tool choice; ``max_completion_tokens``/``max_tokens``."""
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    conv = Conversation()
    for tool in body.get("tools") or []:
        fn = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(fn, dict):
            schema = fn.get("parameters")
            conv.tools.append(
                Tool(str(fn.get("name", "")), schema if isinstance(schema, dict) else {})
            )
            conv.read(str(fn.get("name", "")) + orjson.dumps(schema).decode())
    for message in messages:
        text = message_text(message.get("content"))
        for call in message.get("tool_calls") or []:
            fn = call.get("function") if isinstance(call, dict) else None
            if isinstance(fn, dict):
                text += str(fn.get("name", "")) + str(fn.get("arguments", ""))
        conv.read(text)
    users = [m for m in messages if m.get("role") == "user"]
    conv.last_user_text = message_text(users[-1].get("content")) if users else ""
    choice = body.get("tool_choice")
    if choice == "none":
        conv.tools_allowed = False
    elif choice == "required":
        conv.forced_tool = ""
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        conv.forced_tool = str(choice["function"].get("name", ""))
    if messages and messages[-1].get("role") == "tool":
        conv.tool_result = message_text(messages[-1].get("content"))
        conv.tool_result_name = _tool_name(messages, messages[-1].get("tool_call_id"))
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    conv.max_tokens = limit if type(limit) is int else None
    return conv


def _tool_name(messages: list[dict[str, Any]], call_id: Any) -> str | None:
    for message in reversed(messages):
        for call in message.get("tool_calls") or []:
            if isinstance(call, dict) and call.get("id") == call_id:
                return str((call.get("function") or {}).get("name") or "") or None
    return None


def usage(reply: Reply) -> dict[str, int]:
    """OpenAI's ``usage``: ``prompt_tokens`` counts cached tokens too."""
    use = reply.usage
    return {
        "prompt_tokens": use.prompt_tokens,
        "completion_tokens": use.output_tokens,
        "total_tokens": use.total,
    }


def message(reply: Reply) -> dict[str, Any]:
    """The assistant ``message`` of a completion: text and tool calls."""
    message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
    message["refusal"] = None
    if reply.tool_call is not None:
        message["tool_calls"] = [tool_call(reply)]
    return message


def tool_call(reply: Reply) -> dict[str, Any]:
    """The reply's tool call as an entry of ``tool_calls``."""
    assert reply.tool_call is not None
    call = reply.tool_call
    return {
        "id": call.id.replace("toolu_", "call_"),
        "type": "function",
        "function": {"name": call.name, "arguments": call.input_json},
    }


def completion(completion_id: str, model: str, reply: Reply) -> Any:
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": "sim",
        "choices": [
            {
                "index": 0,
                "finish_reason": FINISH[reply.stop_reason],
                "logprobs": None,
                "message": message(reply),
            }
        ],
        "usage": usage(reply),
    }


def pieces(text: str, words_per_chunk: int) -> list[str]:
    """``text`` cut into chunks of a few words each; joined, they give ``text`` back."""
    words = text.split(" ")
    step = max(1, words_per_chunk)
    return [
        " ".join(words[i : i + step]) + (" " if i + step < len(words) else "")
        for i in range(0, len(words), step)
        if text
    ]


async def stream(
    completion_id: str,
    model: str,
    reply: Reply,
    include_usage: bool,
    pace: Any,
) -> AsyncIterator[bytes]:
    base = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": "sim",
    }
    extra = {"usage": None} if include_usage else {}

    def event(choices: list[dict[str, Any]], **more: Any) -> bytes:
        return b"data: " + orjson.dumps({**base, "choices": choices, **extra, **more}) + b"\n\n"

    await pace.first()
    yield event(
        [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]
    )
    for piece in pieces(reply.text, pace.words):
        yield event([{"index": 0, "delta": {"content": piece}, "finish_reason": None}])
        await pace.between()
    if reply.tool_call is not None:
        call = tool_call(reply)
        head = {**call, "index": 0, "function": {"name": call["function"]["name"], "arguments": ""}}
        yield event([{"index": 0, "delta": {"tool_calls": [head]}, "finish_reason": None}])
        args = call["function"]["arguments"]
        for i in range(0, len(args), 16):
            part = {"index": 0, "function": {"arguments": args[i : i + 16]}}
            yield event([{"index": 0, "delta": {"tool_calls": [part]}, "finish_reason": None}])
    yield event([{"index": 0, "delta": {}, "finish_reason": FINISH[reply.stop_reason]}])
    if include_usage:
        yield event([], usage=usage(reply))
    yield b"data: [DONE]\n\n"
