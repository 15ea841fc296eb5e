"""The retention and erasure API, always on the caller's own workspace.

* ``GET /api/retention`` — the workspace's policy (``READ``); ``PUT`` sets it from
  ``{"recordsDays", "bodiesDays", "spansDays", "archive"}``, ``DELETE`` goes back to keeping
  everything (``MANAGE``);
* ``POST /api/retention/run`` ``{"dryRun": true}`` — apply the policy now (or count) (``MANAGE``);
* ``POST /api/erase`` ``{"requestIds": […]} | {"user": …} | {"tenant": …}`` — erase, and say
  what was removed from where (``MANAGE``).

The workspace comes from the caller's key (`principal_of`), never from the body, so an
erasure cannot reach another workspace.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from llmtrail.errors import LlmtrailError, ValidationError
from llmtrail.security.erasure import Eraser
from llmtrail.security.principal import Permission, principal_of
from llmtrail.security.retention import RetentionPolicies
from llmtrail.security.retention_runner import RetentionRunner
from llmtrail.server.access import guarded_route
from llmtrail.server.api import answer
from llmtrail.server.params import json_object
from llmtrail.server.problems import from_error
from llmtrail.store.interfaces import StateStore

MAX_BODY_BYTES = 2_000_000  # 10,000 request ids fit


class RetentionAPI:
    def __init__(
        self,
        state: StateStore,
        runner: RetentionRunner,
        eraser: Eraser,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.policies = RetentionPolicies(state)
        self.runner = runner
        self.eraser = eraser
        self.clock = clock

    def routes(self) -> list[Route]:
        return [
            guarded_route("/api/retention", self.get, Permission.READ, methods=["GET"]),
            guarded_route("/api/retention", self.put, Permission.MANAGE, methods=["PUT"]),
            guarded_route("/api/retention", self.delete, Permission.MANAGE, methods=["DELETE"]),
            guarded_route("/api/retention/run", self.run, Permission.MANAGE, methods=["POST"]),
            guarded_route("/api/erase", self.erase, Permission.MANAGE, methods=["POST"]),
        ]

    async def get(self, request: Request) -> Response:
        workspace = principal_of(request.scope).workspace

        def work() -> dict[str, Any]:
            return {"workspace": workspace, **self.policies.get(workspace).to_dict()}

        return await answer(work)

    async def put(self, request: Request) -> Response:
        workspace = principal_of(request.scope).workspace
        try:
            body = await json_object(request, MAX_BODY_BYTES)
        except LlmtrailError as exc:
            return from_error(exc)

        def work() -> dict[str, Any]:
            return {"workspace": workspace, **self.policies.put(workspace, body).to_dict()}

        return await answer(work)

    async def delete(self, request: Request) -> Response:
        workspace = principal_of(request.scope).workspace
        return await answer(
            lambda: {"workspace": workspace, "deleted": self.policies.delete(workspace)}
        )

    async def run(self, request: Request) -> Response:
        workspace = principal_of(request.scope).workspace
        try:
            body = await json_object(request, MAX_BODY_BYTES)
            unknown = sorted(set(body) - {"dryRun"})
            if unknown:
                raise ValidationError(unknown[0], "is not a setting of a run (known: dryRun)")
            dry_run = body.get("dryRun", False)
            if not isinstance(dry_run, bool):
                raise ValidationError("dryRun", f"must be true or false, got {dry_run!r}")
        except LlmtrailError as exc:
            return from_error(exc)
        return await answer(
            lambda: self.runner.run(self.clock(), dry_run, workspace=workspace).to_dict()
        )

    async def erase(self, request: Request) -> Response:
        workspace = principal_of(request.scope).workspace
        try:
            body = await json_object(request, MAX_BODY_BYTES)
            unknown = sorted(set(body) - {"requestIds", "user", "tenant"})
            if unknown:
                raise ValidationError(
                    unknown[0], "is not an erasure key (requestIds, user, tenant)"
                )
            ids = body.get("requestIds") or []
            if not isinstance(ids, list):
                raise ValidationError("requestIds", "must be a list of request ids")
        except LlmtrailError as exc:
            return from_error(exc)
        user, tenant = body.get("user"), body.get("tenant")
        return await answer(
            lambda: self.eraser.erase(workspace, ids, user=user, tenant=tenant).to_dict()
        )
