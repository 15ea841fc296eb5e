"""The audit API: ``GET /api/audit`` (the caller's workspace's entries, newest first, paged)
and ``GET /api/audit/verify`` (every chain walked; ``ok`` false with the problems found).

Both need ``manage`` (auditors are admins for now). A listing holds only the entries of the
caller's workspace; a verification covers every chain, since a chain interleaves
workspaces and proving it whole is the point, and its report names entries by server and
sequence number only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from llmtrail.errors import ValidationError
from llmtrail.security.audit import AuditLog
from llmtrail.security.audit_entries import MAX_LIMIT
from llmtrail.security.principal import Permission, principal_of
from llmtrail.server.access import guarded_route
from llmtrail.server.api import answer
from llmtrail.server.params import int_param
from llmtrail.server.problems import problem
from llmtrail.timerange import parse_bounds

MAX_TEXT = 1024


class AuditAPI:
    def __init__(self, audit: AuditLog | None) -> None:
        self.audit = audit

    def routes(self) -> list[Route]:
        return [
            guarded_route("/api/audit", self.list, Permission.MANAGE, methods=["GET"]),
            guarded_route("/api/audit/verify", self.verify, Permission.MANAGE, methods=["GET"]),
        ]

    async def list(self, request: Request) -> Response:
        """``since`` (a duration such as ``1h`` or an RFC 3339 time), ``until``, ``actor``,
        ``requestId``, ``limit`` (1 to 1,000) and ``cursor`` (the previous page's
        ``nextCursor``)."""
        audit = self.audit
        if audit is None:
            return _not_configured()
        workspace = principal_of(request.scope).workspace
        params = request.query_params

        def work() -> dict[str, Any]:
            since, until = parse_bounds(
                params.get("since"),
                params.get("until"),
                names=("since", "until"),
                now=datetime.now(UTC),
                relative="before",
            )
            page = audit.entries(
                since=since,
                until=until,
                actor=_text(params.get("actor"), "actor"),
                workspace=workspace,
                request_id=_text(params.get("requestId"), "requestId"),
                limit=int_param(
                    params.get("limit"), "limit", default=100, minimum=1, maximum=MAX_LIMIT
                ),
                cursor=_text(params.get("cursor"), "cursor"),
            )
            return page.to_dict()

        return await answer(work)

    async def verify(self, request: Request) -> Response:
        audit = self.audit
        if audit is None:
            return _not_configured()
        return await answer(lambda: audit.verify().to_dict())


def _not_configured() -> Response:
    return problem(503, "Unavailable", "this server keeps no audit log")


def _text(value: str | None, field: str) -> str | None:
    if value is not None and len(value) > MAX_TEXT:
        raise ValidationError(field, f"is longer than the limit of {MAX_TEXT} characters")
    return value or None
