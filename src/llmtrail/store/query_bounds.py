"""What one query may use, and how a query engine says that a query failed.

A query the language accepted can still fail in the engine: a value out of range
(``substr(x, 99999999999)``, an integer overflow), more memory than it may have, more time,
a result too large to send. None of that is the server's fault, and none of it may harm the
next request, so each engine bounds every query it runs by `QueryLimits` and turns what the
engine raises for the query itself into `QueryFailed`, which the surfaces answer as a 400
naming the query (``queryString``, ``filterPattern``). What breaks the engine rather than the
query (a lost connection, an invalidated database) is not a `QueryFailed`.

Bounds that no engine setting enforces are the compiler's (``llmtrail.query``): it keeps the
keys of ``sort``, ``stats … by`` and ``dedup`` short whatever the strings hold.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from llmtrail.errors import LlmtrailError

_VALUE_OVERHEAD = 16  # what a value other than text costs in a result, roughly


@dataclass
class QueryLimits:
    """``[query]`` in the configuration: the bounds of one Logs Insights query.

    ``memory_bytes`` is one query's working memory for sorts, joins and hash tables (beyond
    it DuckDB spills to disk and ClickHouse fails the query); ``temp_bytes`` bounds the
    spill files of all queries together, so that no query fills the disk the spool needs;
    ``database_memory_bytes`` bounds DuckDB's whole buffer pool (0: DuckDB's default, 80% of
    the machine's memory). ``threads`` is DuckDB's worker threads, reads and writes together
    (0: DuckDB's default, every core; 1 on a small machine keeps a heavy query or a batch
    insert off the core the relay runs on, at the cost of slower large queries).
    ``concurrency`` queries run at once on threads of their own, and
    ``queued`` more wait their turn; beyond those a query is refused (429), as Logs Insights
    answers LimitExceededException past its concurrent-query limit."""

    timeout_s: float = 120.0
    memory_bytes: int = 4 * 2**30
    result_bytes: int = 64 * 2**20
    temp_bytes: int = 16 * 2**30
    database_memory_bytes: int = 0
    threads: int = 0  # DuckDB's worker threads; 0: DuckDB's default (every core)
    concurrency: int = 4  # queries running at once, each on a thread of its own
    queued: int = 16  # queries waiting for one of those threads; beyond: 429


def engine_threads(limits: QueryLimits) -> int:
    """The worker threads DuckDB runs with: ``threads``, or one per core."""
    return limits.threads or os.cpu_count() or 1


class QueryFailed(LlmtrailError):
    """The engine refused or could not finish this query (→ 400): ``reason`` says why, in a
    sentence that names the limit when a limit was reached."""

    status = 400

    @property
    def reason(self) -> str:
        return str(self)


def engine_message(exc: BaseException) -> str:
    """The first line of an engine's error message, without the SQL it may quote after."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def timed_out(limits: QueryLimits) -> QueryFailed:
    return QueryFailed(
        f"the query ran longer than the limit of {limits.timeout_s:g} seconds; "
        "narrow the time range or filter earlier"
    )


def out_of_memory(limits: QueryLimits, exc: BaseException) -> QueryFailed:
    return QueryFailed(
        f"the query needs more memory than it may use (limit {limits.memory_bytes} bytes per "
        f"query, {limits.temp_bytes} bytes of spill files): {engine_message(exc)}"
    )


def result_too_large(limits: QueryLimits) -> QueryFailed:
    return QueryFailed(
        f"the result is larger than the limit of {limits.result_bytes} bytes; "
        "ask for fewer fields or a lower limit"
    )


def bounded_rows(
    batches: Iterable[list[tuple[Any, ...]]], limits: QueryLimits
) -> Iterator[tuple[Any, ...]]:
    """The rows of ``batches``, raising `QueryFailed` as soon as their text and values add up
    to more than ``limits.result_bytes`` (before the rest is fetched)."""
    size = 0
    for batch in batches:
        for row in batch:
            for value in row:
                if isinstance(value, str | bytes):
                    size += len(value)
                else:
                    size += _VALUE_OVERHEAD
            if size > limits.result_bytes:
                raise result_too_large(limits)
            yield row
