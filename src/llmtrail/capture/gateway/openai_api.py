"""OpenAI's wire format: ``/v1/chat/completions``, ``/v1/embeddings``, ``/v1/models``.

Errors answer in OpenAI's shape ``{"error": {"message", "type", "param", "code"}}``; every
response carries ``x-llmtrail-request-id``; every call that names a model yields one record.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

import orjson

from llmtrail.capture.gateway.asgi import (
    Message,
    Receive,
    Scope,
    Send,
    headers_of,
    parse_json,
    read_body,
    respond,
    respond_json,
)
from llmtrail.capture.gateway.call import Call
from llmtrail.capture.gateway.outcome import chat_outcome, embedding_outcome
from llmtrail.capture.gateway.providers import Provider, UpstreamError, UpstreamRequest
from llmtrail.capture.gateway.relay import Relayed, relay
from llmtrail.capture.gateway.routing import Router
from llmtrail.capture.gateway.sse import ChatStreamAccumulator, SSEDecoder
from llmtrail.config import Settings
from llmtrail.errors import ValidationError
from llmtrail.record import InvocationRecord

log = logging.getLogger("llmtrail.gateway")
WIRE = "openai"
_STATUS_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "invalid_request_error",
    429: "rate_limit_exceeded",
}


def error_body(
    status: int, message: str, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    kind = _STATUS_TYPES.get(status, "api_error" if status < 500 else "server_error")
    return {"error": {"message": message, "type": kind, "param": param, "code": code or kind}}


class OpenAIRoutes:
    def __init__(
        self,
        settings: Settings,
        router: Router,
        providers: dict[str, Provider],
        submit: Callable[[InvocationRecord], bool],
    ) -> None:
        self.settings = settings
        self.router = router
        self.providers = providers
        self.submit = submit

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
        await self._guarded(scope, receive, send, "ChatCompletions", "/chat/completions")

    async def embeddings(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._guarded(scope, receive, send, "Embeddings", "/embeddings")

    async def _guarded(
        self, scope: Scope, receive: Receive, send: Send, operation: str, path: str
    ) -> None:
        """A bug must not cost the caller more than this call: a 500 in OpenAI's shape, with
        the request id, if nothing was sent yet."""
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self._handle(scope, receive, tracking_send, operation, path)
        except Exception:
            log.exception("gateway error on %s", path)
            if not started:
                await respond_json(send, 500, error_body(500, "internal error in the gateway"))

    async def _handle(
        self, scope: Scope, receive: Receive, send: Send, operation: str, path: str
    ) -> None:
        call = Call(headers_of(scope), self.settings, operation)
        rid = [(b"x-llmtrail-request-id", call.request_id.encode())]
        limits = self.settings.limits
        try:
            body = parse_json(
                await read_body(receive, limits.max_request_bytes), limits.max_json_depth
            )
            if not isinstance(body, dict):
                raise ValidationError("body", "must be a JSON object")
        except ValidationError as exc:
            await respond_json(send, exc.status, error_body(exc.status, str(exc), exc.field), rid)
            return
        except ConnectionResetError:
            return
        model = body.get("model")
        if not isinstance(model, str) or not model:
            await respond_json(
                send, 400, error_body(400, "model: is required (a string)", "model"), rid
            )
            return
        fail = _Failure(self, call, model, body, send, rid)
        try:
            metadata, truncated = call.request_metadata(body)
            _check_body(operation, body)
        except ValidationError as exc:
            await fail(exc.status, str(exc), exc.field, "ValidationException", "validation_error")
            return
        resolved = self.router.resolve(model)
        if resolved is None:
            await fail(
                404,
                f"The model `{model}` does not exist or no route matches it",
                "model",
                "ResourceNotFoundException",
                "model_not_found",
                code="model_not_found",
                metadata=metadata,
            )
            return
        provider = self.providers[resolved.provider]
        if WIRE not in provider.wire_formats:
            await fail(
                400,
                f"model `{model}` is served by provider `{provider.name}`, which does "
                "not speak the OpenAI wire format",
                "model",
                "ValidationException",
                "wrong_wire_format",
                metadata=metadata,
            )
            return
        stream = body.get("stream") is True and operation == "ChatCompletions"
        request = UpstreamRequest(
            WIRE,
            path,
            {**body, "model": resolved.upstream_model},
            stream,
            call.upstream_headers(provider.has_own_key),
        )
        common: dict[str, Any] = dict(
            model_id=model,
            provider=provider.name,
            resolved_model=resolved.upstream_model,
            input_body=body,
            metadata=metadata,
            metadata_truncated=truncated,
        )
        try:
            response = await provider.send(request)
        except UpstreamError as exc:
            await respond_json(
                send, exc.status, error_body(exc.status, exc.message, None, exc.kind), rid
            )
            self._submit(
                call.record(
                    **common,
                    status="ERROR",
                    error_code=_error_code(exc.status),
                    error={"type": exc.kind, "message": exc.message, "httpStatus": exc.status},
                )
            )
            return
        if response.chunks is not None:
            await self._relay_stream(call, response.chunks, send, rid, common, receive)
            return
        raw = response.body or b""
        try:
            parsed = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            parsed = None
        if response.status >= 400:
            if not isinstance(parsed, dict) or "error" not in parsed:
                parsed = error_body(response.status, raw[:500].decode("utf-8", "replace"))
                raw = orjson.dumps(parsed)
            await respond(send, response.status, raw, rid)
            err = parsed["error"] if isinstance(parsed.get("error"), dict) else {}
            self._submit(
                call.record(
                    **common,
                    status="ERROR",
                    output_body=parsed,
                    error_code=_error_code(response.status),
                    error={
                        "type": str(err.get("type") or "upstream_error"),
                        "message": str(err.get("message") or ""),
                        "httpStatus": response.status,
                    },
                )
            )
            return
        await respond(send, response.status, raw, rid)
        if self.settings.record_invocations:
            self._submit(
                self._success(call, common, parsed if isinstance(parsed, dict) else {}, operation)
            )

    def _success(
        self, call: Call, common: dict[str, Any], parsed: dict[str, Any], operation: str
    ) -> InvocationRecord | None:
        model = str(common["resolved_model"])
        if operation == "Embeddings":
            kept, tokens, estimated = embedding_outcome(parsed, common["input_body"], model)
            return call.record(
                **common,
                output_body=kept,
                input_tokens=tokens,
                output_tokens=0,
                estimated=estimated,
            )
        return self._chat_record(call, common, parsed)

    def _chat_record(
        self,
        call: Call,
        common: dict[str, Any],
        response: dict[str, Any],
        stream_truncated: bool = False,
        **more: Any,
    ) -> InvocationRecord | None:
        o = chat_outcome(response, common["input_body"], str(common["resolved_model"]))
        return call.record(
            **common,
            output_body=response,
            input_tokens=o.input_tokens,
            output_tokens=o.output_tokens,
            cache_read_tokens=o.cache_read_tokens,
            estimated=o.estimated or stream_truncated,
            response_id=o.response_id,
            stop_reason=o.stop_reason,
            **more,
        )

    async def _relay_stream(
        self,
        call: Call,
        chunks: Any,
        send: Send,
        rid: list[tuple[bytes, bytes]],
        common: dict[str, Any],
        receive: Receive,
    ) -> None:
        def error_frame(exc: UpstreamError) -> bytes:
            body = orjson.dumps(error_body(exc.status, exc.message, None, exc.kind))
            return b"data: " + body + b"\n\n"

        def finish(out: Relayed) -> None:
            if not self.settings.record_invocations:
                return
            acc = ChatStreamAccumulator()
            for payload in SSEDecoder().feed(out.raw + b"\n\n"):
                acc.add(payload)
            code = None
            if out.status == "CANCELLED":
                code = "ClientDisconnected"
            elif out.error_status is not None:
                code = _error_code(out.error_status)
            self._submit(
                self._chat_record(
                    call,
                    common,
                    acc.result(),
                    status=out.status,
                    error=out.error,
                    error_code=code,
                    stream_truncated=out.truncated,
                )
            )

        headers = [
            (b"content-type", b"text/event-stream; charset=utf-8"),
            (b"cache-control", b"no-cache"),
            *rid,
        ]
        await relay(
            call,
            chunks,
            send,
            receive,
            status=200,
            headers=headers,
            limit=self.settings.limits.max_stream_log_bytes,
            error_frame=error_frame,
            finish=finish,
        )

    def _submit(self, record: InvocationRecord | None) -> None:
        if record is None:
            return
        try:
            self.submit(record)
        except Exception:  # recording never breaks the call
            log.exception("could not hand a record to the pipeline")


class _Failure:
    """Answer an error before the upstream was called, and record it."""

    def __init__(
        self,
        routes: OpenAIRoutes,
        call: Call,
        model: str,
        body: dict[str, Any],
        send: Send,
        rid: list[tuple[bytes, bytes]],
    ) -> None:
        self.routes, self.call, self.model, self.body, self.send, self.rid = (
            routes,
            call,
            model,
            body,
            send,
            rid,
        )

    async def __call__(
        self,
        status: int,
        message: str,
        param: str | None,
        error_code: str,
        kind: str,
        code: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> None:
        await respond_json(self.send, status, error_body(status, message, param, code), self.rid)
        self.routes._submit(
            self.call.record(
                model_id=self.model,
                provider=None,
                resolved_model=None,
                input_body=self.body,
                status="ERROR",
                error_code=error_code,
                metadata=metadata,
                error={"type": kind, "message": message, "httpStatus": status},
            )
        )


def _check_body(operation: str, body: dict[str, Any]) -> None:
    if operation == "ChatCompletions":
        if not isinstance(body.get("messages"), list) or not body["messages"]:
            raise ValidationError("messages", "is required (a non-empty array of messages)")
    else:
        value = body.get("input")
        if not isinstance(value, str | list) or not value:
            raise ValidationError("input", "is required (a string or an array of strings)")


def _error_code(status: int) -> str:
    return {
        400: "ValidationException",
        401: "AccessDeniedException",
        403: "AccessDeniedException",
        404: "ResourceNotFoundException",
        429: "ThrottlingException",
        502: "ServiceUnavailableException",
        503: "ServiceUnavailableException",
        504: "ModelTimeoutException",
    }.get(status, "InternalServerException")
