"""The path every gateway call takes once its request is read: resolve the model, forward to a
provider of the route's own wire format, answer the caller, and hand the call's facts
(`CallFacts`) to the record path without parsing the answer. A wire format (OpenAI,
Anthropic, Bedrock) subclasses `Exchange` and supplies only what is its own: the error shape,
how a response and a stream tell tokens, and response headers.

Every outcome yields a record — a refused request, an unknown model, an upstream error, a
timeout, a stream cut short — and recording never breaks the call. The same class, given
the facts, is the format's reader (`ExchangeReader`) wherever the record is built.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from llmtrail.capture.gateway.asgi import Message, Receive, Scope, Send, respond
from llmtrail.capture.gateway.call import NO_LOG_HEADER, RECORDED_HEADERS, Call
from llmtrail.capture.gateway.facts import (
    ERROR_BODY,
    STREAM,
    WHOLE,
    CallFacts,
    Outcome,
    Reader,
)
from llmtrail.capture.gateway.providers import (
    Provider,
    UpstreamError,
    UpstreamRequest,
    UpstreamResponse,
)
from llmtrail.capture.gateway.relay import Relayed, relay
from llmtrail.capture.gateway.routing import Router
from llmtrail.capture.gateway.usage import STOP_REASON_MAX, Usage, label
from llmtrail.capture.tokens import count_tokens
from llmtrail.config import Settings
from llmtrail.record import MODEL_ID_MAX
from llmtrail.security.keys import model_allowed
from llmtrail.security.principal import principal_of

log = logging.getLogger("llmtrail.gateway")
Headers = list[tuple[bytes, bytes]]


def usage_outcome(
    response: Any, usage: Usage, prompt: Callable[[], str | int], model: str = ""
) -> Outcome:
    """An `Outcome` from what a response's usage says, the same for every wire format.

    A count the upstream did not give (or gave in a form `token_count` refuses) is counted
    offline with ``model``'s encoding, and the record says so: the output from
    ``usage.text``, the input from ``prompt()``, called only then, which returns the prompt's
    text, or its count where the format has its own accounting (OpenAI's per-message overhead,
    embeddings inputs counted one by one)."""
    estimated = usage.input_tokens is None or usage.output_tokens is None
    input_tokens = usage.input_tokens
    if input_tokens is None:
        given = prompt()
        input_tokens = given if isinstance(given, int) else count_tokens(given, model)
    output_tokens = usage.output_tokens
    if output_tokens is None:
        output_tokens = count_tokens(usage.text, model)
    return Outcome(
        output_body=response,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_read_tokens=usage.cache_read_tokens,
        cache_write_tokens=usage.cache_write_tokens,
        estimated=estimated,
        response_id=usage.response_id,
        stop_reason=label(usage.stop_reason, STOP_REASON_MAX),  # longer: an unstorable record
    )


@dataclass
class Forward:
    """A request ready to go upstream, and what its record needs."""

    call: Call
    model: str  # as the caller named it
    body: Any  # the request body as logged
    operation_path: str  # provider-relative path
    stream: bool
    metadata: dict[str, str] | None = None
    metadata_truncated: bool = False
    raw: bytes | None = None  # ``body``'s bytes as received: what crosses to the record path


@dataclass
class Services:
    """What the gateway consults besides routes and providers, all optional: application
    inference profiles (``resolve(model)``), budgets (``check(call_doc)``), the keyed hash
    of a caller's own key, and rate limits."""

    profiles: Any = None
    budgets: Any = None
    identify: Callable[[str], str] | None = None  # keyed hash of a caller's own key
    limits: Any = None  # `RateLimits`: a key's requests and tokens per minute


