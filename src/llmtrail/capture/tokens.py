"""Offline token counting with the ``bpe-openai`` package (its encodings ship in the wheel;
``tiktoken`` downloads its files at run time, which fails offline)."""

from __future__ import annotations

import functools
from typing import Any


@functools.cache
def _encoding(name: str) -> Any:
    import bpe_openai

    return bpe_openai.get_encoding(name)


def encoding_name(model: str) -> str:
    model = model.rsplit("/", 1)[-1]
    return (
        "cl100k_base"
        if model.startswith(("gpt-3.5", "gpt-4-", "gpt-4", "text-embedding"))
        and not model.startswith(("gpt-4o", "gpt-4.1"))
        else "o200k_base"
    )


def count_tokens(text: str, model: str = "") -> int:
    if not text:
        return 0
    return len(_encoding(encoding_name(model)).encode(text))


def message_text(content: Any) -> str:
    """The text of an OpenAI message ``content`` (a string or a list of parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            p.get("text", "")
            for p in content
            if isinstance(p, dict) and isinstance(p.get("text"), str)
        )
    return ""


def count_chat_prompt(messages: Any, model: str = "") -> int:
    """OpenAI's accounting: about 3 tokens per message plus its text, plus 3 for the reply."""
    if not isinstance(messages, list):
        return 0
    total = 3
    for message in messages:
        if isinstance(message, dict):
            total += 3 + count_tokens(message_text(message.get("content")), model)
            total += count_tokens(str(message.get("role", "")), model)
    return total
