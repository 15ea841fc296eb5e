"""Logs Insights queries asked by the pages, on the same bounded path as ``POST /api/query``:
the server's `QueryRunner` (compiled for the store's engine, workspace and time range bound,
cancellable) on its query pool (``[query] concurrency`` threads, ``queued`` places, then a
429-style `QueryLimitExceeded` the page shows). A page never runs SQL of its own."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import datetime

from llmtrail.analytics.insights import QueryResult, SavedQueries
from llmtrail.server.query_api import QueryAPI

BlockingRun = Callable[[str, datetime, datetime], QueryResult]


class PooledQueries:
    """The query API's pooled runs and saved queries, for the web pages."""

    def __init__(self, queries: QueryAPI) -> None:
        self.queries = queries
        self.saved: SavedQueries = queries.saved

    async def run(
        self, text: str, start: datetime, end: datetime, limit: int = 1000
    ) -> QueryResult:
        """Run ``text`` over ``[start, end)``; a caller that goes away cancels it."""
        return await self.queries.pooled(
            text, start, end, limit=limit, query_id=f"web-{uuid.uuid4()}"
        )

    def blocking(self, loop: asyncio.AbstractEventLoop) -> BlockingRun:
        """`run` for code on another thread (a dashboard rendered off the event loop)."""

        def run(text: str, start: datetime, end: datetime) -> QueryResult:
            return asyncio.run_coroutine_threadsafe(self.run(text, start, end), loop).result()

        return run
