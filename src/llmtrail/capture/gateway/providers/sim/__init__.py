"""``sim``: a built-in provider for demos, tests and load tests, with no account anywhere.

It speaks all three wire formats — OpenAI chat completions and embeddings, Anthropic Messages,
and the Bedrock runtime's Converse, ConverseStream, InvokeModel and
InvokeModelWithResponseStream — streaming included. Answers are deterministic: the same
prompt gives the same reply, words drawn from a fixed vocabulary by a hash of the prompt;
token counts come from the real tokenizer. It can drive an agent loop (see `plan`, the
planner it shares with the test upstreams): when tools are offered and the user's last turn
names one, it calls that tool with arguments built from the tool's schema, and after the
tool's result it answers quoting it. Cache markers (Anthropic's ``cache_control``, Bedrock's
``cachePoint``) write and then read a simulated prompt cache (`prompt_cache`).

Behaviour is set per provider in the configuration (``[providers.sim]``) and per call by the
model name or the ``x-llmtrail-sim`` header (``latency_ms=200,ttft_ms=50,error=429``):

==================  =========================================================================
``latency_ms``      time before a non-stream answer (default 0)
``ttft_ms``         time before a stream's first chunk (default 0)
``chunk_delay_ms``  time between stream chunks (default 0)
``chunk_words``     words per stream chunk (default 4)
``words``           reply length in words (default: 12–60, from the prompt's hash)
``error``           answer this HTTP status with an error in the route's shape (429, 500, …)
==================  =========================================================================

Model names ``sim/error-429`` (any status), ``sim/timeout`` (never answers within the first-byte
timeout) and ``sim/slow-<ms>`` choose the same behaviour by name.

The work of an answer grows with the request — reading a 30 MB prompt, counting its tokens,
hashing it, computing 2,048 embedding vectors — so it runs in a thread (``asyncio.to_thread``)
and the event loop serves other callers meanwhile; only the waits and the stream's pacing
stay on the loop. Embeddings are refused past OpenAI's own limits (see `embeddings`).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import itertools
import time
import uuid
from collections.abc import Callable
from typing import Any

import orjson

from llmtrail.capture.gateway.providers.base import UpstreamError, UpstreamRequest, UpstreamResponse
from llmtrail.capture.gateway.providers.sim import anthropic_wire, embeddings, openai_wire
from llmtrail.capture.gateway.providers.sim.plan import Conversation, Reply, SimVoice, plan_reply
from llmtrail.capture.gateway.providers.sim.prompt_cache import PromptCache
from llmtrail.config import ProviderConfig

_EVENTSTREAM = "application/vnd.amazon.eventstream"

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
        self._ids = itertools.count(1)  # next() is atomic: ids are taken in threads
        self._cache = PromptCache()

    async def close(self) -> None:
        pass

    async def send(self, request: UpstreamRequest) -> UpstreamResponse:
        opts = self._options(request)
        if "timeout" in opts:
            await asyncio.sleep(self.first_byte_timeout)
            raise UpstreamError(
                "upstream_timeout",
                504,
                f"sim: no answer within the first-byte timeout of {self.first_byte_timeout:g}s",
            )
        if "error" in opts:
            return _error(request.wire_format, int(opts["error"]))
        pace = _Pace(opts)
        if request.wire_format == "anthropic":
            return await self._anthropic(request, opts, pace)
        if request.wire_format == "bedrock":
            return await self._bedrock(request, opts, pace)
        model = request.model or str(request.body.get("model", ""))
        if request.path == "/embeddings":
            return await asyncio.to_thread(_embeddings, request.body, model)
        completion_id, reply = await asyncio.to_thread(
            self._plan, openai_wire.conversation, "chatcmpl-sim", request.body, model, opts
        )
        if not request.stream:
            await _sleep_ms(opts.get("latency_ms", 0))
            return _json(200, openai_wire.completion(completion_id, model, reply))
        stream_options = request.body.get("stream_options")
        include_usage = (
            isinstance(stream_options, dict) and stream_options.get("include_usage") is True
        )
        chunks = openai_wire.stream(completion_id, model, reply, include_usage, pace)
        return UpstreamResponse(200, {"content-type": "text/event-stream"}, chunks=chunks)

    def _plan(
        self,
        read: Callable[[dict[str, Any]], Conversation],
        id_prefix: str,
        body: dict[str, Any],
        model: str,
        opts: dict[str, Any],
    ) -> tuple[str, Reply]:
        """(id, reply) of one answer: the CPU work (reading, hashing, counting), run in a
        thread."""
        voice = SimVoice(model, int(opts["words"]) if "words" in opts else None)
        reply = plan_reply(read(body), voice, model=model, cache=self._cache)
        return f"{id_prefix}{next(self._ids):010d}{_digest(body)[:8]}", reply

    async def _anthropic(
        self, request: UpstreamRequest, opts: dict[str, Any], pace: _Pace
    ) -> UpstreamResponse:
        body, model = request.body, request.model or str(request.body.get("model", ""))
        message_id, reply = await asyncio.to_thread(
            self._plan, anthropic_wire.conversation, "msg_sim", body, model, opts
        )
        if not request.stream:
            await _sleep_ms(opts.get("latency_ms", 0))
            return _json(200, anthropic_wire.message(message_id, model, reply))
        chunks = anthropic_wire.stream(message_id, model, reply, pace)
        return UpstreamResponse(200, {"content-type": "text/event-stream"}, chunks=chunks)

    async def _bedrock(
        self, request: UpstreamRequest, opts: dict[str, Any], pace: _Pace
    ) -> UpstreamResponse:
        from llmtrail.capture.gateway.providers.sim import bedrock_wire

        body, model = request.body, request.model
        operation = request.path.rsplit("/", 1)[-1]
        headers = {"x-amzn-requestid": str(uuid.uuid4())}
        if operation in ("converse", "converse-stream"):
            read = bedrock_wire.converse_conversation
            _, reply = await asyncio.to_thread(self._plan, read, "", body, model, opts)
            if operation == "converse":
                await _sleep_ms(opts.get("latency_ms", 0))
                return _json(200, bedrock_wire.converse(reply, pace.elapsed_ms()), headers)
            chunks = bedrock_wire.converse_stream(reply, pace)
            return UpstreamResponse(200, {**headers, "content-type": _EVENTSTREAM}, chunks=chunks)
        kind = bedrock_wire.family(body)
        if kind is None:
            return _error("bedrock", 400, "Malformed input request, please reformat your input")
        read = functools.partial(bedrock_wire.invoke_conversation, kind)
        message_id, reply = await asyncio.to_thread(
            self._plan, read, "msg_bdrk_sim", body, model, opts
        )
        headers["x-amzn-bedrock-input-token-count"] = str(reply.usage.input_tokens)
        headers["x-amzn-bedrock-output-token-count"] = str(reply.usage.output_tokens)
        if operation == "invoke":
            await _sleep_ms(opts.get("latency_ms", 0))
            headers["x-amzn-bedrock-invocation-latency"] = str(pace.elapsed_ms())
            return _json(200, bedrock_wire.invoke(kind, message_id, model, reply), headers)
        chunks = bedrock_wire.invoke_stream(kind, message_id, model, reply, pace)
        return UpstreamResponse(200, {**headers, "content-type": _EVENTSTREAM}, chunks=chunks)

    def _options(self, request: UpstreamRequest) -> dict[str, Any]:
        opts: dict[str, Any] = dict(self.options)
        name = request.model or str(request.body.get("model", ""))
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


def _embeddings(body: dict[str, Any], model: str) -> UpstreamResponse:
    """OpenAI's embeddings answer, or its 400 naming the field and the limit (in a thread)."""
    try:
        return _json(200, embeddings.openai_answer(body, model))
    except embeddings.Refused as refused:
        return _error("openai", 400, refused.message, refused.param)


