"""Reads of bodies, told to the audit log: one entry per request, never one per record.

The data surfaces (records list and get, filter patterns, queries that name a body, traces
whose spans carry their inputs and outputs) call `audit_body_read` once they answered a
caller with the ``bodies`` permission some bodies. The audit log is the runtime's ``audit``
(`AuditLog.record(principal, action, *, surface, source, target)`), appended in a thread
because it writes to the store; a runtime without one (the CLI's in-process server, tests of
other parts) skips the call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from starlette.requests import Request

from llmtrail.security.principal import principal_of

ACTION = "read-bodies"
MAX_IDS = 1000  # request ids named in one entry; ``count`` says how many there were


async def audit_body_read(
    runtime: Any, request: Request, surface: str, request_ids: Sequence[str]
) -> None:
    """Record that ``request`` (through ``surface``: ``records``, ``query``, ``traces``…)
    read the bodies of the records ``request_ids``."""
    audit = getattr(runtime, "audit", None)
    if audit is None:
        return
    ids = list(request_ids)
    await asyncio.to_thread(
        audit.record,
        principal_of(request.scope),
        ACTION,
        surface=surface,
        source=request.client.host if request.client else None,
        target={"requestIds": ids[:MAX_IDS], "count": len(ids)},
    )
