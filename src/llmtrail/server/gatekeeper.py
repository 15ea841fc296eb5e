"""The server's front door: every HTTP request passes here before any route.

In order: the ``Host`` header must be one the server answers to (DNS rebinding); the caller
is identified (an llmtrail key in ``Authorization: Bearer``, ``x-api-key`` or
``x-llmtrail-key``; a SigV4 signature made with an issued key pair on the Bedrock routes and
the AWS-shaped APIs, scoped to the service the request addresses; a session cookie from the
login page) into a `Principal` put in the scope; a state-changing request that a foreign web
page could send without a preflight (a CORS-simple content type and no key header) must
carry the CSRF token; the gateway routes need the ``gateway`` permission. Refusals are
answered in each route's own error shape: OpenAI's and Anthropic's JSON on their routes,
Bedrock's ``x-amzn-ErrorType`` on ``/model/…``, each AWS protocol's own shape on the
AWS-shaped APIs, problem JSON elsewhere, and a redirect to the login page for a browser
asking for a page.

Bound to loopback with no keys, the server runs open: every caller is the open principal
(admin of workspace ``default``), as before keys existed. Once a key exists, or when bound
to any other address, a key is needed everywhere but the public routes.
"""

from __future__ import annotations

import ipaddress
import logging
import urllib.parse
from collections.abc import Callable, Collection
from http.cookies import CookieError, SimpleCookie
from typing import Any

import orjson

from llmtrail.capture.gateway.anthropic.api import error_body as anthropic_error
from llmtrail.capture.gateway.asgi import ASGIApp, Message, Receive, Scope, Send, respond
from llmtrail.capture.gateway.openai.api import error_body as openai_error
from llmtrail.security.keys import KeyRing, bearer_token
from llmtrail.security.principal import OPEN, SCOPE_KEY, Permission, Principal
from llmtrail.security.sessions import COOKIE, CSRF_FIELD, CSRF_HEADER, Sessions

log = logging.getLogger("llmtrail.access")
CSRF_SCOPE_KEY = "llmtrail.csrf"
PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/login", "/logout"})
PUBLIC_PREFIXES = ("/static/",)
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
_SIMPLE_TYPES = ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data")
_KEY_HEADERS = (b"authorization", b"x-api-key", b"x-llmtrail-key")
_FORM_LIMIT = 1 << 20

# SigV4: (method, path, query, headers, body, signing name) -> principal; raises an error
# with ``aws_error_type``, ``message`` and ``status`` when the signature is refused.
SigV4Check = Callable[[str, str, str, list[tuple[bytes, bytes]], bytes, str], Principal]
# The AWS-shaped API operation a request addresses (an `aws.wire.Target`), or None.
AwsMatch = Callable[[Scope], Any]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def allowed_hosts(configured: Collection[str], bound: str) -> frozenset[str] | None:
    """The ``Host`` names to answer (None: any, when configured with ``*``)."""
    if "*" in configured:
        return None
    names = {h.lower() for h in configured} or set(LOOPBACK_NAMES)
    if bound not in ("0.0.0.0", "::", ""):
        names.add(bound.lower())
    return frozenset(names)


