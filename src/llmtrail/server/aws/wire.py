"""The three wire protocols botocore chooses for the services served here.

- **JSON** (``logs``, ``ce``; 1.0 for a ``cloudwatch`` client told to use it):
  ``POST /`` with ``X-Amz-Target: <prefix>.<Operation>``, a JSON body, errors as
  ``{"__type", "message"}``.
- **Smithy RPC v2 CBOR** (``cloudwatch``):
  ``POST /service/<Service>/operation/<Operation>``, CBOR bodies (timestamps as tag 1,
  epoch seconds), errors as ``{"__type", "message"}`` plus ``x-amzn-query-error`` for a
  service that keeps its old query error codes (CloudWatch's ``ResourceNotFound`` …).
- **rest-json** (``bedrock``): the operation is the method and the request URI; members
  come from URI labels, the query string, headers and a JSON body as each member's
  ``location`` says; errors carry ``x-amzn-ErrorType``.

Each protocol reads a request into wire values (for `shapes.read_input`) and writes an
answer or an error; nothing here knows an operation's meaning.

Reading is strict about what the protocol is: a body in another media type than the
protocol's is refused by its ``Content-Type`` (415, as Smithy's servers answer), and CBOR is
decoded with only the tags Smithy RPC v2 uses — tag 1 (epoch-seconds timestamps) and the
bignums 2 and 3 — while every other tag cbor2 would interpret (shared references that
build cycles, regular expressions, MIME messages, …) stays an inert `cbor2.CBORTag` that no
shape accepts. Map keys must be text, each once, and nothing may follow the body's item.
"""

from __future__ import annotations

import io
import math
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import TYPE_CHECKING, Any

import orjson

from llmtrail.capture.gateway.asgi import Scope
from llmtrail.server.aws.models import error_shape, service_model
from llmtrail.server.aws.shapes import InputInvalid, Text, write_output

if TYPE_CHECKING:
    from botocore.model import OperationModel, Shape

# cbor2 is imported where CBOR is read or written: a server nobody asks in CBOR never loads it.

__all__ = ["CBOR", "JSON", "REST_JSON", "Answer", "Protocol", "Target"]

Headers = list[tuple[bytes, bytes]]


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Headers
    body: bytes


@dataclass(frozen=True)
class Target:
    """The operation a request addresses, and how it is spoken."""

    service: str  # signing name
    operation: str
    protocol: Protocol
    labels: dict[str, str] = field(default_factory=dict)  # rest-json URI labels, decoded
    json_version: str = "1.1"


def _epoch(value: datetime) -> float | int:
    seconds = value.timestamp()
    return int(seconds) if seconds == int(seconds) else round(seconds, 3)


def _json_timestamp(value: datetime, shape: Shape) -> Any:
    style = shape.serialization.get("timestampFormat", "unixTimestamp").lower()
    if style == "iso8601":
        return value.isoformat().replace("+00:00", "Z")
    if style == "rfc822":
        return format_datetime(value, usegmt=True)
    return _epoch(value)


def _cbor_timestamp(value: datetime, shape: Shape) -> Any:
    import cbor2

    return cbor2.CBORTag(1, _epoch(value))


def _cbor_epoch(value: Any, immutable: bool) -> Any:
    """Tag 1: a finite number of epoch seconds datetime can hold, else the tag itself (which
    the shape reader refuses, naming the member)."""
    import cbor2

    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            if math.isfinite(value):
                return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            pass
    return cbor2.CBORTag(1, value)


def _inert(tag: int) -> Callable[[Any, bool], Any]:
    def keep(value: Any, immutable: bool) -> Any:
        import cbor2

        return cbor2.CBORTag(tag, value)

    return keep


# cbor2's own tags (those it would turn into Python objects), less the bignums and the
# self-describe marker; 1 is read by `_cbor_epoch`.
_INERT_TAGS = (0, 4, 5, 25, 28, 29, 30, 35, 36, 37, 52, 54, 100, 256, 258, 260, 261, 1004, 43000)
_CBOR_TAGS: dict[int, Any] = {1: _cbor_epoch, **{tag: _inert(tag) for tag in _INERT_TAGS}}
_CBOR_MAX_DEPTH = 64


def _cbor_loads(body: bytes) -> Any:
    import cbor2

    stream = io.BytesIO(body)
    decoder = cbor2.CBORDecoder(
        stream,
        semantic_decoders=_CBOR_TAGS,
        max_depth=_CBOR_MAX_DEPTH,
        allow_duplicate_keys=False,
        strict_hashable_types=True,
    )
    value = decoder.decode()
    if stream.tell() != len(body):
        raise ValueError(f"{len(body) - stream.tell()} bytes follow the body's CBOR item")
    return value


