"""The caller of a request, as access control decided it: a role, a workspace, and what the
key may do within it.

Roles are fixed sets of permissions. ``bodies`` (reading prompts and answers) is granted to a
reader key only when it was created with it; ``manage`` is every management change (keys,
prices, budgets, profiles, logging configuration, retention, redaction, alarms, dashboards).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from llmtrail.record import DEFAULT_WORKSPACE


class Permission(StrEnum):
    READ = "read"  # records' metadata, queries, metrics, cost, traces, dashboards, alarms
    BODIES = "bodies"  # request and response bodies (with READ)
    INGEST = "ingest"  # POST /api/records, OTLP
    GATEWAY = "gateway"  # model calls through the gateway routes
    MANAGE = "manage"  # every management change
    PUBLIC = "public"  # no key needed: /healthz, /readyz, the login page, static assets


ROLES: Mapping[str, frozenset[Permission]] = {
    "admin": frozenset(
        {Permission.READ, Permission.BODIES, Permission.INGEST, Permission.GATEWAY}
        | {Permission.MANAGE}
    ),
    "reader": frozenset({Permission.READ}),
    "ingester": frozenset({Permission.INGEST}),
    "gateway": frozenset({Permission.GATEWAY}),
}


@dataclass(frozen=True)
class Principal:
    """Who is calling. ``key_id`` is None only in open mode (loopback, no keys)."""

    role: str
    workspace: str = DEFAULT_WORKSPACE
    key_id: str | None = None
    permissions: frozenset[Permission] = field(default_factory=frozenset)
    models: tuple[str, ...] = ()  # gateway keys: fnmatch patterns of callable models
    rpm: int | None = None
    tpm: int | None = None
    via: str = "open"  # how it was proven: open, bearer, x-api-key, session, sigv4

    def can(self, permission: Permission) -> bool:
        return permission is Permission.PUBLIC or permission in self.permissions

    @property
    def operator(self) -> bool:
        """An admin of the default workspace: the server's operator, who alone changes what
        every workspace shares (keys of other workspaces, the price table, rollup rebuilds)."""
        return Permission.MANAGE in self.permissions and self.workspace == DEFAULT_WORKSPACE

    @property
    def actor(self) -> str:
        """Who, as the audit log names it."""
        return f"key/{self.key_id}" if self.key_id else "anonymous (open mode)"


OPEN = Principal(role="admin", permissions=ROLES["admin"], via="open")
SCOPE_KEY = "llmtrail.principal"


def principal_of(scope: Mapping[str, Any]) -> Principal:
    """The principal access control put in an ASGI scope (or a Starlette request's scope);
    the open principal when none was put there (an app built without access control, as
    the CLI's in-process server is)."""
    principal = scope.get(SCOPE_KEY)
    return principal if isinstance(principal, Principal) else OPEN