class Gatekeeper:
    def __init__(
        self,
        app: ASGIApp,
        *,
        keys: KeyRing,
        sessions: Sessions,
        hosts: frozenset[str] | None,
        open_allowed: bool,
        is_gateway: Callable[[str], bool],
        sigv4: SigV4Check | None = None,
        max_body: int = 32 << 20,
        aws: AwsMatch | None = None,
    ) -> None:
        self.app = app
        self.keys = keys
        self.sessions = sessions
        self.hosts = hosts
        self.open_allowed = open_allowed
        self.is_gateway = is_gateway
        self.sigv4 = sigv4
        self.max_body = max_body
        self.aws = aws

    def keys_required(self) -> bool:
        return not self.open_allowed or self.keys.any_keys()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        if not self._host_ok(headers):
            await _problem(
                send,
                421,
                "Misdirected request",
                "this server does not answer to that Host; add it to [server] allowed_hosts",
            )
            return
        cookie = _cookie(headers)
        principal: Principal | None = OPEN
        by_key = False
        aws = None
        if self.keys_required():
            aws = self.aws(scope) if self.aws is not None else None
            principal, headers, by_key = self._identify(headers, cookie)
            service = "bedrock" if path.startswith("/model/") else getattr(aws, "service", None)
            if principal is None and service is not None and _signed(headers):
                receive, principal, refusal = await self._verify_sigv4(
                    scope, receive, headers, service, aws
                )
                if refusal is not None:
                    await refusal(send)
                    return
                by_key = principal is not None
            scope["headers"] = headers
        public = path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)
        if principal is None and not public:
            await self._unauthenticated(scope, send, aws)
            return
        session_cookie = cookie if principal is not None and principal.via == "session" else None
        scope[CSRF_SCOPE_KEY] = self.sessions.csrf_token(session_cookie)
        if scope["method"] == "POST" and not by_key and _simple(headers):
            receive, token = await self._csrf_token(headers, receive)
            if not self.sessions.csrf_ok(session_cookie, token):
                await _problem(
                    send,
                    403,
                    "Cross-site request refused",
                    "a state-changing request"
                    " with a form or text/plain body needs the CSRF token (header "
                    f"{CSRF_HEADER}) or a key header; send JSON with a key instead",
                )
                return
        if principal is not None:
            scope[SCOPE_KEY] = principal
            if self.is_gateway(path) and not principal.can(Permission.GATEWAY):
                await _refuse(
                    path, send, 403, "this key's role may not call models", "AccessDeniedException"
                )
                return
        await self.app(scope, receive, send)

    # -- parts ------------------------------------------------------------------------------
    def _host_ok(self, headers: list[tuple[bytes, bytes]]) -> bool:
        if self.hosts is None:
            return True
        for name, value in headers:
            if name == b"host":
                host = value.decode("latin-1").lower()
                host = host.rsplit(":", 1)[0] if not host.endswith("]") else host
                return host.strip("[]") in self.hosts or host in self.hosts
        return True  # HTTP/1.0 without Host: nothing to rebind

    def _identify(
        self, headers: list[tuple[bytes, bytes]], cookie: str | None
    ) -> tuple[Principal | None, list[tuple[bytes, bytes]], bool]:
        """The principal of a key header (that header then removed, so it never goes
        upstream) or of the session cookie."""
        for how, token in bearer_token(headers):
            found = self.keys.authenticate(token, how)
            if found is not None:
                name = b"authorization" if how == "bearer" else how.encode()
                return found, [(n, v) for n, v in headers if n != name], True
        if cookie:
            session = self.sessions.check(cookie)
            if session is not None:
                return self.keys.by_id(session.key_id, "session"), headers, False
        return None, headers, False

    async def _verify_sigv4(
        self,
        scope: Scope,
        receive: Receive,
        headers: list[tuple[bytes, bytes]],
        service: str,
        aws: Any,
    ) -> tuple[Receive, Principal | None, Any]:
        body, receive = await _buffer(receive, self.max_body)
        if body is None:
            return (
                receive,
                None,
                _aws(aws, 413, "the request body is too large", "ValidationException"),
            )
        if self.sigv4 is None:
            return receive, None, None
        raw_path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
        query = scope.get("query_string", b"").decode("latin-1")
        try:
            found = self.sigv4(scope["method"], raw_path, query, headers, body, service)
            return receive, found, None
        except Exception as exc:  # the verifier's refusal, or a fault: never a success
            if not hasattr(exc, "aws_error_type"):
                log.exception("verifying a SigV4 signature failed")
            kind = getattr(exc, "aws_error_type", "InvalidSignatureException")
            status = int(getattr(exc, "status", 403))
            message = getattr(exc, "message", None) or "the request signature was refused"
            return receive, None, _aws(aws, status, message, kind)

    async def _unauthenticated(self, scope: Scope, send: Send, aws: Any = None) -> None:
        path = scope["path"]
        if aws is not None:
            signed = _signed(scope["headers"])
            kind = (
                "UnrecognizedClientException" if signed else "MissingAuthenticationTokenException"
            )
            message = (
                "The security token included in the request is invalid: sign with a key pair "
                "llmtrail issued (keys create --aws)"
                if signed
                else "Missing Authentication Token: sign the request with a key pair llmtrail "
                "issued (keys create --aws)"
            )
            await _aws(aws, 403, message, kind)(send)
            return
        accept = _header(scope["headers"], b"accept")
        if scope["method"] == "GET" and "text/html" in accept and not self.is_gateway(path):
            target = urllib.parse.quote(
                path
                + (
                    "?" + scope["query_string"].decode("latin-1")
                    if scope.get("query_string")
                    else ""
                )
            )
            await respond(send, 303, b"", [(b"location", f"/login?next={target}".encode())])
            return
        await _refuse(
            path,
            send,
            401,
            "a valid llmtrail key is required (Authorization: Bearer, x-api-key or x-llmtrail-key)",
            "UnrecognizedClientException",
        )

    async def _csrf_token(
        self, headers: list[tuple[bytes, bytes]], receive: Receive
    ) -> tuple[Receive, str | None]:
        token = _header(headers, CSRF_HEADER.encode()) or None
        if token or "application/x-www-form-urlencoded" not in _header(headers, b"content-type"):
            return receive, token
        body, receive = await _buffer(receive, _FORM_LIMIT)
        if body is None:
            return receive, None
        try:
            fields = urllib.parse.parse_qs(body.decode("latin-1"), max_num_fields=100)
        except ValueError:  # too many fields: not one of our forms
            return receive, None
        found = fields.get(CSRF_FIELD)
        return receive, found[0] if found else None


