"""What a fake upstream answers, decided once for every wire format.

The Anthropic and Bedrock fakes read very different request bodies, but behave the same: each
reader reduces its body to a `Conversation`, `plan_reply` turns that into a `Reply` (text, an
optional tool call, stop reason, token usage), and each writer renders the reply in its own
shapes. Everything here is deterministic, so tests can predict every byte:

* text: ``echo: <last user text> `` repeated to ``size`` bytes;
* tokens: ``len(text) // 4 + 1`` per piece of text;
* tools: when tools are offered and the last user turn carries no tool result, the reply calls
  the tool the user's text names (or the first tool), with arguments filled from its schema;
  after a tool result it answers with text that quotes the result;
* prompt caching: the text before the last cache marker is the cacheable prefix; the first
  request with a given prefix writes it, later ones read it (see `PromptCache`);
* ``max_tokens`` below the reply's size cuts the text and drops the tool call.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from llmtrail.errors import Picklable

__all__ = [
    "Conversation",
    "InvalidRequest",
    "PromptCache",
    "Reply",
    "ToolCall",
    "ToolSpec",
    "Usage",
    "count_tokens",
    "echo_text",
    "pieces",
    "plan_reply",
]


class InvalidRequest(Picklable, ValueError):
    """A request body the fake refuses; the message is what the provider would say."""


def count_tokens(text: str) -> int:
    """The fakes' token count of ``text``."""
    return len(text) // 4 + 1


def echo_text(prompt: str, size: int) -> str:
    """``echo: <prompt> `` repeated and cut to ``size`` UTF-8 bytes (never splitting a char)."""
    if size <= 0:
        return ""
    unit = f"echo: {prompt} ".encode()
    return (unit * (size // len(unit) + 1))[:size].decode("utf-8", errors="ignore")


def pieces(text: str, count: int = 8) -> list[str]:
    """``text`` in about ``count`` consecutive pieces (none for empty text)."""
    step = max(1, -(-len(text) // count))
    return [text[i : i + step] for i in range(0, len(text), step)]


@dataclass(frozen=True)
class ToolSpec:
    """A tool the request offers."""

    name: str
    schema: Mapping[str, Any]  # JSON schema of the tool's input


@dataclass(frozen=True)
class Conversation:
    """A request reduced to what the reply depends on."""

    input_text: str  # everything the model reads, in cache order (tools, system, messages)
    last_user_text: str
    tool_result: str | None = None  # the tool result in the last user turn, if any
    tools: tuple[ToolSpec, ...] = ()
    cache_prefix: str | None = None  # input text before the last cache marker
    max_tokens: int | None = None


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
    def total(self) -> int:
        return self.input_tokens + self.output_tokens + self.cache_read + self.cache_write


@dataclass(frozen=True)
class Reply:
    """The model's answer before any wire format is applied."""

    text: str
    tool_call: ToolCall | None
    stop_reason: str  # end_turn | tool_use | max_tokens
    usage: Usage


@dataclass
class PromptCache:
    """Remembers the cacheable prefixes seen, so a repeated prefix is a cache read."""

    _seen: set[bytes] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def use(self, prefix: str) -> tuple[int, int]:
        """``(read, write)`` tokens for a request whose cacheable prefix is ``prefix``."""
        tokens = count_tokens(prefix)
        key = hashlib.sha256(prefix.encode()).digest()
        with self._lock:
            if key in self._seen:
                return tokens, 0
            self._seen.add(key)
        return 0, tokens


def _argument(schema: Any, user_text: str) -> Any:
    if not isinstance(schema, Mapping):
        return user_text
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    kind = schema.get("type")
    defaults: dict[str, Any] = {"integer": 1, "number": 1.5, "boolean": True, "array": []}
    if kind == "object":
        return _arguments(schema, user_text)
    return defaults.get(kind, user_text[:40]) if isinstance(kind, str) else user_text[:40]


def _arguments(schema: Mapping[str, Any], user_text: str) -> dict[str, Any]:
    properties = schema.get("properties")
    if not isinstance(properties, Mapping):
        return {}
    required = schema.get("required")
    names = [n for n in properties if not isinstance(required, list) or n in required]
    return {str(n): _argument(properties[n], user_text) for n in names}


def _chosen_tool(conversation: Conversation) -> ToolSpec:
    named = [t for t in conversation.tools if t.name and t.name in conversation.last_user_text]
    return named[0] if named else conversation.tools[0]


def plan_reply(
    conversation: Conversation, *, size: int, call_id: str, cache: PromptCache | None = None
) -> Reply:
    """The deterministic reply to ``conversation`` (see the module docstring)."""
    call: ToolCall | None = None
    if conversation.tool_result is not None:
        text = echo_text(f"tool result {conversation.tool_result}", size)
    elif conversation.tools:
        tool = _chosen_tool(conversation)
        text = f"Calling {tool.name}."
        call = ToolCall(call_id, tool.name, _arguments(tool.schema, conversation.last_user_text))
    else:
        text = echo_text(conversation.last_user_text, size)
    output = count_tokens(text) + (count_tokens(call.name + call.input_json) if call else 0)
    stop = "tool_use" if call else "end_turn"
    limit = conversation.max_tokens
    if limit is not None and output > limit:
        text = text[: max(0, 4 * limit - 1)]
        call, stop, output = None, "max_tokens", min(limit, count_tokens(text))
    read = write = 0
    if conversation.cache_prefix and cache is not None:
        read, write = cache.use(conversation.cache_prefix)
    uncached = max(0, count_tokens(conversation.input_text) - read - write)
    return Reply(text, call, stop, Usage(uncached, output, read, write))
