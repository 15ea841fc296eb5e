"""InvokeModel bodies per model family for the fake Bedrock: Anthropic Claude, Amazon Nova,
Meta Llama and Amazon Titan Text.

InvokeModel passes each model's native JSON through, so every family has its own request,
response and stream-chunk shapes, and token counts sit in different places (Claude's
``usage``, Nova's ``usage``, Llama's ``*_token_count``, Titan's ``*TokenCount``). A gateway
that logs InvokeModel must read all of them; this module writes them, as pure functions:

* Claude: the Messages body (`llmtrail.testing.anthropic_messages`), ids ``msg_bdrk_…``;
  chunks are the Messages stream events without ``ping``;
* Nova: ``{"output": {"message"}, "stopReason", "usage": {inputTokens, outputTokens,
  totalTokens, cacheReadInputTokenCount, cacheWriteInputTokenCount}}``; chunks are
  ``{"messageStart"}``, ``{"contentBlockDelta"}``, …, ``{"metadata": {"usage", …}}``;
* Llama: ``{"generation", "prompt_token_count", "generation_token_count", "stop_reason"}``,
  one such object per chunk (``generation_token_count`` running, the prompt count on the first);
* Titan: ``{"inputTextTokenCount", "results": [{"tokenCount", "outputText",
  "completionReason"}]}``; chunks ``{"outputText", "index", "totalOutputTextTokenCount",
  "completionReason", "inputTextTokenCount"}``.

The server adds ``amazon-bedrock-invocationMetrics`` to the last chunk (`invocation_metrics`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from llmtrail.capture.gateway.providers.sim import bedrock_wire
from llmtrail.capture.gateway.providers.sim.plan import Conversation, Reply, Usage
from llmtrail.testing import anthropic_messages, converse_messages
from llmtrail.testing.scripted_reply import InvalidRequest, count_tokens, pieces

__all__ = [
    "FAMILIES",
    "invocation_metrics",
    "invoke_body",
    "invoke_chunks",
    "model_family",
    "read_invoke_request",
    "served_model_name",
]

FAMILIES = ("anthropic", "nova", "llama", "titan")
_ID_MARKERS = (
    ("anthropic.", "anthropic"),
    ("amazon.nova", "nova"),
    ("meta.llama", "llama"),
    ("amazon.titan-text", "titan"),
)


def model_family(model_id: str, body: Mapping[str, Any]) -> str | None:
    """The family a model id names; for ids that name none (switches such as ``fail-429``,
    application inference profiles), the family the body's shape belongs to."""
    lowered = model_id.lower()
    for marker, family in _ID_MARKERS:
        if marker in lowered:
            return family
    if "anthropic_version" in body:
        return "anthropic"
    if "messages" in body:
        return "nova"
    if "prompt" in body:
        return "llama"
    if "inputText" in body:
        return "titan"
    return None


def served_model_name(model_id: str) -> str:
    """What Claude reports as ``model``: ``us.anthropic.claude-3-5-haiku-20241022-v1:0`` →
    ``claude-3-5-haiku-20241022``."""
    name = model_id.rsplit("/", 1)[-1]
    match = re.search(r"anthropic\.(.+?)(?:-v\d+(?::\d+)?)?$", name)
    return match[1] if match else name


def _malformed(problem: str) -> InvalidRequest:
    return InvalidRequest(
        f"Malformed input request: #: {problem}, please reformat your input and try again."
    )


def _number(body: Mapping[str, Any], key: str) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _malformed(f"{key}: expected a positive integer")
    return value


def read_invoke_request(family: str, body: Mapping[str, Any]) -> Conversation:
    """The `Conversation` of a family's request body (``sim``'s reader), after the checks
    Bedrock makes; raises `InvalidRequest` as Bedrock words it."""
    if family == "anthropic":
        for key in ("anthropic_version", "max_tokens", "messages"):
            if key not in body:
                raise _malformed(f"required key [{key}] not found")
        for key in ("model", "stream"):
            if key in body:
                raise _malformed(f"extraneous key [{key}] is not permitted")
        return anthropic_messages.read_messages_request(body, require_model=False)
    if family == "nova":
        return converse_messages.read_converse_request(body, max_tokens_key="max_new_tokens")
    key = "prompt" if family == "llama" else "inputText"
    text = body.get(key)
    if not isinstance(text, str):
        raise _malformed(f"required key [{key}] not found")
    if family == "llama":
        _number(body, "max_gen_len")
    elif isinstance(body.get("textGenerationConfig"), Mapping):
        _number(body["textGenerationConfig"], "maxTokenCount")
    return bedrock_wire.invoke_conversation(family, dict(body))


