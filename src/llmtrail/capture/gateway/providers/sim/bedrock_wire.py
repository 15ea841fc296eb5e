"""``sim`` in the Bedrock runtime's formats: Converse, ConverseStream (event-stream frames),
InvokeModel and InvokeModelWithResponseStream (``chunk`` events with base64 bytes).

InvokeModel bodies are model-family specific; ``sim`` answers in the family the request body
is written for: Anthropic Messages (``anthropic_version``), Amazon Nova (``messages`` with
``inferenceConfig`` or ``schemaVersion``), Amazon Titan Text (``inputText``) and Meta Llama
(``prompt``). Any other body is a ``ValidationException``, as Bedrock answers it.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import orjson

from llmtrail.capture.gateway.bedrock.eventstream import event as stream_event
from llmtrail.capture.gateway.providers.sim import anthropic_wire
from llmtrail.capture.gateway.providers.sim.openai_wire import pieces
from llmtrail.capture.gateway.providers.sim.script import Conversation, Reply, Tool, text_of
from llmtrail.capture.tokens import count_tokens

_STOP = {"stop": "end_turn", "length": "max_tokens", "tool": "tool_use"}
ERROR_TYPES = {
    400: "ValidationException",
    403: "AccessDeniedException",
    404: "ResourceNotFoundException",
    408: "ModelTimeoutException",
    424: "ModelErrorException",
    429: "ThrottlingException",
    500: "InternalServerException",
    503: "ServiceUnavailableException",
}


def family(body: dict[str, Any]) -> str | None:
    """The InvokeModel body family ``sim`` recognises in ``body``, or None."""
    if "anthropic_version" in body:
        return "anthropic"
    if isinstance(body.get("messages"), list):
        return "nova" if "inferenceConfig" in body or "schemaVersion" in body else "anthropic"
    if isinstance(body.get("inputText"), str):
        return "titan"
    if isinstance(body.get("prompt"), str):
        return "llama"
    return None


def converse_conversation(body: dict[str, Any]) -> Conversation:
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    config: dict[str, Any] = body["toolConfig"] if isinstance(body.get("toolConfig"), dict) else {}
    tools = []
    for tool in config.get("tools") or []:
        spec = tool.get("toolSpec") if isinstance(tool, dict) else None
        if isinstance(spec, dict):
            schema = spec.get("inputSchema")
            schema = schema.get("json") if isinstance(schema, dict) else None
            tools.append(
                Tool(str(spec.get("name", "")), schema if isinstance(schema, dict) else {})
            )
    prompt = [text_of(body.get("system"))] + [text_of(m.get("content")) for m in messages]
    conv = Conversation(prompt="\n".join(p for p in prompt if p), tools=tools)
    choice = config.get("toolChoice")
    if isinstance(choice, dict):
        if "any" in choice:
            conv.forced_tool = ""
        elif isinstance(choice.get("tool"), dict):
            conv.forced_tool = str(choice["tool"].get("name", ""))
    users = [m for m in messages if m.get("role") == "user"]
    if users:
        blocks = users[-1].get("content")
        conv.last_user_text = text_of(
            [b for b in blocks if isinstance(b, dict) and "text" in b]
            if isinstance(blocks, list)
            else blocks
        )
    last = messages[-1] if messages else {}
    results = [
        b["toolResult"]
        for b in last.get("content") or []
        if isinstance(b, dict) and isinstance(b.get("toolResult"), dict)
    ]
    if last.get("role") == "user" and results:
        conv.tool_result = text_of(results[-1].get("content"))
        conv.tool_result_name = _tool_name(messages, results[-1].get("toolUseId"))
    return conv


def _tool_name(messages: list[dict[str, Any]], use_id: Any) -> str | None:
    for message in reversed(messages):
        for block in message.get("content") or []:
            use = block.get("toolUse") if isinstance(block, dict) else None
            if isinstance(use, dict) and use.get("toolUseId") == use_id:
                return str(use.get("name") or "") or None
    return None


def invoke_conversation(kind: str, body: dict[str, Any]) -> Conversation:
    if kind == "anthropic":
        return anthropic_wire.conversation(body)
    if kind == "nova":
        return converse_conversation(body)
    text = str(body.get("inputText") or body.get("prompt") or "")
    return Conversation(prompt=text, last_user_text=text)


def tokens(conv: Conversation, reply: Reply, model: str) -> tuple[int, int]:
    out = count_tokens(reply.text, model)
    if reply.tool_call is not None:
        out += count_tokens(reply.tool_call.name + orjson.dumps(reply.tool_call.arguments).decode())
    return count_tokens(conv.prompt, model) + 3, out


def _content(reply: Reply) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = [{"text": reply.text}] if reply.text else []
    if reply.tool_call is not None:
        call = reply.tool_call
        blocks.append(
            {"toolUse": {"toolUseId": call.call_id, "name": call.name, "input": call.arguments}}
        )
    return blocks


def _usage(in_tokens: int, out_tokens: int) -> dict[str, int]:
    return {
        "inputTokens": in_tokens,
        "outputTokens": out_tokens,
        "totalTokens": in_tokens + out_tokens,
    }


def converse(reply: Reply, in_tokens: int, out_tokens: int, latency_ms: int) -> dict[str, Any]:
    return {
        "output": {"message": {"role": "assistant", "content": _content(reply)}},
        "stopReason": _STOP[reply.stop],
        "usage": _usage(in_tokens, out_tokens),
        "metrics": {"latencyMs": latency_ms},
    }


async def converse_stream(
    reply: Reply, in_tokens: int, out_tokens: int, pace: Any
) -> AsyncIterator[bytes]:
    await pace.first()
    yield stream_event("messageStart", {"role": "assistant"})
    index = 0
    if reply.text:
        for piece in pieces(reply.text, pace.words):
            delta = {"contentBlockIndex": index, "delta": {"text": piece}}
            yield stream_event("contentBlockDelta", delta)
            await pace.between()
        yield stream_event("contentBlockStop", {"contentBlockIndex": index})
        index += 1
    if reply.tool_call is not None:
        call = reply.tool_call
        start = {"toolUse": {"toolUseId": call.call_id, "name": call.name}}
        yield stream_event("contentBlockStart", {"contentBlockIndex": index, "start": start})
        args = orjson.dumps(call.arguments).decode()
        for i in range(0, len(args), 16):
            delta = {"contentBlockIndex": index, "delta": {"toolUse": {"input": args[i : i + 16]}}}
            yield stream_event("contentBlockDelta", delta)
        yield stream_event("contentBlockStop", {"contentBlockIndex": index})
    yield stream_event("messageStop", {"stopReason": _STOP[reply.stop]})
    metadata = {"usage": _usage(in_tokens, out_tokens), "metrics": {"latencyMs": pace.elapsed_ms()}}
    yield stream_event("metadata", metadata)


def invoke(kind: str, message_id: str, model: str, reply: Reply, usage: tuple[int, int]) -> Any:
    in_tokens, out_tokens = usage
    if kind == "anthropic":
        use = {"input_tokens": in_tokens, "output_tokens": out_tokens}
        return anthropic_wire.message(message_id, model, reply, use)
    if kind == "nova":
        return {
            "output": {"message": {"role": "assistant", "content": _content(reply)}},
            "stopReason": _STOP[reply.stop],
            "usage": _usage(in_tokens, out_tokens),
        }
    if kind == "titan":
        reason = {"stop": "FINISH", "length": "LENGTH"}.get(reply.stop, "FINISH")
        return {
            "inputTextTokenCount": in_tokens,
            "results": [
                {"tokenCount": out_tokens, "outputText": reply.text, "completionReason": reason}
            ],
        }
    return {
        "generation": reply.text,
        "prompt_token_count": in_tokens,
        "generation_token_count": out_tokens,
        "stop_reason": "length" if reply.stop == "length" else "stop",
    }


def _chunk(payload: dict[str, Any]) -> bytes:
    return stream_event("chunk", {"bytes": base64.b64encode(orjson.dumps(payload)).decode()})


async def invoke_stream(
    kind: str, message_id: str, model: str, reply: Reply, usage: tuple[int, int], pace: Any
) -> AsyncIterator[bytes]:
    in_tokens, out_tokens = usage
    payloads: list[dict[str, Any]] = []
    if kind == "anthropic":
        use = {"input_tokens": in_tokens, "output_tokens": out_tokens}
        async for raw in anthropic_wire.stream(message_id, model, reply, use, pace):
            data = raw.split(b"\ndata: ", 1)[1].strip()
            payload = orjson.loads(data)
            if payload["type"] == "ping":
                continue
            if payload["type"] == "message_stop":
                payload["amazon-bedrock-invocationMetrics"] = _metrics(usage, pace)
            yield _chunk(payload)
        return
    await pace.first()
    parts = pieces(reply.text, pace.words)
    if kind == "nova":
        payloads.append({"messageStart": {"role": "assistant"}})
        payloads += [
            {"contentBlockDelta": {"delta": {"text": p}, "contentBlockIndex": 0}} for p in parts
        ]
        payloads.append({"contentBlockStop": {"contentBlockIndex": 0}})
        payloads.append({"messageStop": {"stopReason": _STOP[reply.stop]}})
        payloads.append({"metadata": {"usage": _usage(in_tokens, out_tokens)}})
    elif kind == "titan":
        payloads += [{"outputText": p, "index": 0, "completionReason": None} for p in parts]
        payloads.append(
            {
                "outputText": "",
                "index": 0,
                "totalOutputTextTokenCount": out_tokens,
                "completionReason": "LENGTH" if reply.stop == "length" else "FINISH",
                "inputTextTokenCount": in_tokens,
            }
        )
    else:
        payloads += [
            {"generation": p, "prompt_token_count": None, "generation_token_count": i + 1}
            for i, p in enumerate(parts)
        ]
        payloads.append(
            {
                "generation": "",
                "prompt_token_count": in_tokens,
                "generation_token_count": out_tokens,
                "stop_reason": "length" if reply.stop == "length" else "stop",
            }
        )
    for i, payload in enumerate(payloads):
        if i == len(payloads) - 1:
            payload["amazon-bedrock-invocationMetrics"] = _metrics(usage, pace)
        yield _chunk(payload)
        await pace.between()


def _metrics(usage: tuple[int, int], pace: Any) -> dict[str, int]:
    return {
        "inputTokenCount": usage[0],
        "outputTokenCount": usage[1],
        "invocationLatency": pace.elapsed_ms(),
        "firstByteLatency": pace.first_byte_ms or 0,
    }


def error(status: int, message: str) -> tuple[str, dict[str, Any]]:
    """Bedrock's error: the ``x-amzn-ErrorType`` value and the JSON body."""
    return ERROR_TYPES.get(status, "InternalServerException"), {"message": message}
