"""The text of a logged request or response body, for character counts.

A record's bodies are in the wire shape of the API that was called, so the text is found by
shape, not by provider: OpenAI chat and completions, OpenAI embeddings, Anthropic Messages,
Bedrock Converse (and Amazon Nova's InvokeModel body, which is Converse-shaped), and the
InvokeModel bodies of the other Bedrock families (Titan ``inputText``/``outputText``, Llama
and Mistral ``prompt``/``generation``/``outputs``, Cohere ``message``/``texts``/``text``,
Claude's legacy ``prompt``/``completion``). Only text counts: images, tool calls and their
JSON arguments do not. Pure functions that never raise on odd input.

`input_chars` and `output_chars` are the lengths of those texts, counted piece by piece without
joining them: enrichment counts every record's characters and needs nothing else.
"""

from __future__ import annotations

from typing import Any

__all__ = ["input_chars", "input_text", "output_chars", "output_text"]

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


# -- lengths only ----------------------------------------------------------------------------


def _blocks_len(content: Any) -> int:
    """``len(_blocks_text(content))``."""
    if isinstance(content, str):
        return len(content)
    n = 0
    if isinstance(content, list):
        for block in content:
            if isinstance(block, dict):
                text = block.get("text")
                if isinstance(text, str):
                    n += len(text)
    return n


def _strings_len(value: Any) -> int:
    """``len(_strings(value))``."""
    if isinstance(value, str):
        return len(value)
    n = 0
    if isinstance(value, list):
        for item in value:
            if isinstance(item, str):
                n += len(item)
    return n


def input_chars(body: Any) -> int:
    """``len(input_text(body))``, without making the text."""
    if type(body) is not dict:
        return len(input_text(body))
    n = 0
    for key, value in body.items():  # a body has few keys; most are not text
        if key in _INPUT_KEYS and value is not None:
            if key == "messages":
                if isinstance(value, list):
                    for message in value:
                        if isinstance(message, dict):
                            content = message.get("content")
                            if isinstance(content, str):
                                n += len(content)
                            elif content is not None:
                                n += _blocks_len(content)
            elif key == "system":
                n += _blocks_len(value)
            else:
                n += _strings_len(value)
    return n


def output_chars(body: Any) -> int:
    """``len(output_text(body))``, without making the text."""
    if type(body) is not dict:
        return len(output_text(body))
    n = 0
    for key, value in body.items():
        if key not in _OUTPUT_KEYS or value is None:
            continue
        if key == "choices":
            if isinstance(value, list):  # OpenAI chat and completions
                for choice in value:
                    if isinstance(choice, dict):
                        message = choice.get("message")
                        if isinstance(message, dict):
                            n += _blocks_len(message.get("content"))
                        n += _strings_len(choice.get("text"))
        elif key == "content":
            if isinstance(value, list):  # Anthropic Messages
                n += _blocks_len(value)
        elif key == "output":
            if isinstance(value, dict):  # Converse, Nova
                message = value.get("message")
                if isinstance(message, dict):
                    n += _blocks_len(message.get("content"))
        elif key in _OUTPUT_LISTS:
            if isinstance(value, list):  # Titan, Mistral, Cohere
                for item in value:
                    if isinstance(item, dict):
                        n += _strings_len(item.get("outputText")) + _strings_len(item.get("text"))
        else:
            n += _strings_len(value)
    return n


_INPUT_KEYS = frozenset({"system", "messages", *_INPUT_TEXT_KEYS})
_OUTPUT_LISTS = frozenset({"results", "outputs", "generations"})
_OUTPUT_KEYS = frozenset({"choices", "content", "output", *_OUTPUT_LISTS, *_OUTPUT_TEXT_KEYS})