def _media_type(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"content-type":
            return value.decode("latin-1").split(";", 1)[0].strip().lower()
    return ""


def _error_fields(service: str, code: str, status: int | None) -> tuple[str, int, str | None]:
    """The shape name to send as ``__type``, the status, and the query error code (for a
    service that keeps its old query codes) of an error ``code``."""
    shape = error_shape(service, code)
    if shape is None:
        return code, status or 400, None
    error = shape.metadata.get("error", {})
    wire_code = error.get("code")
    query = wire_code if "awsQueryCompatible" in service_model(service).metadata else None
    if query:
        query += ";Sender" if error.get("senderFault") else ";Receiver"
    return shape.name, status or int(error.get("httpStatusCode", 400)), query


class Protocol:
    """How one protocol reads a request and writes answers and errors; subclasses give the
    body encoding (`_encode`, `_timestamp`), the headers every answer carries and the
    error body's fields."""

    name = ""
    media_types: tuple[str, ...] = ()  # a body's Content-Type, when it has one

    def read(self, target: Target, scope: Scope, body: bytes) -> dict[str, Any]:
        """The request's members as wire values."""
        raise NotImplementedError

    def refused_media_type(self, scope: Scope, body: bytes) -> str | None:
        """Why the request's Content-Type is not this protocol's, or None."""
        found = _media_type(scope)
        if not body or not found or found in self.media_types:
            return None
        return (
            f"the {self.name} protocol reads a body of Content-Type "
            f"{' or '.join(self.media_types)}, not {found}"
        )

    def answer(self, target: Target, model: OperationModel, output: dict[str, Any]) -> Answer:
        wire = write_output(model.output_shape, output, self._timestamp)
        return Answer(200, self._headers(target), self._encode(wire))

    def error(
        self,
        target: Target,
        code: str,
        message: str,
        status: int | None,
        fields: dict[str, Any] | None = None,
    ) -> Answer:
        """AWS's error for ``code``: ``fields`` are the error shape's other members."""
        shape_name, status, query = _error_fields(target.service, code, status)
        headers: Headers = [(b"x-amzn-errortype", shape_name.encode()), *self._headers(target)]
        if query:
            headers.append((b"x-amzn-query-error", query.encode()))
        shape = error_shape(target.service, code)
        extra = write_output(shape, fields, self._timestamp) if fields and shape else {}
        return Answer(
            status, headers, self._encode({**extra, **self._error_body(shape_name, message)})
        )

    def _error_body(self, shape_name: str, message: str) -> dict[str, Any]:
        return {"__type": shape_name, "message": message}

    def _headers(self, target: Target) -> Headers:
        return [(b"content-type", b"application/json")]

    def _timestamp(self, value: datetime, shape: Shape) -> Any:
        return _json_timestamp(value, shape)

    def _encode(self, payload: Any) -> bytes:
        return orjson.dumps(payload)


class _Json(Protocol):
    name = "json"
    media_types = ("application/x-amz-json-1.1", "application/x-amz-json-1.0", "application/json")

    def read(self, target: Target, scope: Scope, body: bytes) -> dict[str, Any]:
        if not body.strip():
            return {}
        try:
            value = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise InputInvalid.body(f"the body is not JSON: {exc}") from exc
        if not isinstance(value, dict):
            raise InputInvalid.body("the body must be a JSON object")
        return value

    def _headers(self, target: Target) -> Headers:
        return [(b"content-type", f"application/x-amz-json-{target.json_version}".encode())]


class _Cbor(Protocol):
    name = "smithy-rpc-v2-cbor"
    media_types = ("application/cbor",)

    def read(self, target: Target, scope: Scope, body: bytes) -> dict[str, Any]:
        if not body:
            return {}
        try:
            value = _cbor_loads(body)
        except Exception as exc:  # cbor2 raises several types for malformed input
            raise InputInvalid.body(f"the body is not CBOR: {exc}") from exc
        if not isinstance(value, dict):
            raise InputInvalid.body("the body must be a CBOR map")
        return value

    def _headers(self, target: Target) -> Headers:
        return [(b"content-type", b"application/cbor"), (b"smithy-protocol", b"rpc-v2-cbor")]

    def _timestamp(self, value: datetime, shape: Shape) -> Any:
        return _cbor_timestamp(value, shape)

    def _encode(self, payload: Any) -> bytes:
        import cbor2

        return cbor2.dumps(payload)


class _RestJson(Protocol):
    name = "rest-json"
    media_types = ("application/json", "application/x-amz-json-1.1")

    def read(self, target: Target, scope: Scope, body: bytes) -> dict[str, Any]:
        model = service_model(target.service).operation_model(target.operation)
        shape = model.input_shape
        if shape is None:
            return {}
        query = urllib.parse.parse_qs(
            scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True
        )
        headers = {n.decode("latin-1").lower(): v.decode("latin-1") for n, v in scope["headers"]}
        values: dict[str, Any] = {}
        payload = shape.serialization.get("payload")
        for name, member in shape.members.items():
            where = member.serialization.get("location")
            wire = member.serialization.get("name", name)
            if where == "uri" and wire in target.labels:
                values[name] = Text(target.labels[wire])
            elif where == "querystring" and wire in query:
                found = [Text(v) for v in query[wire]]
                values[name] = found if member.type_name == "list" else found[-1]
            elif where == "header" and wire.lower() in headers:
                values[name] = Text(headers[wire.lower()])
        if body.strip():
            decoded = JSON.read(target, scope, body)
            if payload:
                values[payload] = decoded
            else:
                for name, member in shape.members.items():
                    wire = member.serialization.get("name", name)
                    if not member.serialization.get("location") and wire in decoded:
                        values[wire] = decoded[wire]
        return values

    def answer(self, target: Target, model: OperationModel, output: dict[str, Any]) -> Answer:
        shape = model.output_shape
        headers = self._headers(target)
        body: dict[str, Any] = {}
        if shape is not None:
            located = {
                n for n, m in shape.members.items() if m.serialization.get("location") == "header"
            }
            for name in located & output.keys():
                if output[name] is not None:
                    wire = shape.members[name].serialization.get("name", name)
                    headers.append((wire.lower().encode(), str(output[name]).encode()))
            body = write_output(
                shape, {k: v for k, v in output.items() if k not in located}, self._timestamp
            )
        status = int(model.http.get("responseCode", 200))
        return Answer(status, headers, self._encode(body))

    def _error_body(self, shape_name: str, message: str) -> dict[str, Any]:
        return {"message": message}  # the type travels in x-amzn-ErrorType alone


JSON = _Json()
CBOR = _Cbor()
REST_JSON = _RestJson()
