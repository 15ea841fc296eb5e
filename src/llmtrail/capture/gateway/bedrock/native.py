"""Model-native InvokeModel payloads on Bedrock: one reader and one stream assembler per body
shape.

InvokeModel passes each model's own JSON through, so what a response says about tokens and
text depends on who wrote the model. The knowledge is kept as data: a `BodyShape` per
payload shape, with a test that recognises a body (or a stream chunk) and the functions that
read it. The family from the model id says which shapes to try first; when it says nothing
(an application inference profile's ARN hides the model) or the body does not fit, the shapes
are tried in a fixed order, each recognised by keys no other shape has.

Shapes (AWS "Inference request parameters and response fields for foundation models"):

==================  ==========================================================================
anthropic-messages  Claude Messages: ``usage.input_tokens`` … (see `anthropic_models`)
anthropic-text      legacy Claude Text Completions: ``completion``, ``stop_reason``
converse            Amazon Nova: ``output.message``, ``stopReason``, ``usage.inputTokens`` …
titan-text          ``inputTextTokenCount``, ``results[].tokenCount/outputText/completionReason``;
                    streamed: ``outputText``, ``totalOutputTextTokenCount``
titan-embed         ``embedding``, ``inputTextTokenCount``
llama               ``generation``, ``prompt_token_count``, ``generation_token_count``,
                    ``stop_reason``
mistral             ``outputs[].text/stop_reason`` (no counts: the headers have them)
choices             chat-completion style (Mistral Large 2, AI21 Jamba, DeepSeek, OpenAI
                    gpt-oss, Qwen, Writer): ``choices[].message.content`` | ``.delta.content`` |
                    ``.text``, ``finish_reason`` | ``stop_reason``, ``usage.prompt_tokens`` …
ai21-jurassic       ``completions[].data.text/tokens``, ``prompt.tokens``
cohere-embed        ``embeddings`` (no counts: the headers have them)
cohere              Command: ``generations[].text/finish_reason``; Command R: ``text``,
                    ``finish_reason``; streamed: ``event_type`` / ``is_finished`` chunks
==================  ==========================================================================

Pure functions of the payloads; nothing here raises on odd input.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from llmtrail.capture.gateway.anthropic import models as anthropic_models
from llmtrail.capture.gateway.bedrock import converse as bedrock_converse
from llmtrail.capture.gateway.usage import Usage, as_dict, as_list, label, token_count


class StreamShape(Protocol):
    """Accumulates one shape's stream chunks into that shape's non-stream body."""

    def add(self, chunk: Any) -> None:
        """Take one decoded chunk."""
        ...

    @property
    def text(self) -> str:
        """The concatenated text deltas so far."""
        ...

    def result(self) -> dict[str, Any]:
        """The body the chunks so far amount to, in the non-stream shape."""
        ...


@dataclass(frozen=True)
class BodyShape:
    """One payload shape: how to recognise its body and chunks, and how to read them."""

    name: str
    matches: Callable[[dict[str, Any]], bool]
    read: Callable[[dict[str, Any]], Usage]
    chunk_matches: Callable[[dict[str, Any]], bool] | None = None
    stream: Callable[[], StreamShape] | None = None


def _joined(values: list[Any]) -> str:
    return "".join(v for v in values if isinstance(v, str))


def _sum(values: list[Any]) -> int | None:
    counts = [token_count(v) for v in values]
    known = [c for c in counts if c is not None]
    return sum(known) if known else None


# --- readers of whole bodies -------------------------------------------------------------


def _read_anthropic_text(body: dict[str, Any]) -> Usage:
    return Usage(stop_reason=label(body.get("stop_reason")), text=_joined([body.get("completion")]))


def _read_titan_text(body: dict[str, Any]) -> Usage:
    results = [as_dict(r) for r in as_list(body.get("results"))]
    return Usage(
        input_tokens=token_count(body.get("inputTextTokenCount")),
        output_tokens=_sum([r.get("tokenCount") for r in results]),
        stop_reason=label(results[0].get("completionReason")) if results else None,
        text=_joined([r.get("outputText") for r in results]),
    )


def _read_titan_embed(body: dict[str, Any]) -> Usage:
    return Usage(input_tokens=token_count(body.get("inputTextTokenCount")), output_tokens=0)


def _read_llama(body: dict[str, Any]) -> Usage:
    return Usage(
        input_tokens=token_count(body.get("prompt_token_count")),
        output_tokens=token_count(body.get("generation_token_count")),
        stop_reason=label(body.get("stop_reason")),
        text=_joined([body.get("generation")]),
    )


def _read_mistral(body: dict[str, Any]) -> Usage:
    outputs = [as_dict(o) for o in as_list(body.get("outputs"))]
    return Usage(
        stop_reason=label(outputs[0].get("stop_reason")) if outputs else None,
        text=_joined([o.get("text") for o in outputs]),
    )


def _choice_text(choice: dict[str, Any]) -> Any:
    for holder in (as_dict(choice.get("message")), as_dict(choice.get("delta")), choice):
        for key in ("content", "text"):
            if isinstance(holder.get(key), str):
                return holder[key]
    return None


def _choice_reason(choice: dict[str, Any]) -> str | None:
    return label(choice.get("finish_reason")) or label(choice.get("stop_reason"))


def _read_choices(body: dict[str, Any]) -> Usage:
    choices = [as_dict(c) for c in as_list(body.get("choices"))]
    usage = as_dict(body.get("usage"))
    return Usage(
        input_tokens=token_count(usage.get("prompt_tokens", usage.get("input_tokens"))),
        output_tokens=token_count(usage.get("completion_tokens", usage.get("output_tokens"))),
        cache_read_tokens=token_count(
            as_dict(usage.get("prompt_tokens_details")).get("cached_tokens")
        ),
        stop_reason=_choice_reason(choices[0]) if choices else None,
        text=_joined([_choice_text(c) for c in choices]),
        response_id=label(body.get("id")),
    )


def _read_jurassic(body: dict[str, Any]) -> Usage:
    completions = [as_dict(c) for c in as_list(body.get("completions"))]
    prompt_tokens = as_dict(body.get("prompt")).get("tokens")
    out = [as_dict(c.get("data")).get("tokens") for c in completions]
    return Usage(
        input_tokens=len(prompt_tokens) if isinstance(prompt_tokens, list) else None,
        output_tokens=sum(len(t) for t in out if isinstance(t, list)) if completions else None,
        stop_reason=label(as_dict(completions[0].get("finishReason")).get("reason"))
        if completions
        else None,
        text=_joined([as_dict(c.get("data")).get("text") for c in completions]),
        response_id=label(body.get("id")) if isinstance(body.get("id"), str) else None,
    )


def _read_cohere_embed(body: dict[str, Any]) -> Usage:
    return Usage(output_tokens=0, response_id=label(body.get("id")))


def _cohere_billed(body: dict[str, Any]) -> tuple[int | None, int | None]:
    billed = as_dict(as_dict(body.get("meta")).get("billed_units"))
    return token_count(billed.get("input_tokens")), token_count(billed.get("output_tokens"))


def _read_cohere(body: dict[str, Any]) -> Usage:
    generations = [as_dict(g) for g in as_list(body.get("generations"))]
    in_tokens, out_tokens = _cohere_billed(body)
    if generations:
        text = _joined([g.get("text") for g in generations])
        reason = label(generations[0].get("finish_reason"))
    else:
        text, reason = _joined([body.get("text")]), label(body.get("finish_reason"))
    return Usage(
        input_tokens=in_tokens,
        output_tokens=out_tokens,
        stop_reason=reason,
        text=text,
        response_id=label(body.get("response_id")) or label(body.get("id")),
    )


# --- stream assemblers -------------------------------------------------------------------


class _TitanStream:
    def __init__(self) -> None:
        self._parts: list[str] = []
        self._body: dict[str, Any] = {"inputTextTokenCount": None}
        self._result: dict[str, Any] = {"tokenCount": None, "completionReason": None}

    def add(self, chunk: Any) -> None:
        chunk = as_dict(chunk)
        if isinstance(chunk.get("outputText"), str):
            self._parts.append(chunk["outputText"])
        if token_count(chunk.get("inputTextTokenCount")) is not None:
            self._body["inputTextTokenCount"] = chunk["inputTextTokenCount"]
        if token_count(chunk.get("totalOutputTextTokenCount")) is not None:
            self._result["tokenCount"] = chunk["totalOutputTextTokenCount"]
        if label(chunk.get("completionReason")):
            self._result["completionReason"] = chunk["completionReason"]

    @property
    def text(self) -> str:
        return "".join(self._parts)

    def result(self) -> dict[str, Any]:
        return {**self._body, "results": [{**self._result, "outputText": self.text}]}


class _LlamaStream:
    def __init__(self) -> None:
        self._parts: list[str] = []
        self._counts: dict[str, Any] = {"prompt_token_count": None, "generation_token_count": None}
        self._reason: Any = None

    def add(self, chunk: Any) -> None:
        chunk = as_dict(chunk)
        if isinstance(chunk.get("generation"), str):
            self._parts.append(chunk["generation"])
        for key in self._counts:  # the latest count is the running total
            if token_count(chunk.get(key)) is not None:
                self._counts[key] = chunk[key]
        if label(chunk.get("stop_reason")):
            self._reason = chunk["stop_reason"]

    @property
    def text(self) -> str:
        return "".join(self._parts)

    def result(self) -> dict[str, Any]:
        return {"generation": self.text, **self._counts, "stop_reason": self._reason}


class _IndexedStream:
    """Chunks that carry a list of parallel outputs (``outputs`` or ``choices``)."""

    key = ""

    def __init__(self) -> None:
        self._parts: dict[int, list[str]] = {}
        self._reasons: dict[int, tuple[str, Any]] = {}
        self._top: dict[str, Any] = {}

    def add(self, chunk: Any) -> None:
        chunk = as_dict(chunk)
        for i, item in enumerate(as_list(chunk.get(self.key))):
            item = as_dict(item)
            index = item.get("index", i)
            if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < 128:
                continue
            piece = _choice_text(item)
            self._parts.setdefault(index, [])
            if isinstance(piece, str):
                self._parts[index].append(piece)
            for key in ("finish_reason", "stop_reason"):
                if label(item.get(key)):
                    self._reasons[index] = (key, item[key])
        for key in ("id", "model", "usage"):
            if chunk.get(key) is not None:
                self._top[key] = chunk[key]

    @property
    def text(self) -> str:
        return "".join("".join(self._parts[i]) for i in sorted(self._parts))

    def _reason(self, index: int) -> dict[str, Any]:
        key, value = self._reasons.get(index, ("stop_reason", None))
        return {key: value}


class _MistralStream(_IndexedStream):
    key = "outputs"

    def result(self) -> dict[str, Any]:
        outputs = [
            {"text": "".join(self._parts[i]), **self._reason(i)} for i in sorted(self._parts)
        ]
        return {"outputs": outputs}


class _ChoicesStream(_IndexedStream):
    key = "choices"

    def result(self) -> dict[str, Any]:
        choices = [
            {
                "index": i,
                "message": {"role": "assistant", "content": "".join(self._parts[i])},
                **self._reason(i),
            }
            for i in sorted(self._parts)
        ]
        out: dict[str, Any] = {k: v for k, v in self._top.items() if k != "usage"}
        out["choices"] = choices
        if "usage" in self._top:
            out["usage"] = self._top["usage"]
        return out


class _CohereStream:
    def __init__(self) -> None:
        self._parts: list[str] = []
        self._reason: Any = None
        self._final: dict[str, Any] = {}
        self._legacy = False

    def add(self, chunk: Any) -> None:
        chunk = as_dict(chunk)
        generations = as_list(chunk.get("generations"))
        if generations:
            self._legacy = True
            self._parts.extend(
                t for t in (as_dict(g).get("text") for g in generations[:1]) if isinstance(t, str)
            )
        elif chunk.get("event_type", "text-generation") == "text-generation" and not chunk.get(
            "is_finished"
        ):
            self._parts.extend([chunk["text"]] if isinstance(chunk.get("text"), str) else [])
        if label(chunk.get("finish_reason")):
            self._reason = chunk["finish_reason"]
        final = as_dict(chunk.get("response"))
        for key in ("response_id", "generation_id", "id", "meta"):
            if key in final:
                self._final[key] = final[key]

    @property
    def text(self) -> str:
        return "".join(self._parts)

    def result(self) -> dict[str, Any]:
        if self._legacy:
            return {
                **self._final,
                "generations": [{"text": self.text, "finish_reason": self._reason}],
            }
        return {**self._final, "text": self.text, "finish_reason": self._reason}


class _AnthropicTextStream:
    def __init__(self) -> None:
        self._parts: list[str] = []
        self._stop: dict[str, Any] = {"stop_reason": None}

    def add(self, chunk: Any) -> None:
        chunk = as_dict(chunk)
        if isinstance(chunk.get("completion"), str):
            self._parts.append(chunk["completion"])
        for key in ("stop_reason", "stop"):
            if chunk.get(key) is not None:
                self._stop[key] = chunk[key]

    @property
    def text(self) -> str:
        return "".join(self._parts)

    def result(self) -> dict[str, Any]:
        return {"type": "completion", "completion": self.text, **self._stop}


# --- the shapes, in the order they are tried ---------------------------------------------


def _has(*keys: str) -> Callable[[dict[str, Any]], bool]:
    return lambda body: any(key in body for key in keys)


def _has_list(key: str) -> Callable[[dict[str, Any]], bool]:
    return lambda body: isinstance(body.get(key), list)


SHAPES: tuple[BodyShape, ...] = (
    BodyShape(
        "anthropic-messages",
        lambda b: (
            b.get("type") == "message"
            or (isinstance(b.get("content"), list) and "stop_reason" in b)
        ),
        anthropic_models.messages_usage,
        lambda c: (
            isinstance(c.get("type"), str) and c["type"] in anthropic_models.STREAM_EVENT_TYPES
        ),
        anthropic_models.MessagesStreamAssembler,
    ),
    BodyShape(
        "converse",
        lambda b: isinstance(as_dict(b.get("output")).get("message"), dict),
        bedrock_converse.converse_usage,
        lambda c: any(key in c for key in bedrock_converse.STREAM_EVENT_KEYS),
        bedrock_converse.ConverseStreamAssembler,
    ),
    BodyShape(
        "titan-text", _has_list("results"), _read_titan_text, _has("outputText"), _TitanStream
    ),
    BodyShape("titan-embed", _has("embedding", "embeddingsByType"), _read_titan_embed),
    BodyShape("llama", _has("generation"), _read_llama, _has("generation"), _LlamaStream),
    BodyShape(
        "anthropic-text",
        _has("completion"),
        _read_anthropic_text,
        _has("completion"),
        _AnthropicTextStream,
    ),
    BodyShape("mistral", _has_list("outputs"), _read_mistral, _has_list("outputs"), _MistralStream),
    BodyShape("choices", _has_list("choices"), _read_choices, _has_list("choices"), _ChoicesStream),
    BodyShape("ai21-jurassic", _has_list("completions"), _read_jurassic),
    BodyShape("cohere-embed", _has("embeddings"), _read_cohere_embed),
    BodyShape(
        "cohere",
        lambda b: _has_list("generations")(b) or isinstance(b.get("text"), str),
        _read_cohere,
        lambda c: _has_list("generations")(c) or _has("event_type", "is_finished")(c),
        _CohereStream,
    ),
)
_BY_NAME = {shape.name: shape for shape in SHAPES}

FAMILY_SHAPES: dict[str, tuple[str, ...]] = {
    "anthropic": ("anthropic-messages", "anthropic-text"),
    "amazon-nova": ("converse",),
    "amazon-titan-text": ("titan-text",),
    "amazon-titan-embed": ("titan-embed",),
    "meta-llama": ("llama",),
    "mistral": ("mistral", "choices"),
    "cohere": ("cohere",),
    "cohere-embed": ("cohere-embed",),
    "ai21": ("choices", "ai21-jurassic"),
    "deepseek": ("choices",),
    "openai": ("choices",),
    "qwen": ("choices",),
    "writer": ("choices",),
}


def _ordered(family: str) -> tuple[BodyShape, ...]:
    preferred = [_BY_NAME[name] for name in FAMILY_SHAPES.get(family, ())]
    return (*preferred, *(shape for shape in SHAPES if shape not in preferred))


_ORDERED = {family: _ordered(family) for family in FAMILY_SHAPES}


def _candidates(family: str) -> tuple[BodyShape, ...]:
    """The shapes to try for ``family``, its own first."""
    return _ORDERED.get(family, SHAPES)


def body_shape(family: str, body: Any) -> BodyShape | None:
    """The shape ``body`` is written in: the family's own shapes first, then any that fits."""
    if not isinstance(body, dict):
        return None
    return next((s for s in _candidates(family) if s.matches(body)), None)


def chunk_shape(family: str, chunk: Any) -> BodyShape | None:
    """The streamable shape a decoded stream chunk is written in, or None."""
    if not isinstance(chunk, dict):
        return None
    return next(
        (s for s in _candidates(family) if s.chunk_matches is not None and s.chunk_matches(chunk)),
        None,
    )
