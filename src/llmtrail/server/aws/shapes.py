"""Values in and out of botocore's shapes.

`read_input` turns what arrived on the wire (JSON values, CBOR values, or strings from a
URI and query string) into the Python values a handler sees, checking every constraint the
model states — required members, types, enums, lengths, ranges — the way AWS's own
validation answers: ``1 validation error detected: Value 'x' at 'limit' failed to satisfy
constraint: Member must have value less than or equal to 10000``. (botocore checks some of
this on the client; the aws CLI, other SDKs and hand-made requests do not.) Whatever arrives,
the reader ends in `InputInvalid`, never another exception: integers must fit the shape's
32 or 64 bits, timestamps must name an instant datetime can hold, and values nest at most
`MAX_DEPTH` shapes deep (Cost Explorer's ``Expression`` is recursive; without a bound, a
request nested a thousand ``Not``s deep would exhaust the stack). Text from a URI, query
string or header arrives as `Text`, and only such values are parsed from text: a JSON body's
``"5"`` is not an integer, nor its ``"a"`` a list.

`write_output` does the reverse for an answer: members by their wire names, timestamps in
the protocol's format, `Decimal` amounts as the shape's number or string. A member the shape
does not have is a fault of the handler, raised at once.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from llmtrail.errors import Picklable

if TYPE_CHECKING:
    from botocore.model import Shape

__all__ = ["MAX_DEPTH", "InputInvalid", "OutputInvalid", "Text", "read_input", "write_output"]

MAX_ERRORS = 10
MAX_DEPTH = 32  # shapes inside shapes; botocore's deepest non-recursive input nests ~10
_BITS = {"integer": 32, "long": 64}


class InputInvalid(Picklable, Exception):
    """The input breaks its shape: ``problems`` in AWS's words; ``serialization`` when a value
    has the wrong JSON type (AWS answers SerializationException for those)."""

    def __init__(self, problems: list[str], serialization: bool = False) -> None:
        count = len(problems)
        noun = "error" if count == 1 else "errors"
        super().__init__(f"{count} validation {noun} detected: " + "; ".join(problems))
        self.problems = problems
        self.serialization = serialization

    @classmethod
    def body(cls, message: str) -> InputInvalid:
        """The body as a whole cannot be read (not JSON, not CBOR): ``message`` alone."""
        found = cls([message], serialization=True)
        found.args = (message,)
        return found

    def __str__(self) -> str:
        return str(self.args[0])


class Text(str):
    """A value that arrived as text (a URI label, a query-string value, a header): the only
    values read from text into integers, booleans, timestamps and lists."""


class OutputInvalid(Picklable, Exception):
    """A handler answered something its output shape does not allow."""


def _shown(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= 100 else text[:97] + "..."


class _Reader:
    def __init__(self) -> None:
        self.problems: list[str] = []
        self.serialization = False
        self.depth = 0
        self.wrong_types = 0

    def problem(self, path: str, value: Any, rule: str) -> None:
        if len(self.problems) < MAX_ERRORS:
            self.problems.append(
                f"Value '{_shown(value)}' at '{path}' failed to satisfy constraint: {rule}"
            )

    def wrong_type(self, path: str, expected: str) -> None:
        self.serialization = True
        self.wrong_types += 1
        if len(self.problems) < MAX_ERRORS:
            self.problems.append(f"Value at '{path}' must be {expected}")

    def value(self, shape: Shape, value: Any, path: str) -> Any:
        reader = getattr(self, f"_{shape.type_name}", None)
        if reader is None:  # document and other rare types pass through as they came
            return value
        if self.depth >= MAX_DEPTH:
            self.problem(path, "...", f"Member must nest at most {MAX_DEPTH} levels deep")
            return None
        self.depth += 1
        wrong = self.wrong_types
        try:
            result = reader(shape, value, path)
        finally:
            self.depth -= 1
        if self.wrong_types == wrong:  # a value of the wrong type is not also outside the enum
            self._enum(shape, result, path)
        return result

    def structure(self, shape: Shape, value: Any, path: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.wrong_type(path, "an object")
            return {}
        by_wire = {m.serialization.get("name", name): name for name, m in shape.members.items()}
        out: dict[str, Any] = {}
        for key, item in value.items():
            name = by_wire.get(key, key if key in shape.members else None)
            if name is None or item is None:
                continue  # AWS ignores members it does not know
            member = shape.members[name]
            out[name] = self.value(member, item, f"{path}.{name}" if path else name)
        for name in shape.required_members:
            if name not in out:
                where = f"{path}.{name}" if path else name
                self.problem(where, "null", "Member must not be null")
        return out

    _structure = structure

    def _list(self, shape: Shape, value: Any, path: str) -> list[Any]:
        if isinstance(value, Text):
            value = [value]
        if not isinstance(value, list):
            self.wrong_type(path, "a list")
            return []
        self._length(shape, len(value), value, path)
        return [self.value(shape.member, item, f"{path}.{i + 1}") for i, item in enumerate(value)]

    def _map(self, shape: Shape, value: Any, path: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.wrong_type(path, "an object")
            return {}
        self._length(shape, len(value), value, path)
        return {
            self.value(shape.key, k, f"{path}.key"): self.value(shape.value, v, f"{path}.{k}")
            for k, v in value.items()
        }

    def _string(self, shape: Shape, value: Any, path: str) -> str:
        if not isinstance(value, str):
            self.wrong_type(path, "a string")
            return ""
        self._length(shape, len(value), value, path)
        pattern = shape.metadata.get("pattern")
        if pattern and not _matches(pattern, value):
            self.problem(path, value, f"Member must satisfy regular expression pattern: {pattern}")
        return value

    def _integer(self, shape: Shape, value: Any, path: str) -> int:
        if isinstance(value, Text) and len(value) <= 100:
            with contextlib.suppress(ValueError):
                value = int(value)
        bits = _BITS.get(shape.type_name, 64)
        low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
        if isinstance(value, bool) or not isinstance(value, int):
            self.wrong_type(path, "an integer")
            return 0
        if not low <= value <= high:
            self.wrong_type(path, f"a {bits}-bit integer (from {low} to {high})")
            return 0
        self._range(shape, value, path)
        return value

    _long = _integer

    def _double(self, shape: Shape, value: Any, path: str) -> float:
        if isinstance(value, Text) and len(value) <= 100:
            with contextlib.suppress(ValueError):
                value = float(value)
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.wrong_type(path, "a number")
            return 0.0
        try:
            number = float(value)
        except OverflowError:  # an integer past a double's range
            number = math.inf
        if not math.isfinite(number):
            self.problem(path, value, "Member must be a finite number")
            return 0.0
        self._range(shape, number, path)
        return number

    _float = _double

    def _boolean(self, shape: Shape, value: Any, path: str) -> bool:
        if isinstance(value, Text) and value in ("true", "false"):
            return bool(value == "true")
        if not isinstance(value, bool):
            self.wrong_type(path, "a boolean")
            return False
        return value

    def _timestamp(self, shape: Shape, value: Any, path: str) -> datetime:
        try:
            if isinstance(value, datetime):
                return _utc(value)
            if isinstance(value, bool):
                raise ValueError
            if isinstance(value, int | float):
                return datetime.fromtimestamp(value, UTC)
            if isinstance(value, str) and len(value) <= 100:
                if re.fullmatch(r"-?\d+(\.\d+)?", value):
                    return datetime.fromtimestamp(float(value), UTC)
                return _utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
        except (ValueError, OverflowError, OSError):
            pass
        self.wrong_type(path, "a timestamp (epoch seconds or ISO 8601, years 1 to 9999)")
        return datetime.fromtimestamp(0, UTC)

    def _blob(self, shape: Shape, value: Any, path: str) -> bytes:
        if isinstance(value, bytes):
            return value
        if isinstance(value, str):
            try:
                return base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                pass
        self.wrong_type(path, "base64-encoded bytes")
        return b""

    def _enum(self, shape: Shape, value: Any, path: str) -> None:
        allowed = getattr(shape, "enum", None)
        if allowed and isinstance(value, str) and value not in allowed:
            self.problem(path, value, f"Member must satisfy enum value set: [{', '.join(allowed)}]")

    def _length(self, shape: Shape, size: int, value: Any, path: str) -> None:
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        if low is not None and size < low:
            self.problem(path, value, f"Member must have length greater than or equal to {low}")
        if high is not None and size > high:
            self.problem(path, value, f"Member must have length less than or equal to {high}")

    def _range(self, shape: Shape, value: float, path: str) -> None:
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        if low is not None and value < low:
            self.problem(path, value, f"Member must have value greater than or equal to {low}")
        if high is not None and value > high:
            self.problem(path, value, f"Member must have value less than or equal to {high}")


def _utc(value: datetime) -> datetime:
    """``value`` in UTC (naive is UTC); OverflowError past datetime's years."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


