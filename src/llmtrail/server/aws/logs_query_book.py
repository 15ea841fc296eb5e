"""The Logs Insights queries a server started for the ``logs`` API, and what became of them.

``GetQueryResults``, ``StopQuery`` and ``DescribeQueries`` come after ``StartQuery``, so the
queries are kept: by the app's `QueryAPI` (one `QueryBook` each, so that two apps in one
process, as tests make, never share them), per workspace, every query still active and the
latest `KEEP` finished ones, in memory (AWS keeps results for days; llmtrail until they are
pushed out or the server restarts). While a query is active its status is its runner's
(`live_status`): ``Scheduled`` while it waits for a query thread, ``Running`` on one.
"""

from __future__ import annotations

import asyncio
import weakref
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from llmtrail.errors import LlmtrailError
from llmtrail.server.aws.logs_groups import NOT_FOUND, millis
from llmtrail.server.aws.operations import AwsCall, AwsError

KEEP = 100  # finished queries kept per workspace
ACTIVE = ("Scheduled", "Running")
LANGUAGE = "CWLI"


@dataclass
class InsightsQuery:
    """One query started with StartQuery, and what became of it."""

    query_id: str
    workspace: str
    text: str
    log_group: str
    start: datetime
    end: datetime
    limit: int
    user: str
    shows_bodies: bool
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    status: str = "Scheduled"
    fields: list[str] = field(default_factory=list)
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    statistics: dict[str, float] = field(default_factory=dict)
    ended: datetime | None = None
    task: asyncio.Task[None] | None = None
    refused: LlmtrailError | None = None  # the pool was full: StartQuery answers it

    def finish(self, status: str) -> None:
        if self.status in ACTIVE:
            self.status = status
            self.ended = datetime.now(UTC)

    def info(self, status: str) -> dict[str, Any]:
        """A ``QueryInfo`` (``status`` as `live_status` has it)."""
        duration = None if self.ended is None else millis(self.ended) - millis(self.created)
        return {
            "queryLanguage": LANGUAGE,
            "queryId": self.query_id,
            "queryString": self.text,
            "status": status,
            "createTime": millis(self.created),
            "logGroupName": self.log_group,
            "queryDuration": duration,
            "bytesScanned": self.statistics.get("bytesScanned"),
            "userIdentity": self.user,
        }


class QueryBook:
    """The queries of one app, by workspace: the active ones and the latest finished."""

    def __init__(self) -> None:
        self.queries: dict[str, dict[str, InsightsQuery]] = {}

    def add(self, query: InsightsQuery) -> None:
        mine = self.queries.setdefault(query.workspace, {})
        mine[query.query_id] = query
        finished = [q for q in mine.values() if q.status not in ACTIVE]
        for old in finished[: max(0, len(finished) - KEEP)]:
            del mine[old.query_id]

    def get(self, workspace: str, query_id: str) -> InsightsQuery:
        query = self.queries.get(workspace, {}).get(query_id)
        if query is None:
            raise AwsError(NOT_FOUND, f"Query does not exist: {query_id}")
        return query

    def discard(self, query: InsightsQuery) -> None:
        self.queries.get(query.workspace, {}).pop(query.query_id, None)

    def newest_first(self, workspace: str) -> list[InsightsQuery]:
        mine = self.queries.get(workspace, {}).values()
        return sorted(mine, key=lambda q: (q.created, q.query_id), reverse=True)


_BOOKS: weakref.WeakKeyDictionary[Any, QueryBook] = weakref.WeakKeyDictionary()


def book(call: AwsCall) -> QueryBook:
    """The query book of the app ``call`` came to (kept by its `QueryAPI`)."""
    return _BOOKS.setdefault(call.services["queries"], QueryBook())


def live_status(call: AwsCall, query: InsightsQuery) -> str:
    """The query's status; while it is active, as its runner has it (``Scheduled`` while it
    waits for a query thread, ``Running`` on one)."""
    if query.status not in ACTIVE:
        return query.status
    runner = call.services["queries"].runner_for(call.workspace)
    return str(runner.status(query.query_id) or query.status)
