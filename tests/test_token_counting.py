"""Offline token counts of texts of any length (`llmtrail.capture.tokens`): a text is counted
in chunks cut just before a space that follows a non-space, which both encodings never put in
one pre-token, so the chunked count equals the whole-text count; a forced cut (a chunk with no
such space) moves it by a few tokens at most. The whole-text counts here come from
``bpe-openai`` directly, on texts it accepts whole (under a million characters and 200,000
tokens)."""

from __future__ import annotations

import functools
import itertools
import warnings
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmtrail.capture.tokens import CHUNK_CHARS, count_tokens, text_chunks

ROOT = Path(__file__).resolve().parent.parent
ENCODINGS = {"o200k_base": "gpt-4o", "cl100k_base": "gpt-4"}  # encoding → a model that uses it
FORCED_CUT_TOKENS = 4  # the most one forced cut moved a count in our measurements


@functools.cache
def tokenizer(encoding: str) -> Any:
    with warnings.catch_warnings():  # it loads its data with importlib's deprecated open_binary
        warnings.filterwarnings("ignore", "open_binary is deprecated", DeprecationWarning)
        import bpe_openai

        return bpe_openai.get_encoding(encoding)


def whole_count(text: str, encoding: str) -> int:
    return len(tokenizer(encoding).encode_ordinary(text))


def chunked_count(text: str, encoding: str, size: int) -> int:
    return sum(whole_count(chunk, encoding) for chunk in text_chunks(text, size))


def forced_cuts(chunks: list[str]) -> int:
    """Cuts not made just before a space that follows a non-whitespace character."""
    return sum(
        1
        for chunk, after in itertools.pairwise(chunks)
        if not (after.startswith(" ") and not chunk[-1].isspace())
    )


def real_text() -> str:
    """About 300,000 characters of prose and code: this repository's README and sources."""
    parts = [(ROOT / "README.md").read_text()]
    parts += [p.read_text() for p in sorted((ROOT / "src" / "llmtrail").rglob("*.py"))]
    return "\n".join(parts)[:300_000]


@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
@pytest.mark.parametrize("size", [CHUNK_CHARS, 5_000, 1_000])
def test_chunked_count_of_real_text_equals_the_whole_count(encoding: str, size: int) -> None:
    text = real_text()
    chunks = list(text_chunks(text, size))
    assert "".join(chunks) == text and all(len(c) <= size for c in chunks)
    assert len(chunks) >= len(text) // size and forced_cuts(chunks) == 0
    assert chunked_count(text, encoding, size) == whole_count(text, encoding)


TRICKY = [" ", "  ", "\n", "\t", "\r\n", " \n ", "word", "Word", "é", "日本語", "7", "2026",
          "!", "'s", "'LL", " '", "--", "/", "😀", "\u00a0", "\u3000", "e\u0301",
          "<|endoftext|>"]  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(
    pieces=st.lists(st.sampled_from(TRICKY), min_size=1, max_size=400),
    size=st.integers(min_value=2, max_value=60),
)
def test_cuts_before_a_space_after_a_non_space_are_exact(pieces: list[str], size: int) -> None:
    text = "".join(pieces)
    chunks = list(text_chunks(text, size))
    assert "".join(chunks) == text and all(0 < len(c) <= size for c in chunks)
    for encoding in ENCODINGS:
        difference = chunked_count(text, encoding, size) - whole_count(text, encoding)
        assert abs(difference) <= FORCED_CUT_TOKENS * forced_cuts(chunks)


def test_a_text_without_word_breaks_is_within_the_bound() -> None:
    for text in ("a" * 900_000, "1234567890" * 50_000, "日本語のテキスト" * 25_000):
        chunks = list(text_chunks(text))
        assert forced_cuts(chunks) == len(chunks) - 1 > 0
        for encoding in ENCODINGS:
            difference = chunked_count(text, encoding, CHUNK_CHARS) - whole_count(text, encoding)
            assert abs(difference) <= FORCED_CUT_TOKENS * forced_cuts(chunks)


def test_texts_too_long_for_the_tokenizer_are_counted() -> None:
    # "word", then " word" 999,999 times, then the trailing " ": one token each
    assert count_tokens("word " * 10) == 11
    assert count_tokens("word " * 1_000_000) == 1_000_001
    assert count_tokens("word " * 1_000_000, "gpt-4") == 1_000_001
    assert count_tokens("a" * 5_000_000) > 0  # no word break at all: forced cuts only
    assert count_tokens("\U0001f600" * 1_000_000) > 0  # 4 UTF-8 bytes a character


def test_special_token_text_is_counted_as_text() -> None:
    assert count_tokens("<|endoftext|>") == whole_count("<|endoftext|>", "o200k_base") > 1
    assert count_tokens("") == 0