class Exchange:
    wire = ""  # the route's wire format
    stream_content_type = b"text/event-stream; charset=utf-8"

    def __init__(
        self,
        settings: Settings,
        router: Router,
        providers: dict[str, Provider],
        hand_over: Callable[[CallFacts], object] | None = None,
        services: Services | None = None,
    ) -> None:
        self.settings = settings
        self.router = router
        self.providers = providers
        self.hand_over = hand_over  # never waits: the record path queues the facts
        self.services = services or Services()

    def new_call(self, headers: dict[str, str], operation: str, scope: Scope) -> Call:
        call = Call(headers, self.settings, operation, principal_of(scope))
        call.identify = self.services.identify
        return call

    # -- what a wire format supplies ------------------------------------------------------

    def error(self, status: int, message: str, field: str | None, kind: str) -> bytes:
        """An error body in this format's shape; ``kind`` is llmtrail's error type
        (``validation_error``, ``model_not_found``, ``upstream_timeout``, …)."""
        raise NotImplementedError

    def error_headers(self, status: int, code: str | None) -> Headers:
        """Headers an error carries besides the request id (e.g. Bedrock's error type)."""
        return []

    def error_code(self, status: int, upstream_type: str | None = None) -> str:
        """The record's Bedrock-style ``errorCode`` for an HTTP status."""
        return _ERROR_CODES.get(status, "InternalServerException")

    def upstream_error(
        self, status: int, raw: bytes, headers: dict[str, str]
    ) -> tuple[bytes, dict[str, Any], str | None]:
        """An upstream error in this format's shape: the body to relay, ``error`` for the
        record, and the upstream's own error type when it has one."""
        raise NotImplementedError

    def outcome(self, forward: Forward, parsed: Any, headers: dict[str, str]) -> Outcome:
        """What a whole (non-stream) response says."""
        raise NotImplementedError

    def stream_outcome(self, forward: Forward, raw: bytes, headers: dict[str, str]) -> Outcome:
        """What a relayed stream says, parsed from its tee."""
        raise NotImplementedError

    def error_frame(self, exc: UpstreamError) -> bytes:
        """What to append to a stream that breaks upstream (b"" for nothing)."""
        return b""

    def request_id_headers(self, call: Call) -> Headers:
        return [(b"x-llmtrail-request-id", call.request_id.encode())]

    def adopt_upstream_ids(self, call: Call, headers: dict[str, str]) -> None:
        """Take the upstream's request id as the record's where the format says so."""

    def passed_headers(self, headers: dict[str, str]) -> Headers:
        """Upstream response headers worth passing to the caller."""
        return []

    # -- the common path -------------------------------------------------------------------

    async def guarded(self, handler: Any, scope: Scope, receive: Receive, send: Send) -> None:
        """A bug must not cost the caller more than this call: a 500 in the format's shape
        if nothing was sent yet."""
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await handler(scope, receive, tracking_send)
        except Exception:
            log.exception("gateway error on %s", scope.get("path"))
            if not started:
                body = self.error(500, "internal error in the gateway", None, "internal_error")
                await respond(send, 500, body, self.error_headers(500, None))

    async def refuse(
        self,
        forward: Forward,
        send: Send,
        status: int,
        message: str,
        field: str | None,
        kind: str,
        code: str | None = None,
    ) -> None:
        """Answer an error before the upstream was called, and record it."""
        call = forward.call
        headers = self.request_id_headers(call) + self.error_headers(status, code)
        await respond(send, status, self.error(status, message, field, kind), headers)
        self._hand_over(
            forward,
            {},
            status="ERROR",
            error_code=code if code and code.endswith("Exception") else self.error_code(status),
            error={"type": kind, "message": message, "httpStatus": status},
        )

    def upstream_body(self, forward: Forward, upstream_model: str) -> dict[str, Any]:
        """The body to send upstream: by default the caller's, with the upstream model."""
        return {**forward.body, "model": upstream_model}

    async def forward(self, forward: Forward, send: Send, receive: Receive) -> None:
        if len(forward.model) > MODEL_ID_MAX:
            length = len(forward.model)
            forward.model = forward.model[:MODEL_ID_MAX]  # what the record keeps of it
            await self.refuse(
                forward,
                send,
                400,
                f"model: is {length} characters long; the limit is {MODEL_ID_MAX} characters",
                "model",
                "validation_error",
                "ValidationException",
            )
            return
        call, model = forward.call, forward.model
        target = model
        profile = (
            self.services.profiles.resolve(model, workspace=call.principal.workspace)
            if self.services.profiles
            else None
        )
        if profile is not None:
            target = profile.model_id
            call.additions["inferenceProfile"] = profile.stamp()
        principal = call.principal
        if not (model_allowed(principal, model) or model_allowed(principal, target)):
            await self.refuse(
                forward,
                send,
                403,
                f"this key may not call model `{model}` (it may call: "
                f"{', '.join(principal.models)})",
                "model",
                "permission_denied",
                "AccessDeniedException",
            )
            return
        if self.services.limits is not None:
            limited = self.services.limits.admit(principal)
            if limited is not None:
                await self.refuse(
                    forward, send, 429, limited, None, "rate_limited", "ThrottlingException"
                )
                return
        resolved = self.router.resolve(target)
        if resolved is None:
            await self.refuse(
                forward,
                send,
                404,
                f"The model `{model}` does not exist or no route matches it"
                + (f" (profile for `{target}`)" if target != model else ""),
                "model",
                "model_not_found",
                "ResourceNotFoundException",
            )
            return
        provider = self.providers[resolved.provider]
        if self.wire not in provider.wire_formats:
            await self.refuse(
                forward,
                send,
                400,
                f"model `{model}` is served by provider `{provider.name}`, which does not "
                f"speak the {self.wire} wire format",
                "model",
                "wrong_wire_format",
                "ValidationException",
            )
            return
        if self.services.budgets is not None:
            refusal = self.services.budgets.check(
                {
                    "workspace": principal.workspace,
                    "modelId": model,
                    "provider": provider.name,
                    "operation": call.operation,
                    "requestMetadata": forward.metadata or {},
                    "inferenceProfile": call.additions.get("inferenceProfile"),
                }
            )
            if refusal is not None:
                await self.refuse(
                    forward,
                    send,
                    429,
                    refusal.message,
                    None,
                    "budget_exceeded",
                    "ThrottlingException",
                )
                return
        request = UpstreamRequest(
            self.wire,
            forward.operation_path.replace("{model}", _path_segment(resolved.upstream_model)),
            self.upstream_body(forward, resolved.upstream_model),
            forward.stream,
            call.upstream_headers(provider.has_own_key),
            model=resolved.upstream_model,
        )
        common: dict[str, Any] = dict(
            provider=provider.name, resolved_model=resolved.upstream_model
        )
        try:
            response = await provider.send(request)
        except UpstreamError as exc:
            code = self.error_code(exc.status)
            headers = self.request_id_headers(call) + self.error_headers(exc.status, code)
            body = self.error(exc.status, exc.message, None, exc.kind)
            await respond(send, exc.status, body, headers)
            error = {"type": exc.kind, "message": exc.message, "httpStatus": exc.status}
            self._hand_over(forward, common, status="ERROR", error_code=code, error=error)
            return
        self.adopt_upstream_ids(call, response.headers)
        if response.chunks is not None:
            await self._relay(forward, response, send, receive, common)
            return
        await self._answer(forward, response, send, common)

    async def _answer(
        self, forward: Forward, response: UpstreamResponse, send: Send, common: dict[str, Any]
    ) -> None:
        call, raw = forward.call, response.body or b""
        headers = self.request_id_headers(call) + self.passed_headers(response.headers)
        if response.status >= 400:
            body, error, upstream_type = self.upstream_error(response.status, raw, response.headers)
            code = self.error_code(response.status, upstream_type)
            headers += self.error_headers(response.status, code)
            await respond(send, response.status, body, headers)
            error["httpStatus"] = response.status
            self._hand_over(
                forward,
                common,
                status="ERROR",
                answer=ERROR_BODY,
                raw=body,
                error_code=code,
                error=error,
            )
            return
        content_type = response.headers.get("content-type", "application/json").encode()
        await respond(send, response.status, raw, headers, content_type)
        self._hand_over(forward, common, answer=WHOLE, raw=raw, response_headers=response.headers)

    async def _relay(
        self,
        forward: Forward,
        response: UpstreamResponse,
        send: Send,
        receive: Receive,
        common: dict[str, Any],
    ) -> None:
        call = forward.call
        assert response.chunks is not None

        def finish(out: Relayed) -> None:
            self._hand_over(
                forward,
                common,
                answer=STREAM,
                raw=out.raw,
                response_headers=response.headers,
                truncated=out.truncated,
                status=out.status,
                error=out.error,
                error_status=out.error_status,
            )

        headers = [
            (b"content-type", self.stream_content_type),
            (b"cache-control", b"no-cache"),
            *self.request_id_headers(call),
            *self.passed_headers(response.headers),
        ]
        await relay(
            call,
            response.chunks,
            send,
            receive,
            status=response.status,
            headers=headers,
            limit=self.settings.limits.max_stream_log_bytes,
            error_frame=self.error_frame,
            finish=finish,
        )

    def _hand_over(self, forward: Forward, common: dict[str, Any], **answer: Any) -> None:
        """Hand the finished call's facts to the record path; never raises, never waits."""
        if self.hand_over is None or not self.settings.record_invocations:
            return
        try:
            self.hand_over(self.facts(forward, **common, **answer))
        except Exception:  # recording never breaks the call
            log.exception("could not hand a call over to the record path")

    def facts(self, forward: Forward, **more: Any) -> CallFacts:
        """What the record path needs of this call: cheap to build, nothing parsed."""
        call = forward.call
        principal = call.principal
        headers = call.headers
        return CallFacts(
            wire=self.wire,
            operation=call.operation,
            started=call.started,
            request_id=call.request_id,
            latency_ms=call.elapsed_ms(),
            time_to_first_token_ms=(
                call.elapsed_ms(call.first_token_at) if call.first_token_at is not None else None
            ),
            model_id=forward.model,
            workspace=principal.workspace,
            # the bytes, not the parsed body: pickling a 21 KB request's parsed body for the
            # pipe cost the event loop 20 µs (62 for 106 KB), its bytes ~2.5 µs whatever their
            # size; the record path parses them again (`CallFacts.request_body`)
            input_body=forward.body if forward.raw is None else None,
            request_raw=forward.raw,
            identity=call.identity(),
            headers={k: v for k, v in headers.items() if k in RECORDED_HEADERS},
            no_log=_truthy(headers.get(NO_LOG_HEADER)),
            trace=call.trace(),
            metadata=forward.metadata,
            metadata_truncated=forward.metadata_truncated,
            additions=call.additions,
            tpm_key=(
                (principal.key_id, principal.tpm)
                if principal.key_id is not None and principal.tpm is not None
                else None
            ),
            **more,
        )


