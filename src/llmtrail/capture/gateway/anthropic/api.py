"""Anthropic's wire format: ``POST /v1/messages``, plain and streamed.

The key is accepted as ``x-api-key`` or ``authorization: Bearer`` (the official client sends
the latter to a custom base URL). Errors answer in Anthropic's shape
``{"type": "error", "error": {"type", "message"}}``. The body's ``metadata`` (Anthropic allows
``user_id``) is copied leniently into ``requestMetadata``; only the ``x-llmtrail-metadata``
header is validated strictly. Cache tokens become the record's cache write / read counts.
"""

from __future__ import annotations

from typing import Any

import orjson

from llmtrail.capture.gateway.anthropic.models import (
    MessagesStreamAssembler,
    message_text,
    messages_usage,
)
from llmtrail.capture.gateway.asgi import (
    Receive,
    Scope,
    Send,
    headers_of,
    read_body,
    read_json,
    respond,
)
from llmtrail.capture.gateway.call import Call
from llmtrail.capture.gateway.exchange import Exchange, Forward, Headers, Outcome, usage_outcome
from llmtrail.capture.gateway.providers import UpstreamError
from llmtrail.capture.gateway.sse import SSEDecoder
from llmtrail.capture.gateway.usage import Usage
from llmtrail.errors import ValidationError

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def error_body(status: int, message: str) -> dict[str, Any]:
    kind = ERROR_TYPES.get(status, "api_error")
    return {"type": "error", "error": {"type": kind, "message": message}}


class AnthropicRoutes(Exchange):
    wire = "anthropic"

    async def messages(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.guarded(self._messages, scope, receive, send)

    async def _messages(self, scope: Scope, receive: Receive, send: Send) -> None:
        call = self.new_call(headers_of(scope), "Messages", scope)
        limits = self.settings.limits
        try:
            raw = await read_body(receive, limits.max_request_bytes)
            body = await read_json(raw, limits.max_json_depth)
            if not isinstance(body, dict):
                raise ValidationError("body", "must be a JSON object")
        except ValidationError as exc:
            await self._early_error(call, send, exc.status, str(exc))
            return
        except ConnectionResetError:
            return
        model = body.get("model")
        if not isinstance(model, str) or not model:
            await self._early_error(call, send, 400, "model: Field required (a string)")
            return
        forward = Forward(call, model, body, "/v1/messages", body.get("stream") is True, raw=raw)
        try:
            forward.metadata, forward.metadata_truncated = call.request_metadata(body)
            _check(body)
        except ValidationError as exc:
            await self.refuse(forward, send, exc.status, str(exc), exc.field, "validation_error")
            return
        await self.forward(forward, send, receive)

    async def _early_error(self, call: Call, send: Send, status: int, message: str) -> None:
        await respond(
            send,
            status,
            self.error(status, message, None, "validation_error"),
            self.request_id_headers(call),
        )

    def error(self, status: int, message: str, field: str | None, kind: str) -> bytes:
        return orjson.dumps(error_body(status, message))

    def request_id_headers(self, call: Call) -> Headers:
        rid = call.request_id.encode()
        return [(b"x-llmtrail-request-id", rid), (b"request-id", rid)]

    def upstream_error(
        self, status: int, raw: bytes, headers: dict[str, str]
    ) -> tuple[bytes, dict[str, Any], str | None]:
        try:
            parsed = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            parsed = None
        err = parsed.get("error") if isinstance(parsed, dict) else None
        if isinstance(err, dict):
            kind = str(err.get("type") or "api_error")[:256]
            return raw, {"type": kind, "message": str(err.get("message") or "")}, kind
        message = raw[:500].decode("utf-8", "replace")
        body = error_body(status, message)
        return orjson.dumps(body), dict(body["error"]), None

    def outcome(self, forward: Forward, parsed: Any, headers: dict[str, str]) -> Outcome:
        response = parsed if isinstance(parsed, dict) else {}
        return _outcome(forward, response, messages_usage(response))

    def stream_outcome(self, forward: Forward, raw: bytes, headers: dict[str, str]) -> Outcome:
        assembler = MessagesStreamAssembler()
        for payload in SSEDecoder().feed(raw + b"\n\n"):
            assembler.add_json(payload)
        result = assembler.result()
        return _outcome(forward, result, messages_usage(result))  # as assembler.usage()

    def error_frame(self, exc: UpstreamError) -> bytes:
        return b"event: error\ndata: " + orjson.dumps(error_body(exc.status, exc.message)) + b"\n\n"


def _outcome(forward: Forward, response: dict[str, Any], usage: Usage) -> Outcome:
    def prompt() -> str:
        body = forward.body
        parts = [message_text(body.get("system"))]
        parts += [
            message_text(m.get("content"))
            for m in body.get("messages") or []
            if isinstance(m, dict)
        ]
        return "\n".join(parts)

    return usage_outcome(response, usage, prompt, forward.model)


def _check(body: dict[str, Any]) -> None:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ValidationError("messages", "Field required (a non-empty array of messages)")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise ValidationError(f"messages.{i}.role", "must be 'user' or 'assistant'")
    max_tokens = body.get("max_tokens")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise ValidationError("max_tokens", "Field required (an integer of at least 1)")
