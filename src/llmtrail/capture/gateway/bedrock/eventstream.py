"""AWS event-stream framing (``application/vnd.amazon.eventstream``), as Bedrock streams use it.

Bedrock's ``/converse-stream`` and ``/invoke-with-response-stream`` answer in binary frames, and
boto3 will read nothing else. botocore can decode them but has no encoder, so encoding lives
here as pure functions from headers and payload to bytes. Each frame is::

    prelude   total length (uint32) · headers length (uint32) · CRC32 of those 8 bytes
    headers   name length (uint8) · name (UTF-8) · value type (uint8) · value
    payload   the bytes (Bedrock: a JSON object)
    CRC32     of everything before it

all big-endian. Decoding wraps botocore's ``EventStreamBuffer`` — the parser boto3 itself runs —
so the gateway reads an upstream's frames exactly as a client would, CRC checks included. A
frame that is plainly well formed (both CRCs right, its lengths within botocore's limits, its
headers filling their section exactly, no name twice) is read here without botocore, to what
botocore reads from it, four times faster; anything else, and every byte after it, goes to
botocore, which decides (decoded, waiting for more, or refused), so the result is botocore's in
every case (``tests/test_record_of.py`` holds the two to that).
"""

from __future__ import annotations

import functools
import struct
import uuid
from binascii import crc32
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from llmtrail.errors import Picklable

__all__ = [
    "CONTENT_TYPE",
    "Byte",
    "EventMessage",
    "EventStreamDecoder",
    "HeaderValue",
    "Long",
    "MalformedEventStream",
    "Short",
    "decode_all",
    "encode_headers",
    "encode_message",
    "event",
    "exception",
]

CONTENT_TYPE = "application/vnd.amazon.eventstream"


class Byte(int):
    """An ``int`` sent as a header of wire type byte (int8)."""


class Short(int):
    """An ``int`` sent as a header of wire type short (int16)."""


class Long(int):
    """An ``int`` sent as a header of wire type long (int64) even when it would fit in 32 bits."""


HeaderValue = bool | int | bytes | str | datetime | uuid.UUID
"""What a header value may be; the Python type picks the wire type (see `encode_headers`)."""

_SIZED = ((Byte, b"\x02", "!b"), (Short, b"\x03", "!h"), (Long, b"\x05", "!q"))

_PRELUDE = struct.Struct("!II")
_HEAD = struct.Struct("!III")  # the prelude and its CRC
_UINT16 = struct.Struct("!H")
_UINT32 = struct.Struct("!I")
_MAX_NAME = 255  # the name's length is one byte
_MAX_VALUE = 32767  # byte arrays and strings, per the format's specification
_MAX_HEADERS = 128 * 1024  # botocore refuses more
_MAX_PAYLOAD = 24 * 1024 * 1024  # botocore refuses more

# wire types: 0 true, 1 false, 2 byte, 3 short, 4 integer, 5 long, 6 byte array, 7 string,
# 8 timestamp (ms since the epoch), 9 uuid
_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)


class MalformedEventStream(Picklable, ValueError):
    """Bytes that are not a valid event stream: a CRC mismatch, a bad length, a cut-off frame."""


def _encode_value(name: str, value: HeaderValue) -> bytes:
    if isinstance(value, bool):
        return b"\x00" if value else b"\x01"
    for width, wire, layout in _SIZED:
        if isinstance(value, width):
            try:
                return wire + struct.pack(layout, value)
            except struct.error:
                raise ValueError(
                    f"header {name!r}: {value} does not fit a {width.__name__}"
                ) from None
    if isinstance(value, int):
        if _INT32[0] <= value <= _INT32[1]:
            return b"\x04" + struct.pack("!i", value)
        if _INT64[0] <= value <= _INT64[1]:
            return b"\x05" + struct.pack("!q", value)
        raise ValueError(f"header {name!r}: integer {value} does not fit in 64 bits")
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"header {name!r}: a timestamp needs a time zone")
        return b"\x08" + struct.pack("!q", round(value.timestamp() * 1000))
    if isinstance(value, uuid.UUID):
        return b"\x09" + value.bytes
    if isinstance(value, bytes):
        code, raw = b"\x06", value
    elif isinstance(value, str):
        code, raw = b"\x07", value.encode()
    else:
        raise TypeError(f"header {name!r}: cannot encode a {type(value).__name__}")
    if len(raw) > _MAX_VALUE:
        raise ValueError(f"header {name!r}: value is {len(raw)} bytes, the limit is {_MAX_VALUE}")
    return code + struct.pack("!H", len(raw)) + raw


