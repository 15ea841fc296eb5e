"""Logs Insights queries asked by the pages, on the same bounded path as ``POST /api/query``:
the server's `QueryRunner` (compiled for the store's engine, workspace and time range bound,
cancellable) on its query pool (``[query] concurrency`` threads, ``queued`` places, then a
429-style `QueryLimitExceeded` the page shows). A page never runs SQL of its own.

Each page request gets its own `PooledQueries`, bound to its caller: queries run over the
principal's workspace only, a query that reads a body is refused (`Forbidden`) for a key
without the ``bodies`` permission, and the saved queries are the workspace's."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import datetime

from starlette.requests import Request

from llmtrail.analytics.insights import QueryResult, SavedQueries
from llmtrail.security.principal import Permission, Principal
from llmtrail.server.query_api import QueryAPI

BlockingRun = Callable[[str, datetime, datetime], QueryResult]


class PooledQueries:
    """The query API's pooled runs and saved queries, for one caller's pages."""

    def __init__(
        self, queries: QueryAPI, principal: Principal, request: Request | None = None
    ) -> None:
        self.queries = queries
        self.reader = (request, "ui") if request is not None else None  # for the audit log
        self.workspace = principal.workspace
        self.bodies_allowed = principal.can(Permission.BODIES)
        self.saved: SavedQueries = queries.saved_for(principal.workspace)

    async def run(
        self, text: str, start: datetime, end: datetime, limit: int = 1000
    ) -> QueryResult:
        """Run ``text`` over ``[start, end)`` of the caller's workspace; a caller that goes
        away cancels it."""
        return await self.queries.pooled(
            text,
            start,
            end,
            limit=limit,
            query_id=f"web-{uuid.uuid4()}",
            workspace=self.workspace,
            bodies_allowed=self.bodies_allowed,
            reader=self.reader,
        )

    def blocking(self, loop: asyncio.AbstractEventLoop) -> BlockingRun:
        """`run` for code on another thread (a dashboard rendered off the event loop)."""

        def run(text: str, start: datetime, end: datetime) -> QueryResult:
            return asyncio.run_coroutine_threadsafe(self.run(text, start, end), loop).result()

        return run
