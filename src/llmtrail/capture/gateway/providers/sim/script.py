"""What ``sim`` answers, decided once for every wire format.

A request is first read into a `Conversation` (the prompt text, the tools offered, the tool
choice, and whether the last turn is a tool result); `plan_reply` then decides the answer:

- the last turn carries a tool's result → a text answer that quotes the result;
- tools are offered, the choice allows them, and the user's last turn names one (its name, or
  its name with ``_``/``-`` read as spaces, case-insensitive) or the choice forces one → a
  call of that tool, with arguments built from its JSON schema;
- otherwise → deterministic text: words drawn from a fixed vocabulary by a hash of the prompt.

Every wire format renders the same `Reply`, so an agent loop behaves the same on the OpenAI,
Anthropic and Bedrock routes.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

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


@dataclass
class Tool:
    name: str
    schema: dict[str, Any]


@dataclass
class Conversation:
    prompt: str  # all the text of the request, for hashing and counting
    last_user_text: str = ""
    tools: list[Tool] = field(default_factory=list)
    forced_tool: str | None = None  # a tool the caller's tool choice requires
    tools_allowed: bool = True
    tool_result: str | None = None  # the last turn's tool result, as text
    tool_result_name: str | None = None


@dataclass
class ToolCall:
    call_id: str
    name: str
    arguments: dict[str, Any]


@dataclass
class Reply:
    text: str
    stop: str  # "stop" | "length" | "tool"
    tool_call: ToolCall | None = None


def plan_reply(conv: Conversation, words: int | None, max_tokens: int | None) -> Reply:
    """The answer to ``conv``: a tool call, an answer to a tool result, or plain text."""
    seed = hash_int(conv.prompt)
    if conv.tool_result is None and conv.tools and conv.tools_allowed:
        tool = _chosen_tool(conv)
        if tool is not None:
            call_id = "toolu_sim" + hashlib.blake2b(conv.prompt.encode(), digest_size=8).hexdigest()
            arguments = arguments_for(tool.schema, conv.last_user_text)
            return Reply("", "tool", ToolCall(call_id, tool.name, arguments))
    count = words if words is not None else 12 + seed % 49
    body = vocabulary_words(seed, count)
    if conv.tool_result is not None:
        name = conv.tool_result_name or "tool"
        body = [f"The {name} tool returned:", _one_line(conv.tool_result, 200) + ".", *body]
    if max_tokens is not None and max_tokens < len(body):
        return Reply(" ".join(body[:max_tokens]), "length")
    return Reply(" ".join(body) + ".", "stop")


def vocabulary_words(seed: int, count: int) -> list[str]:
    out = []
    for i in range(count):
        seed = (seed * 6364136223846793005 + 1442695040888963407) % 2**64
        word = _VOCABULARY[(seed >> 33) % len(_VOCABULARY)]
        out.append(word.capitalize() if i == 0 else word)
    return out


def _chosen_tool(conv: Conversation) -> Tool | None:
    by_name = {t.name: t for t in conv.tools}
    if conv.forced_tool is not None:
        return by_name.get(conv.forced_tool, conv.tools[0] if conv.forced_tool == "" else None)
    text = conv.last_user_text.lower()
    for tool in conv.tools:
        name = tool.name.lower()
        if name and (name in text or re.sub(r"[_\-]+", " ", name) in text):
            return tool
    return None


def arguments_for(schema: dict[str, Any], text: str) -> dict[str, Any]:
    """Arguments that satisfy a JSON schema's required properties (all, if none are listed)."""
    props = schema.get("properties")
    props = props if isinstance(props, dict) else {}
    required = schema.get("required")
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
        return {}
    return _one_line(text, 100)


def _one_line(text: str, limit: int) -> str:
    return " ".join(text.split())[:limit]


def hash_int(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def text_of(content: Any) -> str:
    """Text inside any of the formats' content shapes: a string, or a list of blocks with a
    ``text`` (OpenAI, Anthropic, Converse) or a ``content`` of their own (tool results)."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        if isinstance(content.get("text"), str):
            return content["text"]
        if "json" in content:
            return str(content["json"])
        return text_of(content.get("content"))
    if isinstance(content, list):
        return " ".join(t for t in (text_of(c) for c in content) if t)
    return ""
