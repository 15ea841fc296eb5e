"""OpenAI's wire format: ``/v1/chat/completions``, ``/v1/embeddings``, ``/v1/models``.

Errors answer in OpenAI's shape ``{"error": {"message", "type", "param", "code"}}``; every
response carries ``x-llmtrail-request-id``; every call that names a model yields one record.
The body's ``metadata`` and ``user`` go upstream untouched and are copied leniently into
``requestMetadata``; only the ``x-llmtrail-metadata`` header is validated strictly.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson

from llmtrail.capture.gateway.asgi import (
    Receive,
    Scope,
    Send,
    headers_of,
    read_body,
    read_json,
    respond,
    respond_json,
)
from llmtrail.capture.gateway.exchange import Exchange, Forward, Outcome, usage_outcome
from llmtrail.capture.gateway.openai.models import (
    chat_prompt_tokens,
    chat_usage,
    embeddings_kept,
    embeddings_prompt_tokens,
    embeddings_usage,
)
from llmtrail.capture.gateway.providers import UpstreamError
from llmtrail.capture.gateway.sse import ChatStreamAccumulator, SSEDecoder
from llmtrail.errors import ValidationError

_STATUS_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "invalid_request_error",
    429: "rate_limit_exceeded",
}
# llmtrail's own error kinds that OpenAI clients see as the error's ``code``
_OWN_CODES = frozenset(
    {
        "model_not_found",
        "upstream_timeout",
        "upstream_unreachable",
        "upstream_stream_idle",
        "upstream_credentials",
        "budget_exceeded",
        "invalid_sim_option",
    }
)


def error_body(
    status: int, message: str, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    kind = _STATUS_TYPES.get(status, "api_error" if status < 500 else "server_error")
    return {"error": {"message": message, "type": kind, "param": param, "code": code or kind}}


class OpenAIRoutes(Exchange):
    wire = "openai"

    async def models(self, scope: Scope, receive: Receive, send: Send) -> None:
        data = [
            {"id": m, "object": "model", "created": 0, "owned_by": "llmtrail"}
            for m in self.router.model_ids()
        ]
        request_id = str(uuid.uuid4()).encode()
        await respond_json(
            send, 200, {"object": "list", "data": data}, [(b"x-llmtrail-request-id", request_id)]
        )

    async def chat(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.guarded(self._chat, scope, receive, send)

    async def embeddings(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.guarded(self._embeddings, scope, receive, send)

    async def _chat(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._handle(scope, receive, send, "ChatCompletions", "/chat/completions")

    async def _embeddings(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._handle(scope, receive, send, "Embeddings", "/embeddings")

    async def _handle(
        self, scope: Scope, receive: Receive, send: Send, operation: str, path: str
    ) -> None:
        call = self.new_call(headers_of(scope), operation, scope)
        limits = self.settings.limits
        try:
            raw = await read_body(receive, limits.max_request_bytes)
            body = await read_json(raw, limits.max_json_depth)
            if not isinstance(body, dict):
                raise ValidationError("body", "must be a JSON object")
        except ValidationError as exc:
            answer = self.error(exc.status, str(exc), exc.field, "validation_error")
            await respond(send, exc.status, answer, self.request_id_headers(call))
            return
        except ConnectionResetError:
            return
        model = body.get("model")
        if not isinstance(model, str) or not model:
            answer = self.error(400, "model: is required (a string)", "model", "validation_error")
            await respond(send, 400, answer, self.request_id_headers(call))
            return
        stream = body.get("stream") is True and operation == "ChatCompletions"
        forward = Forward(call, model, body, path, stream, raw=raw)
        try:
            forward.metadata, forward.metadata_truncated = call.request_metadata(body)
            _check_body(operation, body)
        except ValidationError as exc:
            await self.refuse(forward, send, exc.status, str(exc), exc.field, "validation_error")
            return
        await self.forward(forward, send, receive)

    def error(self, status: int, message: str, field: str | None, kind: str) -> bytes:
        code = kind if kind in _OWN_CODES else None
        return orjson.dumps(error_body(status, message, field, code))

    def upstream_error(
        self, status: int, raw: bytes, headers: dict[str, str]
    ) -> tuple[bytes, dict[str, Any], str | None]:
        try:
            parsed = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            parsed = None
        err = parsed.get("error") if isinstance(parsed, dict) else None
        if not isinstance(err, dict):
            parsed = error_body(status, raw[:500].decode("utf-8", "replace"))
            raw, err = orjson.dumps(parsed), parsed["error"]
        kind = str(err.get("type") or "upstream_error")[:256]
        return raw, {"type": kind, "message": str(err.get("message") or "")}, None

    def outcome(self, forward: Forward, parsed: Any, headers: dict[str, str]) -> Outcome:
        response = parsed if isinstance(parsed, dict) else {}
        model = self._upstream_model(forward)
        if forward.call.operation == "Embeddings":
            return usage_outcome(
                embeddings_kept(response),
                embeddings_usage(response),
                lambda: embeddings_prompt_tokens(forward.body, model),
                model,
            )
        return _chat(forward, response, model)

    def stream_outcome(self, forward: Forward, raw: bytes, headers: dict[str, str]) -> Outcome:
        acc = ChatStreamAccumulator()
        for payload in SSEDecoder().feed(raw + b"\n\n"):
            acc.add(payload)
        return _chat(forward, acc.result(), self._upstream_model(forward))

    def error_frame(self, exc: UpstreamError) -> bytes:
        body = orjson.dumps(error_body(exc.status, exc.message, None, exc.kind))
        return b"data: " + body + b"\n\n"

    def _upstream_model(self, forward: Forward) -> str:
        resolved = self.router.resolve(forward.model)
        return resolved.upstream_model if resolved is not None else forward.model


def _chat(forward: Forward, response: dict[str, Any], model: str) -> Outcome:
    return usage_outcome(
        response, chat_usage(response), lambda: chat_prompt_tokens(forward.body, model), model
    )


def _check_body(operation: str, body: dict[str, Any]) -> None:
    if operation == "ChatCompletions":
        if not isinstance(body.get("messages"), list) or not body["messages"]:
            raise ValidationError("messages", "is required (a non-empty array of messages)")
    else:
        value = body.get("input")
        if not isinstance(value, str | list) or not value:
            raise ValidationError("input", "is required (a string or an array of strings)")
