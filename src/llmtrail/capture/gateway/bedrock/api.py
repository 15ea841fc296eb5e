"""The Bedrock runtime's wire format: ``POST /model/{modelId}/converse``, ``/converse-stream``,
``/invoke`` and ``/invoke-with-response-stream``, so that a ``boto3`` ``bedrock-runtime``
client is logged by changing only its ``endpoint_url``.

- The model id arrives percent-encoded in the path (ids, cross-region ids such as
  ``us.anthropic…``, and ARNs with their ``/``), so the raw path is split before decoding.
- ``requestMetadata`` (the Converse body's, or InvokeModel's
  ``X-Amzn-Bedrock-Request-Metadata`` header) is validated exactly as Bedrock does; a
  violation is Bedrock's ``ValidationException`` (``x-amzn-ErrorType`` header, JSON
  ``message``). Every error answers in that shape.
- The record's ``requestId`` is the upstream's ``x-amzn-RequestId`` where there is one, and
  the response's ``x-amzn-RequestId`` is the record's ``requestId`` — boto3's
  ``ResponseMetadata.RequestId`` finds the record.
- Streams are relayed frame-identical; the record keeps the assembled response in the
  non-stream shape (Converse, or the model family's InvokeModel body).
"""

from __future__ import annotations

import base64
import binascii
import functools
from typing import Any
from urllib.parse import unquote

import orjson

from llmtrail import model_ids
from llmtrail.capture.gateway.asgi import (
    Receive,
    Scope,
    Send,
    headers_of,
    read_body,
    read_json,
    respond,
)
from llmtrail.capture.gateway.bedrock import models as bedrock_models
from llmtrail.capture.gateway.bedrock.converse import (
    ConverseStreamAssembler,
    content_text,
    converse_usage,
)
from llmtrail.capture.gateway.bedrock.eventstream import EventStreamDecoder, exception
from llmtrail.capture.gateway.call import Call
from llmtrail.capture.gateway.exchange import Exchange, Forward, Headers, Outcome, usage_outcome
from llmtrail.capture.gateway.providers import UpstreamError
from llmtrail.capture.gateway.usage import Usage
from llmtrail.errors import ValidationError
from llmtrail.record import MODEL_ID_MAX, validate_request_metadata

METADATA_HEADER = "x-amzn-bedrock-request-metadata"
OPERATIONS = {
    "converse": ("Converse", False),
    "converse-stream": ("ConverseStream", True),
    "invoke": ("InvokeModel", False),
    "invoke-with-response-stream": ("InvokeModelWithResponseStream", True),
}
_PASSED_RESPONSE_HEADERS = (
    "x-amzn-bedrock-input-token-count",
    "x-amzn-bedrock-output-token-count",
    "x-amzn-bedrock-invocation-latency",
    "x-amzn-bedrock-performanceconfig-latency",
    "x-amzn-bedrock-content-type",
)


