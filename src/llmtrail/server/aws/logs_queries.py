"""Logs Insights through the ``logs`` API: ``StartQuery``, ``GetQueryResults``, ``StopQuery``
and ``DescribeQueries``.

A query runs on llmtrail's one pooled query path (`QueryAPI.pooled`: the query threads, the
runner of the caller's workspace, cancellation in the engine), the path ``POST /api/query``
takes, so the rows, ``statistics`` and refusals are the query API's own. What AWS adds is
the asynchrony: ``StartQuery`` checks the query (MalformedQueryException, or
AccessDeniedException for a body field without the ``bodies`` permission, both before
anything runs; LimitExceededException when the pool is full), starts it as a task and
answers its id; ``GetQueryResults`` answers ``Scheduled``/``Running`` until the task has the
rows, then ``Complete`` with them (pages of ``maxItems``, 10,000 at most); ``StopQuery`` is
the query API's cancel. A ``limit`` above the query API's 10,000 rows is read as several
pages of the same query.

The queries started are kept in a `QueryBook` (`logs_query_book`). A query, its results and
its stop belong to the workspace that started it (ResourceNotFoundException for any other).
Results that show bodies are refused to a caller without the ``bodies`` permission, and each
page of them read is an entry in the audit log naming the reader.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from llmtrail.analytics.insights import MAX_LIMIT, as_text
from llmtrail.errors import Forbidden, LlmtrailError
from llmtrail.query import compile_query, parse_query
from llmtrail.query.ast import Source
from llmtrail.query.body_access import reads_bodies
from llmtrail.query.errors import QueryError
from llmtrail.security.principal import Permission
from llmtrail.server.audit_hooks import audit_body_read
from llmtrail.server.aws.logs_groups import (
    END_OF_TIME,
    EPOCH,
    INVALID,
    NOT_FOUND,
    group_name,
    workspace_groups,
)
from llmtrail.server.aws.logs_query_book import (
    ACTIVE,
    LANGUAGE,
    InsightsQuery,
    book,
    live_status,
)
from llmtrail.server.aws.operations import AwsCall, AwsError, operation
from llmtrail.server.aws.tokens import page_token, read_page_token
from llmtrail.server.query_pool import QueryLimitExceeded

log = logging.getLogger("llmtrail.aws")
MAX_ROWS = 100_000  # StartQuery's largest limit
DEFAULT_ROWS = 10_000  # StartQuery's default limit, and GetQueryResults' largest page


def _seconds(value: int) -> datetime:
    try:
        return min(EPOCH + timedelta(seconds=value), END_OF_TIME)
    except OverflowError:
        return END_OF_TIME


def _groups(call: AwsCall, text: str) -> str:
    """The log group the query names (exactly one of logGroupName, logGroupNames and
    logGroupIdentifiers, or a SOURCE command in the query), checked against the
    workspace's groups."""
    p = call.params
    given = [
        [p["logGroupName"]] if "logGroupName" in p else None,
        p.get("logGroupNames"),
        p.get("logGroupIdentifiers"),
    ]
    named = [g for g in given if g is not None]
    if len(named) > 1:
        raise AwsError(
            INVALID,
            "A StartQuery operation must include exactly one of logGroupName, logGroupNames"
            " or logGroupIdentifiers.",
        )
    if named:
        groups = [group_name(call, g) for g in named[0]]
        if not groups:
            raise AwsError(INVALID, "Specify at least one log group.")
        return groups[0]
    query = _checked_parse(text)
    if not any(isinstance(c, Source) for c in query.commands):
        raise AwsError(
            INVALID,
            "A StartQuery operation must include one of logGroupName, logGroupNames or"
            " logGroupIdentifiers, or a SOURCE command in the query.",
        )
    return workspace_groups(call)[0]


def _checked_parse(text: str) -> Any:
    try:
        return parse_query(text)
    except QueryError as exc:
        raise AwsError("MalformedQueryException", f"queryString: {exc.message}") from None


