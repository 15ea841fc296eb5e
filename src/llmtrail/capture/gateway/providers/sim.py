"""``sim``: a built-in provider for demos, tests and load tests, with no account anywhere.

Answers are deterministic: the same prompt gives the same reply, words drawn from a fixed
vocabulary by a hash of the prompt; token counts come from the real tokenizer. Behaviour is
set per provider in the configuration (``[providers.sim]``) and per call by the model name
or the ``x-llmtrail-sim`` header (``latency_ms=200,ttft_ms=50,error=429``):

==================  =========================================================================
``latency_ms``      time before a non-stream answer (default 0)
``ttft_ms``         time before a stream's first chunk (default 0)
``chunk_delay_ms``  time between stream chunks (default 0)
``chunk_words``     words per stream chunk (default 4)
``words``           reply length in words (default: 12–60, from the prompt's hash)
``error``           answer this HTTP status with an OpenAI-shaped error (429, 500, 503, …)
==================  =========================================================================

Model names ``sim/error-429`` (any status), ``sim/timeout`` (never answers within the first-byte
timeout) and ``sim/slow-<ms>`` choose the same behaviour by name.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import math
import struct
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson

from llmtrail.capture.gateway.providers.base import UpstreamError, UpstreamRequest, UpstreamResponse
from llmtrail.capture.tokens import count_chat_prompt, count_tokens, message_text
from llmtrail.config import ProviderConfig

_VOCABULARY = [
    "the",
    "model",
    "answers",
    "each",
    "question",
    "with",
    "care",
    "and",
    "a",
    "short",
    "list",
    "of",
    "facts",
    "drawn",
    "from",
    "its",
    "training",
    "data",
    "while",
    "the",
    "gateway",
    "records",
    "tokens",
    "latency",
    "cost",
    "and",
    "metadata",
    "for",
    "every",
    "call",
    "so",
    "teams",
    "can",
    "see",
    "who",
    "asked",
    "what",
    "when",
    "and",
    "why",
    "it",
    "failed",
    "or",
    "succeeded",
    "in",
    "production",
]
_OPTION_RANGES: dict[str, tuple[int, int]] = {
    "latency_ms": (0, 600_000),
    "ttft_ms": (0, 600_000),
    "chunk_delay_ms": (0, 60_000),
    "chunk_words": (1, 10_000),
    "words": (0, 100_000),
    "error": (400, 599),
}
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_exceeded",
}


class SimProvider:
    wire_formats = frozenset({"openai", "anthropic", "bedrock"})
    has_own_key = True

    def __init__(self, config: ProviderConfig) -> None:
        self.name = config.name
        self.options = dict(config.options)
        self.first_byte_timeout = config.timeouts.first_byte
        self._counter = 0

    async def close(self) -> None:
        pass

    async def send(self, request: UpstreamRequest) -> UpstreamResponse:
        opts = self._options(request)
        model = str(request.body.get("model", ""))
        if "timeout" in opts:
            await asyncio.sleep(self.first_byte_timeout)
            raise UpstreamError(
                "upstream_timeout",
                504,
                f"sim: no answer within the first-byte timeout of {self.first_byte_timeout:g}s",
            )
        if "error" in opts:
            return _error(int(opts["error"]))
        if request.path == "/embeddings":
            return _json(200, self._embeddings(request.body, model))
        self._counter += 1
        completion_id = f"chatcmpl-sim{self._counter:010d}{_digest(request.body)[:8]}"
        prompt = _prompt_text(request.body.get("messages"))
        words = int(opts.get("words", 12 + _hash_int(prompt) % 49))
        max_tokens = request.body.get("max_completion_tokens") or request.body.get("max_tokens")
        text, finish = _reply(prompt, words, max_tokens if isinstance(max_tokens, int) else None)
        usage = {
            "prompt_tokens": count_chat_prompt(request.body.get("messages"), model),
            "completion_tokens": count_tokens(text, model),
        }
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        if not request.stream:
            await _sleep_ms(opts.get("latency_ms", 0))
            return _json(
                200,
                {
                    "id": completion_id,
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": model,
                    "system_fingerprint": "sim",
                    "choices": [
                        {
                            "index": 0,
                            "finish_reason": finish,
                            "logprobs": None,
                            "message": {"role": "assistant", "content": text, "refusal": None},
                        }
                    ],
                    "usage": usage,
                },
            )
        stream_options = request.body.get("stream_options")
        include_usage = (
            isinstance(stream_options, dict) and stream_options.get("include_usage") is True
        )
        chunks = _stream(completion_id, model, text, finish, usage if include_usage else None, opts)
        return UpstreamResponse(200, {"content-type": "text/event-stream"}, chunks=chunks)

    def _options(self, request: UpstreamRequest) -> dict[str, Any]:
        opts: dict[str, Any] = dict(self.options)
        name = str(request.body.get("model", ""))
        if name.startswith("error-"):
            opts["error"] = name.removeprefix("error-")
        elif name == "timeout":
            opts["timeout"] = True
        elif name.startswith("slow-"):
            opts["latency_ms"] = opts["ttft_ms"] = name.removeprefix("slow-")
        for part in request.headers.get("x-llmtrail-sim", "").split(","):
            key, sep, value = part.strip().partition("=")
            if sep:
                opts[key] = value
        for key, (low, high) in _OPTION_RANGES.items():
            if key not in opts:
                continue
            number: float | None
            try:
                number = float(opts[key]) if key.endswith("_ms") else int(opts[key])
            except (TypeError, ValueError, OverflowError):
                number = None
            if number is None or not low <= number <= high:
                raise UpstreamError(
                    "invalid_sim_option",
                    400,
                    f"sim option {key} must be a number from {low} to {high}",
                )
            opts[key] = number
        return opts

    def _embeddings(self, body: dict[str, Any], model: str) -> dict[str, Any]:
        inputs = body.get("input")
        items = [inputs] if isinstance(inputs, str) else list(inputs or [])
        dims = body.get("dimensions", 256)
        if isinstance(dims, bool) or not isinstance(dims, int) or not 1 <= dims <= 8192:
            raise UpstreamError("invalid_request_error", 400, "dimensions must be 1 to 8192")
        as_base64 = body.get("encoding_format") == "base64"
        data = []
        for i, item in enumerate(items):
            vector = _vector(str(item), dims)
            embedding: Any = (
                base64.b64encode(struct.pack(f"<{dims}f", *vector)).decode()
                if as_base64
                else vector
            )
            data.append({"object": "embedding", "index": i, "embedding": embedding})
        tokens = sum(count_tokens(str(item), model) for item in items)
        return {
            "object": "list",
            "data": data,
            "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }


async def _stream(
    completion_id: str,
    model: str,
    text: str,
    finish: str,
    usage: dict[str, int] | None,
    opts: dict[str, Any],
) -> AsyncIterator[bytes]:
    created = int(time.time())
    base = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "system_fingerprint": "sim",
    }
    extra = {"usage": None} if usage is not None else {}

    def event(choices: list[dict[str, Any]], **more: Any) -> bytes:
        return b"data: " + orjson.dumps({**base, "choices": choices, **extra, **more}) + b"\n\n"

    await _sleep_ms(opts.get("ttft_ms", 0))
    yield event(
        [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]
    )
    words = text.split(" ")
    step = max(1, int(opts.get("chunk_words", 4)))
    for start in range(0, len(words), step):
        piece = " ".join(words[start : start + step]) + (" " if start + step < len(words) else "")
        yield event([{"index": 0, "delta": {"content": piece}, "finish_reason": None}])
        await _sleep_ms(opts.get("chunk_delay_ms", 0))
    yield event([{"index": 0, "delta": {}, "finish_reason": finish}])
    if usage is not None:
        yield event([], usage=usage)
    yield b"data: [DONE]\n\n"


def _reply(prompt: str, words: int, max_tokens: int | None) -> tuple[str, str]:
    seed = _hash_int(prompt)
    out = []
    for i in range(words):
        seed = (seed * 6364136223846793005 + 1442695040888963407) % 2**64
        out.append(_VOCABULARY[(seed >> 33) % len(_VOCABULARY)])
        if i == 0:
            out[0] = out[0].capitalize()
    if max_tokens is not None and max_tokens < len(out):
        return " ".join(out[:max_tokens]), "length"
    return " ".join(out) + ".", "stop"


def _prompt_text(messages: Any) -> str:
    if not isinstance(messages, list):
        return ""
    return "\n".join(message_text(m.get("content")) for m in messages if isinstance(m, dict))


def _vector(text: str, dims: int) -> list[float]:
    raw = hashlib.sha256(text.encode()).digest()
    values = [math.sin(raw[i % 32] + i) for i in range(dims)]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values]


def _hash_int(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def _digest(body: dict[str, Any]) -> str:
    return hashlib.blake2b(
        orjson.dumps(body, option=orjson.OPT_SORT_KEYS), digest_size=8
    ).hexdigest()


async def _sleep_ms(ms: float) -> None:
    if ms > 0:
        await asyncio.sleep(ms / 1000)


def _json(status: int, value: Any) -> UpstreamResponse:
    return UpstreamResponse(status, {"content-type": "application/json"}, orjson.dumps(value))


def _error(status: int) -> UpstreamResponse:
    kind = _ERROR_TYPES.get(status, "server_error")
    return _json(
        status,
        {
            "error": {
                "message": f"sim: injected error {status}",
                "type": kind,
                "param": None,
                "code": kind,
            }
        },
    )