class BedrockRoutes(Exchange):
    wire = "bedrock"
    stream_content_type = b"application/vnd.amazon.eventstream"

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Any ``/model/…`` request."""
        await self.guarded(self._handle, scope, receive, send)

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw_path = scope.get("raw_path") or scope["path"].encode()
        parts = raw_path.decode("latin-1").split("?", 1)[0].split("/")
        headers = headers_of(scope)
        if len(parts) != 4 or parts[3] not in OPERATIONS or scope["method"] != "POST":
            call = self.new_call(headers, "Unknown", scope)
            message = f"no Bedrock runtime operation at {scope['method']} {scope['path']}"
            await self._early_error(call, send, 404, message, "UnknownOperationException")
            return
        model = unquote(parts[2])
        operation, stream = OPERATIONS[parts[3]]
        call = self.new_call(headers, operation, scope)
        limits = self.settings.limits
        try:
            raw = await read_body(receive, limits.max_request_bytes)
            body = await read_json(raw, limits.max_json_depth)
            if not isinstance(body, dict):
                raise ValidationError("body", "must be a JSON object")
        except ValidationError as exc:
            code = "ValidationException"
            await self._early_error(call, send, exc.status, str(exc), code)
            return
        except ConnectionResetError:
            return
        forward = Forward(call, model, body, "/model/{model}/" + parts[3], stream, raw=raw)
        try:
            if not model:
                raise ValidationError("modelId", f"is required (1 to {MODEL_ID_MAX} characters)")
            if len(model) > MODEL_ID_MAX:
                forward.model = model[:MODEL_ID_MAX]  # what the record keeps of it
                raise ValidationError(
                    "modelId",
                    f"is {len(model)} characters long; the limit is {MODEL_ID_MAX} characters",
                )
            forward.metadata = self._metadata(operation, body, headers)
            if operation.startswith("Converse"):
                _check_converse(body)
        except ValidationError as exc:
            await self.refuse(
                forward,
                send,
                exc.status,
                str(exc),
                exc.field,
                "validation_error",
                "ValidationException",
            )
            return
        await self.forward(forward, send, receive)

    def _metadata(
        self, operation: str, body: dict[str, Any], headers: dict[str, str]
    ) -> dict[str, str] | None:
        if operation.startswith("Converse"):
            if "requestMetadata" not in body:
                return None
            return validate_request_metadata(body["requestMetadata"], "requestMetadata")
        raw = headers.get(METADATA_HEADER)
        if raw is None:
            return None
        try:
            parsed = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise ValidationError(
                "X-Amzn-Bedrock-Request-Metadata", "must be a JSON object of strings"
            ) from None
        return validate_request_metadata(parsed, "X-Amzn-Bedrock-Request-Metadata")

    async def _early_error(
        self, call: Call, send: Send, status: int, message: str, code: str
    ) -> None:
        headers = self.request_id_headers(call) + self.error_headers(status, code)
        await respond(send, status, self.error(status, message, None, code), headers)

    # -- Bedrock's shapes ------------------------------------------------------------------

    def upstream_body(self, forward: Forward, upstream_model: str) -> dict[str, Any]:
        body: dict[str, Any] = forward.body
        return body

    def error(self, status: int, message: str, field: str | None, kind: str) -> bytes:
        return orjson.dumps({"message": message})

    def error_headers(self, status: int, code: str | None) -> Headers:
        return [(b"x-amzn-ErrorType", (code or self.error_code(status)).encode())]

    def error_code(self, status: int, upstream_type: str | None = None) -> str:
        return bedrock_models.error_code_for_status(status, upstream_type)

    def request_id_headers(self, call: Call) -> Headers:
        rid = call.request_id.encode()
        return [(b"x-amzn-RequestId", rid), (b"x-llmtrail-request-id", rid)]

    def adopt_upstream_ids(self, call: Call, headers: dict[str, str]) -> None:
        upstream = headers.get("x-amzn-requestid")
        if upstream and len(upstream) <= 256:
            call.request_id = upstream

    def passed_headers(self, headers: dict[str, str]) -> Headers:
        return [
            (name.encode(), headers[name].encode("latin-1", "replace"))
            for name in _PASSED_RESPONSE_HEADERS
            if name in headers
        ]

    def upstream_error(
        self, status: int, raw: bytes, headers: dict[str, str]
    ) -> tuple[bytes, dict[str, Any], str | None]:
        try:
            parsed = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            parsed = None
        kind = headers.get("x-amzn-errortype")
        code = self.error_code(status, kind)
        message = ""
        if isinstance(parsed, dict):
            message = str(parsed.get("message") or parsed.get("Message") or "")
        else:
            message = raw[:500].decode("utf-8", "replace")
            raw = orjson.dumps({"message": message})
        return raw, {"type": code, "message": message}, code

    def error_frame(self, exc: UpstreamError) -> bytes:
        kind = "throttlingException" if exc.status == 429 else "modelStreamErrorException"
        return exception(kind, exc.message)

    def outcome(self, forward: Forward, parsed: Any, headers: dict[str, str]) -> Outcome:
        response = parsed if isinstance(parsed, dict) else {}
        if forward.call.operation == "Converse":
            return _outcome(forward, response, converse_usage(response))
        family = _family(forward)
        usage = bedrock_models.invoke_usage(family, forward.body, response, headers)
        return _outcome(forward, response, usage)

    def stream_outcome(self, forward: Forward, raw: bytes, headers: dict[str, str]) -> Outcome:
        decoder = EventStreamDecoder()
        try:
            messages = decoder.feed(raw)
        except ValueError:
            messages = []
        error: dict[str, Any] | None = None
        if forward.call.operation == "ConverseStream":
            converse = ConverseStreamAssembler()
            for message in messages:
                name = message.event_type
                if message.message_type == "exception":
                    error = _stream_error(message)
                elif name:
                    converse.add_event(name, message.json())
            result = converse.result()
            out = _outcome(forward, result, converse_usage(result))
        else:
            family = _family(forward)
            native = bedrock_models.StreamAssembler(family)
            for message in messages:
                if message.message_type == "exception":
                    error = _stream_error(message)
                elif message.event_type == "chunk":
                    chunk = _chunk_json(message.json())
                    if chunk is not None:
                        native.add(chunk)
            result = native.result()
            usage = native.usage(result).filled_from(
                bedrock_models.invoke_usage(family, forward.body, None, headers)
            )
            out = _outcome(forward, result, usage)
        if error is not None:
            out.error, out.error_code = error, error["type"]
        return out


def _family(forward: Forward) -> str:
    family = _model_family(forward.model)
    return family if family != "unknown" else bedrock_models.guess_family(forward.body)


@functools.lru_cache(maxsize=1024)
def _model_family(model: str) -> str:
    return model_ids.parse_model_id(model).family


def _stream_error(message: Any) -> dict[str, Any]:
    name = str(message.exception_type or "modelStreamErrorException")
    payload = message.json()
    text = payload.get("message") if isinstance(payload, dict) else None
    return {"type": name[:1].upper() + name[1:], "message": str(text or "")}


def _chunk_json(payload: Any) -> Any:
    if not isinstance(payload, dict) or not isinstance(payload.get("bytes"), str):
        return None
    try:
        return orjson.loads(base64.b64decode(payload["bytes"]))
    except (binascii.Error, ValueError):
        return None


def _outcome(forward: Forward, response: dict[str, Any], usage: Usage) -> Outcome:
    return usage_outcome(response, usage, lambda: _prompt_text(forward.body))


def _prompt_text(body: dict[str, Any]) -> str:
    parts = [content_text(body.get("system"))]
    for message in body.get("messages") or []:
        if isinstance(message, dict):
            parts.append(content_text(message.get("content")))
    parts += [str(body[key]) for key in ("prompt", "inputText") if isinstance(body.get(key), str)]
    return "\n".join(p for p in parts if p)


def _check_converse(body: dict[str, Any]) -> None:
    messages = body.get("messages")
    if messages is not None and not isinstance(messages, list):
        raise ValidationError("messages", "must be an array of messages")
    for i, message in enumerate(messages or []):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise ValidationError(f"messages.{i}.role", "must be 'user' or 'assistant'")
        if not isinstance(message.get("content"), list):
            raise ValidationError(f"messages.{i}.content", "must be an array of content blocks")
