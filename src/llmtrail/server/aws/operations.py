"""One AWS operation: validated parameters in, an output dict out.

A handler is registered with `operation` under the service's signing name (``logs``,
``monitoring``, ``ce``, ``bedrock``) and botocore's operation name (``FilterLogEvents``),
with the permission it needs. It receives an `AwsCall` whose ``params`` follow botocore's
input shape (timestamps as aware `datetime`, blobs as `bytes`; absent members absent) and
returns a dict following the output shape, with Python values (`datetime`, `Decimal`,
`bytes`); the wire layer encodes it. A refusal is an `AwsError` with the error code AWS
would send.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from llmtrail.errors import Picklable
from llmtrail.security.principal import Permission, Principal

__all__ = ["OPERATIONS", "AwsCall", "AwsError", "Handler", "Operation", "operation"]


class AwsError(Picklable, Exception):
    """An error in AWS's shape: ``code`` becomes ``__type`` / ``x-amzn-ErrorType``. The HTTP
    status defaults to the one botocore's model gives the error shape, else 400. ``fields``
    are the error shape's other members (CloudWatch's ``dashboardValidationMessages``)."""

    def __init__(
        self,
        code: str,
        message: str,
        status: int | None = None,
        fields: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.fields = fields or {}


@dataclass(frozen=True)
class AwsCall:
    """What a handler sees of one request."""

    service: str  # the signing name: logs, monitoring, ce, bedrock
    operation: str  # botocore's operation name, e.g. FilterLogEvents
    params: dict[str, Any]
    principal: Principal
    runtime: Any  # llmtrail.server.runtime.Runtime
    region: str
    account: str
    request_id: str
    services: dict[str, Any] = field(default_factory=dict)  # the app's shared API objects
    request: Any = None  # the Starlette request (for the audit log's body reads)

    @property
    def workspace(self) -> str:
        return self.principal.workspace

    def require(self, permission: Permission, what: str) -> None:
        """AccessDeniedException unless the caller holds ``permission`` (``what`` names the
        thing refused, e.g. "log event messages")."""
        if not self.principal.can(permission):
            raise AwsError(
                "AccessDeniedException",
                f"this key's role does not have the {permission.value!r} permission needed"
                f" for {what}",
                403,
            )


Handler = Callable[[AwsCall], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class Operation:
    service: str
    name: str
    permission: Permission
    handler: Handler


# (signing name, operation name) -> Operation; filled by the service modules on import.
OPERATIONS: dict[tuple[str, str], Operation] = {}


def operation(service: str, name: str, permission: Permission) -> Callable[[Handler], Handler]:
    """Register ``handler`` as ``service``'s operation ``name``, needing ``permission``."""

    def register(handler: Handler) -> Handler:
        key = (service, name)
        if key in OPERATIONS:
            raise RuntimeError(f"{service}:{name} is registered twice")
        OPERATIONS[key] = Operation(service, name, permission, handler)
        return handler

    return register
