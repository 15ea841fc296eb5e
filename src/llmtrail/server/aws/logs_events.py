"""``FilterLogEvents`` and ``GetLogEvents``: records as log events.

An event is one record: ``message`` is the record's JSON exactly as llmtrail's records API
answers it (``GET /api/records``), ``timestamp`` its request start and ``ingestionTime`` when
it was stored (epoch milliseconds), ``eventId`` its ``recordId``. Messages hold the request
and response bodies, so both operations need the ``bodies`` permission
(AccessDeniedException otherwise) and each answer that showed a body is one entry in the
audit log, as a records read is.

Records are selected by llmtrail's own filter-pattern compiler
(`llmtrail.query.filter_pattern_query`: workspace, time range, JSON filter pattern), whose
statement (a sqlglot tree) is ordered along the stream and resumed after a position here.
Pages are keyed by position — ``(timestamp, recordId)``, the stream's total order — not by
offset, so records stored while a caller pages never shift a page: no event is seen twice
and none stored before the first page is skipped (one stored later, for a request that
started before the caller's position, is behind it, as a late event is on AWS).
FilterLogEvents' ``nextToken`` also pins the time range of the first page, so a range that
ends "now" stops moving. Like AWS, a page holds at most ``limit`` events and about 1 MB of
messages; the store is read `CHUNK` events at a time, so a page costs what it holds.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlglot import exp

from llmtrail.errors import ValidationError
from llmtrail.query import filter_pattern_query
from llmtrail.query.dialects import DIALECTS, string
from llmtrail.query.relations import column
from llmtrail.record import InvocationRecord
from llmtrail.security.principal import Permission
from llmtrail.server.audit_hooks import audit_body_read
from llmtrail.server.aws.logs_groups import (
    EPOCH,
    INVALID,
    NOT_FOUND,
    STREAM,
    from_millis,
    millis,
    one_group,
)
from llmtrail.server.aws.operations import AwsCall, AwsError, operation
from llmtrail.server.aws.tokens import page_token, read_page_token
from llmtrail.server.record_bodies import has_body
from llmtrail.store.query_bounds import QueryFailed
from llmtrail.store.rows import from_row

MAX_EVENTS = 10_000  # the default and largest limit of both operations
MAX_PAGE_BYTES = 1_048_576  # a page holds about 1 MB of messages, as on AWS
CHUNK = 1000  # events read from the store at a time while a page fills
_BODY_NAMES = ("input_body_json", "output_body_json")
_MICRO = timedelta(microseconds=1)
_FIRST_MICROS = (datetime.min.replace(tzinfo=UTC) - EPOCH) // _MICRO
_LAST_MICROS = (datetime.max.replace(tzinfo=UTC) - EPOCH) // _MICRO


@dataclass(frozen=True, order=True)
class Position:
    """An event's place in the stream: its timestamp (epoch µs), then its record id."""

    micros: int
    record_id: str

    def to_json(self) -> list[Any]:
        return [self.micros, self.record_id]

    @classmethod
    def from_json(cls, value: Any) -> Position | None:
        if value is None:
            return None
        if (
            isinstance(value, list)
            and len(value) == 2
            and isinstance(value[0], int)
            and _FIRST_MICROS <= value[0] <= _LAST_MICROS  # an instant datetime can hold
            and isinstance(value[1], str)
        ):
            return cls(value[0], value[1])
        raise AwsError(INVALID, "The specified nextToken is not valid")


@dataclass(frozen=True)
class Event:
    position: Position
    ingested: datetime | None
    record: InvocationRecord
    message: str

    def filtered(self) -> dict[str, Any]:
        """A ``FilteredLogEvent``."""
        return {"logStreamName": STREAM, **self.output(), "eventId": self.record.record_id}

    def output(self) -> dict[str, Any]:
        """An ``OutputLogEvent``."""
        return {
            "timestamp": self.position.micros // 1000,
            "message": self.message,
            "ingestionTime": None if self.ingested is None else millis(self.ingested),
        }


