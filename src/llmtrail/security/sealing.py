"""Secrets llmtrail must give back later — the secret half of an issued AWS-style access key
pair, which the Bedrock routes need to recompute a SigV4 signature — kept encrypted under a
key derived from the server secret.

A keyed hash (what API keys get) cannot be used here: verifying SigV4 needs the secret
itself. So the StateStore holds a *sealed* token: AES-256-GCM under a key derived from the
server secret by HKDF (one purpose, one key: a value sealed here can never be mistaken for an
HMAC made elsewhere with the same secret), with a *context* as associated data. The context
binds a token to the record it belongs to (e.g. ``aws-secret/<key id>``), so a token copied
from one key's record into another's does not open. A wrong server secret, an altered token
and a wrong context all fail the same way, with `SealError`: GCM cannot tell them apart, and
saying which would help nobody but an attacker.

Tokens read ``v1.<base64url(nonce ‖ ciphertext ‖ tag)>``: the version leaves room to rotate
the scheme without guessing what an old token is.
"""

from __future__ import annotations

import base64
import binascii
import functools
import secrets
from typing import TYPE_CHECKING

from llmtrail.errors import LlmtrailError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["ACCESS_KEY_PREFIX", "SealError", "Sealer", "generate_access_key_pair"]

ACCESS_KEY_PREFIX = "LTAK"  # AWS's own ids start AKIA/ASIA; ours are recognisable at a glance
_VERSION = "v1"
_HKDF_INFO = b"llmtrail/sealing/aes-256-gcm/v1"
_NONCE_BYTES = 12
_TAG_BYTES = 16
_TOKEN_MAX = 64 * 1024  # a sealed secret is tens of bytes; refuse to decode megabytes
_BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_SECRET_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


class SealError(LlmtrailError):
    """A sealed value does not open: another server secret, another context, altered, or
    not a token at all. A server fault (its secret or its store), never the caller's."""


class Sealer:
    """Seals and opens short secrets under a key derived from the server secret."""

    def __init__(self, server_secret: bytes) -> None:
        if not server_secret:
            raise ValueError("the server secret is empty")
        self._server_secret = server_secret

    @functools.cached_property
    def _aead(self) -> AESGCM:
        # cryptography (~9 MB) loads with the first AWS-style key sealed or opened, not at start
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF

        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(
            self._server_secret
        )
        return AESGCM(key)

    def seal(self, plaintext: str, context: str) -> str:
        """An opaque token holding ``plaintext``, opened only with the same server secret
        and the same ``context``."""
        nonce = secrets.token_bytes(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), context.encode())
        return f"{_VERSION}.{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def open(self, token: str, context: str) -> str:
        """The plaintext sealed in ``token`` for ``context``. Raises `SealError` when the
        token was made with another server secret or context, was altered, or is not a
        token at all."""
        if not isinstance(token, str) or len(token) > _TOKEN_MAX:
            raise SealError("a sealed value is not a token this server made")
        version, _, encoded = token.partition(".")
        if version != _VERSION:
            raise SealError(f"a sealed value has an unknown format (expected {_VERSION}.…)")
        try:
            raw = base64.urlsafe_b64decode(encoded.encode("ascii"))
        except (binascii.Error, UnicodeEncodeError, ValueError):
            raise SealError("a sealed value is not valid base64") from None
        if base64.urlsafe_b64encode(raw).decode() != encoded:  # one spelling per token
            raise SealError("a sealed value is not in canonical base64")
        if len(raw) < _NONCE_BYTES + _TAG_BYTES:
            raise SealError("a sealed value is too short to be a token this server made")
        from cryptography.exceptions import InvalidTag  # on first use, as `_aead`

        try:
            plain = self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], context.encode())
        except InvalidTag:
            raise SealError(
                "a sealed value does not open: it was made with another server secret or "
                "for another record, or it was altered"
            ) from None
        return plain.decode()


def generate_access_key_pair() -> tuple[str, str]:
    """A new ``(access_key_id, secret_access_key)`` in AWS's shapes: a 20-character id
    (``LTAK`` and 16 base32 characters, 80 random bits) and a 40-character secret (238 bits)."""
    access_key_id = ACCESS_KEY_PREFIX + "".join(secrets.choice(_BASE32) for _ in range(16))
    secret_access_key = "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(40))
    return access_key_id, secret_access_key