def _check(call: AwsCall, text: str, start: datetime, end: datetime) -> None:
    """Compile the query as the runner will (nothing runs): the language's refusal as
    MalformedQueryException, an unknown SOURCE group as ResourceNotFoundException, a body
    field without the ``bodies`` permission as AccessDeniedException."""
    runtime = call.runtime
    try:
        compile_query(
            text,
            dialect=runtime.query_engine.dialect,
            schema=runtime.query_engine.schema,
            workspace=call.workspace,
            start=start,
            end=end,
            database=getattr(runtime.query_engine, "database", None),
            bodies_allowed=call.principal.can(Permission.BODIES),
            log_groups=workspace_groups(call),
        )
    except Forbidden as exc:
        raise AwsError("AccessDeniedException", exc.message, 403) from None
    except QueryError as exc:
        if exc.reason.startswith(("unknown log group", "no log group starts with")):
            raise AwsError(NOT_FOUND, f"queryString: {exc.message}") from None
        raise AwsError("MalformedQueryException", f"queryString: {exc.message}") from None


@operation("logs", "StartQuery", Permission.READ)
async def start_query(call: AwsCall) -> dict[str, Any]:
    p = call.params
    if p.get("queryLanguage", LANGUAGE) != LANGUAGE:
        raise AwsError(INVALID, "llmtrail runs Logs Insights QL (queryLanguage CWLI) only.")
    text = p["queryString"]
    group = _groups(call, text)
    start = _seconds(p["startTime"])
    end = _seconds(p["endTime"] + 1)  # endTime is inclusive: its whole second is in
    if p["startTime"] > p["endTime"]:
        raise AwsError(INVALID, "endTime must be greater than or equal to startTime.")
    _check(call, text, start, end)
    query = InsightsQuery(
        query_id=str(uuid.uuid4()),
        workspace=call.workspace,
        text=text,
        log_group=group,
        start=start,
        end=end,
        limit=p.get("limit", DEFAULT_ROWS),
        user=call.principal.actor,
        shows_bodies=reads_bodies(parse_query(text)),
    )
    queries = book(call)
    queries.add(query)
    query.task = asyncio.create_task(_run(call, query))
    await asyncio.sleep(0)  # the task's first step: the pool admits the query or refuses it
    if query.refused is not None:
        queries.discard(query)
        raise AwsError("LimitExceededException", str(query.refused))
    return {"queryId": query.query_id}


async def _run(call: AwsCall, query: InsightsQuery) -> None:
    """Run ``query`` to its end, a page of at most the query API's limit at a time."""
    api = call.services["queries"]
    token: str | None = None
    bodies = call.principal.can(Permission.BODIES)
    try:
        while query.status in ACTIVE:  # StopQuery ends it between pages too
            want = min(MAX_LIMIT, query.limit - len(query.rows))
            result = await api.pooled(
                query.text,
                query.start,
                query.end,
                query_id=query.query_id,
                limit=want,
                next_token=token,
                workspace=query.workspace,
                bodies_allowed=bodies,
            )
            if result.status != "Complete" or query.status not in ACTIVE:
                query.finish("Cancelled")
                return
            query.status = "Running"
            query.fields = list(result.fields)
            query.rows += result.rows
            query.statistics = query.statistics or dict(result.statistics)
            token = result.next_token
            if token is None or len(query.rows) >= query.limit:
                query.finish("Complete")
                return
    except QueryLimitExceeded as exc:
        if query.status == "Scheduled" and not query.rows:
            query.refused = exc  # at StartQuery: LimitExceededException
        query.finish("Failed")
    except LlmtrailError as exc:
        log.info("query %s of workspace %s failed: %s", query.query_id, query.workspace, exc)
        # the engine's time limit (store.query_bounds.timed_out) is AWS's Timeout
        query.finish("Timeout" if "ran longer than the limit" in str(exc) else "Failed")
    except Exception:
        log.exception("query %s of workspace %s failed", query.query_id, query.workspace)
        query.finish("Failed")


