"""Logs Insights queries asked by the pages, on the same bounded path as ``POST /api/query``:
the server's `QueryRunner` (compiled for the store's engine, workspace and time range bound,
cancellable) on its query pool (``[query] concurrency`` threads, ``queued`` places, then a
429-style `QueryLimitExceeded` the page shows). A page never runs SQL of its own."""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import Callable
from datetime import datetime

from llmtrail.analytics.insights import QueryResult, SavedQueries
from llmtrail.server.query_api import QueryAPI
from llmtrail.server.query_pool import QueryLimitExceeded, QueryWithdrawn

BlockingRun = Callable[[str, datetime, datetime], QueryResult]


class PooledQueries:
    """The query API's runner, pool and saved queries, for the web pages."""

    def __init__(self, queries: QueryAPI) -> None:
        self.runner = queries.runner
        self.pool = queries.pool
        self.saved: SavedQueries = queries.saved

    async def run(
        self, text: str, start: datetime, end: datetime, limit: int = 1000
    ) -> QueryResult:
        """Run ``text`` over ``[start, end)``; a caller that goes away cancels it."""
        query_id = f"web-{uuid.uuid4()}"
        self.runner.schedule(query_id)
        try:
            return await self.pool.run(
                query_id,
                self.runner.run,
                text,
                start,
                end,
                limit=limit,
                query_id=query_id,
                when_done=functools.partial(self.runner.forget, query_id),
            )
        except QueryLimitExceeded:
            self.runner.forget(query_id)  # never admitted: when_done does not run
            raise
        except QueryWithdrawn:
            return QueryResult(query_id, "Cancelled", [], [], [])
        except asyncio.CancelledError:
            if self.runner.status(query_id) is not None:
                self.pool.cancel_soon(self.runner.cancel, query_id)
            raise

    def blocking(self, loop: asyncio.AbstractEventLoop) -> BlockingRun:
        """`run` for code on another thread (a dashboard rendered off the event loop)."""

        def run(text: str, start: datetime, end: datetime) -> QueryResult:
            return asyncio.run_coroutine_threadsafe(self.run(text, start, end), loop).result()

        return run
