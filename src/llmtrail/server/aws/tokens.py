"""Pagination tokens (``nextToken`` / ``NextToken``): opaque to the caller, bound to the
operation and the workspace that made them, and refused clearly when altered or reused
elsewhere.

A token is ``base64url(JSON) "." base64url(MAC)``: the MAC is an HMAC-SHA256 (128 bits kept)
under a key derived from the server secret, so a token can only have been made by a server
of this installation (replicas share the secret) and its state — offsets, keys, query ids —
is what a handler wrote, never what a caller typed. The MAC is checked before the JSON is
read. A runtime without a server secret (handlers run on their own in tests) signs with a
key made at import, good for this process only.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from typing import Any

import orjson

from llmtrail.server.aws.operations import AwsCall, AwsError

__all__ = ["page_token", "read_page_token"]

_PURPOSE = "aws-page-tokens"
_MAC_BYTES = 16
_PROCESS_KEY = secrets.token_bytes(32)


def _key(call: AwsCall) -> bytes:
    secret = getattr(call.runtime, "secret", None)
    return secret.derive(_PURPOSE) if secret is not None else _PROCESS_KEY


def _mac(call: AwsCall, payload: bytes) -> bytes:
    return hmac.new(_key(call), payload, hashlib.sha256).digest()[:_MAC_BYTES]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    """Strict: a character outside base64url's alphabet is an error, not skipped."""
    padded = (text + "=" * (-len(text) % 4)).encode("ascii")
    return base64.b64decode(padded, altchars=b"-_", validate=True)


def page_token(call: AwsCall, state: Any) -> str:
    """A token carrying ``state`` (JSON values) for the next page of ``call``."""
    payload = orjson.dumps({"op": call.operation, "ws": call.workspace, "s": state})
    return f"{_b64(payload)}.{_b64(_mac(call, payload))}"


def read_page_token(call: AwsCall, token: str, code: str = "InvalidParameterException") -> Any:
    """The state a token of this operation and workspace carries, else ``code`` (AWS's error
    for a bad token differs by service: ``logs`` InvalidParameterException, ``ce``
    InvalidNextTokenException, ``cloudwatch`` InvalidNextToken)."""
    payload: Any = None
    body, _, mac = token.partition(".")
    try:
        data = _unb64(body)
        if hmac.compare_digest(_unb64(mac), _mac(call, data)):
            payload = orjson.loads(data)
    except (ValueError, binascii.Error, UnicodeEncodeError):
        payload = None
    if (
        not isinstance(payload, dict)
        or payload.get("op") != call.operation
        or payload.get("ws") != call.workspace
        or "s" not in payload
    ):
        raise AwsError(code, "The specified nextToken is not valid", 400)
    return payload["s"]
