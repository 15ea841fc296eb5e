"""What every page handler is given, and what it gives back."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from llmtrail.security.principal import Permission, Principal, principal_of
from llmtrail.server.runtime import Runtime
from llmtrail.web.pooled_queries import PooledQueries
from llmtrail.web.rendering import CSRF_SCOPE_KEY
from llmtrail.web.time_range import TimeRange


@dataclass
class PageContext:
    """One page request: the runtime, the query path (bound to the caller's workspace and
    permissions), the range the URL names and the caller. The workspace every page reads is
    the principal's, never one the URL names."""

    request: Request
    runtime: Runtime
    queries: PooledQueries
    range: TimeRange
    principal: Principal

    @classmethod
    def of(cls, request: Request, runtime: Runtime, queries: Any, tr: TimeRange) -> PageContext:
        """The context of ``request``: its principal (from access control) and the query
        path bound to it (``queries`` is the server's `QueryAPI`)."""
        principal = principal_of(request.scope)
        return cls(request, runtime, PooledQueries(queries, principal, request), tr, principal)

    @property
    def workspace(self) -> str:
        """The only workspace this page may read."""
        return self.principal.workspace

    @property
    def bodies(self) -> bool:
        """Whether the caller may see request and response bodies."""
        return self.principal.can(Permission.BODIES)

    @property
    def csrf_token(self) -> str | None:
        """The session's CSRF token, for a form or a script that changes state (None when
        the request came without a session)."""
        token = self.request.scope.get(CSRF_SCOPE_KEY)
        return token if isinstance(token, str) and token else None

    def param(self, name: str, limit: int = 10_000) -> str | None:
        """A query parameter (None when absent or empty), cut at ``limit`` characters."""
        value = self.request.query_params.get(name)
        return value[:limit] if value else None


@dataclass
class View:
    """A page to draw: its template and values, the URL state the range picker must keep,
    and the status (a page that shows a bad-input message answers 400)."""

    template: str
    context: dict[str, Any]
    keep: dict[str, str | list[str] | None] = field(default_factory=dict)
    status: int = 200
