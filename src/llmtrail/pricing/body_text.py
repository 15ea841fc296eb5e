"""The text of a logged request or response body, for character counts.

A record's bodies are in the wire shape of the API that was called, so the text is found by
shape, not by provider: OpenAI chat and completions, OpenAI embeddings, Anthropic Messages,
Bedrock Converse (and Amazon Nova's InvokeModel body, which is Converse-shaped), and the
InvokeModel bodies of the other Bedrock families (Titan ``inputText``/``outputText``, Llama
and Mistral ``prompt``/``generation``/``outputs``, Cohere ``message``/``texts``/``text``,
Claude's legacy ``prompt``/``completion``). Only text counts: images, tool calls and their
JSON arguments do not. Pure functions that never raise on odd input.
"""

from __future__ import annotations

from typing import Any

# Keys whose string (or list of strings) value is request text.
_INPUT_TEXT_KEYS = ("prompt", "inputText", "message", "input", "texts", "instructions")
# Keys whose string value is response text.
_OUTPUT_TEXT_KEYS = ("completion", "generation", "outputText", "text")


def _blocks_text(content: Any) -> str:
    """A content value: a string, or a list of blocks/parts whose ``text`` counts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            b["text"] for b in content if isinstance(b, dict) and isinstance(b.get("text"), str)
        )
    return ""


def _strings(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(v for v in value if isinstance(v, str))
    return ""


def input_text(body: Any) -> str:
    """The text a request body sends: system prompt, message contents, prompts, inputs."""
    if not isinstance(body, dict):
        return ""
    parts = [_blocks_text(body.get("system"))]
    messages = body.get("messages")
    if isinstance(messages, list):
        parts += [_blocks_text(m.get("content")) for m in messages if isinstance(m, dict)]
    parts += [_strings(body.get(key)) for key in _INPUT_TEXT_KEYS]
    return "".join(parts)


def output_text(body: Any) -> str:
    """The text a response body returns: choices, content blocks, generations, results."""
    if not isinstance(body, dict):
        return ""
    parts: list[str] = []
    choices = body.get("choices")
    if isinstance(choices, list):  # OpenAI chat and completions
        for choice in choices:
            if not isinstance(choice, dict):
                continue
            message = choice.get("message")
            if isinstance(message, dict):
                parts.append(_blocks_text(message.get("content")))
            parts.append(_strings(choice.get("text")))
    content = body.get("content")
    if isinstance(content, list):  # Anthropic Messages
        parts.append(_blocks_text(content))
    output = body.get("output")
    if isinstance(output, dict) and isinstance(output.get("message"), dict):  # Converse, Nova
        parts.append(_blocks_text(output["message"].get("content")))
    for key in ("results", "outputs", "generations"):  # Titan, Mistral, Cohere
        items = body.get(key)
        if isinstance(items, list):
            for item in items:
                if isinstance(item, dict):
                    parts.append(_strings(item.get("outputText")) + _strings(item.get("text")))
    parts += [_strings(body.get(key)) for key in _OUTPUT_TEXT_KEYS]
    return "".join(parts)
