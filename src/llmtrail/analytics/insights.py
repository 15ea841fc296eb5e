"""Running Logs Insights queries: compile for the store's engine, execute, and answer in the
shape of CloudWatch's ``GetQueryResults`` — ``fields``, rows of ``{field, value}`` (values as
text, as CloudWatch gives them), ``statistics`` (recordsMatched, recordsScanned, bytesScanned)
— with a row limit, a ``nextToken`` for the rows beyond it, and cancellation by query id.

Saved queries live in the StateStore, each workspace's apart (namespace ``queries`` for the
default workspace, as before workspaces, and ``queries/WORKSPACE`` for the others).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import math
import re
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
from sqlglot import exp

from llmtrail.errors import NotFound, ValidationError
from llmtrail.query import CompiledQuery, compile_query, parse_query
from llmtrail.query.errors import QueryError
from llmtrail.record import DEFAULT_WORKSPACE, format_timestamp
from llmtrail.store.interfaces import QueryCancelled, QueryEngine, StateStore
from llmtrail.store.query_bounds import QueryFailed

DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000
SAVED = "queries"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.\-/]{0,127}$")


@dataclass
class QueryResult:
    query_id: str
    status: str  # Complete | Cancelled
    fields: list[str]
    kinds: list[str]
    rows: list[tuple[Any, ...]]
    statistics: dict[str, float] = field(default_factory=dict)
    next_token: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """``GetQueryResults``' shape, plus ``fields`` and ``kinds`` in column order."""
        results = [
            [{"field": f, "value": as_text(v)} for f, v in zip(self.fields, row, strict=True)]
            for row in self.rows
        ]
        out: dict[str, Any] = {
            "queryId": self.query_id,
            "status": self.status,
            "fields": self.fields,
            "kinds": self.kinds,
            "results": results,
            "statistics": self.statistics,
        }
        if self.next_token:
            out["nextToken"] = self.next_token
        return out


def as_text(value: Any) -> str | None:
    """A value as CloudWatch shows it: text; timestamps as ``YYYY-MM-DD HH:MM:SS.mmm``."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return format_timestamp(value).replace("T", " ").rstrip("Z")[:23]
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, float):
        if not math.isfinite(value):  # 1e308 * 10, 2 ^ 99999, (-8) ^ 0.5
            return "NaN" if math.isnan(value) else "Infinity" if value > 0 else "-Infinity"
        return repr(value) if value != int(value) or abs(value) >= 1e16 else str(int(value))
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    return str(value)


class QueryRunner:
    """Compiles and runs queries on one engine; remembers running ones for `cancel`.

    An engine whose tables live in a named database (ClickHouse) says so with an optional
    ``database`` attribute, which qualifies the tables in the compiled SQL."""

    def __init__(
        self,
        engine: QueryEngine,
        schema: Any,
        workspace: str = "default",
        log_groups: Callable[[], Collection[str]] | None = None,
    ) -> None:
        self.engine = engine
        self.schema = schema
        self.workspace = workspace
        self.log_groups = log_groups  # the workspace's own log group names, as configured now
        self._lock = threading.Lock()
        self._states: dict[str, str] = {}  # query id -> Scheduled | Running
        self._cancelled: set[str] = set()

    def schedule(self, query_id: str) -> None:
        """Know ``query_id`` before it runs, so that it can be cancelled while it waits for
        a thread; `ValidationError` when a query of that id is already here."""
        with self._lock:
            if query_id in self._states:
                raise ValidationError("queryId", "belongs to a query that is still running")
            self._states[query_id] = "Scheduled"

    def forget(self, query_id: str) -> None:
        """``query_id`` has ended (or will never run)."""
        with self._lock:
            self._states.pop(query_id, None)
            self._cancelled.discard(query_id)

    def status(self, query_id: str) -> str | None:
        """``Scheduled`` or ``Running`` while the query is here, else None."""
        with self._lock:
            return self._states.get(query_id)

    def run(
        self,
        text: str,
        start: datetime,
        end: datetime,
        *,
        limit: int = DEFAULT_LIMIT,
        next_token: str | None = None,
        query_id: str | None = None,
        bodies_allowed: bool = True,
    ) -> QueryResult:
        """Run ``text`` over the runner's workspace; `Forbidden` when it reads a body and
        ``bodies_allowed`` is false (the caller's key lacks the ``bodies`` permission)."""
        if not isinstance(text, str) or not text.strip():
            raise ValidationError("queryString", "is required (a Logs Insights query)")
        if len(text) > 10_000:
            raise ValidationError("queryString", "is longer than the limit of 10000 characters")
        if not 1 <= limit <= MAX_LIMIT:
            raise ValidationError("limit", f"must be between 1 and {MAX_LIMIT}")
        offset = 0
        if next_token:  # the next page of the same query over the same range
            offset, start, end = _from_token(next_token, text)
        if end <= start:
            raise ValidationError("endTime", "must be after startTime")
        query_id = query_id or str(uuid.uuid4())
        with self._lock:
            self._states[query_id] = "Running"
        try:
            return self._run(text, start, end, limit, offset, query_id, bodies_allowed)
        finally:
            self.forget(query_id)

    def _run(
        self,
        text: str,
        start: datetime,
        end: datetime,
        limit: int,
        offset: int,
        query_id: str,
        bodies_allowed: bool = True,
    ) -> QueryResult:
        with _as_query_string():
            compiled = compile_query(
                parse_query(text),
                dialect=self.engine.dialect,
                schema=self.schema,
                workspace=self.workspace,
                start=start,
                end=end,
                limit=limit + 1,
                offset=offset,
                database=getattr(self.engine, "database", None),
                bodies_allowed=bodies_allowed,
                log_groups=self.log_groups() if self.log_groups is not None else (),
            )
        try:
            rows = self._execute(compiled.sql, query_id).rows
            matched = self._matched(compiled, query_id, offset, rows, limit)
            self._check(query_id)
            scanned, size = self.engine.scanned(self.workspace, start, end)
        except QueryCancelled:
            return QueryResult(query_id, "Cancelled", list(compiled.fields), [], [])
        except QueryFailed as exc:  # the language accepted it, the engine did not
            raise ValidationError("queryString", exc.reason) from None
        more = len(rows) > limit
        token = _token(offset + limit, text, start, end) if more else None
        stats = {"recordsMatched": matched, "recordsScanned": scanned, "bytesScanned": size}
        return QueryResult(
            query_id,
            "Complete",
            list(compiled.fields),
            list(compiled.kinds),
            rows[:limit],
            stats,
            token,
        )

    def cancel(self, query_id: str, patience_s: float = 10.0) -> bool:
        """Stop query ``query_id`` if it is here: one still waiting for a thread never
        starts; a running one is interrupted in the engine, and if it is between two engine
        statements, it stops before the next (`_check`)."""
        with self._lock:
            if query_id not in self._states:
                return False
            self._cancelled.add(query_id)
        deadline = time.monotonic() + patience_s
        while self.status(query_id) == "Running" and time.monotonic() < deadline:
            if self.engine.cancel(query_id):
                break
            time.sleep(0.01)  # compiling, or between statements: it checks before the next
        return True

    def _check(self, query_id: str) -> None:
        with self._lock:
            if query_id in self._cancelled:
                raise QueryCancelled(query_id)

    def _execute(self, sql: str, query_id: str) -> Any:
        self._check(query_id)
        return self.engine.execute(sql, query_id)

    def _matched(
        self,
        compiled: CompiledQuery,
        query_id: str,
        offset: int,
        rows: list[tuple[Any, ...]],
        limit: int,
    ) -> float:
        """Records that passed the query's filters: counted by the same FROM … WHERE over the
        records table (exact)."""
        counting = matched_count_sql(compiled)
        if counting is None:
            return float(len(rows))
        result = self._execute(counting, query_id)
        return float(result.rows[0][0]) if result.rows else 0.0


def matched_count_sql(compiled: CompiledQuery) -> str | None:
    """``SELECT count(*)`` over the innermost select that reads ``records``, keeping its joins
    and WHERE: what CloudWatch calls records matched."""
    for select in compiled.tree.find_all(exp.Select):
        source = select.args.get("from") or select.args.get("from_")
        target = source.this if source is not None else None
        if isinstance(target, exp.Table) and target.name == "records":
            count = select.copy()
            count.set("expressions", [exp.Count(this=exp.Star())])
            for key in ("group", "order", "limit", "offset", "having", "qualify", "distinct"):
                count.set(key, None)
            return str(count.sql(dialect=compiled.dialect))
    return None


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=6).hexdigest()