def read_events(
    runtime: Any,
    workspace: str,
    pattern: str,
    start: datetime,
    end: datetime,
    *,
    after: Position | None,
    forward: bool,
    limit: int,
) -> list[Event]:
    """Up to ``limit`` events of ``workspace`` in ``[start, end)`` matching ``pattern``,
    strictly after ``after`` going ``forward`` (oldest first), or strictly before it going
    back (newest first). Blocking: run it off the event loop."""
    schema = runtime.query_engine.schema
    dialect = DIALECTS[runtime.query_engine.dialect]
    compiled = filter_pattern_query(
        pattern,
        dialect=dialect.name,
        schema=schema,
        workspace=workspace,
        start=start,
        end=end,
        limit=limit,
        database=getattr(runtime.query_engine, "database", None),
    )
    # the compiler's statement, ordered along the stream and resumed after a position
    select = compiled.tree.copy()
    stamp, rid = column("timestamp", "r"), column("record_id", "r")
    select.set(
        "order",
        exp.Order(
            expressions=[
                exp.Ordered(this=stamp.copy(), desc=not forward),
                exp.Ordered(this=rid.copy(), desc=not forward),
            ]
        ),
    )
    if after is not None:
        past = exp.GT if forward else exp.LT
        when = dialect.timestamp_literal(EPOCH + after.micros * _MICRO)
        select = select.where(
            exp.or_(
                past(this=stamp.copy(), expression=when),
                exp.and_(
                    exp.EQ(this=stamp.copy(), expression=when.copy()),
                    past(this=rid.copy(), expression=string(after.record_id)),
                ),
            ),
            copy=False,
        )
    try:
        result = runtime.query_engine.execute(
            select.sql(dialect=dialect.name), f"logs-{uuid.uuid4()}"
        )
    except QueryFailed as exc:
        raise AwsError(INVALID, f"filterPattern: {exc.reason}") from None
    events = []
    for row in result.rows:
        values = dict(zip(compiled.fields, row, strict=True))
        body = {k: values.pop(k) for k in _BODY_NAMES if k in values}
        body["record_id"] = values.get("record_id")
        record = from_row(values, body, schema)
        position = Position(micros(values["timestamp"]), str(values["record_id"]))
        message = orjson.dumps(record.data).decode()
        events.append(Event(position, values.get("ingested_at"), record, message))
    return events


def micros(when: datetime) -> int:
    """Epoch microseconds of a stored timestamp (a naive one is UTC)."""
    aware = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
    return (aware - EPOCH) // _MICRO


async def _events(
    call: AwsCall,
    pattern: str,
    start: datetime,
    end: datetime,
    after: Position | None,
    forward: bool,
    limit: int,
) -> tuple[list[Event], bool]:
    """One page of events — at most ``limit`` and about 1 MB of messages (at least one
    event) — and whether the range holds more. Read `CHUNK` events at a time, so that a
    page costs what it holds, not ``limit`` records."""
    kept: list[Event] = []
    size = 0
    while True:
        want = min(CHUNK, limit - len(kept))
        read = functools.partial(
            read_events,
            call.runtime,
            call.workspace,
            pattern,
            start,
            end,
            after=after,
            forward=forward,
            limit=want + 1,  # one more: whether there are more
        )
        try:
            batch = await asyncio.to_thread(read)
        except ValidationError as exc:  # the pattern: the language's message, with a caret
            raise AwsError(INVALID, str(exc)) from None
        for event in batch[:want]:
            size += len(event.message)
            if kept and size > MAX_PAGE_BYTES:
                return kept, True
            kept.append(event)
        if len(batch) <= want:
            return kept, False
        if len(kept) >= limit:
            return kept, True
        after = kept[-1].position


async def _audited(call: AwsCall, events: list[Event]) -> None:
    read = [e.record.request_id for e in events if has_body(e.record.data)]
    if read and call.request is not None:
        await audit_body_read(call.runtime, call.request, "aws", read)


