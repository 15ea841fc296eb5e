"""What went into and came out of a span, by whichever convention carried the content.

Message bodies are kept in the shape they arrived in — the GenAI conventions' parts
(``gen_ai.input.messages``), the message events before v1.37 (``gen_ai.user.message`` …
``gen_ai.choice``, ``gen_ai.content.prompt``), OpenInference's JSON ``input.value`` (the
provider's own request) or its flattened ``llm.input_messages.N.message.*`` — never
rewritten into another API's shape. The llmtrail SDK's ``llmtrail.input`` /
``llmtrail.output`` (a function's arguments and return value, as JSON text) are a step's
input and output, and a model call's body only when no convention carried its messages.
Pure functions of the span.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from llmtrail.capture.otlp_span import OtlpEvent, OtlpSpan, first_str, json_text, json_value

# -- bodies --------------------------------------------------------------------------------------

_GENAI_PARAMS = (
    "max_tokens",
    "temperature",
    "top_p",
    "top_k",
    "stop_sequences",
    "seed",
    "frequency_penalty",
    "presence_penalty",
    "choice.count",
    "stream",
    "encoding_formats",
)
_ROLE_EVENTS = {
    "gen_ai.system.message": "system",
    "gen_ai.user.message": "user",
    "gen_ai.assistant.message": "assistant",
    "gen_ai.tool.message": "tool",
}


def input_body(span: OtlpSpan) -> Any:
    """The request as it is logged: OpenInference's ``input.value`` when it is the JSON
    request, else ``{model, <request parameters>, messages, system_instructions}`` from
    whichever convention carried the messages; None when nothing was captured."""
    a = span.attributes
    raw = json_value(a.get("input.value"))
    if isinstance(raw, dict):
        return raw
    body: dict[str, Any] = {}
    model = first_str(a, "gen_ai.request.model", "llm.request.model_name", "llm.model_name")
    if model:
        body["model"] = model
    for name in _GENAI_PARAMS:
        if f"gen_ai.request.{name}" in a:
            body[name.replace(".", "_")] = a[f"gen_ai.request.{name}"]
    params = json_value(a.get("llm.invocation_parameters"))
    if isinstance(params, dict):
        body.update({k: v for k, v in params.items() if k not in body})
    messages = input_messages(span)
    if messages is not None:
        body["messages"] = messages
    system = json_value(a.get("gen_ai.system_instructions"))
    if system is not None:
        body["system_instructions"] = system
    if "messages" not in body:
        given = raw if raw is not None else json_text(a.get("llmtrail.input"))
        if given is not None:
            body["input"] = given
    return body or None


def output_body(span: OtlpSpan) -> Any:
    """The response as it is logged: OpenInference's ``output.value`` when it is JSON, else
    ``{id, model, messages | choices}``; None when no content was captured."""
    a = span.attributes
    raw = json_value(a.get("output.value"))
    if isinstance(raw, dict):
        return raw
    content: dict[str, Any] = {}
    candidates: tuple[tuple[str, Callable[[], Any]], ...] = (
        ("messages", lambda: json_value(a.get("gen_ai.output.messages"))),
        ("choices", lambda: _choice_events(span)),
        (
            "choices",
            lambda: _event_attribute(span, "gen_ai.content.completion", "gen_ai.completion"),
        ),
        ("choices", lambda: _indexed_messages(a, "gen_ai.completion.")),
        ("messages", lambda: _indexed_messages(a, "llm.output_messages.")),
        ("output", lambda: raw),
        ("output", lambda: json_text(a.get("llmtrail.output"))),
    )
    for key, read in candidates:
        value = read()
        if value is not None:
            content[key] = value
            break
    if not content:
        return None
    head = {
        "id": first_str(a, "gen_ai.response.id"),
        "model": first_str(a, "gen_ai.response.model", "llm.response.model_name"),
    }
    return {**{k: v for k, v in head.items() if v}, **content}


def input_messages(span: OtlpSpan) -> Any:
    """The input messages of the newest convention present, or None."""
    a = span.attributes
    messages = json_value(a.get("gen_ai.input.messages"))
    if messages is not None:
        return messages
    from_events = [_role_message(e) for e in span.events if e.name in _ROLE_EVENTS]
    if from_events:
        return from_events
    prompt = _event_attribute(span, "gen_ai.content.prompt", "gen_ai.prompt")
    if prompt is not None:
        return prompt
    for prefix in ("gen_ai.prompt.", "llm.input_messages."):
        indexed = _indexed_messages(a, prefix)
        if indexed is not None:
            return indexed
    return None


def event_body(event: OtlpEvent) -> dict[str, Any]:
    """A message event's body: ``gen_ai.event.content`` JSON, or the body's fields set as
    event attributes (``content``, ``role``, ``tool_calls``, ``index``, …)."""
    body = json_value(event.attributes.get("gen_ai.event.content"))
    if isinstance(body, dict):
        return body
    return {
        k: json_value(v) if k in ("message", "tool_calls") else v
        for k, v in event.attributes.items()
        if not k.startswith("gen_ai.")
    }


def _role_message(event: OtlpEvent) -> dict[str, Any]:
    return {"role": _ROLE_EVENTS[event.name], **event_body(event)}


def _choice_events(span: OtlpSpan) -> list[dict[str, Any]] | None:
    choices = [event_body(e) for e in span.events if e.name == "gen_ai.choice"]
    return choices or None


def _event_attribute(span: OtlpSpan, event_name: str, key: str) -> Any:
    for event in span.events:
        if event.name == event_name and key in event.attributes:
            return json_value(event.attributes[key])
    return None


_INDEX_DIGITS = 9  # an index is at most this many ASCII digits; a longer run is a plain key
_INDEXED = re.compile(r"([0-9]{1,9})\.(.+)", re.DOTALL)  # _INDEX_DIGITS digits
KEY_DEPTH_MAX = 32  # levels a flattened key expands to; the rest of a longer key is one name


def _indexed_messages(attrs: Mapping[str, Any], prefix: str) -> list[dict[str, Any]] | None:
    """Flattened messages (``prefix.N.message.role`` …) as a list of objects: OpenInference's
    ``message.`` / ``message_content.`` / ``tool_call.`` prefixes are dropped from the keys
    and indexed parts become lists, so ``llm.input_messages.0.message.content`` is
    ``[{"content": …}]``. A key expands to at most `KEY_DEPTH_MAX` levels (what is left of a
    longer one is the last level's name), and only ASCII digits are indexes."""
    found: dict[int, dict[str, Any]] = {}
    for key, value in attrs.items():
        if not key.startswith(prefix):
            continue
        match = _INDEXED.fullmatch(key, len(prefix))
        if match is None:
            continue
        _set_nested(found.setdefault(int(match.group(1)), {}), match.group(2), value)
    if not found:
        return None
    return [_listify(found[i]) for i in sorted(found)]


_OI_PREFIXES = ("message.", "message_content.", "tool_call.")


def _set_nested(target: dict[str, Any], path: str, value: Any) -> None:
    parts: list[str] = []
    rest = path
    while rest:
        for prefix in _OI_PREFIXES:
            if rest.startswith(prefix):
                rest = rest[len(prefix) :]
                break
        if len(parts) == KEY_DEPTH_MAX - 1:
            parts.append(rest)
            break
        head, _, rest = rest.partition(".")
        parts.append(head)
    if not parts:  # the key ended with a prefix: "0.message."
        parts.append("")
    cur = target
    for part in parts[:-1]:
        nxt = cur.get(part)
        if not isinstance(nxt, dict):
            nxt = cur[part] = {}
        cur = nxt
    cur[parts[-1]] = value


def _listify(node: Any) -> Any:
    """Dicts whose keys are all indexes become lists, in index order, down to twice
    `KEY_DEPTH_MAX` levels (a key's levels, then the attribute value's own)."""
    return _listify_levels(node, 2 * KEY_DEPTH_MAX)


def _listify_levels(node: Any, levels: int) -> Any:
    if not isinstance(node, dict) or levels <= 0:
        return node
    items = {k: _listify_levels(v, levels - 1) for k, v in node.items()}
    if items and all(_is_index(k) for k in items):
        return [items[k] for k in sorted(items, key=int)]
    return items


def _is_index(key: Any) -> bool:
    return (
        isinstance(key, str) and 0 < len(key) <= _INDEX_DIGITS and key.isascii() and key.isdigit()
    )


# -- inputs and outputs of other spans -----------------------------------------------------------

_SPAN_INPUTS = (
    "llmtrail.input",
    "input.value",
    "gen_ai.tool.call.arguments",
    "gen_ai.retrieval.query.text",
    "gen_ai.input.messages",
    "traceloop.entity.input",
)
_SPAN_OUTPUTS = (
    "llmtrail.output",
    "output.value",
    "gen_ai.tool.call.result",
    "gen_ai.retrieval.documents",
    "gen_ai.output.messages",
    "traceloop.entity.output",
)


def span_io(span: OtlpSpan) -> tuple[tuple[str, Any] | None, tuple[str, Any] | None]:
    """(attribute, value) of the span's input and of its output, each from the first
    attribute present in convention order, or None."""
    return _first_present(span.attributes, _SPAN_INPUTS), _first_present(
        span.attributes, _SPAN_OUTPUTS
    )


def _first_present(attrs: Mapping[str, Any], keys: tuple[str, ...]) -> tuple[str, Any] | None:
    for key in keys:
        value = attrs.get(key)
        if value is not None:
            return key, json_text(value) if key in _JSON_TEXT else json_value(value)
    return None


_JSON_TEXT = frozenset({"llmtrail.input", "llmtrail.output"})