def _token(offset: int, text: str, start: datetime, end: datetime) -> str:
    """The next page: its offset, the time range (a ``since`` range stays fixed) and the
    query it belongs to."""
    raw = f"{offset}:{_micros(start)}:{_micros(end)}:{_digest(text)}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _micros(when: datetime) -> int:
    return round(when.timestamp() * 1_000_000)


def _from_token(token: str, text: str) -> tuple[int, datetime, datetime]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        offset, start, end, digest = raw.split(":", 3)
        value = int(offset)
        begin = datetime.fromtimestamp(int(start) / 1_000_000, UTC)
        finish = datetime.fromtimestamp(int(end) / 1_000_000, UTC)
    except (ValueError, UnicodeDecodeError, OverflowError, OSError):
        raise ValidationError("nextToken", "is not a token this server gave") from None
    if digest != _digest(text) or not 0 <= value <= 10**9:
        raise ValidationError("nextToken", "belongs to another query")
    return value, begin, finish


class SavedQueries:
    """Named queries (``queryDefinition``s) of one workspace in the StateStore."""

    def __init__(self, state: StateStore, workspace: str = DEFAULT_WORKSPACE) -> None:
        self.state = state
        self.workspace = workspace
        self.namespace = SAVED if workspace == DEFAULT_WORKSPACE else f"{SAVED}/{workspace}"

    def put(
        self,
        name: str,
        query: str,
        description: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Save ``query`` as ``name``; ``extra`` members are kept beside it (the AWS-shaped
        API's ``queryDefinitionId``, ``logGroupNames`` …)."""
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValidationError(
                "name", "must be 1 to 128 characters: letters, digits, space, _ . - /"
            )
        with _as_query_string():
            parse_query(query)  # a saved query must at least parse
        value = {**(extra or {}), "name": name, "queryString": query, "description": description}
        self.state.put(self.namespace, name, value)
        return value

    def get(self, name: str) -> dict[str, Any]:
        value = self.state.get(self.namespace, name)
        if value is None:
            raise NotFound(f"no saved query named {name!r}")
        return dict(value)

    def list(self) -> list[dict[str, Any]]:
        return list(self.state.list(self.namespace).values())

    def delete(self, name: str) -> None:
        if not self.state.delete(self.namespace, name):
            raise NotFound(f"no saved query named {name!r}")


@contextlib.contextmanager
def _as_query_string() -> Iterator[None]:
    """A query the language refuses is the request's ``queryString`` at fault (the field the
    API and `GetQueryResults` callers sent), with the line, column and caret of the error."""
    try:
        yield
    except QueryError as exc:
        exc.field = "queryString"
        exc.args = (f"queryString: {exc.message}",)
        raise
