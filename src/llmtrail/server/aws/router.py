"""Which AWS operation a request addresses, and running it: the body read, the permission,
the input checked against its shape, the handler, the answer shaped, the audit entry.

`AwsRouter.match` claims a request before the rest of the app sees it: ``POST /`` with a
known ``X-Amz-Target`` prefix (JSON protocols), ``POST /service/<Service>/operation/<Op>``
(Smithy RPC v2 CBOR), or a registered rest-json operation's method and request URI
(matched on the raw path, so an ARN label with ``%2F`` stays one label). The front door has
already proven the caller (`Principal` in the scope) with the signing name `match` reports.

A request that is plainly meant for these APIs but names no operation — an ``X-Amz-Target``
with an unknown prefix or no operation, a path under the CBOR prefix or a bedrock root that
no operation has — is claimed too and answered ``UnknownOperationException`` in that
protocol's shape. Its signing name is the service whose prefix matches regardless of case,
else the one the caller's credential is scoped to when that is served here, so a signed
request with a mistyped target learns so rather than that its signature failed. Nothing a
request carries ends in anything but an AWS-shaped answer: a fault anywhere is a logged
500 ``InternalFailure``.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import importlib.util
import logging
import re
import urllib.parse
import uuid
from collections.abc import Iterable
from typing import Any

from starlette.requests import Request

from llmtrail.capture.gateway.asgi import Scope
from llmtrail.errors import LlmtrailError
from llmtrail.security.principal import Permission, principal_of
from llmtrail.server.aws.models import operation_model, service_model, validation_code
from llmtrail.server.aws.operations import OPERATIONS, AwsCall, AwsError, Operation
from llmtrail.server.aws.shapes import InputInvalid, OutputInvalid, read_input
from llmtrail.server.aws.wire import CBOR, JSON, REST_JSON, Answer, Target

__all__ = ["SERVICE_MODULES", "AwsRouter"]

log = logging.getLogger("llmtrail.aws")

# The modules whose handlers the router serves (``llmtrail.server.aws.<name>``).
SERVICE_MODULES = (
    "logs",
    "cloudwatch_metrics",
    "cloudwatch_alarms",
    "cloudwatch_dashboards",
    "ce",
    "bedrock",
)
JSON_SERVICES = ("logs", "ce", "monitoring")
CBOR_SERVICE = "monitoring"
CBOR_PATHS = "/service/"  # where Smithy RPC v2 CBOR operations are (``/service/<Service>/…``)
REST_SERVICE = "bedrock"
# The first path segments of our own rest-json operations, so that a request elsewhere is told
# apart without botocore's models; `AwsRouter.model_roots` derives them from the models and a
# test holds the two equal. A plugin's rest-json operations have their roots read from the
# models when the router is made.
REST_ROOTS = frozenset(
    (
        "foundation-models",
        "inference-profiles",
        "listTagsForResource",
        "logging",
        "tagResource",
        "untagResource",
    )
)
_LABEL = re.compile(r"\{([^}+]+)(\+?)\}")
_SCOPE = re.compile(rb"Credential=[^/,]*/[^/,]*/[^/,]*/([^/,]*)/")


def load_operations() -> dict[tuple[str, str], Operation]:
    for name in SERVICE_MODULES:
        module = f"llmtrail.server.aws.{name}"
        if importlib.util.find_spec(module) is not None:
            importlib.import_module(module)
    return OPERATIONS


def _uri_pattern(uri: str) -> re.Pattern[str]:
    path = uri.split("?", 1)[0]
    parts: list[str] = []
    last = 0
    for found in _LABEL.finditer(path):
        parts.append(re.escape(path[last : found.start()]))
        parts.append(f"(?P<{found.group(1)}>{'.+' if found.group(2) else '[^/]+'})")
        last = found.end()
    parts.append(re.escape(path[last:]))
    return re.compile("".join(parts) + "/?")


class AwsRouter:
    """The AWS-shaped operations of one app. botocore's service models and the tables made
    of them load with the first request plainly meant for these APIs (`match`), not with the
    app: a server nobody asks in AWS's shapes never holds them (~15 MB)."""

    def __init__(self, runtime: Any, services: dict[str, Any], max_body: int) -> None:
        self.runtime = runtime
        self.services = services
        self.max_body = max_body
        self.operations = load_operations()
        plugins = [
            key
            for key, op in self.operations.items()
            if key[0] == REST_SERVICE and not op.handler.__module__.startswith(__package__ + ".")
        ]
        self.rest_roots = REST_ROOTS | (self.model_roots(plugins) if plugins else frozenset())

    @functools.cached_property
    def targets(self) -> dict[str, str]:
        return {service_model(s).metadata["targetPrefix"]: s for s in JSON_SERVICES}

    @functools.cached_property
    def cbor_prefix(self) -> str:
        return f"{CBOR_PATHS}{service_model(CBOR_SERVICE).metadata['targetPrefix']}/operation/"

    @functools.cached_property
    def rest(self) -> list[tuple[str, re.Pattern[str], str, str]]:
        rest = []
        for service, name in self.operations:
            model = service_model(service)
            if model.protocol == "rest-json":
                http = model.operation_model(name).http
                rest.append((http["method"], _uri_pattern(http["requestUri"]), service, name))
        # literal URIs before templated ones: /inference-profiles before /{id}
        rest.sort(key=lambda r: r[1].pattern.count("(?P<"))
        return rest

    @staticmethod
    def model_roots(operations: Iterable[tuple[str, str]]) -> frozenset[str]:
        """The first path segments of rest-json ``operations`` (service, name), as the models
        have them."""
        return frozenset(
            service_model(s).operation_model(n).http["requestUri"].split("/")[1].split("?")[0]
            for s, n in operations
        )

    # -- which operation --------------------------------------------------------------------
    def match(self, scope: Scope) -> Target | None:
        method, path, headers = scope["method"], scope["path"], scope["headers"]
        if method == "POST" and path == "/":
            target = _header(headers, b"x-amz-target")
            if not target:
                return None
            version = "1.0" if "json-1.0" in _header(headers, b"content-type") else "1.1"
            prefix, _, operation = target.partition(".")
            service = self.targets.get(prefix)
            if service is None or not operation:  # answered UnknownOperationException
                service = self._likely_service(prefix, headers)
                operation = target
            return Target(service, operation, JSON, json_version=version)
        if path.startswith(CBOR_PATHS) and (
            path.startswith(self.cbor_prefix) or path + "/" == self.cbor_prefix
        ):
            operation = path[len(self.cbor_prefix) :] if method == "POST" else ""
            return Target(CBOR_SERVICE, operation, CBOR)
        if path.split("/", 2)[1] not in self.rest_roots:
            return None
        raw = (scope.get("raw_path") or path.encode()).decode("latin-1").split("?", 1)[0]
        for verb, pattern, service, operation in self.rest:
            found = pattern.fullmatch(raw) if verb == method else None
            if found is not None:
                labels = {k: urllib.parse.unquote(v) for k, v in found.groupdict().items()}
                return Target(service, operation, REST_JSON, labels)
        return Target(self.rest[0][2], "", REST_JSON)  # a served root, no operation

    def _likely_service(self, prefix: str, headers: list[tuple[bytes, bytes]]) -> str:
        """The signing name of a JSON request whose target names no operation: the service
        whose prefix it is regardless of case, else the served one its credential names."""
        for known, service in self.targets.items():
            if known.lower() == prefix.lower():
                return service
        scoped = _SCOPE.search(_header(headers, b"authorization").encode("latin-1"))
        named = scoped.group(1).decode("latin-1") if scoped else ""
        return named if named in self.targets.values() else "logs"

    def operations_of(self, service: str) -> Iterable[Operation]:
        return (op for (s, _), op in self.operations.items() if s == service)

    # -- running it -------------------------------------------------------------------------
    async def handle(self, target: Target, scope: Scope, receive: Any, send: Any) -> None:
        request_id = str(uuid.uuid4())
        try:
            answer = await self._answer(target, scope, receive, request_id)
        except Exception:
            log.exception("%s:%s failed before its handler", target.service, target.operation)
            answer = target.protocol.error(
                target, "InternalFailure", "the request failed on the server", 500
            )
        headers = [*answer.headers, (b"x-amzn-requestid", request_id.encode())]
        headers.append((b"content-length", str(len(answer.body)).encode()))
        await send({"type": "http.response.start", "status": answer.status, "headers": headers})
        await send({"type": "http.response.body", "body": answer.body})

    async def _answer(self, target: Target, scope: Scope, receive: Any, request_id: str) -> Answer:
        protocol = target.protocol
        op = self.operations.get((target.service, target.operation))
        if op is None:
            status = 404 if protocol is REST_JSON else 400
            return protocol.error(
                target, "UnknownOperationException", self._unknown(target, scope), status
            )
        request = Request(scope, receive)
        principal = principal_of(scope)
        body = await _read_body(request, self.max_body)
        if body is None:
            return protocol.error(
                target,
                validation_code(target.service),
                f"the request body is larger than the limit of {self.max_body} bytes",
                413,
            )
        if not principal.can(op.permission):
            answer = protocol.error(
                target,
                "AccessDeniedException",
                f"this key's role ({principal.role}) is not authorized to perform "
                f"{target.service}:{target.operation} (it needs the {op.permission.value!r} "
                "permission)",
                403,
            )
            await self._audit(op, request, answer.status)
            return answer
        refused = protocol.refused_media_type(scope, body)
        if refused is not None:
            return protocol.error(target, "UnsupportedMediaTypeException", refused, 415)
        model = operation_model(target.service, target.operation)
        try:
            raw = protocol.read(target, scope, body)
            params = read_input(model.input_shape, raw)
        except InputInvalid as exc:
            code = (
                "SerializationException" if exc.serialization else validation_code(target.service)
            )
            return protocol.error(target, code, str(exc), 400)
        call = AwsCall(
            service=target.service,
            operation=target.operation,
            params=params,
            principal=principal,
            runtime=self.runtime,
            region=self.runtime.settings.region,
            account=self.runtime.settings.account_id,
            request_id=request_id,
            services=self.services,
            request=request,
        )
        answer = await self._run(op, call, target, model)
        await self._audit(op, request, answer.status)
        return answer

    def _unknown(self, target: Target, scope: Scope) -> str:
        """What UnknownOperationException says of ``target``."""
        if target.protocol is JSON:
            prefixes = ", ".join(f"{p} ({s})" for p, s in sorted(self.targets.items()))
            return (
                f"X-Amz-Target {_header(scope['headers'], b'x-amz-target')!r} names no operation "
                f"llmtrail serves: a target reads <prefix>.<Operation>, the prefix one of "
                f"{prefixes}; docs/aws.md lists the operations"
            )
        if target.protocol is CBOR and not target.operation:
            return f"a CBOR operation is POST {self.cbor_prefix}<Operation>"
        if not target.operation:
            return "no bedrock operation has this method and path (docs/aws.md lists them)"
        return (
            f"llmtrail does not serve {target.service}:{target.operation}; "
            "docs/aws.md lists the operations it does"
        )

    async def _run(self, op: Operation, call: AwsCall, target: Target, model: Any) -> Answer:
        protocol = target.protocol
        try:
            output = await op.handler(call)
            return protocol.answer(target, model, output)
        except AwsError as exc:
            return protocol.error(target, exc.code, exc.message, exc.status, exc.fields)
        except LlmtrailError as exc:
            return protocol.error(target, *_generic(target.service, exc))
        except OutputInvalid:
            log.exception("%s:%s answered outside its shape", target.service, target.operation)
        except Exception:
            log.exception("%s:%s failed", target.service, target.operation)
        return protocol.error(target, "InternalFailure", "the request failed on the server", 500)

    async def _audit(self, op: Operation, request: Request, status: int) -> None:
        audit = getattr(self.runtime, "audit", None)
        if op.permission is not Permission.MANAGE or audit is None:
            return
        await asyncio.to_thread(
            audit.record,
            principal_of(request.scope),
            f"{op.service}:{op.name}",
            surface="aws",
            source=request.client.host if request.client else None,
            target={},
            outcome=status,
        )


def _generic(service: str, exc: LlmtrailError) -> tuple[str, str, int]:
    """An llmtrail error a handler let through, in AWS's words."""
    status = int(getattr(exc, "status", 400))
    message = str(getattr(exc, "message", None) or exc)
    if status == 403:
        return "AccessDeniedException", message, 403
    if status == 404:
        return "ResourceNotFoundException", message, 404
    if status == 429:
        return "ThrottlingException", message, 429
    if status >= 500:
        return "ServiceUnavailableException", message, 503
    return validation_code(service), message, 400


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> str:
    for n, v in headers:
        if n == name:
            return v.decode("latin-1")
    return ""


async def _read_body(request: Request, limit: int) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