@operation("logs", "GetQueryResults", Permission.READ)
async def get_query_results(call: AwsCall) -> dict[str, Any]:
    p = call.params
    query = book(call).get(call.workspace, p["queryId"])
    if query.shows_bodies:
        call.require(Permission.BODIES, "the results of a query that shows bodies")
    status = live_status(call, query)
    out: dict[str, Any] = {"queryLanguage": LANGUAGE, "status": status, "results": []}
    if query.statistics:
        out["statistics"] = query.statistics
    if status != "Complete":
        return out
    offset = 0
    if p.get("nextToken"):
        state = read_page_token(call, p["nextToken"])
        if not isinstance(state, dict) or state.get("q") != query.query_id:
            raise AwsError(INVALID, "The specified nextToken is not valid")
        at = state.get("o")
        if not isinstance(at, int) or at < 0:
            raise AwsError(INVALID, "The specified nextToken is not valid")
        offset = at
    size = p.get("maxItems") or DEFAULT_ROWS
    rows = query.rows[offset : offset + size]
    out["results"] = [
        [
            {"field": name, "value": as_text(value)}
            for name, value in zip(query.fields, row, strict=True)
            if value is not None  # CloudWatch leaves out a field an event lacks
        ]
        for row in rows
    ]
    if offset + size < len(query.rows):
        out["nextToken"] = page_token(call, {"q": query.query_id, "o": offset + size})
    if query.shows_bodies and rows and call.request is not None:
        shown = _request_ids(query.fields, rows)
        await audit_body_read(call.runtime, call.request, "aws", shown)
    return out


def _request_ids(fields: list[str], rows: list[tuple[Any, ...]]) -> list[str]:
    if "@requestId" not in fields:
        return []
    at = fields.index("@requestId")
    return [str(row[at]) for row in rows if row[at] is not None]


@operation("logs", "StopQuery", Permission.READ)
async def stop_query(call: AwsCall) -> dict[str, Any]:
    query = book(call).get(call.workspace, call.params["queryId"])
    if query.status not in ACTIVE:
        raise AwsError(INVALID, f"Query {query.query_id} is not running (it is {query.status}).")
    query.finish("Cancelled")  # before the cancel: the task keeps no rows from here on
    await call.services["queries"].stop(call.workspace, query.query_id)
    return {"success": True}


@operation("logs", "DescribeQueries", Permission.READ)
async def describe_queries(call: AwsCall) -> dict[str, Any]:
    p = call.params
    queries = book(call).newest_first(call.workspace)
    if "logGroupName" in p:
        name = group_name(call, p["logGroupName"])
        queries = [q for q in queries if q.log_group == name]
    statuses = {q.query_id: live_status(call, q) for q in queries}
    if "status" in p:
        queries = [q for q in queries if statuses[q.query_id] == p["status"]]
    if p.get("queryLanguage", LANGUAGE) != LANGUAGE:
        queries = []
    if p.get("nextToken"):
        after = read_page_token(call, p["nextToken"])
        if not (isinstance(after, list) and len(after) == 2 and isinstance(after[0], int)):
            raise AwsError(INVALID, "The specified nextToken is not valid")
        mark = (after[0], str(after[1]))
        queries = [q for q in queries if (_micros(q.created), q.query_id) < mark]
    size = p.get("maxResults", 1000)
    page = queries[:size]
    token = None
    if len(queries) > size:
        last = page[-1]
        token = page_token(call, [_micros(last.created), last.query_id])
    return {"queries": [q.info(statuses[q.query_id]) for q in page], "nextToken": token}


def _micros(when: datetime) -> int:
    """Epoch microseconds: a query's place in DescribeQueries' order."""
    return (when - EPOCH) // timedelta(microseconds=1)