def _nova_usage(usage: Usage, *, total: bool) -> dict[str, int]:
    out = {"inputTokens": usage.input_tokens, "outputTokens": usage.output_tokens}
    if total:
        out["totalTokens"] = usage.total
    out["cacheReadInputTokenCount"] = usage.cache_read
    out["cacheWriteInputTokenCount"] = usage.cache_write
    return out


def invoke_body(family: str, reply: Reply, *, model_id: str, message_id: str) -> dict[str, Any]:
    """The InvokeModel response body."""
    if family == "anthropic":
        return anthropic_messages.message_body(
            reply, model=served_model_name(model_id), message_id=message_id
        )
    if family == "nova":
        message = {"content": converse_messages.content_blocks(reply), "role": "assistant"}
        return {
            "output": {"message": message},
            "stopReason": reply.stop_reason,
            "usage": _nova_usage(reply.usage, total=True),
        }
    usage = reply.usage
    if family == "llama":
        return {
            "generation": reply.text,
            "prompt_token_count": usage.input_tokens,
            "generation_token_count": usage.output_tokens,
            "stop_reason": "length" if reply.stop_reason == "max_tokens" else "stop",
        }
    result = {
        "tokenCount": usage.output_tokens,
        "outputText": reply.text,
        "completionReason": "LENGTH" if reply.stop_reason == "max_tokens" else "FINISH",
    }
    return {"inputTextTokenCount": usage.input_tokens, "results": [result]}


def invoke_chunks(
    family: str, reply: Reply, *, model_id: str, message_id: str
) -> list[dict[str, Any]]:
    """The JSON objects InvokeModelWithResponseStream carries, one per ``chunk`` event."""
    if family == "anthropic":
        events = anthropic_messages.stream_events(
            reply, model=served_model_name(model_id), message_id=message_id, ping=False
        )
        return [data for _, data in events]
    if family == "nova":
        events = converse_messages.stream_events(reply)[:-1]  # Nova's metadata differs
        metadata = {"usage": _nova_usage(reply.usage, total=False), "metrics": {}, "trace": {}}
        return [{name: payload} for name, payload in events] + [{"metadata": metadata}]
    parts = pieces(reply.text) or [""]
    chunks: list[dict[str, Any]] = []
    written = ""
    for n, part in enumerate(parts):
        written += part
        last = n == len(parts) - 1
        if family == "llama":
            stop = "length" if reply.stop_reason == "max_tokens" else "stop"
            chunks.append(
                {
                    "generation": part,
                    "prompt_token_count": reply.usage.input_tokens if n == 0 else None,
                    "generation_token_count": count_tokens(written),
                    "stop_reason": stop if last else None,
                }
            )
        else:
            reason = "LENGTH" if reply.stop_reason == "max_tokens" else "FINISH"
            chunks.append(
                {
                    "outputText": part,
                    "index": 0,
                    "totalOutputTextTokenCount": reply.usage.output_tokens if last else None,
                    "completionReason": reason if last else None,
                    "inputTextTokenCount": reply.usage.input_tokens if n == 0 else None,
                }
            )
    if family == "llama":
        chunks[-1]["generation_token_count"] = reply.usage.output_tokens
    return chunks


def invocation_metrics(usage: Usage, *, latency_ms: int, first_byte_ms: int) -> dict[str, int]:
    """``amazon-bedrock-invocationMetrics`` of the last chunk; the cache counts appear only
    when the call used the cache."""
    metrics = {
        "inputTokenCount": usage.input_tokens,
        "outputTokenCount": usage.output_tokens,
        "invocationLatency": latency_ms,
        "firstByteLatency": first_byte_ms,
    }
    if usage.cache_read or usage.cache_write:
        metrics["cacheReadInputTokenCount"] = usage.cache_read
        metrics["cacheWriteInputTokenCount"] = usage.cache_write
    return metrics
