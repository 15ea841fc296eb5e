"""A request and its response as one conversation: who said what, which tools were called
with which arguments, and what they returned — whatever wire format carried it.

Three body shapes reach the records: OpenAI chat completions (``messages`` with
``tool_calls`` and ``tool`` turns; the answer in ``choices``), Anthropic Messages (``system``,
content blocks ``text`` / ``tool_use`` / ``tool_result``; Bedrock's InvokeModel carries the
same body) and Bedrock Converse (``system`` blocks, content blocks ``text`` / ``toolUse`` /
``toolResult``; the answer in ``output.message``). `conversation` reads any of them into
`Message` items; anything it does not recognise is kept as a ``json`` part, so nothing is
hidden. Pure: bodies in, messages out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson


@dataclass
class Part:
    """One piece of a message: ``text``, ``tool_call`` (``name``, ``id``, ``text`` = the
    arguments as JSON), ``tool_result`` (``id``, ``text``), ``image`` or ``json``."""

    kind: str
    text: str = ""
    name: str | None = None
    id: str | None = None
    error: bool = False


@dataclass
class Message:
    role: str
    parts: list[Part] = field(default_factory=list)
    side: str = "request"  # or "response"


def conversation(request: Any, response: Any) -> list[Message]:
    """The messages of ``request`` then those of ``response`` (either may be None)."""
    out = [*_request_messages(request)]
    for message in _response_messages(response):
        message.side = "response"
        out.append(message)
    return out


def _request_messages(body: Any) -> list[Message]:
    if not isinstance(body, dict):
        return [] if body is None else [Message("input", [_json(body)])]
    out: list[Message] = []
    system = body.get("system")
    if isinstance(system, str) and system:
        out.append(Message("system", [Part("text", system)]))
    elif isinstance(system, list):
        out.append(Message("system", [_block(b) for b in system]))
    messages = body.get("messages")
    if isinstance(messages, list):
        out += [_message(m) for m in messages]
    elif "input" in body:  # embeddings
        out.append(Message("input", [_text_or_json(body["input"])]))
    elif "prompt" in body or "inputText" in body:
        out.append(Message("user", [_text_or_json(body.get("prompt", body.get("inputText")))]))
    elif not out:
        out.append(Message("input", [_json(body)]))
    return out


def _response_messages(body: Any) -> list[Message]:
    if not isinstance(body, dict):
        return [] if body is None else [Message("output", [_json(body)])]
    choices = body.get("choices")
    if isinstance(choices, list):  # OpenAI
        return [_message(c.get("message") or {}) for c in choices if isinstance(c, dict)]
    output = body.get("output")
    if isinstance(output, dict) and isinstance(output.get("message"), dict):  # Converse
        return [_message(output["message"])]
    if isinstance(body.get("content"), list):  # Anthropic Messages
        return [_message({"role": body.get("role") or "assistant", "content": body["content"]})]
    if "data" in body and body.get("object") == "list":  # embeddings: vectors not shown
        return [Message("output", [Part("text", f"{len(body['data'])} embedding(s)")])]
    return [Message("output", [_json(body)])]


def _message(doc: Any) -> Message:
    if not isinstance(doc, dict):
        return Message("message", [_json(doc)])
    role = str(doc.get("role") or "message")
    content = doc.get("content")
    parts: list[Part] = []
    if isinstance(content, str):
        parts.append(Part("tool_result" if role == "tool" else "text", content))
    elif isinstance(content, list):
        parts += [_block(b) for b in content]
    elif content is not None:
        parts.append(_json(content))
    for call in doc.get("tool_calls") or []:  # OpenAI
        call = call if isinstance(call, dict) else {}
        found = call.get("function")
        function: dict[str, Any] = found if isinstance(found, dict) else {}
        parts.append(
            Part(
                "tool_call",
                _arguments(function.get("arguments")),
                name=function.get("name"),
                id=call.get("id"),
            )
        )
    if role == "tool":
        for part in parts:
            part.kind, part.id = "tool_result", doc.get("tool_call_id")
    return Message(role, parts)


def _block(block: Any) -> Part:
    """One content block of Anthropic's or Converse's shape (or OpenAI's content parts)."""
    if isinstance(block, str):
        return Part("text", block)
    if not isinstance(block, dict):
        return _json(block)
    kind = block.get("type")
    if "text" in block and isinstance(block["text"], str) and kind in (None, "text"):
        return Part("text", block["text"])
    if kind == "tool_use":
        return Part("tool_call", _arguments(block.get("input")), block.get("name"), block.get("id"))
    if kind == "tool_result":
        return Part(
            "tool_result",
            _content_text(block.get("content")),
            id=block.get("tool_use_id"),
            error=bool(block.get("is_error")),
        )
    if isinstance(block.get("toolUse"), dict):
        use = block["toolUse"]
        arguments = _arguments(use.get("input"))
        return Part("tool_call", arguments, use.get("name"), use.get("toolUseId"))
    if isinstance(block.get("toolResult"), dict):
        result = block["toolResult"]
        return Part(
            "tool_result",
            _content_text(result.get("content")),
            id=result.get("toolUseId"),
            error=result.get("status") == "error",
        )
    if kind in ("image", "image_url") or "image" in block:
        return Part("image", "[image]")
    return _json(block)


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for item in content:
            if isinstance(item, dict) and isinstance(item.get("text"), str):
                texts.append(item["text"])
            elif isinstance(item, dict) and "json" in item:
                texts.append(_dumps(item["json"]))
            else:
                texts.append(_dumps(item))
        return "\n".join(texts)
    return "" if content is None else _dumps(content)


def _arguments(value: Any) -> str:
    """Tool arguments as indented JSON (OpenAI sends them as a JSON string)."""
    if isinstance(value, str):
        try:
            return _dumps(orjson.loads(value))
        except orjson.JSONDecodeError:
            return value
    return _dumps(value if value is not None else {})


def _text_or_json(value: Any) -> Part:
    return Part("text", value) if isinstance(value, str) else _json(value)


def _json(value: Any) -> Part:
    return Part("json", _dumps(value))


def _dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2, default=str).decode()
