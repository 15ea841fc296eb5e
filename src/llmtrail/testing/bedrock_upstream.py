"""A small, real HTTP server speaking the Bedrock runtime wire format.

It stands in for AWS in end-to-end tests and benchmarks of the gateway's Bedrock routes and
of its ``bedrock`` provider: ``POST /model/{modelId}/converse``, ``/converse-stream``,
``/invoke`` and ``/invoke-with-response-stream``, with the model id percent-encoded in the
path as boto3 sends it (ids, cross-region ids such as ``us.anthropic…``, ARNs with ``/``).

Every request must be signed: the server recomputes the SigV4 signature with botocore for its
one access key (`verify_signature`) and refuses anything else with 403 in AWS's shape — so a
gateway that forwards without re-signing, or re-signs wrongly, fails its test. A Bedrock API
key (``Authorization: Bearer``) is accepted when ``api_key`` is set. Responses are
deterministic (see `llmtrail.testing.scripted_reply`) and in Bedrock's real shapes: Converse
JSON, event-stream frames (`llmtrail.capture.gateway.bedrock.eventstream`) padded with Bedrock's
``"p"`` key, InvokeModel bodies per model family (`llmtrail.testing.bedrock_invoke`) with the
``X-Amzn-Bedrock-*-Token-Count`` headers. ``requestMetadata`` (Converse body) and the
``X-Amzn-Bedrock-Request-Metadata`` header (InvokeModel) are validated by Bedrock's rules and
logged in `BedrockRequest.request_metadata`. Errors are status + ``x-amzn-ErrorType`` (with
AWS's ``:http://internal.amazon.com/…`` suffix) + ``{"message": …}``.

The model id selects special behaviour:

* ``fail-<code>``: answer HTTP ``<code>`` with the matching exception (429 ThrottlingException,
  400 ValidationException, 408 ModelTimeoutException, 503 ServiceUnavailableException, 403
  AccessDeniedException, 404 ResourceNotFoundException, 424 ModelErrorException, 500
  InternalServerException);
* ``slow-<ms>``: wait ``<ms>`` milliseconds before answering;
* ``stall-<ms>`` (streams): send the first frame, then wait ``<ms>`` before the rest;
* ``streamfail-<code>`` (streams): after the first content delta, send an exception frame
  (``throttlingException``, ``modelStreamErrorException``, …) and end the stream.

Run ``python -m llmtrail.testing.bedrock_upstream --port 9300`` to serve in the foreground.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import orjson
from aiohttp import web

from llmtrail.capture.gateway.bedrock import eventstream
from llmtrail.capture.gateway.providers.sim.plan import Conversation, Reply, Voice
from llmtrail.capture.gateway.providers.sim.prompt_cache import PromptCache
from llmtrail.capture.gateway.sigv4 import parse_authorization, verify_signature
from llmtrail.errors import ValidationError
from llmtrail.record import validate_request_metadata
from llmtrail.testing import bedrock_invoke, converse_messages
from llmtrail.testing.local_server import (
    LocalServer,
    ReceivedRequest,
    json_response,
    serve_until_interrupted,
)
from llmtrail.testing.scripted_reply import EchoVoice, InvalidRequest, reply_to

__all__ = ["ERRORS", "OPERATIONS", "BedrockRequest", "BedrockUpstream", "main"]

OPERATIONS = {
    "converse": "Converse",
    "converse-stream": "ConverseStream",
    "invoke": "InvokeModel",
    "invoke-with-response-stream": "InvokeModelWithResponseStream",
}
"""Path suffix → operation name."""

ERRORS = {
    400: ("ValidationException", "The request is not valid for this model."),
    403: ("AccessDeniedException", "You don't have access to the model with the specified ID."),
    404: ("ResourceNotFoundException", "The requested model was not found."),
    408: ("ModelTimeoutException", "Model has timed out in processing the request."),
    424: ("ModelErrorException", "The model returned an error. Try your request again."),
    429: ("ThrottlingException", "Too many requests, please wait before trying again."),
    500: ("InternalServerException", "The server encountered an internal error."),
    503: ("ServiceUnavailableException", "Bedrock is unable to process your request."),
}
"""HTTP status → (exception type, message) for ``fail-<code>``."""

_SWITCH = re.compile(r"^(fail|slow|stall|streamfail)-(\d+)$")
_BEDROCK = ":http://internal.amazon.com/coral/com.amazon.bedrock/"
_CORAL = ":http://internal.amazon.com/coral/com.amazon.coral.service/"
_BAD_SIGNATURE = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. "
    "Consult the service documentation for details."
)
_PADDING = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
# stream members per operation (ConverseStream has no modelTimeoutException)
_STREAM_EXCEPTIONS = {
    400: "validationException",
    408: "modelTimeoutException",
    429: "throttlingException",
    500: "internalServerException",
    503: "serviceUnavailableException",
}


@dataclass
class BedrockRequest(ReceivedRequest):
    """A received request plus what the Bedrock server made of it."""

    operation: str | None = None  # Converse | ConverseStream | InvokeModel | …
    model_id: str | None = None  # percent-decoded
    region: str | None = None  # from the SigV4 credential scope
    access_key_id: str | None = None
    signature_valid: bool = False  # a valid SigV4 signature or the configured API key
    request_metadata: dict[str, str] | None = None  # Converse body / InvokeModel header


_METADATA_HEADER = "X-Amzn-Bedrock-Request-Metadata"


def _request_metadata(operation: str, request: web.Request, body: Any) -> dict[str, str] | None:
    """``requestMetadata`` as Bedrock reads it — the Converse body's field, or InvokeModel's
    header holding a JSON object — validated by Bedrock's rules; raises `InvalidRequest`."""
    if operation.startswith("Converse"):
        raw = body.get("requestMetadata") if isinstance(body, dict) else None
    else:
        header = request.headers.get(_METADATA_HEADER)
        try:
            raw = None if header is None else orjson.loads(header)
        except orjson.JSONDecodeError as exc:
            raise InvalidRequest(f"{_METADATA_HEADER} is not a JSON object: {exc}") from exc
    if raw is None:
        return None
    try:
        return validate_request_metadata(raw)
    except ValidationError as exc:
        raise InvalidRequest(str(exc)) from exc


