"""What an OpenAI-format response says about the call, read defensively.

Upstreams are not always well behaved: a count may be a string, an id a number, a choice
not an object. Whatever they send, these functions return values of the record's types (or
None), so a strange upstream answer can never make a record unstorable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmtrail.capture.tokens import count_chat_prompt, count_tokens
from llmtrail.record import INT_MAX

_MAX_COUNT = INT_MAX  # what a record holds: a larger count is not believed (counted offline)


def count(value: Any) -> int | None:
    """A token count: a non-negative integer no larger than a record holds, else None."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_COUNT:
        return None
    return value


def text(value: Any, limit: int = 1024) -> str | None:
    """An id or a reason: strings as they are (cut to ``limit``), numbers as text, else None."""
    if isinstance(value, str):
        return value[:limit]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


@dataclass
class ChatOutcome:
    response_id: str | None
    stop_reason: str | None
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int | None
    estimated: bool  # True when a count was computed offline


def chat_outcome(response: dict[str, Any], request: dict[str, Any], model: str) -> ChatOutcome:
    """Tokens, ids and the stop reason of a ``chat.completion`` (or an assembled stream)."""
    choices = [c for c in response.get("choices") or [] if isinstance(c, dict)]
    usage = as_dict(response.get("usage"))
    in_tokens = count(usage.get("prompt_tokens"))
    out_tokens = count(usage.get("completion_tokens"))
    estimated = in_tokens is None or out_tokens is None
    if in_tokens is None:
        in_tokens = count_chat_prompt(request.get("messages"), model)
    if out_tokens is None:
        reply = "".join(
            text(as_dict(c.get("message")).get("content"), 10**9) or "" for c in choices
        )
        out_tokens = count_tokens(reply, model)
    return ChatOutcome(
        response_id=text(response.get("id")),
        stop_reason=text(choices[0].get("finish_reason")) if choices else None,
        input_tokens=in_tokens,
        output_tokens=out_tokens,
        cache_read_tokens=count(as_dict(usage.get("prompt_tokens_details")).get("cached_tokens")),
        estimated=estimated,
    )


def embedding_outcome(
    response: dict[str, Any], request: dict[str, Any], model: str
) -> tuple[dict[str, Any], int, bool]:
    """The response to keep (vectors dropped), input tokens, and whether they were estimated."""
    kept = {k: v for k, v in response.items() if k != "data"}
    kept["data"] = [
        {"object": "embedding", "index": d.get("index")}
        for d in response.get("data") or []
        if isinstance(d, dict)
    ]
    tokens = count(as_dict(response.get("usage")).get("prompt_tokens"))
    if tokens is not None:
        return kept, tokens, False
    inputs = request.get("input")
    items = [inputs] if isinstance(inputs, str) else inputs if isinstance(inputs, list) else []
    return kept, sum(count_tokens(str(i), model) for i in items), True
