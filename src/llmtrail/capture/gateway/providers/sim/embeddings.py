"""``sim`` embeddings, validated as the real APIs validate them.

An embeddings request costs CPU in proportion to inputs × dimensions, so the limits are
OpenAI's own, not the sim's generosity: at most `MAX_INPUTS` inputs, each at most
`MAX_INPUT_TOKENS` tokens and `MAX_REQUEST_TOKENS` in all, ``dimensions`` from 1 to the
model's size (`MODEL_DIMENSIONS`; `LARGEST_DIMENSIONS` for a model OpenAI does not have).
A request over a limit is refused with `Refused`, naming the field and the limit, before any
vector is computed. Tokens are counted a chunk at a time and counting stops at the limit, so
an input of millions of characters costs no more than one at the limit.

The functions are synchronous CPU work: the provider runs them in a thread.
"""

from __future__ import annotations

import base64
import hashlib
import math
import struct
from typing import Any

from llmtrail.capture.tokens import count_tokens, text_chunks
from llmtrail.errors import Picklable

MAX_INPUTS = 2048
MAX_INPUT_TOKENS = 8192
MAX_REQUEST_TOKENS = 300_000
LARGEST_DIMENSIONS = 3072
DEFAULT_DIMENSIONS = 256
MODEL_DIMENSIONS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}


class Refused(Picklable):
    """A request the real API would refuse: ``param`` names the field, the message the limit."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(f"{param}: {message}")
        self.param = param
        self.message = f"{param}: {message}"


def openai_answer(body: dict[str, Any], model: str) -> dict[str, Any]:
    """The ``list`` of embeddings OpenAI answers ``body`` with. Raises `Refused`."""
    dims = dimensions(body.get("dimensions"), model)
    items, tokens = _openai_inputs(body.get("input"), model)
    as_base64 = body.get("encoding_format") == "base64"
    data = []
    for i, item in enumerate(items):
        vector = vector_of(item if isinstance(item, str) else str(item), dims)
        embedding: Any = (
            base64.b64encode(struct.pack(f"<{dims}f", *vector)).decode() if as_base64 else vector
        )
        data.append({"object": "embedding", "index": i, "embedding": embedding})
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def dimensions(value: Any, model: str) -> int:
    """``dimensions`` as given (`DEFAULT_DIMENSIONS` when absent), within the model's size."""
    size = MODEL_DIMENSIONS.get(model.rsplit("/", 1)[-1], LARGEST_DIMENSIONS)
    if value is None:
        return min(DEFAULT_DIMENSIONS, size)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= size:
        shown = repr(value)[:40]
        raise Refused("dimensions", f"must be an integer from 1 to {size} for {model}; got {shown}")
    return value


def _openai_inputs(inputs: Any, model: str) -> tuple[list[str | list[int]], int]:
    """The inputs (a string, strings, token ids or arrays of them) and their tokens."""
    if isinstance(inputs, str) or _is_token_array(inputs):
        items: list[Any] = [inputs]
    elif isinstance(inputs, list):
        items = inputs
    else:
        raise Refused("input", "is required: a string, an array of strings or of token arrays")
    if not items:
        raise Refused("input", "must not be empty")
    if len(items) > MAX_INPUTS:
        raise Refused("input", f"has {len(items)} inputs; the limit is {MAX_INPUTS} per request")
    total = 0
    for i, item in enumerate(items):
        if isinstance(item, str):
            tokens = tokens_up_to(item, model, MAX_INPUT_TOKENS)
        elif _is_token_array(item):
            tokens = len(item)
        else:
            raise Refused(f"input[{i}]", "must be a string or a non-empty array of token ids")
        if tokens > MAX_INPUT_TOKENS:
            raise Refused(
                f"input[{i}]",
                f"is more than {MAX_INPUT_TOKENS} tokens; the limit is {MAX_INPUT_TOKENS} tokens "
                "per input",
            )
        total += tokens
        if total > MAX_REQUEST_TOKENS:
            raise Refused(
                "input",
                f"has more than {MAX_REQUEST_TOKENS} tokens in all; the limit is "
                f"{MAX_REQUEST_TOKENS} tokens per request",
            )
    return items, total


def _is_token_array(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(type(t) is int and 0 <= t < 2**32 for t in value)
    )


def tokens_up_to(text: str, model: str, limit: int) -> int:
    """``text``'s token count, or the first count past ``limit`` (counting stops there)."""
    total = 0
    for chunk in text_chunks(text):
        total += count_tokens(chunk, model)
        if total > limit:
            break
    return total


def vector_of(text: str, dims: int) -> list[float]:
    """A deterministic unit vector for ``text``."""
    raw = hashlib.sha256(text.encode()).digest()
    values = [math.sin(raw[i % 32] + i) for i in range(dims)]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values]
