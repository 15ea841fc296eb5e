"""SigV4 on the Bedrock routes and the AWS-shaped APIs, with the AWS-style key pairs
llmtrail issues: the signature is recomputed with botocore's signer from the secret kept
sealed under the server secret, so the caller's identity is proven, not claimed."""

from __future__ import annotations

from datetime import UTC, datetime

from llmtrail.security.keys import KeyRing
from llmtrail.security.principal import Principal
from llmtrail.server.gatekeeper import SigV4Check


def sigv4_check(keys: KeyRing) -> SigV4Check:
    """The Gatekeeper's check: the principal of the key pair that signed the request, or
    `SignatureRejected` in AWS's terms."""

    def check(
        method: str,
        path: str,
        query: str,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        service: str,
    ) -> Principal:
        # botocore's signer loads with the first signed request, not at start
        from llmtrail.security.sigv4_verify import SignatureRejected, verify_sigv4

        found: list[Principal] = []

        def lookup(access_key_id: str) -> str | None:
            hit = keys.access_key(access_key_id)
            if hit is None:
                return None
            found.append(hit[0])
            return hit[1]

        verify_sigv4(method, path, query, headers, body, lookup, datetime.now(UTC), service=service)
        if not found:  # verified without a lookup cannot happen; never a success then
            raise SignatureRejected("UnrecognizedClientException", "unknown key", 403)
        return found[-1]

    return check
