"""Every route of the server declares the permission it needs.

`guarded_route` builds a Starlette route whose endpoint first checks the request's
`Principal` (put in the scope by the access middleware) and answers 403 problem JSON when
the key's role lacks the permission; the route carries ``permission`` so a test can prove
that no route was left without one.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from llmtrail.security.principal import Permission, principal_of
from llmtrail.server.problems import problem

Endpoint = Callable[[Request], Awaitable[Response]]


def forbidden(permission: Permission) -> Response:
    return problem(
        403,
        "Forbidden",
        f"this key's role does not have the {permission.value!r} permission",
        permission=permission.value,
    )


def guard(endpoint: Endpoint, permission: Permission) -> Endpoint:
    """``endpoint`` answering 403 to a caller without ``permission``."""

    @functools.wraps(endpoint)
    async def guarded(request: Request) -> Response:
        if not principal_of(request.scope).can(permission):
            return forbidden(permission)
        return await endpoint(request)

    guarded.permission = permission  # type: ignore[attr-defined]
    return guarded


def guarded_route(
    path: str, endpoint: Endpoint, permission: Permission, methods: Sequence[str] | None = None
) -> Route:
    """A route that needs ``permission``; ``route.permission`` says which."""
    route = Route(path, guard(endpoint, permission), methods=list(methods) if methods else None)
    route.permission = permission  # type: ignore[attr-defined]
    return route
