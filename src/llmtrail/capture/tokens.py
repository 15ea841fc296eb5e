"""Offline token counting with the ``bpe-openai`` package (its encodings ship in the wheel;
``tiktoken`` downloads its files at run time, which fails offline).

Texts of any length are counted, in chunks: ``bpe-openai`` refuses a text of a million
characters or more and an encoding of more than 200,000 tokens, and counting a chunk at a time
keeps the time linear and the memory bounded by one chunk. A chunk is at most
`CHUNK_CHARS` characters — 4 UTF-8 bytes each at most, and no token is shorter than a byte, so
a chunk never encodes to more than 200,000 tokens.

Where the cuts fall makes the sum exact. Both encodings (``cl100k_base``, ``o200k_base``)
first split a text into pre-tokens with a regular expression and encode each pre-token on its
own, and none of that expression's alternatives puts a space (U+0020) after a non-whitespace
character in the same pre-token: letters, digits and punctuation never take a trailing space,
and whitespace runs hold no other character. So cutting just before such a space cuts
between two pre-tokens, and the chunks' counts add up to the whole text's count. A chunk
with no such space in it (a 50,000-character run with no word break) is cut at its length
limit instead; that one cut can move the count by a few tokens (the pre-token it splits is
encoded as two: −1 to +4 over thousands of random cuts in code, mixed scripts and digit runs),
so a count is exact for prose and code and otherwise within a few tokens per forced cut. Text
that looks like a special token (``<|endoftext|>``) is counted as the ordinary text it is.
"""

from __future__ import annotations

import functools
import re
import warnings
from collections.abc import Iterator
from typing import Any

CHUNK_CHARS = 50_000

# a space after a non-whitespace character: always a boundary between pre-tokens
_PRE_TOKEN_BREAK = re.compile(r"\S ")
_NEAR_END = 1024  # where a break is looked for first: the last characters of a chunk


@functools.cache
def _encoding(name: str) -> Any:
    with warnings.catch_warnings():  # it loads its data with importlib's deprecated open_binary
        warnings.filterwarnings("ignore", "open_binary is deprecated", DeprecationWarning)
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
    """The tokens ``text`` encodes to for ``model``'s encoding, counted chunk by chunk (see the
    module's docstring for when the sum is exact)."""
    if not text:
        return 0
    encoding = _encoding(encoding_name(model))
    return sum(len(encoding.encode_ordinary(chunk)) for chunk in text_chunks(text))


def text_chunks(text: str, size: int = CHUNK_CHARS) -> Iterator[str]:
    """``text`` in consecutive pieces of at most ``size`` characters, each ending just before a
    space that follows a non-whitespace character where the text has one in reach."""
    start = 0
    while len(text) - start > size:
        end = _chunk_end(text, start, start + size)
        yield text[start:end]
        start = end
    yield text[start:]


def _chunk_end(text: str, start: int, limit: int) -> int:
    """The last pre-token break in ``(start, limit]``, looked for near ``limit`` first, then in
    the chunk's second half, then in all of it; ``limit`` when there is none (a forced cut)."""
    half = start + (limit - start) // 2
    for low in (max(limit - _NEAR_END, half), half, start):
        last = None
        for last in _PRE_TOKEN_BREAK.finditer(text, low, limit + 1):  # noqa: B007
            pass
        if last is not None:
            return last.start() + 1
    return limit


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
