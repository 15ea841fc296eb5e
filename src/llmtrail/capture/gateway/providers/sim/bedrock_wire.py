"""``sim`` in the Bedrock runtime's formats: Converse, ConverseStream (event-stream frames),
InvokeModel and InvokeModelWithResponseStream (``chunk`` events with base64 bytes).

InvokeModel bodies are model-family specific; ``sim`` answers in the family the request body
is written for: Anthropic Messages (``anthropic_version``), Amazon Nova (``messages`` with
``inferenceConfig`` or ``schemaVersion``), Amazon Titan Text (``inputText``) and Meta Llama
(``prompt``). Any other body is a ``ValidationException``, as Bedrock answers it.
"""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator
from typing import Any

import orjson

from llmtrail.capture.gateway.bedrock.eventstream import event as stream_event
from llmtrail.capture.gateway.providers.sim import anthropic_wire
from llmtrail.capture.gateway.providers.sim.openai_wire import pieces
from llmtrail.capture.gateway.providers.sim.plan import Conversation, Reply, Tool, Usage

_LLAMA_USER = re.compile(
    r"<\|start_header_id\|>user<\|end_header_id\|>(.*?)(?:<\|eot_id\|>|$)", re.S
)  # a user turn in Llama 3's prompt template
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


def converse_conversation(body: dict[str, Any], max_tokens_key: str = "maxTokens") -> Conversation:
    """The `Conversation` of a Converse body (and of Nova's InvokeModel body, whose limit is
    ``inferenceConfig.max_new_tokens``): the tools' specs, the system blocks and every message
    block, in cache order, a ``cachePoint`` ending the cacheable prefix; the tool choice; the
    last turn's tool result; the token limit."""
    conv = Conversation()
    config: dict[str, Any] = body["toolConfig"] if isinstance(body.get("toolConfig"), dict) else {}
    for entry in config.get("tools") or []:
        spec = entry.get("toolSpec") if isinstance(entry, dict) else None
        if isinstance(spec, dict):
            schema = spec.get("inputSchema")
            schema = schema.get("json") if isinstance(schema, dict) else None
            name = str(spec.get("name", ""))
            conv.tools.append(Tool(name, schema if isinstance(schema, dict) else {}))
            conv.read(name + orjson.dumps(schema).decode())
        elif isinstance(entry, dict) and "cachePoint" in entry:
            conv.mark_cache()
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    system = body.get("system")
    blocks = list(system) if isinstance(system, list) else []
    for message in messages:
        content = message.get("content")
        blocks += content if isinstance(content, list) else []
    for block in blocks:
        if isinstance(block, dict) and "cachePoint" in block:
            conv.mark_cache()
        else:
            conv.read(_block_text(block))
    choice = config.get("toolChoice")
    if isinstance(choice, dict):
        if "any" in choice:
            conv.forced_tool = ""
        elif isinstance(choice.get("tool"), dict):
            conv.forced_tool = str(choice["tool"].get("name", ""))
    users = [m for m in messages if m.get("role") == "user"]
    if users:
        conv.last_user_text = "".join(
            b["text"]
            for b in users[-1].get("content") or []
            if isinstance(b, dict) and isinstance(b.get("text"), str)
        )
    last = messages[-1] if messages else {}
    results = [
        b["toolResult"]
        for b in last.get("content") or []
        if isinstance(b, dict) and isinstance(b.get("toolResult"), dict)
    ]
    if last.get("role") == "user" and results:
        conv.tool_result = _block_text({"toolResult": results[-1]})
        conv.tool_result_name = _tool_name(messages, results[-1].get("toolUseId"))
    inference = body.get("inferenceConfig")
    limit = inference.get(max_tokens_key) if isinstance(inference, dict) else None
    conv.max_tokens = limit if type(limit) is int else None
    return conv


def _block_text(block: Any) -> str:
    """What the model reads in a Converse content block."""
    if not isinstance(block, dict):
        return ""
    if isinstance(block.get("text"), str):
        return str(block["text"])
    if isinstance(block.get("toolResult"), dict):
        parts = block["toolResult"].get("content")
        out = ""
        for part in parts if isinstance(parts, list) else []:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                out += part["text"]
            elif isinstance(part, dict) and "json" in part:
                out += orjson.dumps(part["json"]).decode()
        return out
    if isinstance(block.get("toolUse"), dict):
        use = block["toolUse"]
        return str(use.get("name", "")) + orjson.dumps(use.get("input", {})).decode()
    return ""


def _tool_name(messages: list[dict[str, Any]], use_id: Any) -> str | None:
    for message in reversed(messages):
        for block in message.get("content") or []:
            use = block.get("toolUse") if isinstance(block, dict) else None
            if isinstance(use, dict) and use.get("toolUseId") == use_id:
                return str(use.get("name") or "") or None
    return None


