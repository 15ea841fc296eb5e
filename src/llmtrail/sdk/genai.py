"""The attributes a finished span becomes, following the OpenTelemetry GenAI conventions.

A pure function of a `FinishedSpan`, run in the exporter's thread so the app's thread only
pays for serialising its values. Where the conventions have a name it is used
(``gen_ai.operation.name``, ``gen_ai.request.model``, ``gen_ai.usage.*``,
``gen_ai.input.messages`` / ``gen_ai.output.messages`` as JSON text in the conventions' parts
shape); llmtrail's own facts go under ``llmtrail.*``. For ``llm`` and ``embedding`` spans the
model, token usage, response id and messages are read from what the function returned when it
is an OpenAI, Anthropic or Bedrock Converse response, and from its ``messages`` argument, so
that ``@llm`` around a client call needs no `annotate`. Anything given to `annotate` wins.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from llmtrail.sdk.spans import AttributeValue, FinishedSpan

OPERATIONS = {
    "llm": "chat",
    "embedding": "embeddings",
    "tool": "execute_tool",
    "agent": "invoke_agent",
    "workflow": "invoke_workflow",
    "retrieval": "retrieval",
}
USAGE_KEYS = {
    "input_tokens": "gen_ai.usage.input_tokens",
    "prompt_tokens": "gen_ai.usage.input_tokens",
    "inputTokens": "gen_ai.usage.input_tokens",
    "output_tokens": "gen_ai.usage.output_tokens",
    "completion_tokens": "gen_ai.usage.output_tokens",
    "outputTokens": "gen_ai.usage.output_tokens",
    "cache_read_input_tokens": "gen_ai.usage.cache_read.input_tokens",
    "cache_read_tokens": "gen_ai.usage.cache_read.input_tokens",
    "cacheReadInputTokens": "gen_ai.usage.cache_read.input_tokens",
    "cache_creation_input_tokens": "gen_ai.usage.cache_creation.input_tokens",
    "cache_write_tokens": "gen_ai.usage.cache_creation.input_tokens",
    "cacheWriteInputTokens": "gen_ai.usage.cache_creation.input_tokens",
    "reasoning_tokens": "gen_ai.usage.reasoning.output_tokens",
}
_NO_VALUE = object()


def span_attributes(span: FinishedSpan) -> dict[str, AttributeValue]:
    """Every attribute of ``span`` in the order they are exported."""
    out: dict[str, AttributeValue] = {"llmtrail.span.kind": span.kind}
    operation = OPERATIONS.get(span.kind)
    if operation:
        out["gen_ai.operation.name"] = operation
    if span.kind == "tool":
        out["gen_ai.tool.name"] = span.name
    elif span.kind == "agent":
        out["gen_ai.agent.name"] = span.name
    if span.session_id:
        out["session.id"] = span.session_id
    if span.kind in ("llm", "embedding"):
        out.update(_inferred(span))
    if span.model:
        out["gen_ai.request.model"] = span.model
    for key, value in span.usage.items():
        out[USAGE_KEYS.get(key, f"llmtrail.usage.{key}")] = value
    if span.input is not None:
        out["llmtrail.input"] = span.input
    if span.output is not None:
        out["llmtrail.output"] = span.output
    if span.output_items is not None:
        out["llmtrail.output.items"] = span.output_items
    for part in span.truncated:
        out[f"llmtrail.{part}.truncated"] = True
    if span.tags:
        out["llmtrail.tags"] = list(span.tags)
    for key, value in span.metadata.items():
        out[f"llmtrail.metadata.{key}"] = _scalar(value)
    if span.exception is not None:
        out["error.type"] = span.exception.type
    if span.status == "CANCELLED":
        out["llmtrail.status"] = "CANCELLED"
    out.update(span.attributes)
    return out


def _scalar(value: Any) -> AttributeValue:
    if isinstance(value, str | bool | int | float):
        return value
    return orjson.dumps(value, default=str).decode()


def _parsed(text: str | None) -> Any:
    if text is None:
        return _NO_VALUE
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return _NO_VALUE


def _inferred(span: FinishedSpan) -> dict[str, AttributeValue]:
    """Model, usage, response id and messages read from the span's input and output."""
    out: dict[str, AttributeValue] = {}
    arguments = _parsed(span.input)
    if isinstance(arguments, dict) and isinstance(arguments.get("model"), str):
        out["gen_ai.request.model"] = arguments["model"]
    if span.kind == "llm":
        system = arguments.get("system") if isinstance(arguments, dict) else None
        if isinstance(system, str) and system:
            out["gen_ai.system_instructions"] = _json([{"type": "text", "content": system}])
        messages = input_messages(arguments)
        if messages:
            out["gen_ai.input.messages"] = _json(messages)
    result = _parsed(span.output)
    if span.output_items is not None and isinstance(result, list):
        if result and all(isinstance(item, str) for item in result):
            result = "".join(result)
        else:
            result = _NO_VALUE
    response = response_facts(result)
    for key in ("gen_ai.response.id", "gen_ai.response.model"):
        if key in response:
            out[key] = response[key]
    if "gen_ai.response.model" in response and "gen_ai.request.model" not in out:
        out["gen_ai.request.model"] = response["gen_ai.response.model"]
    usage = response.get("usage")
    if isinstance(usage, dict):
        for key, value in usage.items():
            if key in USAGE_KEYS and isinstance(value, int) and not isinstance(value, bool):
                out[USAGE_KEYS[key]] = value
    if span.kind == "llm" and response.get("messages"):
        out["gen_ai.output.messages"] = _json(response["messages"])
        reasons = [m["finish_reason"] for m in response["messages"] if m.get("finish_reason")]
        if reasons:
            out["gen_ai.response.finish_reasons"] = reasons
    return out


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def input_messages(arguments: Any) -> list[dict[str, Any]]:
    """The conversation an ``llm`` span was given, in the conventions' input-messages shape:
    its ``messages`` argument, a bare list of role messages, or its only text argument."""
    if isinstance(arguments, dict):
        if _is_messages(arguments.get("messages")):
            return [_message(m) for m in arguments["messages"]]
        texts = [v for v in arguments.values() if isinstance(v, str)]
        if len(arguments) == 1 and len(texts) == 1:
            return [{"role": "user", "parts": [{"type": "text", "content": texts[0]}]}]
        return []
    if _is_messages(arguments):
        return [_message(m) for m in arguments]
    if isinstance(arguments, str):
        return [{"role": "user", "parts": [{"type": "text", "content": arguments}]}]
    return []


