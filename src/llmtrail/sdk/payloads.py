"""Function arguments, return values and yielded items as bounded JSON text.

A span's input and output are serialised in the caller's thread at the moment they exist,
because the objects may change afterwards; the text is capped at ``max_chars`` so that a huge
prompt or a long stream costs bounded memory and bandwidth. Anything orjson cannot encode
natively becomes what ``model_dump()`` gives (pydantic models, such as the openai and
anthropic clients' responses) or its ``repr`` — capture must never raise into the app.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import orjson

_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY
_REPR_MAX = 2_000


def _default(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    if callable(dump) and not isinstance(value, type):
        return dump(mode="json")
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(value)} bytes>"
    text = repr(value)
    return text if len(text) <= _REPR_MAX else text[:_REPR_MAX] + "…"


def json_text(value: Any) -> str:
    """``value`` as JSON text, whatever it is; never raises."""
    try:
        return orjson.dumps(value, default=_default, option=_OPTIONS).decode()
    except Exception:
        try:
            return orjson.dumps(_default(value)).decode()
        except Exception:
            return '"<unserialisable>"'


def bounded(text: str, max_chars: int) -> tuple[str, bool]:
    """``text`` cut to ``max_chars`` with a marker saying how much was cut, and whether it was."""
    if len(text) <= max_chars:
        return text, False
    return f"{text[:max_chars]}…[truncated {len(text) - max_chars} chars]", True


def call_arguments(
    signature: inspect.Signature | None, args: tuple[Any, ...], kwargs: Mapping[str, Any]
) -> dict[str, Any]:
    """The arguments of one call by parameter name: ``self``/``cls`` left out, ``**kwargs``
    flattened into the top level, defaults not filled in (only what the caller passed)."""
    if signature is None:
        return {"args": list(args), "kwargs": dict(kwargs)}
    try:
        bound = signature.bind_partial(*args, **kwargs)
    except TypeError:
        return {"args": list(args), "kwargs": dict(kwargs)}
    out: dict[str, Any] = {}
    for position, (name, value) in enumerate(bound.arguments.items()):
        parameter = signature.parameters[name]
        if position == 0 and name in ("self", "cls"):
            continue
        if parameter.kind is inspect.Parameter.VAR_KEYWORD and isinstance(value, dict):
            out.update(value)
        else:
            out[name] = value
    return out


def signature_of(func: Any) -> inspect.Signature | None:
    """``func``'s signature, or None for callables that have none (some builtins)."""
    try:
        return inspect.signature(func)
    except (TypeError, ValueError):
        return None


class ItemCollector:
    """The items a generator yielded, as one JSON array kept under ``max_chars``.

    Each item is serialised when it is yielded; once the budget is spent the rest are only
    counted, so a long stream holds bounded memory. The array stays valid JSON either way.
    """

    def __init__(self, max_chars: int) -> None:
        self._max_chars = max_chars
        self._parts: list[str] = []
        self._size = 2
        self.count = 0
        self.truncated = False

    def add(self, item: Any) -> None:
        """Record one yielded item."""
        self.count += 1
        if self.truncated:
            return
        text = json_text(item)
        if self._size + len(text) + 1 > self._max_chars:
            self.truncated = True
            return
        self._parts.append(text)
        self._size += len(text) + 1

    def text(self) -> str:
        """The kept items as a JSON array."""
        return "[" + ",".join(self._parts) + "]"
