"""``sim`` in OpenAI's wire format: ``chat.completion`` objects and their SSE chunks."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import orjson

from llmtrail.capture.gateway.providers.sim.script import Conversation, Reply, Tool, text_of
from llmtrail.capture.tokens import count_chat_prompt, count_tokens

_FINISH = {"stop": "stop", "length": "length", "tool": "tool_calls"}


def conversation(body: dict[str, Any]) -> Conversation:
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    tools = [
        Tool(str(fn.get("name", "")), fn.get("parameters") or {})
        for t in body.get("tools") or []
        if isinstance(t, dict) and isinstance(fn := t.get("function"), dict)
    ]
    conv = Conversation(prompt="\n".join(text_of(m.get("content")) for m in messages), tools=tools)
    users = [m for m in messages if m.get("role") == "user"]
    conv.last_user_text = text_of(users[-1].get("content")) if users else ""
    choice = body.get("tool_choice")
    if choice == "none":
        conv.tools_allowed = False
    elif choice == "required":
        conv.forced_tool = ""
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        conv.forced_tool = str(choice["function"].get("name", ""))
    if messages and messages[-1].get("role") == "tool":
        conv.tool_result = text_of(messages[-1].get("content"))
        conv.tool_result_name = _tool_name(messages, messages[-1].get("tool_call_id"))
    return conv


def _tool_name(messages: list[dict[str, Any]], call_id: Any) -> str | None:
    for message in reversed(messages):
        for call in message.get("tool_calls") or []:
            if isinstance(call, dict) and call.get("id") == call_id:
                return str((call.get("function") or {}).get("name") or "") or None
    return None


def usage(body: dict[str, Any], reply: Reply, model: str) -> dict[str, int]:
    out = count_tokens(reply.text, model)
    if reply.tool_call is not None:
        out += count_tokens(reply.tool_call.name + orjson.dumps(reply.tool_call.arguments).decode())
    prompt = count_chat_prompt(body.get("messages"), model)
    return {"prompt_tokens": prompt, "completion_tokens": out, "total_tokens": prompt + out}


def _message(reply: Reply) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
    message["refusal"] = None
    if reply.tool_call is not None:
        message["tool_calls"] = [_tool_call(reply)]
    return message


def _tool_call(reply: Reply) -> dict[str, Any]:
    assert reply.tool_call is not None
    call = reply.tool_call
    return {
        "id": call.call_id.replace("toolu_", "call_"),
        "type": "function",
        "function": {"name": call.name, "arguments": orjson.dumps(call.arguments).decode()},
    }


def completion(completion_id: str, model: str, reply: Reply, use: dict[str, int]) -> Any:
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": "sim",
        "choices": [
            {
                "index": 0,
                "finish_reason": _FINISH[reply.stop],
                "logprobs": None,
                "message": _message(reply),
            }
        ],
        "usage": use,
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
    use: dict[str, int] | None,
    pace: Any,
) -> AsyncIterator[bytes]:
    base = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": "sim",
    }
    extra = {"usage": None} if use is not None else {}

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
        call = _tool_call(reply)
        head = {**call, "index": 0, "function": {"name": call["function"]["name"], "arguments": ""}}
        yield event([{"index": 0, "delta": {"tool_calls": [head]}, "finish_reason": None}])
        args = call["function"]["arguments"]
        for i in range(0, len(args), 16):
            part = {"index": 0, "function": {"arguments": args[i : i + 16]}}
            yield event([{"index": 0, "delta": {"tool_calls": [part]}, "finish_reason": None}])
    yield event([{"index": 0, "delta": {}, "finish_reason": _FINISH[reply.stop]}])
    if use is not None:
        yield event([], usage=use)
    yield b"data: [DONE]\n\n"