def _streams_wanted(call: AwsCall) -> bool:
    """Whether the stream filters of FilterLogEvents keep the one stream."""
    names, prefix = call.params.get("logStreamNames"), call.params.get("logStreamNamePrefix")
    if names is not None and prefix is not None:
        raise AwsError(INVALID, "logStreamNames and logStreamNamePrefix cannot both be specified.")
    if names is not None:
        return STREAM in names
    return prefix is None or STREAM.startswith(prefix)


@operation("logs", "FilterLogEvents", Permission.READ)
async def filter_log_events(call: AwsCall) -> dict[str, Any]:
    call.require(Permission.BODIES, "log event messages (they hold the request and response)")
    p = call.params
    one_group(call)
    pattern = p.get("filterPattern") or ""
    limit = p.get("limit", MAX_EVENTS)
    token = p.get("nextToken")
    if token is not None:  # the first page's range and direction, and where it stopped
        state = read_page_token(call, token)
        try:
            start = EPOCH + state["s"] * _MICRO
            end = EPOCH + state["e"] * _MICRO
            forward = bool(state["f"])
        except (TypeError, KeyError, OverflowError):
            raise AwsError(INVALID, "The specified nextToken is not valid") from None
        after = Position.from_json(state.get("a"))
    else:
        start = from_millis(p.get("startTime", 0))
        # endTime is inclusive: events of its millisecond are in
        end = from_millis(p["endTime"] + 1) if "endTime" in p else datetime.now(UTC)
        forward, after = p.get("startFromHead", True), None
    if end <= start or not _streams_wanted(call):
        return {"events": [], "searchedLogStreams": []}
    events, more = await _events(call, pattern, start, end, after, forward, limit)
    await _audited(call, events)
    next_token = None
    if more:
        state = {
            "s": micros(start),
            "e": micros(end),
            "f": forward,
            "a": events[-1].position.to_json(),
        }
        next_token = page_token(call, state)
    return {
        "events": [e.filtered() for e in events],
        "searchedLogStreams": [],  # AWS answers an empty list since 2020
        "nextToken": next_token,
    }


def _stream_token(call: AwsCall, forward: bool, at: Position | None) -> str:
    """A GetLogEvents token: ``f/…`` reads on after ``at`` (from the head when None), ``b/…``
    reads back before it (from the tail when None)."""
    state = {"f": forward, "a": None if at is None else at.to_json()}
    return ("f/" if forward else "b/") + page_token(call, state)


@operation("logs", "GetLogEvents", Permission.READ)
async def get_log_events(call: AwsCall) -> dict[str, Any]:
    call.require(Permission.BODIES, "log event messages (they hold the request and response)")
    p = call.params
    one_group(call)
    if p["logStreamName"] != STREAM:
        raise AwsError(NOT_FOUND, "The specified log stream does not exist.")
    start = from_millis(p.get("startTime", 0))
    end = from_millis(p["endTime"]) if "endTime" in p else datetime.now(UTC)
    limit = p.get("limit", MAX_EVENTS)
    token = p.get("nextToken")
    if token is not None:
        state = read_page_token(call, token[2:] if token[:2] in ("f/", "b/") else token)
        if not isinstance(state, dict) or not isinstance(state.get("f"), bool):
            raise AwsError(INVALID, "The specified nextToken is not valid")
        forward, after = state["f"], Position.from_json(state.get("a"))
    else:
        forward, after = bool(p.get("startFromHead", False)), None
    events: list[Event] = []
    if start < end:
        events, _ = await _events(call, "", start, end, after, forward, limit)
    if not forward:
        events.reverse()  # read back from the tail; a page is always oldest first
    await _audited(call, events)
    if events:
        ahead = _stream_token(call, True, events[-1].position)
        back = _stream_token(call, False, events[0].position)
    else:  # at an end: the token given again on that side, the other end on the other
        ahead = token if token is not None and forward else _stream_token(call, True, None)
        back = token if token is not None and not forward else _stream_token(call, False, None)
    return {
        "events": [e.output() for e in events],
        "nextForwardToken": ahead,
        "nextBackwardToken": back,
    }
