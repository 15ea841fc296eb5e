"""OpenAI payloads: what a ``chat.completion`` (or the one a stream amounts to) and an
embeddings answer say about the call, as the `Usage` every wire format's decoder returns.

The values are read with the coercers all formats share (`llmtrail.capture.gateway.usage`),
so an upstream answer gives the same record whichever route carried it: a count is what
`token_count` accepts (``12``, ``12.0`` and ``"12"`` alike), an id or a stop reason is a
non-empty string. Anything else is unknown (``None``), never an error; the route counts a
missing count offline and flags the record. Pure functions of the payloads.
"""

from __future__ import annotations

from typing import Any

from llmtrail.capture.gateway.usage import Usage, as_dict, as_list, label, token_count
from llmtrail.capture.tokens import count_chat_prompt, count_tokens, message_text


def chat_usage(response: Any) -> Usage:
    """Tokens, cache reads, stop reason, reply text and id of a ``chat.completion``.

    ``prompt_tokens`` includes the cached ones (``prompt_tokens_details.cached_tokens``), as
    OpenAI reports them. The reply text is every choice's message content, joined.
    """
    if not isinstance(response, dict):
        return Usage()
    usage = as_dict(response.get("usage"))
    choices = [c for c in as_list(response.get("choices")) if isinstance(c, dict)]
    cached = as_dict(usage.get("prompt_tokens_details")).get("cached_tokens")
    texts = [message_text(as_dict(c.get("message")).get("content")) for c in choices]
    return Usage(
        input_tokens=token_count(usage.get("prompt_tokens")),
        output_tokens=token_count(usage.get("completion_tokens")),
        cache_read_tokens=token_count(cached),
        stop_reason=label(choices[0].get("finish_reason")) if choices else None,
        text="".join(texts),
        response_id=label(response.get("id")),
    )


def chat_prompt_tokens(request: Any, model: str) -> int:
    """The prompt of a chat request counted offline, with OpenAI's per-message overhead."""
    return count_chat_prompt(as_dict(request).get("messages"), model)


def embeddings_usage(response: Any) -> Usage:
    """The input tokens of an embeddings answer; it produces no output tokens."""
    return Usage(
        input_tokens=token_count(as_dict(as_dict(response).get("usage")).get("prompt_tokens")),
        output_tokens=0,
    )


def embeddings_kept(response: Any) -> dict[str, Any]:
    """The embeddings answer as the record keeps it: each vector dropped, its index kept."""
    response = as_dict(response)
    kept = {k: v for k, v in response.items() if k != "data"}
    kept["data"] = [
        {"object": "embedding", "index": d.get("index")}
        for d in as_list(response.get("data"))
        if isinstance(d, dict)
    ]
    return kept


def embeddings_prompt_tokens(request: Any, model: str) -> int:
    """The inputs of an embeddings request counted offline, each on its own."""
    inputs = as_dict(request).get("input")
    items = [inputs] if isinstance(inputs, str) else as_list(inputs)
    return sum(count_tokens(str(i), model) for i in items)
