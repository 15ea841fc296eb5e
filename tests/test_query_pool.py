"""The query pool: a query refused because every place is taken still runs its ``when_done``
(the runner forgets it, so its status never stays "Scheduled")."""

from __future__ import annotations

import asyncio
import threading

import pytest

from llmtrail.server.query_pool import QueryLimitExceeded, QueryPool


def test_a_refused_query_is_done_with() -> None:
    pool = QueryPool(concurrency=1, queued=0)
    release = threading.Event()
    done: list[str] = []

    async def scenario() -> None:
        running = asyncio.ensure_future(
            pool.run("a", release.wait, 10, when_done=lambda: done.append("a"))
        )
        while not pool._futures:  # the first query holds the only place
            await asyncio.sleep(0.01)
        with pytest.raises(QueryLimitExceeded):
            await pool.run("b", lambda: None, when_done=lambda: done.append("b"))
        assert done == ["b"]
        release.set()
        await running
        assert done == ["b", "a"]

    try:
        asyncio.run(scenario())
    finally:
        release.set()
        pool._queries.shutdown()
        pool._cancels.shutdown()
