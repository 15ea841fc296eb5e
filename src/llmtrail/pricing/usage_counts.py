"""What a record says was used, in billing terms: tokens by kind, images, embeddings.

Records keep Bedrock's counts (``input.inputTokenCount``, ``cacheReadInputTokenCount``,
``cacheWriteInputTokenCount``, ``output.outputTokenCount``), but their meaning depends on the
wire format the call used:

- Bedrock and Anthropic: ``inputTokenCount`` excludes cache reads and writes, which have their
  own counts (three disjoint sets);
- OpenAI and OpenAI-compatible APIs: ``prompt_tokens`` — logged as ``inputTokenCount`` —
  includes ``cached_tokens``, logged as ``cacheReadInputTokenCount``: a subset, not an extra.

`usage_counts` turns either into disjoint counts (``input`` is always the uncached input),
so cached tokens are billed at the cache-read price and never twice. The wire format is read
from ``operation`` (the gateway's and Bedrock's operation names); records from elsewhere
(OTLP, the SDK, imports) are judged by provider: ``anthropic``, ``bedrock`` and ``sim``
exclude, every other provider is taken to report OpenAI-style totals. Counts that cannot be
right (negative, non-integer, cached tokens above an inclusive total) are refused, not
guessed. Image and embedding counts come from llmtrail's ``output.outputImageCount`` /
``output.outputEmbeddingCount`` when the capture set them, else from the logged response body.
Pure functions; nothing raises on odd input.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

__all__ = [
    "TokenCounts",
    "embedding_count",
    "image_count",
    "input_includes_cache",
    "usage_counts",
]

# Operations whose input count includes cached tokens (OpenAI's wire format) …
INCLUSIVE_OPERATIONS = frozenset(
    {"ChatCompletions", "Completions", "Embeddings", "Responses", "ImageGenerations"}
)
# … and those whose input count excludes them (Bedrock runtime, Anthropic Messages).
EXCLUSIVE_OPERATIONS = frozenset(
    {"Converse", "ConverseStream", "InvokeModel", "InvokeModelWithResponseStream", "Messages"}
)
EXCLUSIVE_PROVIDERS = frozenset({"anthropic", "bedrock", "sim"})


class _Bad:
    """Marks a count that is present but unusable (negative, fractional, not a number)."""

    def __repr__(self) -> str:
        return "BAD"


BAD = _Bad()


@dataclass(frozen=True)
class TokenCounts:
    """Disjoint token counts: ``input`` excludes the cache reads and writes."""

    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0

    @property
    def total_input(self) -> int:
        """Every input token, cached or not: what context-length price tiers are measured by."""
        return self.input + self.cache_read + self.cache_write


def _count(value: Any) -> int | _Bad | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return BAD
    if isinstance(value, int):
        return value if 0 <= value < 2**63 else BAD
    if isinstance(value, float | Decimal):
        try:
            whole = int(value)  # raises on NaN and infinities
        except (OverflowError, ValueError, ArithmeticError):
            return BAD
        return whole if value == whole and 0 <= whole < 2**63 else BAD
    return BAD


def _section(doc: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = doc.get(key)
    return value if isinstance(value, Mapping) else {}


def input_includes_cache(doc: Mapping[str, Any], provider: str | None) -> bool:
    """True when the record's ``inputTokenCount`` includes its cached tokens (OpenAI style)."""
    operation = doc.get("operation")
    if operation in INCLUSIVE_OPERATIONS:
        return True
    if operation in EXCLUSIVE_OPERATIONS:
        return False
    return provider not in EXCLUSIVE_PROVIDERS


def usage_counts(doc: Mapping[str, Any], provider: str | None) -> TokenCounts | str | None:
    """The record's disjoint token counts; None when it has no counts at all, or the reason
    they cannot be used: ``bad_token_counts`` (a count is negative, fractional or not a
    number) or ``inconsistent_token_counts`` (cached tokens above an inclusive total)."""
    inp, out = _section(doc, "input"), _section(doc, "output")
    counts = (
        _count(inp.get("inputTokenCount")),
        _count(out.get("outputTokenCount")),
        _count(inp.get("cacheReadInputTokenCount")),
        _count(inp.get("cacheWriteInputTokenCount")),
    )
    if any(c is BAD for c in counts):
        return "bad_token_counts"
    if all(c is None for c in counts):
        return None
    given, output, read, write = (c if isinstance(c, int) else 0 for c in counts)
    if input_includes_cache(doc, provider) and counts[0] is not None:
        if read + write > given:
            return "inconsistent_token_counts"
        given -= read + write
    return TokenCounts(input=given, output=output, cache_read=read, cache_write=write)


def _body(doc: Mapping[str, Any]) -> Mapping[str, Any]:
    return _section(_section(doc, "output"), "outputBodyJson")


def image_count(doc: Mapping[str, Any]) -> int | None:
    """Images the call produced: ``output.outputImageCount``, else the body's ``images``
    (Titan, Nova Canvas, Stability) or ``artifacts`` (SDXL) list; None when unknown."""
    given = _count(_section(doc, "output").get("outputImageCount"))
    if isinstance(given, int):
        return given
    body = _body(doc)
    for key in ("images", "artifacts"):
        if isinstance(body.get(key), list):
            return len(body[key])
    return None


def embedding_count(doc: Mapping[str, Any]) -> int | None:
    """Embeddings the call produced: ``output.outputEmbeddingCount``, else the body's OpenAI
    ``data`` list, Titan's single ``embedding`` or Cohere's ``embeddings``; None when unknown."""
    given = _count(_section(doc, "output").get("outputEmbeddingCount"))
    if isinstance(given, int):
        return given
    body = _body(doc)
    if doc.get("operation") == "Embeddings" and isinstance(body.get("data"), list):
        return len(body["data"])
    if isinstance(body.get("embedding"), list):
        return 1
    embeddings = body.get("embeddings")
    if isinstance(embeddings, list):
        return len(embeddings)
    if isinstance(embeddings, Mapping):  # Cohere with embedding_types: {"float": [[…], …]}
        lists = [v for v in embeddings.values() if isinstance(v, list)]
        return len(lists[0]) if lists else None
    return None
