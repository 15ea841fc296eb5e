"""llmtrail's API keys: created with a role and a workspace, shown once, kept only as an HMAC
under the server secret, revoked by id.

A key reads ``ltk_<id>_<secret>``: the id is public (lists, the audit log, ``identity.arn``),
the rest is shown once. The StateStore (namespace ``keys``, key the id) holds the key's
role, workspace, limits and the HMAC of the whole key. `KeyRing` answers "whose key is
this" from a copy of that namespace refreshed every ``refresh_s`` seconds (and at once, at
most once a second, for a key it does not know), so a key created or revoked on one server
takes effect on every server sharing the store within ``refresh_s``.

A key may carry an AWS-style access key pair (``--aws``): the access key id is stored as
is, the secret access key encrypted with a key derived from the server secret, so the
Bedrock routes can verify SigV4 signatures made with it.
"""

from __future__ import annotations

import fnmatch
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from llmtrail.errors import NotFound, ValidationError
from llmtrail.security.principal import ROLES, Permission, Principal
from llmtrail.security.secret import ServerSecret
from llmtrail.store.interfaces import StateStore

NAMESPACE = "keys"
PREFIX = "ltk_"
ENV_KEY_ID = "env-admin"
_WORKSPACE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_NAME_MAX = 200
_MODELS_MAX = 50
_PATTERN_MAX = 200
_LIMIT_MAX = 10**9
_MISS_REFRESH_S = 1.0


@dataclass(frozen=True)
class KeySpec:
    """What a new key may do."""

    role: str
    workspace: str = "default"
    name: str = ""
    bodies: bool = False  # readers: may read request and response bodies
    models: tuple[str, ...] = ()  # gateway keys: fnmatch patterns; empty = any model
    rpm: int | None = None
    tpm: int | None = None
    expires: datetime | None = None
    aws: bool = False  # also issue an AWS-style access key pair (SigV4 on the Bedrock routes)

    def validated(self) -> KeySpec:
        if self.role not in ROLES:
            raise ValidationError("role", f"must be one of {', '.join(ROLES)}, got {self.role!r}")
        if not isinstance(self.workspace, str) or not _WORKSPACE.fullmatch(self.workspace):
            raise ValidationError(
                "workspace",
                "must be 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit",
            )
        if len(self.name) > _NAME_MAX:
            raise ValidationError(
                "name", f"is {len(self.name)} characters; the limit is {_NAME_MAX}"
            )
        if len(self.models) > _MODELS_MAX:
            raise ValidationError(
                "models", f"has {len(self.models)} patterns; the limit is {_MODELS_MAX}"
            )
        for i, pattern in enumerate(self.models):
            if not isinstance(pattern, str) or not 0 < len(pattern) <= _PATTERN_MAX:
                raise ValidationError(f"models[{i}]", f"must be 1 to {_PATTERN_MAX} characters")
        for name in ("rpm", "tpm"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= _LIMIT_MAX
            ):
                raise ValidationError(name, f"must be an integer from 1 to {_LIMIT_MAX}")
        if self.expires is not None and self.expires.tzinfo is None:
            raise ValidationError("expires", "must carry a time zone")
        if self.bodies and self.role not in ("reader", "admin"):
            raise ValidationError("bodies", "only reader keys take the bodies permission")
        return self


@dataclass(frozen=True)
class IssuedKey:
    """A key as created: the only time its secret parts exist outside the caller."""

    id: str
    key: str
    info: dict[str, Any]
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = None


@dataclass
class _Entry:
    info: dict[str, Any]
    principal: Principal
    expires: datetime | None


@dataclass
class _View:
    by_hash: dict[str, _Entry] = field(default_factory=dict)
    by_access_key: dict[str, _Entry] = field(default_factory=dict)
    by_id: dict[str, _Entry] = field(default_factory=dict)
    admins: int = 0