def encode_headers(headers: Mapping[str, HeaderValue]) -> bytes:
    """The headers section: ``bool`` → true/false, ``int`` → integer (long past 32 bits;
    `Byte`, `Short`, `Long` force a width), ``bytes`` → byte array, ``str`` → string, aware
    ``datetime`` → timestamp (ms), ``UUID`` → uuid."""
    out = bytearray()
    for name, value in headers.items():
        raw_name = name.encode()
        if not 0 < len(raw_name) <= _MAX_NAME:
            raise ValueError(f"header name {name!r} must be 1 to {_MAX_NAME} bytes")
        out += bytes([len(raw_name)]) + raw_name + _encode_value(name, value)
    return bytes(out)


def encode_message(headers: Mapping[str, HeaderValue], payload: bytes = b"") -> bytes:
    """One complete frame: prelude, prelude CRC, headers, payload, message CRC."""
    raw_headers = encode_headers(headers)
    if len(raw_headers) > _MAX_HEADERS:
        raise ValueError(f"headers are {len(raw_headers)} bytes, the limit is {_MAX_HEADERS}")
    if len(payload) > _MAX_PAYLOAD:
        raise ValueError(f"payload is {len(payload)} bytes, the limit is {_MAX_PAYLOAD}")
    total = _PRELUDE.size + 4 + len(raw_headers) + len(payload) + 4
    prelude = _PRELUDE.pack(total, len(raw_headers))
    head = prelude + struct.pack("!I", crc32(prelude))
    body = head + raw_headers + payload
    return body + struct.pack("!I", crc32(body))


def event(event_type: str, payload: Mapping[str, Any]) -> bytes:
    """An event frame as Bedrock sends it, e.g. ``event("messageStart", {"role": "assistant"})``
    or ``event("chunk", {"bytes": base64_text})``."""
    headers = {":event-type": event_type, ":content-type": "application/json"}
    headers[":message-type"] = "event"
    return encode_message(
        headers, orjson.dumps(payload if isinstance(payload, dict) else dict(payload))
    )


def exception(exception_type: str, message: str) -> bytes:
    """An exception frame; ``exception_type`` is the stream member's name as boto3 knows it
    (``throttlingException``, ``modelStreamErrorException``, ``validationException``, …)."""
    headers = {":exception-type": exception_type, ":content-type": "application/json"}
    headers[":message-type"] = "exception"
    return encode_message(headers, orjson.dumps({"message": message}))


@dataclass(frozen=True)
class EventMessage:
    """One decoded frame."""

    headers: Mapping[str, Any]
    payload: bytes
    size: int  # bytes the frame took on the wire

    @property
    def message_type(self) -> str | None:
        """``event``, ``exception`` or ``error``."""
        value = self.headers.get(":message-type")
        return value if isinstance(value, str) else None

    @property
    def event_type(self) -> str | None:
        value = self.headers.get(":event-type")
        return value if isinstance(value, str) else None

    @property
    def exception_type(self) -> str | None:
        value = self.headers.get(":exception-type")
        return value if isinstance(value, str) else None

    def json(self) -> Any:
        """The payload parsed as JSON; raises `MalformedEventStream` if it is not JSON."""
        try:
            return orjson.loads(self.payload)
        except orjson.JSONDecodeError as exc:
            raise MalformedEventStream(f"payload is not JSON: {exc}") from exc


@functools.cache
def _checked_buffer() -> type:
    """botocore's buffer, also refusing a prelude whose lengths cannot describe a frame (a
    frame shorter than its own prelude, headers and CRC would make botocore loop on it).
    Made with the first stream decoded: botocore is not loaded by a server that decodes none."""
    from botocore.eventstream import EventStreamBuffer

    class CheckedBuffer(EventStreamBuffer):
        def _validate_prelude(self, prelude: Any) -> None:
            super()._validate_prelude(prelude)
            if prelude.total_length < _PRELUDE.size + 8 + prelude.headers_length:
                raise MalformedEventStream(
                    f"frame length {prelude.total_length} is shorter than its headers"
                )

    return CheckedBuffer


