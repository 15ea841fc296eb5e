"""Browser sessions and CSRF tokens, signed with the server secret and kept by nobody.

A session cookie reads ``<key id>.<expiry>.<nonce>.<mac>``: any server sharing the secret
can check it, and it dies with its key (a revoked key's sessions stop at the next lookup).
The CSRF token of a session is an HMAC of its cookie, so a page can carry it and a
cross-site form cannot know it; in open mode (no keys) there is one token per server
secret, which a foreign page cannot read either.
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass

from llmtrail.security.secret import ServerSecret

COOKIE = "llmtrail_session"
CSRF_HEADER = "x-llmtrail-csrf"
CSRF_FIELD = "csrf"


@dataclass(frozen=True)
class Session:
    key_id: str
    expires: float
    cookie: str


class Sessions:
    def __init__(self, secret: ServerSecret, hours: float) -> None:
        self.secret = secret
        self.seconds = hours * 3600

    def issue(self, key_id: str, now: float | None = None) -> Session:
        expires = int((time.time() if now is None else now) + self.seconds)
        body = f"{key_id}.{expires}.{secrets.token_urlsafe(12)}"
        cookie = f"{body}.{self.secret.mac('session', body)}"
        return Session(key_id, expires, cookie)

    def check(self, cookie: str, now: float | None = None) -> Session | None:
        """The session a cookie proves, or None (forged, malformed, expired)."""
        body, _, mac = cookie.rpartition(".")
        parts = body.split(".")
        if len(parts) != 3 or not hmac.compare_digest(mac, self.secret.mac("session", body)):
            return None
        key_id, expires, _nonce = parts
        if not expires.isdigit() or int(expires) <= (time.time() if now is None else now):
            return None
        return Session(key_id, int(expires), cookie)

    def csrf_token(self, cookie: str | None) -> str:
        """The token state-changing browser requests carry (per session; one in open mode)."""
        return self.secret.mac("csrf", cookie or "open mode")[:40]

    def csrf_ok(self, cookie: str | None, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(str(token), self.csrf_token(cookie))
