"""Every route of the server declares the permission it needs.

`guarded_route` builds a Starlette route whose endpoint first checks the request's
`Principal` (put in the scope by the access middleware) and answers 403 problem JSON when
the key's role lacks the permission; the route carries ``permission`` so a test can prove
that no route was left without one.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Sequence

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from llmtrail.errors import Forbidden
from llmtrail.security.principal import Permission, Principal, principal_of
from llmtrail.server.problems import from_error, problem

Endpoint = Callable[[Request], Awaitable[Response]]


def forbidden(permission: Permission) -> Response:
    return problem(
        403,
        "Forbidden",
        f"this key's role does not have the {permission.value!r} permission",
        permission=permission.value,
    )


def operator_only(request: Request, what: str) -> Response | None:
    """403 problem JSON unless the caller is the server's operator (an admin of the default
    workspace): ``what`` is shared by every workspace, so one tenant's admin must not change
    it for the others."""
    principal = principal_of(request.scope)
    if principal.operator:
        return None
    return from_error(
        Forbidden(
            what,
            f"{what} is the server's, shared by every workspace; only an admin of the default "
            f"workspace may change it (this key's workspace is {principal.workspace!r})",
            permission=Permission.MANAGE.value,
        )
    )


def guard(endpoint: Endpoint, permission: Permission) -> Endpoint:
    """``endpoint`` answering 403 to a caller without ``permission``."""

    @functools.wraps(endpoint)
    async def guarded(request: Request) -> Response:
        principal = principal_of(request.scope)
        if not principal.can(permission):
            refused = forbidden(permission)
            if permission is Permission.MANAGE and request.method != "GET":
                await _audit_change(request, principal, refused.status_code)
            return refused
        response = await endpoint(request)
        if permission is Permission.MANAGE and request.method != "GET":
            await _audit_change(request, principal, response.status_code)
        return response

    guarded.permission = permission  # type: ignore[attr-defined]
    return guarded


async def _audit_change(request: Request, principal: Principal, status: int) -> None:
    """Every management change (refused ones too) in the audit log, when there is one."""
    audit = getattr(request.app.state, "audit", None) if "app" in request.scope else None
    if audit is None:
        return
    action = f"{request.method} {request.url.path}"
    source = request.client.host if request.client else None
    target = dict(request.path_params)
    await asyncio.to_thread(
        audit.record,
        principal,
        action,
        surface="api",
        source=source,
        target=target,
        outcome=status,
    )


def guarded_route(
    path: str, endpoint: Endpoint, permission: Permission, methods: Sequence[str] | None = None
) -> Route:
    """A route that needs ``permission``; ``route.permission`` says which."""
    route = Route(path, guard(endpoint, permission), methods=list(methods) if methods else None)
    route.permission = permission  # type: ignore[attr-defined]
    return route