def _digest(body: dict[str, Any]) -> str:
    return hashlib.blake2b(
        orjson.dumps(body, option=orjson.OPT_SORT_KEYS), digest_size=8
    ).hexdigest()


async def _sleep_ms(ms: float) -> None:
    if ms > 0:
        await asyncio.sleep(ms / 1000)


def _json(status: int, value: Any, headers: dict[str, str] | None = None) -> UpstreamResponse:
    return UpstreamResponse(
        status, {"content-type": "application/json", **(headers or {})}, orjson.dumps(value)
    )


def _error(
    wire_format: str, status: int, message: str | None = None, param: str | None = None
) -> UpstreamResponse:
    message = message or f"sim: injected error {status}"
    if wire_format == "anthropic":
        return _json(status, anthropic_wire.error(status, message))
    if wire_format == "bedrock":
        from llmtrail.capture.gateway.providers.sim import bedrock_wire

        kind, body = bedrock_wire.error(status, message)
        return _json(status, body, {"x-amzn-errortype": kind})
    kind = _ERROR_TYPES.get(status, "server_error")
    error = {"message": message, "type": kind, "param": param, "code": kind}
    return _json(status, {"error": error})


class _Pace:
    """The timing of one answer: the wait before the first chunk and between chunks."""

    def __init__(self, opts: dict[str, Any]) -> None:
        self.opts = opts
        self.words = max(1, int(opts.get("chunk_words", 4)))
        self.t0 = time.perf_counter()
        self.first_byte_ms: int | None = None

    async def first(self) -> None:
        await _sleep_ms(self.opts.get("ttft_ms", 0))
        self.first_byte_ms = self.elapsed_ms()

    async def between(self) -> None:
        await _sleep_ms(self.opts.get("chunk_delay_ms", 0))

    def elapsed_ms(self) -> int:
        return round((time.perf_counter() - self.t0) * 1000)
