"""The server secret: the key of every HMAC llmtrail keeps (API keys, identities, keyed
hashes of redacted values, session cookies) and of the encryption of AWS-style secrets.

It comes from an environment variable named by ``[server] secret_env`` — what several
servers on one store share — or, on a single node, from ``DATA_DIR/secret``, generated at
first start with mode 0600. The StateStore keeps a check value (an HMAC of a fixed text), so
a server started with another secret than the one the stored keys were made with refuses to
start instead of locking every key out.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from llmtrail.errors import ConfigError
from llmtrail.store.interfaces import StateStore

NAMESPACE = "server"
CHECK_KEY = "secret-check"
_CHECK_TEXT = b"llmtrail server secret check v1"
_MIN_BYTES = 32


class ServerSecret:
    """The secret, and the keyed hashes derived from it (one derived key per purpose, so a
    value hashed for one purpose never matches another's)."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret
        self._derived: dict[str, bytes] = {}  # per purpose: a gateway call hashes its caller

    def derive(self, purpose: str) -> bytes:
        derived = self._derived.get(purpose)
        if derived is None:
            key = hmac.new(self._secret, b"llmtrail/" + purpose.encode(), hashlib.sha256)
            derived = self._derived[purpose] = key.digest()
        return derived

    def mac(self, purpose: str, value: str | bytes) -> str:
        """Hex HMAC-SHA256 of ``value`` under the purpose's key."""
        data = value.encode() if isinstance(value, str) else value
        return hmac.new(self.derive(purpose), data, hashlib.sha256).hexdigest()

    @property
    def raw(self) -> bytes:
        return self._secret

    def check_value(self) -> str:
        return self.mac("check", _CHECK_TEXT)


def load_secret(data_dir: Path, secret_env: str, env: dict[str, str] | None = None) -> ServerSecret:
    """The secret from ``$secret_env`` when set, else ``data_dir/secret`` (made at first
    start, mode 0600). Raises `ConfigError` for a variable that is named but empty or short."""
    env = dict(os.environ) if env is None else env
    if secret_env:
        text = env.get(secret_env, "")
        if len(text.encode()) < _MIN_BYTES:
            raise ConfigError(
                f"[server] secret_env: ${secret_env} must hold at least {_MIN_BYTES} bytes "
                f"(it holds {len(text.encode())}); generate one with "
                "`python3 -c 'import secrets; print(secrets.token_urlsafe(48))'`"
            )
        return ServerSecret(text.encode())
    path = data_dir / "secret"
    try:
        return ServerSecret(base64.urlsafe_b64decode(path.read_bytes().strip()))
    except FileNotFoundError:
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_bytes(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(base64.urlsafe_b64encode(value) + b"\n")
        out.flush()
        os.fsync(out.fileno())
    return ServerSecret(value)


def check_secret(secret: ServerSecret, state: StateStore) -> None:
    """Keep the secret's check value at first start; refuse a secret that does not match the
    one kept (`ConfigError`, which stops the server)."""
    kept = state.get(NAMESPACE, CHECK_KEY)
    mine = secret.check_value()
    if kept is None:
        state.put(NAMESPACE, CHECK_KEY, {"check": mine})
        return
    if not hmac.compare_digest(str(kept.get("check", "")), mine):
        raise ConfigError(
            "the server secret does not match the one this store's keys were made with "
            "(check value in the state store): start with the same [server] secret_env value "
            "or the data directory's `secret` file that created them"
        )