def principal_for(info: dict[str, Any], via: str) -> Principal:
    permissions = set(ROLES[info["role"]])
    if info.get("bodies"):
        permissions.add(Permission.BODIES)
    return Principal(
        role=info["role"],
        workspace=info["workspace"],
        key_id=info["id"],
        permissions=frozenset(permissions),
        models=tuple(info.get("models") or ()),
        rpm=info.get("rpm"),
        tpm=info.get("tpm"),
        via=via,
    )


def model_allowed(principal: Principal, model: str) -> bool:
    """Whether a gateway key may call ``model`` (any, when it names no patterns)."""
    return not principal.models or any(fnmatch.fnmatchcase(model, p) for p in principal.models)


class KeyRing:
    """Keys: create, list, revoke, and authenticate against a refreshed copy."""

    def __init__(
        self,
        state: StateStore,
        secret: ServerSecret,
        *,
        refresh_s: float = 5.0,
        sealer: Any = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.state = state
        self.secret = secret
        self.refresh_s = refresh_s
        self.sealer = sealer
        self.clock = clock
        self._view = _View()
        self._loaded_at = -1e9
        self._lock = threading.Lock()

    # -- management -------------------------------------------------------------------------
    def create(self, spec: KeySpec, created_by: str = "") -> IssuedKey:
        spec = spec.validated()
        key_id = secrets.token_hex(6)
        token = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
        info = self._info(key_id, spec, created_by)
        info["hash"] = self.hash(token)
        akid = secret_key = None
        if spec.aws:
            akid, secret_key = self._aws_pair(info)
        self.state.put(NAMESPACE, key_id, info)
        self._loaded_at = -1e9
        return IssuedKey(key_id, token, public(info), akid, secret_key)

    def ensure_env_admin(self, token: str) -> None:
        """Keep ``token`` (from the environment) as the admin key ``env-admin``."""
        if len(token) < 20:
            raise ValidationError(
                "admin key", "the admin key's variable must hold at least 20 characters"
            )
        digest = self.hash(token)
        kept = self.state.get(NAMESPACE, ENV_KEY_ID)
        if kept and kept.get("hash") == digest and not kept.get("revoked"):
            return
        info = self._info(
            ENV_KEY_ID, KeySpec(role="admin", name="from the environment"), "environment"
        )
        info["hash"] = digest
        self.state.put(NAMESPACE, ENV_KEY_ID, info)
        self._loaded_at = -1e9

    def list(self, workspace: str | None = None) -> list[dict[str, Any]]:
        out = [public(info) for info in self.state.list(NAMESPACE).values()]
        return [i for i in out if workspace is None or i["workspace"] == workspace]

    def get(self, key_id: str) -> dict[str, Any]:
        info = self.state.get(NAMESPACE, key_id)
        if info is None:
            raise NotFound(f"no key {key_id!r}")
        return public(info)

    def revoke(self, key_id: str, revoked_by: str = "") -> dict[str, Any]:
        info = self.state.get(NAMESPACE, key_id)
        if info is None:
            raise NotFound(f"no key {key_id!r}")
        if not info.get("revoked"):
            info["revoked"] = self.clock().isoformat()
            info["revokedBy"] = revoked_by
            self.state.put(NAMESPACE, key_id, info)
        self._loaded_at = -1e9
        return public(info)

    def has_admin(self) -> bool:
        self._refresh(force=True)
        return self._view.admins > 0

    def any_keys(self) -> bool:
        self._refresh()
        return bool(self._view.by_hash)

    # -- authentication ---------------------------------------------------------------------
    def hash(self, token: str) -> str:
        return self.secret.mac("api-key", token)

    def authenticate(self, token: str, via: str) -> Principal | None:
        """The principal of a live key, or None (unknown, revoked, expired)."""
        digest = self.hash(token)
        entry = self._lookup(lambda v: v.by_hash.get(digest))
        if entry is None or (entry.expires is not None and entry.expires <= self.clock()):
            return None
        return principal_for(entry.info, via)

    def by_id(self, key_id: str, via: str) -> Principal | None:
        """The principal of a live key by its id (a session's key), or None."""
        entry = self._lookup(lambda v: v.by_id.get(key_id))
        if entry is None or (entry.expires is not None and entry.expires <= self.clock()):
            return None
        return principal_for(entry.info, via)

    def access_key(self, access_key_id: str) -> tuple[Principal, str] | None:
        """The principal and secret access key of an issued AWS-style pair, or None."""
        entry = self._lookup(lambda v: v.by_access_key.get(access_key_id))
        if entry is None or self.sealer is None:
            return None
        if entry.expires is not None and entry.expires <= self.clock():
            return None
        aws = entry.info["aws"]
        secret_key = self.sealer.open(aws["sealedSecret"], _seal_context(entry.info["id"]))
        return principal_for(entry.info, "sigv4"), secret_key

    def _lookup(self, find: Callable[[_View], _Entry | None]) -> _Entry | None:
        self._refresh()
        entry = find(self._view)
        if entry is None and time.monotonic() - self._loaded_at >= _MISS_REFRESH_S:
            self._refresh(force=True)
            entry = find(self._view)
        return entry

    def _refresh(self, force: bool = False) -> None:
        if not force and time.monotonic() - self._loaded_at < self.refresh_s:
            return
        with self._lock:
            if not force and time.monotonic() - self._loaded_at < self.refresh_s:
                return
            view = _View()
            for info in self.state.list(NAMESPACE).values():
                if info.get("revoked") or info.get("role") not in ROLES:
                    continue
                expires = datetime.fromisoformat(info["expires"]) if info.get("expires") else None
                entry = _Entry(info, principal_for(info, "bearer"), expires)
                view.by_hash[info["hash"]] = entry
                view.by_id[info["id"]] = entry
                if info.get("aws"):
                    view.by_access_key[info["aws"]["accessKeyId"]] = entry
                view.admins += info["role"] == "admin"
            self._view = view
            self._loaded_at = time.monotonic()

    # -- parts ------------------------------------------------------------------------------
    def _info(self, key_id: str, spec: KeySpec, created_by: str) -> dict[str, Any]:
        return {
            "id": key_id,
            "name": spec.name,
            "role": spec.role,
            "workspace": spec.workspace,
            "bodies": spec.bodies or spec.role == "admin",
            "models": list(spec.models),
            "rpm": spec.rpm,
            "tpm": spec.tpm,
            "expires": spec.expires.astimezone(UTC).isoformat() if spec.expires else None,
            "created": self.clock().isoformat(),
            "createdBy": created_by,
            "revoked": None,
        }

    def _aws_pair(self, info: dict[str, Any]) -> tuple[str, str]:
        from llmtrail.security.sealing import generate_access_key_pair

        if self.sealer is None:
            raise ValidationError("aws", "this server cannot issue AWS-style key pairs")
        akid, secret_key = generate_access_key_pair()
        sealed = self.sealer.seal(secret_key, _seal_context(info["id"]))
        info["aws"] = {"accessKeyId": akid, "sealedSecret": sealed}
        return akid, secret_key


def public(info: dict[str, Any]) -> dict[str, Any]:
    """A key's description without its hash or sealed secret."""
    out = {k: v for k, v in info.items() if k not in ("hash", "aws")}
    if info.get("aws"):
        out["awsAccessKeyId"] = info["aws"]["accessKeyId"]
    return out


def _seal_context(key_id: str) -> str:
    return f"aws-secret/{key_id}"


def bearer_token(headers: Iterable[tuple[bytes, bytes]]) -> Sequence[tuple[str, str]]:
    """The candidate llmtrail keys in request headers: ``(how, token)`` pairs from
    ``authorization: Bearer``, ``x-api-key`` and ``x-llmtrail-key``."""
    found: list[tuple[str, str]] = []
    for name, value in headers:
        if name == b"authorization":
            text = value.decode("latin-1").strip()
            scheme, _, rest = text.partition(" ")
            if scheme.lower() == "bearer" and rest.strip():
                found.append(("bearer", rest.strip()))
        elif name in (b"x-api-key", b"x-llmtrail-key"):
            text = value.decode("latin-1").strip()
            if text:
                found.append((name.decode(), text))
    return found
