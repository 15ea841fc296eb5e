"""The keys API: ``POST /api/keys`` (the key is in the answer, once), ``GET /api/keys``,
``GET /api/keys/{id}``, ``DELETE /api/keys/{id}`` (revokes; the entry stays, marked).

An admin of workspace ``default`` is the server's operator: it manages keys of every
workspace. An admin of any other workspace manages that workspace's keys only, and another
workspace's key answers 404 to it. The first key of a server must be an admin key, so that
creating a key never locks the operator out.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from llmtrail.errors import NotFound, ValidationError
from llmtrail.security.keys import KeyRing, KeySpec
from llmtrail.security.principal import Permission, Principal, principal_of
from llmtrail.server.access import guarded_route
from llmtrail.server.api import answer
from llmtrail.timerange import optional_instant

MAX_BODY = 64 * 1024
_FIELDS = {"role", "workspace", "name", "bodies", "models", "rpm", "tpm", "expires", "aws"}


def spec_from_body(body: Any, principal: Principal, now: datetime) -> KeySpec:
    """A `KeySpec` from the API's JSON; ``expires`` is an RFC 3339 time or a duration."""
    if not isinstance(body, dict):
        raise ValidationError("body", "must be a JSON object")
    unknown = set(body) - _FIELDS
    if unknown:
        raise ValidationError(sorted(unknown)[0], f"is not a key field; known: {sorted(_FIELDS)}")
    when = optional_instant(body.get("expires"), "expires", now=now, relative="after")
    if when is not None and when <= now:
        raise ValidationError("expires", "is in the past")
    workspace = body.get("workspace", principal.workspace)
    for name, kind in (("role", str), ("workspace", str), ("name", str), ("bodies", bool),
                       ("aws", bool), ("models", list)):  # fmt: skip
        if name in body and not isinstance(body[name], kind):
            raise ValidationError(name, f"must be a {kind.__name__}")
    return KeySpec(
        role=body.get("role", ""),
        workspace=workspace,
        name=body.get("name", ""),
        bodies=bool(body.get("bodies", False)),
        models=tuple(body.get("models") or ()),
        rpm=body.get("rpm"),
        tpm=body.get("tpm"),
        expires=when.astimezone(UTC) if when else None,
        aws=bool(body.get("aws", False)),
    )


def may_manage(principal: Principal, workspace: str) -> bool:
    return principal.operator or principal.workspace == workspace


class KeysAPI:
    def __init__(self, keys: KeyRing) -> None:
        self.keys = keys

    def routes(self) -> list[Route]:
        return [
            guarded_route("/api/keys", self.create, Permission.MANAGE, ["POST"]),
            guarded_route("/api/keys", self.list, Permission.MANAGE, ["GET"]),
            guarded_route("/api/keys/{key_id}", self.get, Permission.MANAGE, ["GET"]),
            guarded_route("/api/keys/{key_id}", self.revoke, Permission.MANAGE, ["DELETE"]),
        ]

    async def create(self, request: Request) -> Response:
        principal = principal_of(request.scope)
        raw = await request.body()

        def work() -> Any:
            if len(raw) > MAX_BODY:
                raise ValidationError("body", f"is larger than the limit of {MAX_BODY} bytes")
            try:
                body = orjson.loads(raw or b"{}")
            except orjson.JSONDecodeError as exc:
                raise ValidationError("body", f"is not valid JSON: {exc}") from None
            spec = spec_from_body(body, principal, datetime.now(UTC))
            if not may_manage(principal, spec.workspace):
                raise NotFound(f"no workspace {spec.workspace!r}")
            if spec.role != "admin" and not self.keys.has_admin():
                raise ValidationError(
                    "role",
                    "the first key of a server must be an admin key (create one with "
                    "role admin first, or this server would lock everyone out)",
                )
            issued = self.keys.create(spec, created_by=principal.actor)
            out = {**issued.info, "key": issued.key}
            if issued.aws_access_key_id:
                out["awsAccessKeyId"] = issued.aws_access_key_id
                out["awsSecretAccessKey"] = issued.aws_secret_access_key
            return out

        return await answer(work, 201)

    async def list(self, request: Request) -> Response:
        principal = principal_of(request.scope)
        everyone = principal.operator
        return await answer(
            lambda: {"keys": self.keys.list(None if everyone else principal.workspace)}
        )

    async def get(self, request: Request) -> Response:
        return await answer(lambda: self._own(request))

    async def revoke(self, request: Request) -> Response:
        principal = principal_of(request.scope)

        def work() -> Any:
            info = self._own(request)
            return self.keys.revoke(info["id"], revoked_by=principal.actor)

        return await answer(work)

    def _own(self, request: Request) -> dict[str, Any]:
        key_id = request.path_params["key_id"]
        info = self.keys.get(key_id)
        if not may_manage(principal_of(request.scope), info["workspace"]):
            raise NotFound(f"no key {key_id!r}")
        return info
