"""What a simulated model answers, decided once for ``sim`` and for the test upstreams.

``sim`` and the local test upstreams (`llmtrail.testing`) read very different request bodies
but plan their replies the same way. Each wire format's reader reduces a body to a
`Conversation` (the texts the model reads, the tools offered, the tool choice, a tool result,
the cache marker, the token limit); `plan_reply` turns it into a `Reply` (text, an optional
tool call, the stop reason, token usage); each wire format renders the reply in its own shapes.
The rules:

- the last turn carries a tool's result → a text answer that quotes the result;
- tools are offered, the choice allows them, and the user's last turn names one (its name, or
  its name with ``_``/``-`` read as spaces, case-insensitive) or the choice forces one → a call
  of that tool (``Calling <name>.``), with arguments built from its JSON schema;
- otherwise → a text answer;
- a reply counting more tokens than the request's limit is cut to the limit and loses its
  tool call (stop reason ``max_tokens``);
- the texts before the last cache marker are the cacheable prefix: the first request with a
  prefix writes it to the `PromptCache`, later ones read it; input tokens exclude both.

What the text says and how tokens are counted is a `Voice`: ``sim`` speaks `SimVoice` (words
drawn from a fixed vocabulary by a hash of the prompt, counted by the real tokenizer); the test
upstreams speak an echo of the user counted at four characters a token, so tests can predict
every byte. Everything is deterministic and pure but for the cache.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from llmtrail.capture.gateway.providers.sim.prompt_cache import PromptCache
from llmtrail.capture.tokens import count_tokens

_VOCABULARY = (
    "the", "model", "answers", "each", "question", "with", "care", "and", "a", "short", "list",
    "of", "facts", "drawn", "from", "its", "training", "data", "while", "the", "gateway",
    "records", "tokens", "latency", "cost", "and", "metadata", "for", "every", "call", "so",
    "teams", "can", "see", "who", "asked", "what", "when", "and", "why", "it", "failed", "or",
    "succeeded", "in", "production",
)  # fmt: skip


@dataclass(frozen=True)
class Tool:
    """A tool the request offers."""

    name: str
    schema: dict[str, Any]  # JSON schema of the tool's input


@dataclass
class Conversation:
    """A request reduced to what the reply depends on."""

    parts: list[str] = field(default_factory=list)  # what the model reads, in cache order
    last_user_text: str = ""
    tools: list[Tool] = field(default_factory=list)
    forced_tool: str | None = None  # a tool the tool choice requires ("": any tool)
    tools_allowed: bool = True
    tool_result: str | None = None  # the last turn's tool result, as text
    tool_result_name: str | None = None
    cached_parts: int = 0  # how many of ``parts`` the last cache marker covers
    max_tokens: int | None = None

    @property
    def prompt(self) -> str:
        """All the text of the request, for hashing."""
        return "\n".join(self.parts)

    def read(self, text: str, *, cache: bool = False) -> None:
        """Add one text the model reads; ``cache``: a cache marker follows it."""
        self.parts.append(text)
        if cache:
            self.mark_cache()

    def mark_cache(self) -> None:
        """A cache marker here: everything read so far is the cacheable prefix."""
        self.cached_parts = len(self.parts)


@dataclass(frozen=True)
class ToolCall:
    """The tool call a reply makes."""

    id: str
    name: str
    input: dict[str, Any]

    @property
    def input_json(self) -> str:
        """The arguments as the JSON text streams deliver in pieces."""
        return orjson.dumps(self.input).decode()


@dataclass(frozen=True)
class Usage:
    """Token counts; ``input_tokens`` excludes the cached ones, as Anthropic and Bedrock count."""

    input_tokens: int
    output_tokens: int
    cache_read: int = 0
    cache_write: int = 0

    @property
    def prompt_tokens(self) -> int:
        """Every input token, cached or not (OpenAI's ``prompt_tokens``)."""
        return self.input_tokens + self.cache_read + self.cache_write

    @property
    def total(self) -> int:
        return self.prompt_tokens + self.output_tokens


@dataclass(frozen=True)
class Reply:
    """The model's answer before any wire format is applied."""

    text: str
    tool_call: ToolCall | None
    stop_reason: str  # end_turn | tool_use | max_tokens
    usage: Usage


class Voice(Protocol):
    """What a text answer says and how tokens are counted."""

    def answer(self, conversation: Conversation) -> str:
        """The text of an answer that calls no tool."""
        ...

    def count(self, text: str) -> int:
        """The tokens of ``text``."""
        ...

    def prompt_tokens(self, parts: Sequence[str]) -> int:
        """The input tokens of a request that reads ``parts`` (or of its cached prefix)."""
        ...


@dataclass(frozen=True)
class SimVoice:
    """``sim``'s voice: ``words`` words (default 12–60) from a fixed vocabulary, drawn by a
    hash of the prompt; after a tool result, ``The <tool> tool returned: <result>.`` first.
    Tokens are the real tokenizer's for ``model``; each text read costs 4 more (the message's
    framing) and a request 3 more (the reply's start), as OpenAI's accounting has it."""

    model: str = ""
    words: int | None = None

    def answer(self, conversation: Conversation) -> str:
        seed = hash_int(conversation.prompt)
        count = self.words if self.words is not None else 12 + seed % 49
        words = vocabulary_words(seed, count)
        if conversation.tool_result is not None:
            name = conversation.tool_result_name or "tool"
            quoted = _one_line(conversation.tool_result, 200)
            words = [f"The {name} tool returned:", quoted + ".", *words]
        return " ".join(words) + "."

    def count(self, text: str) -> int:
        return count_tokens(text, self.model)

    def prompt_tokens(self, parts: Sequence[str]) -> int:
        return 3 + sum(count_tokens(part, self.model) + 4 for part in parts)


def plan_reply(
    conversation: Conversation,
    voice: Voice,
    *,
    model: str = "",
    call_id: str | None = None,
    cache: PromptCache | None = None,
) -> Reply:
    """The reply to ``conversation`` (see the module docstring). A tool call's id is
    ``call_id``, or one derived from the prompt; the cache keeps prefixes per ``model``."""
    call: ToolCall | None = None
    tool = _chosen_tool(conversation)
    if tool is not None:
        text = f"Calling {tool.name}."
        if call_id is None:
            digest = hashlib.blake2b(conversation.prompt.encode(), digest_size=8).hexdigest()
            call_id = "toolu_sim" + digest
        call = ToolCall(call_id, tool.name, arguments_for(tool.schema, conversation.last_user_text))
    else:
        text = voice.answer(conversation)
    output = voice.count(text) + (voice.count(call.name + call.input_json) if call else 0)
    stop = "tool_use" if call else "end_turn"
    limit = conversation.max_tokens
    if limit is not None and output > limit:
        text = _cut(text, limit, voice.count)
        call, stop, output = None, "max_tokens", min(limit, voice.count(text))
    read = write = 0
    prefix = conversation.parts[: conversation.cached_parts]
    if cache is not None and any(prefix):
        read, write = cache.use([model, *prefix], voice.prompt_tokens(prefix))
    uncached = max(0, voice.prompt_tokens(conversation.parts) - read - write)
    return Reply(text, call, stop, Usage(uncached, output, read, write))


def _chosen_tool(conversation: Conversation) -> Tool | None:
    if conversation.tool_result is not None or not conversation.tools_allowed:
        return None
    text = conversation.last_user_text.lower()
    named = next((t for t in conversation.tools if _is_named(t.name.lower(), text)), None)
    forced = conversation.forced_tool
    if forced == "":
        return named or (conversation.tools[0] if conversation.tools else None)
    if forced is not None:
        return next((t for t in conversation.tools if t.name == forced), None)
    return named


def _is_named(name: str, text: str) -> bool:
    """Whether ``text`` names the tool ``name``: as it is, or with ``_``/``-`` read as spaces."""
    return bool(name) and (name in text or re.sub(r"[_\-]+", " ", name) in text)


def _cut(text: str, limit: int, count: Callable[[str], int]) -> str:
    """The longest start of ``text`` that counts at most ``limit`` tokens. The search doubles
    from ``limit`` characters first, so a long text with a small limit is counted in short
    pieces."""
    high = max(1, limit)
    while high < len(text) and count(text[:high]) <= limit:
        high *= 2
    low, high = 0, min(high, len(text))  # text[:low] fits; the answer is at most high
    while low < high:
        mid = (low + high + 1) // 2
        if count(text[:mid]) <= limit:
            low = mid
        else:
            high = mid - 1
    return text[:low]


def vocabulary_words(seed: int, count: int) -> list[str]:
    out = []
    for i in range(count):
        seed = (seed * 6364136223846793005 + 1442695040888963407) % 2**64
        word = _VOCABULARY[(seed >> 33) % len(_VOCABULARY)]
        out.append(word.capitalize() if i == 0 else word)
    return out


def arguments_for(schema: Any, text: str) -> dict[str, Any]:
    """Arguments that satisfy a JSON schema's required properties (all, if none are listed)."""
    props = schema.get("properties") if isinstance(schema, dict) else None
    props = props if isinstance(props, dict) else {}
    required = schema.get("required") if isinstance(schema, dict) else None
    names = [n for n in required if n in props] if isinstance(required, list) else list(props)
    return {name: _value_for(props[name], text) for name in names if isinstance(name, str)}


def _value_for(prop: Any, text: str) -> Any:
    prop = prop if isinstance(prop, dict) else {}
    if isinstance(prop.get("enum"), list) and prop["enum"]:
        return prop["enum"][0]
    kind = prop.get("type")
    kind = kind[0] if isinstance(kind, list) and kind else kind
    number = re.search(r"-?\d+(?:\.\d+)?", text)
    if kind == "integer":
        return int(float(number.group())) if number else 1
    if kind == "number":
        return float(number.group()) if number else 1.0
    if kind == "boolean":
        return True
    if kind == "array":
        return []
    if kind == "object":
        return arguments_for(prop, text)
    return _one_line(text, 100)


def _one_line(text: str, limit: int) -> str:
    return " ".join(text.split())[:limit]


def hash_int(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")
