"""Proving who signed a Bedrock request: verifying an inbound AWS Signature Version 4
``Authorization`` header against the access key pairs llmtrail issued (``keys create
--aws``), so that ``identity`` on the Bedrock routes is proven rather than claimed.

Why it is built this way:

- The signature is recomputed with **botocore's own signer** (`SigV4Auth` on an
  `AWSRequest` rebuilt from what arrived), the code that made it on the client, so the
  canonicalisation — the double-encoded path (``…v1%3A0`` is signed as ``…v1%253A0``),
  the sorted query, trimmed header values, the payload hash — cannot drift from boto3's.
  One override: the headers hashed are exactly those the client listed in
  ``SignedHeaders`` (botocore's signer would silently drop a listed ``user-agent``).
- Everything botocore would forgive but the gateway would read differently is refused
  before it: a path that is not in normal form (``/./``, ``..``, ``//`` sign the same as
  the plain path but route elsewhere), an unsigned or mismatched payload hash, a signed
  header the request does not carry, a session token (llmtrail issues none).
- Every refusal is a `SignatureRejected` carrying AWS's error type, message and status,
  so the Bedrock routes answer in Bedrock's shape and a boto3 caller sees the
  ``ClientError`` code it would see from AWS. No other exception leaves `verify_sigv4`
  for any request (a fuzz test holds it to that); only the caller's ``lookup`` may raise.
- Pure: the clock is an argument and the secret comes from ``lookup``; nothing here reads
  the store or the time.
- Presigned URLs (``X-Amz-Algorithm`` in the query) are refused, clearly: boto3's
  ``bedrock-runtime`` never presigns, and a URL that carries a credential ends up in
  proxies' and browsers' logs.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.compat import HTTPHeaders
from botocore.credentials import Credentials
from botocore.utils import normalize_url_path

from llmtrail.errors import LlmtrailError

__all__ = ["ALGORITHM", "MAX_SKEW", "SignatureRejected", "verify_sigv4"]

ALGORITHM = "AWS4-HMAC-SHA256"
MAX_SKEW = timedelta(minutes=5)

INCOMPLETE = "IncompleteSignatureException"
INVALID = "InvalidSignatureException"
MISSING = "MissingAuthenticationTokenException"
UNRECOGNIZED = "UnrecognizedClientException"

BAD_SIGNATURE = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. "
    "Consult the service documentation for details."
)
BAD_TOKEN = "The security token included in the request is invalid."

_STAMP = "%Y%m%dT%H%M%SZ"
_STAMP_SHAPE = re.compile(r"\d{8}T\d{6}Z")
_SIGNATURE = re.compile(r"[0-9a-f]{64}")
_HEADER_NAME = re.compile(r"[a-z0-9!#$%&'*+.^_`|~-]+")
_SCOPE_PART = re.compile(r"[A-Za-z0-9._-]{1,128}")
_PRINTABLE = re.compile(r"[\x21-\x7e]*")  # what a client's percent-encoded target is made of
_PRESIGN_PARAMS = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature")
_QUOTE_MAX = 120  # how much of a caller's value an error message repeats


class SignatureRejected(LlmtrailError):
    """A request whose SigV4 signature does not prove a live llmtrail access key.

    ``aws_error_type`` is the error AWS answers in the same case (the Bedrock routes send it
    as ``x-amzn-ErrorType``), ``message`` AWS's wording (the JSON body's ``message``),
    ``status`` the HTTP status."""

    def __init__(self, aws_error_type: str, message: str, status: int = 403) -> None:
        super().__init__(f"{aws_error_type}: {message}")
        self.aws_error_type = aws_error_type
        self.message = message
        self.status = status


@dataclass(frozen=True)
class _Authorization:
    access_key_id: str
    date: str
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str


Headers = Mapping[str, str] | Mapping[bytes, bytes] | Iterable[tuple[str | bytes, str | bytes]]


def verify_sigv4(
    method: str,
    path: str | bytes,
    query_string: str | bytes,
    headers: Headers,
    body: bytes,
    lookup: Callable[[str], str | None],
    now: datetime,
    region: str | None = None,
    service: str = "bedrock",
) -> str:
    """The access key id that signed this request, or `SignatureRejected`.

    ``path`` is the path exactly as received (ASGI ``raw_path``: still percent-encoded, no
    query), ``query_string`` the raw query (ASGI ``query_string``), ``headers`` the received
    pairs (ASGI's ``(bytes, bytes)`` list, or str pairs, or a mapping), ``body`` the whole
    body. ``lookup`` maps an access key id to its secret access key, or None when the id is
    unknown, revoked or expired. ``now`` is the server's clock (UTC); the request's
    ``X-Amz-Date`` must be within `MAX_SKEW` of it. ``region`` None accepts any region the
    client signed for; ``service`` is the signing name the credential must be scoped to.
    """
    received = _received_headers(headers)
    target_path = _text(path)
    query = _text(query_string)
    if _presigned(query):
        raise SignatureRejected(
            INCOMPLETE,
            "Query-string (presigned URL) authentication is not supported; sign the request "
            "with an Authorization header.",
        )
    values = received.get("authorization", [])
    if not values or not values[0].strip():
        raise SignatureRejected(MISSING, "Missing Authentication Token")
    if len(values) > 1:
        raise SignatureRejected(INCOMPLETE, "The request has more than one Authorization header.")
    stamp = _single(received, "x-amz-date")
    auth = _parse_authorization(values[0], stamp is not None)
    assert stamp is not None  # _parse_authorization refuses a request without one
    signed_at = _parse_stamp(stamp)
    if auth.date != stamp[:8]:
        raise SignatureRejected(
            INVALID,
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
            f"from HTTP: '{auth.date}' != '{stamp[:8]}', from '{stamp}'.",
        )
    _check_clock(signed_at, stamp, now)
    if auth.service != service:
        raise SignatureRejected(
            INVALID, f"Credential should be scoped to correct service: '{service}'."
        )
    if region is not None and auth.region != region:
        raise SignatureRejected(
            INVALID, f"Credential should be scoped to a valid region, not '{auth.region}'."
        )
    for name in ("host", "x-amz-date"):
        if name not in auth.signed_headers:
            raise SignatureRejected(
                INCOMPLETE, f"'{_display(name)}' must be a 'SignedHeader' in the AWS Authorization."
            )
    if "x-amz-security-token" in received:
        raise SignatureRejected(UNRECOGNIZED, BAD_TOKEN)  # llmtrail issues no session tokens
    secret = lookup(auth.access_key_id)
    if secret is None:
        raise SignatureRejected(UNRECOGNIZED, BAD_TOKEN)
    _check_request_shape(method, target_path, query, auth, received, body)
    try:
        expected = _signature(method, target_path, query, auth, received, body, secret, stamp)
    except Exception:  # botocore on a request no client could have signed: not a match
        raise SignatureRejected(INVALID, BAD_SIGNATURE) from None
    if not hmac.compare_digest(expected.encode(), auth.signature.encode()):
        raise SignatureRejected(INVALID, BAD_SIGNATURE)
    return auth.access_key_id


# -- parts ---------------------------------------------------------------------------------


def _text(value: str | bytes) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value


def _received_headers(headers: Headers) -> dict[str, list[str]]:
    pairs: Iterable[Any] = headers.items() if isinstance(headers, Mapping) else headers
    out: dict[str, list[str]] = {}
    for name, value in pairs:
        out.setdefault(_text(name).lower(), []).append(_text(value))
    return out


def _single(received: dict[str, list[str]], name: str) -> str | None:
    values = received.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise SignatureRejected(
            INCOMPLETE, f"The request has more than one {_display(name)} header."
        )
    return values[0]


def _display(name: str) -> str:
    return "-".join(part.capitalize() for part in name.split("-"))


def _quoted(value: str) -> str:
    value = value if len(value) <= _QUOTE_MAX else value[:_QUOTE_MAX] + "…"
    return "".join(ch if ch.isprintable() else "?" for ch in value)


def _presigned(query: str) -> bool:
    names = {pair.partition("=")[0] for pair in query.split("&")} if query else set()
    return any(name in names for name in _PRESIGN_PARAMS)


def _parse_authorization(header: str, has_date: bool) -> _Authorization:
    algorithm, _, rest = header.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise SignatureRejected(
            INCOMPLETE,
            f"Unsupported Authorization algorithm '{_quoted(algorithm)}'; sign with '{ALGORITHM}'.",
        )
    fields: dict[str, str] = {}
    for raw in rest.split(","):
        part = raw.strip()
        if not part:
            raise SignatureRejected(INCOMPLETE, "Authorization header has an empty parameter.")
        key, equals, value = part.partition("=")
        if not equals:
            raise SignatureRejected(
                INCOMPLETE,
                f"'{_quoted(part)}' not a valid key=value pair (missing equal-sign) in "
                "Authorization header.",
            )
        if key not in ("Credential", "SignedHeaders", "Signature"):
            raise SignatureRejected(
                INCOMPLETE, f"Authorization header has an unknown parameter '{_quoted(key)}'."
            )
        if key in fields:
            raise SignatureRejected(
                INCOMPLETE, f"Authorization header has more than one '{key}' parameter."
            )
        fields[key] = value.strip()
    missing = [
        f"Authorization header requires '{key}' parameter."
        for key in ("Credential", "Signature", "SignedHeaders")
        if not fields.get(key)
    ]
    if not has_date:
        missing.append("Authorization header requires existence of an 'X-Amz-Date' header.")
    if missing:
        raise SignatureRejected(INCOMPLETE, " ".join(missing))
    credential = fields["Credential"]
    scope = credential.split("/")
    if len(scope) != 5:
        raise SignatureRejected(
            INCOMPLETE,
            "Credential must have exactly 5 slash-delimited elements, e.g. "
            f"keyid/date/region/service/term, got '{_quoted(credential)}'",
        )
    access_key_id, date, region, service, terminator = scope
    if terminator != "aws4_request":
        raise SignatureRejected(
            INCOMPLETE,
            "Credential should be scoped with a valid terminator: 'aws4_request', "
            f"not '{_quoted(terminator)}'.",
        )
    if not all(_SCOPE_PART.fullmatch(part) for part in scope):
        raise SignatureRejected(
            INCOMPLETE, f"Credential has an empty or malformed element: '{_quoted(credential)}'."
        )
    signed = tuple(fields["SignedHeaders"].split(";"))
    if not all(_HEADER_NAME.fullmatch(name) for name in signed) or list(signed) != sorted(
        set(signed)
    ):
        raise SignatureRejected(
            INCOMPLETE,
            "SignedHeaders must be lower-case header names, sorted, each once, separated by "
            "';', got "
            f"'{_quoted(fields['SignedHeaders'])}'.",
        )
    if not _SIGNATURE.fullmatch(fields["Signature"]):
        raise SignatureRejected(INVALID, BAD_SIGNATURE)
    return _Authorization(access_key_id, date, region, service, signed, fields["Signature"])


def _parse_stamp(stamp: str) -> datetime:
    try:
        if not _STAMP_SHAPE.fullmatch(stamp):
            raise ValueError(stamp)
        return datetime.strptime(stamp, _STAMP).replace(tzinfo=UTC)
    except ValueError:
        raise SignatureRejected(
            INCOMPLETE,
            f"Date must be in ISO-8601 'basic format'. Got '{_quoted(stamp)}'. "
            "See http://en.wikipedia.org/wiki/ISO_8601",
        ) from None


def _check_clock(signed_at: datetime, stamp: str, now: datetime) -> None:
    now = now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)
    shown = now.strftime(_STAMP)
    if signed_at < now - MAX_SKEW:
        earliest = (now - MAX_SKEW).strftime(_STAMP)
        raise SignatureRejected(
            INVALID,
            f"Signature expired: {stamp} is now earlier than {earliest} ({shown} - 5 min.)",
        )
    if signed_at > now + MAX_SKEW:
        latest = (now + MAX_SKEW).strftime(_STAMP)
        raise SignatureRejected(
            INVALID,
            f"Signature not yet current: {stamp} is still later than {latest} ({shown} + 5 min.)",
        )


def _check_request_shape(
    method: str,
    path: str,
    query: str,
    auth: _Authorization,
    received: dict[str, list[str]],
    body: bytes,
) -> None:
    """Refuse what botocore's canonical form would forgive but the gateway reads differently."""
    if not method or method != method.upper() or not _PRINTABLE.fullmatch(method):
        raise SignatureRejected(INVALID, BAD_SIGNATURE)
    if (
        not path.startswith("/")
        or not _PRINTABLE.fullmatch(path)
        or "?" in path
        or "#" in path
        or normalize_url_path(path) != path
    ):
        raise SignatureRejected(
            INVALID,
            "The request path must be in normal form (percent-encoded, no '.' or '..' "
            "segments, no empty segments).",
        )
    if not _PRINTABLE.fullmatch(query) or "#" in query:
        raise SignatureRejected(INVALID, "The query string must be percent-encoded.")
    for name in auth.signed_headers:
        if name not in received:
            raise SignatureRejected(INVALID, f"Signed header '{name}' is missing from the request.")
    if "x-amz-content-sha256" in auth.signed_headers:
        declared = received["x-amz-content-sha256"]
        if declared != [hashlib.sha256(body).hexdigest()]:
            raise SignatureRejected(
                INVALID,
                "The provided 'x-amz-content-sha256' header does not match what was computed "
                "(llmtrail accepts signed payloads only).",
            )


class _ListedHeadersSigner(SigV4Auth):
    """botocore's signer, hashing exactly the headers it is given (the request is rebuilt
    from the client's ``SignedHeaders`` only), none dropped."""

    def headers_to_sign(self, request: AWSRequest) -> HTTPHeaders:
        header_map = HTTPHeaders()
        for name, value in request.headers.items():
            header_map[name.lower()] = value
        return header_map


def _signature(
    method: str,
    path: str,
    query: str,
    auth: _Authorization,
    received: dict[str, list[str]],
    body: bytes,
    secret: str,
    stamp: str,
) -> str:
    signed = HTTPHeaders()
    for name in auth.signed_headers:
        for value in received[name]:
            signed[name] = value  # appends: a repeated header stays repeated
    url = "http://sigv4.invalid" + path + ("?" + query if query else "")
    request = AWSRequest(method=method, url=url, data=body)
    request.headers = signed
    request.context["timestamp"] = stamp
    signer = _ListedHeadersSigner(
        Credentials(auth.access_key_id, secret), auth.service, auth.region
    )
    canonical = signer.canonical_request(request)
    result: str = signer.signature(signer.string_to_sign(request, canonical), request)
    return result