def invoke_conversation(kind: str, body: dict[str, Any]) -> Conversation:
    """The `Conversation` of an InvokeModel body of the family ``kind``. Llama's user text is
    its last user turn when the prompt uses Llama's template, else the whole prompt."""
    if kind == "anthropic":
        return anthropic_wire.conversation(body)
    if kind == "nova":
        return converse_conversation(body, "max_new_tokens")
    if kind == "llama":
        text = str(body.get("prompt") or "")
        users = _LLAMA_USER.findall(text)
        limit = body.get("max_gen_len")
        last_user = users[-1].strip() if users else text
    else:
        text = str(body.get("inputText") or "")
        config = body.get("textGenerationConfig")
        limit = config.get("maxTokenCount") if isinstance(config, dict) else None
        last_user = text
    max_tokens = limit if type(limit) is int else None
    return Conversation([text], last_user_text=last_user, max_tokens=max_tokens)


def _content(reply: Reply) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = [{"text": reply.text}] if reply.text else []
    if reply.tool_call is not None:
        call = reply.tool_call
        blocks.append({"toolUse": {"toolUseId": call.id, "name": call.name, "input": call.input}})
    return blocks


def _usage(usage: Usage) -> dict[str, int]:
    """Converse's ``usage``; the cache counts appear when the call used the cache."""
    out = {
        "inputTokens": usage.input_tokens,
        "outputTokens": usage.output_tokens,
        "totalTokens": usage.total,
    }
    if usage.cache_read or usage.cache_write:
        out["cacheReadInputTokens"] = usage.cache_read
        out["cacheWriteInputTokens"] = usage.cache_write
    return out


def converse(reply: Reply, latency_ms: int) -> dict[str, Any]:
    return {
        "output": {"message": {"role": "assistant", "content": _content(reply)}},
        "stopReason": reply.stop_reason,
        "usage": _usage(reply.usage),
        "metrics": {"latencyMs": latency_ms},
    }


async def converse_stream(reply: Reply, pace: Any) -> AsyncIterator[bytes]:
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
        start = {"toolUse": {"toolUseId": call.id, "name": call.name}}
        yield stream_event("contentBlockStart", {"contentBlockIndex": index, "start": start})
        args = call.input_json
        for i in range(0, len(args), 16):
            delta = {"contentBlockIndex": index, "delta": {"toolUse": {"input": args[i : i + 16]}}}
            yield stream_event("contentBlockDelta", delta)
        yield stream_event("contentBlockStop", {"contentBlockIndex": index})
    yield stream_event("messageStop", {"stopReason": reply.stop_reason})
    metadata = {"usage": _usage(reply.usage), "metrics": {"latencyMs": pace.elapsed_ms()}}
    yield stream_event("metadata", metadata)


def invoke(kind: str, message_id: str, model: str, reply: Reply) -> Any:
    in_tokens, out_tokens = reply.usage.input_tokens, reply.usage.output_tokens
    if kind == "anthropic":
        return anthropic_wire.message(message_id, model, reply)
    if kind == "nova":
        return {
            "output": {"message": {"role": "assistant", "content": _content(reply)}},
            "stopReason": reply.stop_reason,
            "usage": _usage(reply.usage),
        }
    cut = reply.stop_reason == "max_tokens"
    if kind == "titan":
        reason = "LENGTH" if cut else "FINISH"
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
        "stop_reason": "length" if cut else "stop",
    }


def _chunk(payload: dict[str, Any]) -> bytes:
    return stream_event("chunk", {"bytes": base64.b64encode(orjson.dumps(payload)).decode()})


async def invoke_stream(
    kind: str, message_id: str, model: str, reply: Reply, pace: Any
) -> AsyncIterator[bytes]:
    usage = reply.usage
    in_tokens, out_tokens = usage.input_tokens, usage.output_tokens
    cut = reply.stop_reason == "max_tokens"
    payloads: list[dict[str, Any]] = []
    if kind == "anthropic":
        async for raw in anthropic_wire.stream(message_id, model, reply, pace):
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
        payloads.append({"messageStop": {"stopReason": reply.stop_reason}})
        payloads.append({"metadata": {"usage": _usage(usage)}})
    elif kind == "titan":
        payloads += [{"outputText": p, "index": 0, "completionReason": None} for p in parts]
        payloads.append(
            {
                "outputText": "",
                "index": 0,
                "totalOutputTextTokenCount": out_tokens,
                "completionReason": "LENGTH" if cut else "FINISH",
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
                "stop_reason": "length" if cut else "stop",
            }
        )
    for i, payload in enumerate(payloads):
        if i == len(payloads) - 1:
            payload["amazon-bedrock-invocationMetrics"] = _metrics(usage, pace)
        yield _chunk(payload)
        await pace.between()


def _metrics(usage: Usage, pace: Any) -> dict[str, int]:
    return {
        "inputTokenCount": usage.input_tokens,
        "outputTokenCount": usage.output_tokens,
        "invocationLatency": pace.elapsed_ms(),
        "firstByteLatency": pace.first_byte_ms or 0,
    }


def error(status: int, message: str) -> tuple[str, dict[str, Any]]:
    """Bedrock's error: the ``x-amzn-ErrorType`` value and the JSON body."""
    return ERROR_TYPES.get(status, "InternalServerException"), {"message": message}