def _is_messages(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(m, dict) and isinstance(m.get("role"), str) for m in value)
    )


def _message(raw: Mapping[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    role = raw.get("role") or "assistant"
    parts = _parts(raw.get("content"))
    for call in raw.get("tool_calls") or []:
        if isinstance(call, dict) and isinstance(call.get("function"), dict):
            function = call["function"]
            arguments = _parsed(function.get("arguments")) if function.get("arguments") else None
            parts.append(
                {
                    "type": "tool_call",
                    "id": call.get("id"),
                    "name": function.get("name"),
                    "arguments": None if arguments is _NO_VALUE else arguments,
                }
            )
    if role == "tool" and raw.get("tool_call_id"):
        parts = [
            {
                "type": "tool_call_response",
                "id": raw["tool_call_id"],
                "response": raw.get("content"),
            }
        ]
    message: dict[str, Any] = {"role": role, "parts": parts}
    if finish_reason is not None:
        message["finish_reason"] = finish_reason
    return message


def _parts(content: Any) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "content": content}]
    if not isinstance(content, list):
        return [{"type": "text", "content": _json(content)}]
    return [_part(block) for block in content]


def _part(block: Any) -> dict[str, Any]:
    if isinstance(block, str):
        return {"type": "text", "content": block}
    if not isinstance(block, dict):
        return {"type": "text", "content": _json(block)}
    kind = block.get("type")
    if kind == "text" or (kind is None and isinstance(block.get("text"), str)):
        return {"type": "text", "content": block.get("text")}
    if kind == "tool_use":
        return {
            "type": "tool_call",
            "id": block.get("id"),
            "name": block.get("name"),
            "arguments": block.get("input"),
        }
    if kind == "tool_result":
        return {
            "type": "tool_call_response",
            "id": block.get("tool_use_id"),
            "response": block.get("content"),
        }
    if isinstance(block.get("toolUse"), dict):
        use = block["toolUse"]
        return {
            "type": "tool_call",
            "id": use.get("toolUseId"),
            "name": use.get("name"),
            "arguments": use.get("input"),
        }
    if isinstance(block.get("toolResult"), dict):
        result = block["toolResult"]
        return {
            "type": "tool_call_response",
            "id": result.get("toolUseId"),
            "response": result.get("content"),
        }
    if kind is None:
        return {"type": next(iter(block), "unknown"), **block}
    return dict(block)


def response_facts(result: Any) -> dict[str, Any]:
    """What a model response says about itself: ``gen_ai.response.id``/``.model``, ``usage``
    (its own key names) and the output ``messages``; empty for an unknown shape."""
    if isinstance(result, str):
        return {"messages": [_message({"role": "assistant", "content": result}, "stop")]}
    if not isinstance(result, dict):
        return {}
    facts: dict[str, Any] = {}
    if isinstance(result.get("id"), str):
        facts["gen_ai.response.id"] = result["id"]
    if isinstance(result.get("model"), str):
        facts["gen_ai.response.model"] = result["model"]
    usage = result.get("usage")
    if isinstance(usage, dict):
        facts["usage"] = dict(usage)
        details = usage.get("prompt_tokens_details")
        if isinstance(details, dict) and isinstance(details.get("cached_tokens"), int):
            facts["usage"]["cache_read_tokens"] = details["cached_tokens"]
    if isinstance(result.get("choices"), list):
        facts["messages"] = [
            _message(c["message"], c.get("finish_reason"))
            for c in result["choices"]
            if isinstance(c, dict) and isinstance(c.get("message"), dict)
        ]
    elif result.get("type") == "message" and isinstance(result.get("content"), list):
        facts["messages"] = [_message(result, result.get("stop_reason"))]
    elif isinstance(result.get("output"), dict) and isinstance(
        result["output"].get("message"), dict
    ):
        facts["messages"] = [_message(result["output"]["message"], result.get("stopReason"))]
    elif isinstance(result.get("role"), str):
        facts["messages"] = [_message(result, result.get("finish_reason"))]
    return facts