class EventStreamDecoder:
    """Feed bytes as they arrive, in chunks of any size; get the frames completed so far.

    After a malformed frame the stream cannot be resynchronised, so every later `feed` raises
    too. `close` raises if the stream ended in the middle of a frame.
    """

    def __init__(self) -> None:
        self._buffer = _checked_buffer()()
        self._pending = 0
        self._failure: MalformedEventStream | None = None

    @property
    def pending(self) -> int:
        """Bytes received that do not yet make a whole frame."""
        return self._pending

    def feed(self, data: bytes) -> list[EventMessage]:
        """Add ``data`` and return the frames it completes (possibly none)."""
        from botocore.eventstream import ParserError  # loaded with the buffer already

        if self._failure is not None:
            raise self._failure
        out: list[EventMessage] = []
        if not self._pending and type(data) is bytes:  # botocore's buffer is empty
            out, used = _plain_frames(data)
            data = data[used:] if used else data
            if not data:
                return out
        self._buffer.add_data(data)
        self._pending += len(data)
        try:
            for message in self._buffer:
                size = message.prelude.total_length
                self._pending -= size
                out.append(EventMessage(message.headers, message.payload, size))
        except MalformedEventStream as exc:
            self._failure = exc
            raise
        except (ParserError, KeyError, struct.error, UnicodeDecodeError) as exc:
            # KeyError: an unknown header type; struct/Unicode errors: a header cut short
            self._failure = MalformedEventStream(f"malformed event stream: {exc!r}")
            raise self._failure from exc
        return out

    def close(self) -> None:
        """Declare the end of the stream; raises if it stopped part-way through a frame."""
        if self._failure is not None:
            raise self._failure
        if self._pending:
            raise MalformedEventStream(f"event stream ended inside a frame ({self._pending} bytes)")


_INTEGERS = {
    2: struct.Struct("!b"),
    3: struct.Struct("!h"),
    4: struct.Struct("!i"),
    5: struct.Struct("!q"),
    8: struct.Struct("!q"),  # a timestamp: botocore gives its milliseconds as an int
}


def _plain_frames(data: bytes) -> tuple[list[EventMessage], int]:
    """The plainly well-formed whole frames at the start of ``data`` (see the module's
    docstring), decoded as botocore decodes them, and how many bytes they take."""
    out: list[EventMessage] = []
    seen: dict[bytes, dict[str, Any]] = {}  # a stream repeats a few header sections
    at, end = 0, len(data)
    while end - at >= 16:
        total, headers_length, prelude_crc = _HEAD.unpack_from(data, at)
        stop = at + total
        if (
            stop > end
            or total < 16 + headers_length
            or headers_length > _MAX_HEADERS
            or total - headers_length - 16 > _MAX_PAYLOAD
            or crc32(data[at : at + 8]) != prelude_crc
            or crc32(data[at + 8 : stop - 4], prelude_crc) != _UINT32.unpack_from(data, stop - 4)[0]
        ):
            break
        section = data[at + 12 : at + 12 + headers_length]
        headers = seen.get(section)
        if headers is None:
            headers = _plain_headers(section)
            if headers is None:
                break
            seen[section] = headers
        out.append(EventMessage(dict(headers), data[at + 12 + headers_length : stop - 4], total))
        at = stop
    return out, at


def _plain_headers(data: bytes) -> dict[str, Any] | None:
    """A headers section as botocore reads it, or None when it is anything but plain (a value
    or name running past the section, an unknown type, bad UTF-8, a name given twice):
    botocore then reads it, and refuses it or not, itself."""
    headers: dict[str, Any] = {}
    at, end = 0, len(data)
    while at < end:
        name_end = at + 1 + data[at]
        if name_end >= end:
            return None
        try:
            name = data[at + 1 : name_end].decode()
        except UnicodeDecodeError:
            return None
        kind, at = data[name_end], name_end + 1
        value: Any
        if kind == 7 or kind == 6:
            if at + 2 > end:
                return None
            stop = at + 2 + _UINT16.unpack_from(data, at)[0]
            if stop > end:
                return None
            value = data[at + 2 : stop]
            if kind == 7:
                try:
                    value = value.decode()
                except UnicodeDecodeError:
                    return None
            at = stop
        elif kind == 0 or kind == 1:
            value = kind == 0
        elif kind in _INTEGERS:
            layout = _INTEGERS[kind]
            if at + layout.size > end:
                return None
            value, at = layout.unpack_from(data, at)[0], at + layout.size
        elif kind == 9:
            if at + 16 > end:
                return None
            value, at = data[at : at + 16], at + 16
        else:
            return None
        if name in headers:
            return None
        headers[name] = value
    return headers


def decode_all(data: bytes) -> list[EventMessage]:
    """Every frame in a complete stream; raises `MalformedEventStream` on any defect."""
    decoder = EventStreamDecoder()
    messages = decoder.feed(data)
    decoder.close()
    return messages