class ExchangeReader(Reader):
    """A wire format's `Exchange` as the reader of its calls' facts, in any process."""

    def __init__(self, exchange: Exchange) -> None:
        self.exchange = exchange

    def outcome(self, facts: CallFacts, parsed: Any) -> Outcome:
        return self.exchange.outcome(_forward(facts), parsed, facts.response_headers)

    def stream_outcome(self, facts: CallFacts) -> Outcome:
        return self.exchange.stream_outcome(_forward(facts), facts.raw, facts.response_headers)

    def error_code(self, status: int, upstream_type: str | None = None) -> str:
        return self.exchange.error_code(status, upstream_type)


class _Operation:
    """What a reader asks of a call: its operation."""

    def __init__(self, operation: str) -> None:
        self.operation = operation


def _forward(facts: CallFacts) -> Forward:
    operation = _OPERATIONS.get(facts.operation)
    if operation is None:
        operation = _Operation(facts.operation)
        if len(_OPERATIONS) < 64:  # the routes' few; never more than this many kept
            _OPERATIONS[facts.operation] = operation
    return Forward(  # by position: a third cheaper than by keyword
        operation,  # type: ignore[arg-type]
        facts.model_id,
        facts.request_body(),
        "",  # operation_path
        facts.answer == STREAM,
        facts.metadata,
        facts.metadata_truncated,
    )


_OPERATIONS: dict[str, _Operation] = {}  # read-only once made: shared between threads


def _truthy(value: str | None) -> bool:
    return value is not None and value.strip().lower() in ("1", "true", "yes", "on")


_ERROR_CODES = {
    400: "ValidationException",
    401: "AccessDeniedException",
    403: "AccessDeniedException",
    404: "ResourceNotFoundException",
    408: "ModelTimeoutException",
    413: "ValidationException",
    424: "ModelErrorException",
    429: "ThrottlingException",
    502: "ServiceUnavailableException",
    503: "ServiceUnavailableException",
    504: "ModelTimeoutException",
    529: "ServiceUnavailableException",
}


def _path_segment(model: str) -> str:
    from urllib.parse import quote

    return quote(model, safe="")
