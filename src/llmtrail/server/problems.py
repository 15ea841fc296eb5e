"""HTTP problem JSON (RFC 9457) for the management API's errors."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from llmtrail.errors import Forbidden, LlmtrailError, ValidationError


def problem(status: int, title: str, detail: str, **extra: Any) -> Response:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    headers = {"retry-after": "1"} if status == 503 else None
    return Response(orjson.dumps(body), status, headers, "application/problem+json")


def from_error(exc: LlmtrailError) -> Response:
    status = int(getattr(exc, "status", 500))
    if isinstance(exc, ValidationError):
        return problem(status, "Invalid request", exc.message, field=exc.field)
    if isinstance(exc, Forbidden):
        return problem(403, "Forbidden", exc.message, field=exc.field, permission=exc.permission)
    return problem(status, type(exc).__name__, str(exc))
