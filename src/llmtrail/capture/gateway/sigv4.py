"""Reading and checking an inbound AWS Signature Version 4 ``Authorization`` header.

boto3 signs every ``bedrock-runtime`` call. The gateway needs the access key id as the caller's
(claimed) identity, and whoever holds the secret — a fake Bedrock upstream in tests, llmtrail
itself once it issues keys — can prove the signature. Both are pure functions of the request:
parsing never touches the signature's secret, and verifying recomputes the signature with
botocore's own ``SigV4Auth`` (the signer boto3 used) instead of a second implementation, so
the two cannot drift. The clock is not read: expiry is the caller's policy.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass

from botocore.auth import UNSIGNED_PAYLOAD, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.compat import HTTPHeaders
from botocore.credentials import Credentials

__all__ = ["SigV4Authorization", "parse_authorization", "verify_signature"]

_ALGORITHM = "AWS4-HMAC-SHA256"
_FIELD = re.compile(r"\s*(Credential|SignedHeaders|Signature)\s*=\s*([^,\s]+)\s*")


@dataclass(frozen=True)
class SigV4Authorization:
    """The parts of ``AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…``."""

    access_key_id: str
    date: str  # YYYYMMDD of the credential scope
    region: str
    service: str
    signed_headers: tuple[str, ...]  # lower-case, as listed
    signature: str  # hex


def parse_authorization(header: str | None) -> SigV4Authorization | None:
    """The parsed header, or ``None`` when it is absent or not a well-formed SigV4 header."""
    if not header or not header.startswith(_ALGORITHM + " "):
        return None
    fields: dict[str, str] = {}
    for part in header[len(_ALGORITHM) + 1 :].split(","):
        match = _FIELD.fullmatch(part)
        if match is None or match[1] in fields:
            return None
        fields[match[1]] = match[2]
    if set(fields) != {"Credential", "SignedHeaders", "Signature"}:
        return None
    scope = fields["Credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request" or not all(scope[:4]):
        return None
    access_key_id, date, region, service = scope[:4]
    if not re.fullmatch(r"\d{8}", date) or not re.fullmatch(r"[0-9a-f]{64}", fields["Signature"]):
        return None
    signed = tuple(fields["SignedHeaders"].split(";"))
    if not all(signed) or any(name != name.lower() for name in signed) or "host" not in signed:
        return None
    return SigV4Authorization(access_key_id, date, region, service, signed, fields["Signature"])


def verify_signature(
    *,
    method: str,
    target: str,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    secret_access_key: str,
    access_key_id: str | None = None,
    session_token: str | None = None,
) -> bool:
    """True when the request carries a valid SigV4 signature made with ``secret_access_key``.

    ``target`` is the request target exactly as it arrived (path still percent-encoded, plus
    any query string); ``headers`` are the received name/value pairs. When ``access_key_id``
    is given the header must name it; when ``session_token`` is given it must be signed.
    """
    pairs = [(name.lower(), value) for name, value in headers]
    received: dict[str, list[str]] = {}
    for name, value in pairs:
        received.setdefault(name, []).append(value)
    auth = parse_authorization(_one(received, "authorization"))
    if auth is None or (access_key_id is not None and auth.access_key_id != access_key_id):
        return False
    timestamp = _one(received, "x-amz-date")
    if timestamp is None or not timestamp.startswith(auth.date):
        return False
    if session_token is not None and (
        "x-amz-security-token" not in auth.signed_headers
        or _one(received, "x-amz-security-token") != session_token
    ):
        return False
    declared = _one(received, "x-amz-content-sha256")
    if declared not in (None, UNSIGNED_PAYLOAD, hashlib.sha256(body).hexdigest()):
        return False
    if any(name not in received for name in auth.signed_headers):
        return False
    signed = HTTPHeaders()
    for name, value in pairs:
        if name in auth.signed_headers:
            signed[name] = value  # appends: a repeated header stays repeated
    host = _one(received, "host")
    request = AWSRequest(method=method.upper(), url=f"http://{host}{target}", data=body)
    request.headers = signed
    request.context["timestamp"] = timestamp
    credentials = Credentials(auth.access_key_id, secret_access_key, session_token)
    signer = SigV4Auth(credentials, auth.service, auth.region)
    canonical = signer.canonical_request(request)
    expected = signer.signature(signer.string_to_sign(request, canonical), request)
    return hmac.compare_digest(expected, auth.signature)


def _one(headers: dict[str, list[str]], name: str) -> str | None:
    values = headers.get(name)
    return values[0] if values and len(values) == 1 else None