def _error(status: int, kind: str, message: str, suffix: str = _BEDROCK) -> web.Response:
    headers = {"x-amzn-ErrorType": kind + suffix, "x-amzn-RequestId": str(uuid.uuid4())}
    return json_response({"message": message}, status, headers=headers)


def _split_target(raw_path: str) -> tuple[str, str] | None:
    """``(model id, path suffix)`` of ``/model/<percent-encoded id>/<suffix>``."""
    path = urlsplit(raw_path).path
    if not path.startswith("/model/") or path.count("/") < 3:
        return None
    encoded, suffix = path[len("/model/") :].rsplit("/", 1)
    return (unquote(encoded), suffix) if encoded else None


class BedrockUpstream(LocalServer):
    """The fake Bedrock runtime; point boto3 at `endpoint_url` with the same credentials.
    ``voice`` (default: an echo of ``response_bytes`` bytes) words and counts the answers."""

    name = "bedrock-upstream"
    ACCESS_KEY_ID = "AKIALLMTRAILFAKE0001"
    SECRET_ACCESS_KEY = "llmtrail/fake/secret/access/key/0000000001"

    def __init__(
        self,
        *,
        port: int = 0,
        response_bytes: int = 200,
        access_key_id: str = ACCESS_KEY_ID,
        secret_access_key: str = SECRET_ACCESS_KEY,
        session_token: str | None = None,
        api_key: str | None = None,
        padding: bool = True,
        record: bool = True,
        voice: Voice | None = None,
    ) -> None:
        super().__init__(port=port, record=record)
        self.response_bytes = response_bytes
        self.voice = voice or EchoVoice(response_bytes)
        self.access_key_id = access_key_id
        self.secret_access_key = secret_access_key
        self.session_token = session_token
        self.api_key = api_key
        self.padding = padding  # Bedrock's random-length "p" key in every stream payload
        self.cache = PromptCache()
        self._ids = itertools.count(1)
        self._frames = itertools.count(1)

    @property
    def endpoint_url(self) -> str:
        """What ``boto3.client("bedrock-runtime", endpoint_url=…)`` takes."""
        return self.url

    def add_routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/{tail:.*}", self._dispatch)

    def describe(self, request: web.Request, body: bytes) -> BedrockRequest:
        base = super().describe(request, body)
        target = _split_target(request.raw_path)
        operation = OPERATIONS.get(target[1]) if target else None
        auth = parse_authorization(request.headers.get("authorization"))
        try:
            payload = orjson.loads(body) if operation else None
            metadata = _request_metadata(operation, request, payload) if operation else None
        except (orjson.JSONDecodeError, InvalidRequest):
            metadata = None
        return BedrockRequest(
            **vars(base),
            operation=operation,
            model_id=target[0] if target else None,
            region=auth.region if auth else None,
            access_key_id=auth.access_key_id if auth else None,
            signature_valid=self._refusal(request, body) is None,
            request_metadata=metadata,
        )

    def _refusal(self, request: web.Request, body: bytes) -> web.Response | None:
        """None when the request is authenticated, else AWS's 403."""
        header = request.headers.get("authorization")
        if not header:
            return _error(
                403, "MissingAuthenticationTokenException", "Missing Authentication Token", _CORAL
            )
        if self.api_key is not None and header == f"Bearer {self.api_key}":
            return None
        auth = parse_authorization(header)
        if auth is not None and auth.access_key_id != self.access_key_id:
            message = "The security token included in the request is invalid."
            return _error(403, "UnrecognizedClientException", message, _CORAL)
        if auth is not None and auth.service != "bedrock":
            message = "Credential should be scoped to correct service: 'bedrock'."
            return _error(403, "InvalidSignatureException", message, _CORAL)
        valid = auth is not None and verify_signature(
            method=request.method,
            target=request.raw_path,
            headers=request.headers.items(),
            body=body,
            secret_access_key=self.secret_access_key,
            access_key_id=self.access_key_id,
            session_token=self.session_token,
        )
        return None if valid else _error(403, "InvalidSignatureException", _BAD_SIGNATURE, _CORAL)

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        started = time.monotonic()
        body = await request.read()
        target = _split_target(request.raw_path)
        operation = OPERATIONS.get(target[1]) if target and request.method == "POST" else None
        if target is None or operation is None:
            return _error(404, "UnknownOperationException", "Unknown operation", _CORAL)
        refusal = self._refusal(request, body)
        if refusal is not None:
            return refusal
        model_id = target[0]
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            payload = None
        if not isinstance(payload, dict):
            message = "Malformed input request, please reformat your input and try again."
            return _error(400, "ValidationException", message)
        switch = _SWITCH.match(model_id)
        if switch and switch[1] == "fail" and 400 <= int(switch[2]) <= 599:
            status = int(switch[2])
            fallback = ERRORS[500 if status >= 500 else 400]
            kind, message = ERRORS.get(status, fallback)
            return _error(status, kind, message)
        if switch and switch[1] == "slow":
            await asyncio.sleep(int(switch[2]) / 1000)
        n = next(self._ids)
        request_id = str(uuid.uuid4())
        family = None
        if operation.startswith("Invoke"):
            family = bedrock_invoke.model_family(model_id, payload)
            if family is None:
                message = "The provided model identifier is invalid."
                return _error(400, "ValidationException", message)
        try:
            _request_metadata(operation, request, payload)
            conversation = (
                converse_messages.read_converse_request(payload)
                if family is None
                else bedrock_invoke.read_invoke_request(family, payload)
            )
        except InvalidRequest as exc:
            return _error(400, "ValidationException", str(exc))
        reply = self._reply(conversation, n, family, model_id)
        headers = {"x-amzn-RequestId": request_id}
        if operation == "Converse":
            latency = _elapsed_ms(started)
            answer = converse_messages.converse_body(reply, latency_ms=latency)
            return json_response(answer, headers=headers)
        message_id = f"msg_bdrk_01Fake{n:012d}"
        if family is not None and operation == "InvokeModel":
            answer = bedrock_invoke.invoke_body(
                family, reply, model_id=model_id, message_id=message_id
            )
            headers.update(_token_headers(reply, family, _elapsed_ms(started)))
            return json_response(answer, headers=headers)
        if family is None:
            frames = converse_messages.stream_events(reply)
        else:
            chunks = bedrock_invoke.invoke_chunks(
                family, reply, model_id=model_id, message_id=message_id
            )
            frames = [("chunk", chunk) for chunk in chunks]
            headers["X-Amzn-Bedrock-Content-Type"] = "application/json"
        return await self._stream(request, headers, frames, reply, switch, operation, started)

    def _reply(
        self, conversation: Conversation, n: int, family: str | None, model_id: str
    ) -> Reply:
        call_id = f"toolu_bdrk_01Fake{n:010d}" if family == "anthropic" else f"tooluse_Fake{n:010d}"
        return reply_to(conversation, self.voice, model=model_id, call_id=call_id, cache=self.cache)

    def _pad(self, payload: dict[str, Any]) -> dict[str, Any]:
        if not self.padding:
            return payload
        return {**payload, "p": _PADDING[: 1 + next(self._frames) * 7 % len(_PADDING)]}

    async def _stream(
        self,
        request: web.Request,
        headers: dict[str, str],
        frames: list[tuple[str, dict[str, Any]]],
        reply: Reply,
        switch: re.Match[str] | None,
        operation: str,
        started: float,
    ) -> web.StreamResponse:
        stall = int(switch[2]) / 1000 if switch and switch[1] == "stall" else 0.0
        fail = int(switch[2]) if switch and switch[1] == "streamfail" else None
        response = web.StreamResponse(headers={"Content-Type": eventstream.CONTENT_TYPE, **headers})
        first_byte: int | None = None
        try:
            await response.prepare(request)
            for n, (name, payload) in enumerate(frames):
                last = n == len(frames) - 1
                if last and name == "metadata":
                    payload = {**payload, "metrics": {"latencyMs": _elapsed_ms(started)}}
                if name == "chunk":
                    if last:
                        metrics = bedrock_invoke.invocation_metrics(
                            reply.usage,
                            latency_ms=_elapsed_ms(started),
                            first_byte_ms=first_byte or 0,
                        )
                        payload = {**payload, "amazon-bedrock-invocationMetrics": metrics}
                    payload = {"bytes": base64.b64encode(orjson.dumps(payload)).decode()}
                await response.write(eventstream.event(name, self._pad(payload)))
                first_byte = _elapsed_ms(started) if first_byte is None else first_byte
                if n == 0 and stall:
                    await asyncio.sleep(stall)
                if fail is not None and _is_content_delta(name, frames[n][1]):
                    await response.write(_exception_frame(fail, operation))
                    break
            await response.write_eof()
        except ConnectionResetError:  # the client went away mid-stream
            pass
        return response