async def _buffer(receive: Receive, limit: int) -> tuple[bytes | None, Receive]:
    """The whole body (None past ``limit``) and a receive that replays it."""
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None, receive
        chunks.append(chunk)
        more = bool(message.get("more_body"))
    body = b"".join(chunks)
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, replay


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> str:
    for n, v in headers:
        if n == name:
            return v.decode("latin-1")
    return ""


def _cookie(headers: list[tuple[bytes, bytes]]) -> str | None:
    raw = _header(headers, b"cookie")
    if not raw:
        return None
    try:
        morsel = SimpleCookie(raw).get(COOKIE)
    except CookieError:
        return None
    return morsel.value if morsel is not None else None


def _simple(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether a browser could have sent this cross-site without a preflight: no key header,
    and a CORS-simple content type — or none at all from a browser (which always sends
    ``Origin`` on a POST; a client without one, such as curl, is not a web page)."""
    if any(n in _KEY_HEADERS for n, _ in headers):
        return False
    kind = _header(headers, b"content-type").split(";", 1)[0].strip().lower()
    if kind == "":
        return any(n in (b"origin", b"sec-fetch-site") for n, _ in headers)
    return kind in _SIMPLE_TYPES


async def _problem(send: Send, status: int, title: str, detail: str) -> None:
    body = orjson.dumps({"type": "about:blank", "title": title, "status": status, "detail": detail})
    extra = [(b"www-authenticate", b"Bearer")] if status == 401 else []
    await respond(send, status, body, extra, b"application/problem+json")


def _signed(headers: list[tuple[bytes, bytes]]) -> bool:
    return any(n == b"authorization" and v.startswith(b"AWS4-HMAC-SHA256") for n, v in headers)


def _aws(target: Any, status: int, message: str, kind: str) -> Callable[[Send], Any]:
    """A refusal in the shape of the AWS protocol ``target`` is spoken in (Bedrock's
    runtime shape when there is no target: ``/model/…``)."""
    if target is None:
        return _bedrock(status, message, kind)

    async def answer(send: Send) -> None:
        found = target.protocol.error(target, kind, message, status)
        length = (b"content-length", str(len(found.body)).encode())
        await send(
            {
                "type": "http.response.start",
                "status": found.status,
                "headers": [*found.headers, length],
            }
        )
        await send({"type": "http.response.body", "body": found.body})

    return answer


def _bedrock(status: int, message: str, kind: str) -> Callable[[Send], Any]:
    async def answer(send: Send) -> None:
        await respond(
            send, status, orjson.dumps({"message": message}), [(b"x-amzn-ErrorType", kind.encode())]
        )

    return answer


async def _refuse(path: str, send: Send, status: int, message: str, aws_type: str) -> None:
    """A refusal in the shape of the route at ``path``."""
    if path.startswith("/model/"):
        await _bedrock(403 if status == 401 else status, message, aws_type)(send)
    elif path in ("/v1/messages",):
        await respond(send, status, orjson.dumps(anthropic_error(status, message)))
    elif path.endswith(("/chat/completions", "/embeddings", "/models")) and not path.startswith(
        "/api/"
    ):
        code = "invalid_api_key" if status == 401 else "permission_denied"
        await respond(send, status, orjson.dumps(openai_error(status, message, None, code)))
    else:
        await _problem(send, status, "Unauthorized" if status == 401 else "Forbidden", message)