_PATTERNS: dict[str, re.Pattern[str] | None] = {}


def _matches(pattern: str, value: str) -> bool:
    """Whether ``value`` matches the model's pattern (Smithy patterns are not implicitly
    anchored; one Python cannot compile is not checked rather than refusing good input)."""
    if pattern not in _PATTERNS:
        try:
            _PATTERNS[pattern] = re.compile(pattern)
        except re.error:
            _PATTERNS[pattern] = None
    compiled = _PATTERNS[pattern]
    return compiled is None or compiled.search(value) is not None


def read_input(shape: Shape | None, value: dict[str, Any]) -> dict[str, Any]:
    """The handler's parameters from the wire's values (`InputInvalid` on any problem)."""
    if shape is None:
        return {}
    reader = _Reader()
    out = reader.structure(shape, value, "")
    if reader.problems:
        raise InputInvalid(reader.problems, reader.serialization)
    return out


TimestampWriter = Callable[[datetime, "Shape"], Any]


def write_output(shape: Shape | None, value: dict[str, Any], timestamp: TimestampWriter) -> Any:
    """The wire's values for an answer, members by their wire names."""
    if shape is None:
        return {}
    return _write(shape, value, "", timestamp)


def _write(shape: Shape, value: Any, path: str, timestamp: TimestampWriter) -> Any:
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            raise OutputInvalid(f"{path or 'output'}: expected a dict, got {type(value).__name__}")
        out: dict[str, Any] = {}
        for name, item in value.items():
            if item is None:
                continue
            member = shape.members.get(name)
            if member is None:
                raise OutputInvalid(f"{path or 'output'} has no member {name!r} ({shape.name})")
            wire = member.serialization.get("name", name)
            out[wire] = _write(member, item, f"{path}.{name}" if path else name, timestamp)
        return out
    if kind == "list":
        if not isinstance(value, list | tuple):
            raise OutputInvalid(f"{path}: expected a list, got {type(value).__name__}")
        return [_write(shape.member, item, f"{path}[]", timestamp) for item in value]
    if kind == "map":
        if not isinstance(value, dict):
            raise OutputInvalid(f"{path}: expected a dict, got {type(value).__name__}")
        return {str(k): _write(shape.value, v, f"{path}.{k}", timestamp) for k, v in value.items()}
    if kind == "timestamp":
        if not isinstance(value, datetime):
            raise OutputInvalid(f"{path}: expected a datetime, got {type(value).__name__}")
        return timestamp(value if value.tzinfo else value.replace(tzinfo=UTC), shape)
    if kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int | Decimal | float):
            raise OutputInvalid(f"{path}: expected an integer, got {type(value).__name__}")
        return int(value)
    if kind in ("double", "float"):
        if isinstance(value, bool) or not isinstance(value, int | Decimal | float):
            raise OutputInvalid(f"{path}: expected a number, got {type(value).__name__}")
        return float(value)
    if kind == "string":
        if isinstance(value, Decimal):
            return format(value, "f")
        if not isinstance(value, str):
            raise OutputInvalid(f"{path}: expected a string, got {type(value).__name__}")
        return value
    if kind == "boolean":
        if not isinstance(value, bool):
            raise OutputInvalid(f"{path}: expected a boolean, got {type(value).__name__}")
        return value
    if kind == "blob":
        if not isinstance(value, bytes):
            raise OutputInvalid(f"{path}: expected bytes, got {type(value).__name__}")
        return value
    return value