def _is_content_delta(name: str, payload: dict[str, Any]) -> bool:
    """Whether a frame (before encoding) carries generated content."""
    if name == "contentBlockDelta":
        return True
    if name != "chunk":
        return False
    return payload.get("type") == "content_block_delta" or any(
        key in payload for key in ("contentBlockDelta", "generation", "outputText")
    )


def _exception_frame(status: int, operation: str) -> bytes:
    member = _STREAM_EXCEPTIONS.get(status)
    if member is None or (member == "modelTimeoutException" and operation == "ConverseStream"):
        member = "modelStreamErrorException"
    kind = member[0].upper() + member[1:]
    message = next((m for k, m in ERRORS.values() if k == kind), "The model stream failed.")
    return eventstream.exception(member, message)


def _elapsed_ms(started: float) -> int:
    return max(1, round((time.monotonic() - started) * 1000))


def _token_headers(reply: Reply, family: str, latency_ms: int) -> dict[str, str]:
    usage = reply.usage
    headers = {
        "X-Amzn-Bedrock-Input-Token-Count": str(usage.input_tokens),
        "X-Amzn-Bedrock-Output-Token-Count": str(usage.output_tokens),
        "X-Amzn-Bedrock-Invocation-Latency": str(latency_ms),
    }
    if family in ("anthropic", "nova"):
        headers["X-Amzn-Bedrock-Cache-Read-Input-Token-Count"] = str(usage.cache_read)
        headers["X-Amzn-Bedrock-Cache-Write-Input-Token-Count"] = str(usage.cache_write)
    return headers


def main(argv: list[str] | None = None) -> None:
    """Serve in the foreground until interrupted (SIGINT or SIGTERM)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--response-bytes", type=int, default=200, help="size of each answer")
    serve_until_interrupted(
        lambda a: BedrockUpstream(port=a.port, response_bytes=a.response_bytes, record=False),
        parser,
        argv,
        lambda s: f"Bedrock upstream serving at {s.url}",
    )


if __name__ == "__main__":
    main()
