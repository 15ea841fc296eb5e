"""Contract suite for SpanStore: every backend passes the same tests.

The `backend` fixture yields a SpanStore and the RecordStore whose records it reads, sharing
one DuckDB file on the DuckDB backend and one database on ClickHouse (chdb, or
``CLICKHOUSE_URL``).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from llmtrail.errors import ValidationError
from llmtrail.record import InvocationRecord
from llmtrail.span import Span, SpanError
from llmtrail.store.duckdb import Database, DuckDBRecordStore
from llmtrail.store.duckdb.spans import DuckDBSpanStore
from llmtrail.store.interfaces import RecordStore, SpanStore
from llmtrail.store.memory import MemoryRecordStore, MemorySpanStore
from llmtrail.store.spans import TraceQuery

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
TRACE_A, TRACE_B, TRACE_C = "a" * 31 + "1", "b" * 31 + "2", "c" * 31 + "3"


@pytest.fixture(params=["memory", "duckdb", "clickhouse"])
def backend(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[SpanStore, RecordStore]]:
    spans: SpanStore
    records: RecordStore
    if request.param == "memory":
        records = MemoryRecordStore()
        spans = MemorySpanStore(records)
    elif request.param == "clickhouse":
        from llmtrail.store.clickhouse import ClickHouseDatabase, ClickHouseRecordStore
        from llmtrail.store.clickhouse.spans import ClickHouseSpanStore

        url = request.getfixturevalue("clickhouse_url")
        ch = ClickHouseDatabase.open(url, request.getfixturevalue("clickhouse_database"))
        records, spans = ClickHouseRecordStore(ch), ClickHouseSpanStore(ch)
    else:
        db = Database(tmp_path / "llmtrail.duckdb")
        records, spans = DuckDBRecordStore(db), DuckDBSpanStore(db)
    yield spans, records
    spans.close()
    records.close()


def at(ms: int) -> datetime:
    return T0 + timedelta(milliseconds=ms)


def span(trace_id: str, n: int, start: int, end: int, parent: int | None = None, **kw: Any) -> Span:
    """Span number ``n`` of a trace, from ``start`` to ``end`` ms after T0."""
    return Span(
        trace_id=trace_id,
        span_id=f"{n:016x}",
        parent_span_id=None if parent is None else f"{parent:016x}",
        name=kw.pop("name", f"step {n}"),
        start=at(start),
        end=at(end),
        **kw,
    )


def record(
    request_id: str, trace_id: str | None, n: int, start: int, latency: int, **extra: Any
) -> InvocationRecord:
    """A model call that is span number ``n`` of ``trace_id``, started ``start`` ms after T0."""
    doc: dict[str, Any] = {
        "schemaType": "ModelInvocationLog",
        "schemaVersion": "1.0",
        "timestamp": at(start).isoformat().replace("+00:00", "Z"),
        "requestId": request_id,
        "operation": "ChatCompletions",
        "modelId": "sim/echo",
        "input": {"inputTokenCount": 10 * n, "inputBodyJson": {"messages": [f"q{n}"]}},
        "output": {"outputTokenCount": n, "outputBodyJson": {"answer": f"a{n}"}},
        "latencyMs": latency,
        **extra,
    }
    if trace_id is not None:
        doc["trace"] = {
            "traceId": trace_id,
            "spanId": f"{n:016x}",
            "parentSpanId": f"{1:016x}",
            "spanKind": "llm",
        }
    return InvocationRecord.from_dict(doc, source="gateway")


def test_spans_round_trip_field_by_field(backend: tuple[SpanStore, RecordStore]) -> None:
    spans, _ = backend
    full = span(
        TRACE_A,
        2,
        10,
        250,
        parent=1,
        kind="tool",
        name="search_web",
        status="ERROR",
        error=SpanError("TimeoutError", "took too long", "Traceback …\n  line 3"),
        input={"query": "weather", "n": [1, 2.5, None, True]},
        output="plain text",
        attributes={"tool.name": "search_web", "retries": 3, "nested": {"a": [1]}},
        tags=("prod", "beta"),
        session_id="sess-1",
        app="support-bot",
        source="otlp",
    )
    bare = span(TRACE_A, 1, 0, 300, kind="workflow")
    assert spans.append([full, bare]) == 2
    got = spans.get_trace(TRACE_A)
    assert got == [bare, full]  # ordered by start
    assert got[1].duration_ms == 240
    assert got[1].to_dict()["error"] == {
        "type": "TimeoutError",
        "message": "took too long",
        "stackTrace": "Traceback …\n  line 3",
    }


def test_a_trace_is_the_union_of_spans_and_traced_records(
    backend: tuple[SpanStore, RecordStore],
) -> None:
    spans, records = backend
    records.append(
        [
            record("r2", TRACE_A, 2, 20, 100, requestMetadata={"application_name": "bot"}),
            record("r3", TRACE_A, 3, 200, 50, status="ERROR", error={"type": "RateLimited"}),
            record("other-trace", TRACE_B, 4, 0, 10),
            record("untraced", None, 5, 0, 10),
        ]
    )
    spans.append([span(TRACE_A, 1, 0, 400, kind="agent", name="answer")])
    got = spans.get_trace(TRACE_A)
    assert [(s.span_id[-1], s.kind, s.name) for s in got] == [
        ("1", "agent", "answer"),
        ("2", "llm", "ChatCompletions sim/echo"),
        ("3", "llm", "ChatCompletions sim/echo"),
    ]
    call = got[1]
    assert call.record is not None and call.record.request_id == "r2"
    assert (call.start, call.end) == (at(20), at(120))
    assert call.parent_span_id == f"{1:016x}"
    assert call.input == {"messages": ["q2"]} and call.output == {"answer": "a2"}
    assert call.app == "bot" and call.source == "gateway"
    assert got[2].status == "ERROR" and got[2].error == SpanError("RateLimited")
    assert [s.record.request_id for s in spans.get_trace(TRACE_B) if s.record] == ["other-trace"]
    assert spans.get_trace(TRACE_C) == []


def test_a_record_wins_over_a_span_with_its_span_id(backend: tuple[SpanStore, RecordStore]) -> None:
    spans, records = backend
    records.append([record("r2", TRACE_A, 2, 20, 100)])
    spans.append([span(TRACE_A, 1, 0, 400), span(TRACE_A, 2, 20, 120, kind="llm", name="dup")])
    got = spans.get_trace(TRACE_A)
    assert len(got) == 2 and got[1].record is not None and got[1].name != "dup"
    (summary,) = spans.find_traces(TraceQuery()).traces
    assert (summary.span_count, summary.llm_calls) == (2, 1)


def test_a_span_sent_again_replaces_the_earlier_one(backend: tuple[SpanStore, RecordStore]) -> None:
    spans, _ = backend
    spans.append([span(TRACE_A, 1, 0, 100, name="first")])
    spans.append([span(TRACE_A, 1, 0, 200, name="second")])
    spans.append([span(TRACE_A, 2, 0, 10, name="x"), span(TRACE_A, 2, 0, 20, name="y")])
    got = spans.get_trace(TRACE_A)
    assert [(s.name, s.duration_ms) for s in got] == [("second", 200), ("y", 20)]
    (summary,) = spans.find_traces(TraceQuery()).traces
    assert summary.span_count == 2 and summary.duration_ms == 200


def test_workspaces_are_apart(backend: tuple[SpanStore, RecordStore]) -> None:
    spans, _ = backend
    spans.append([span(TRACE_A, 1, 0, 10, workspace="team-a"), span(TRACE_A, 1, 0, 99)])
    assert [s.duration_ms for s in spans.get_trace(TRACE_A, "team-a")] == [10]
    assert [s.duration_ms for s in spans.get_trace(TRACE_A)] == [99]
    assert spans.find_traces(TraceQuery(workspace="nobody")).traces == []
    (only,) = spans.find_traces(TraceQuery(workspace="team-a")).traces
    assert only.workspace == "team-a" and only.duration_ms == 10


def _three_traces(spans: SpanStore, records: RecordStore) -> None:
    """A: agent run with two model calls, one failed tool (root OK), app and session from
    the spans; B: a lone failed model call; C: a slow workflow in another session."""
    spans.append(
        [
            span(TRACE_A, 1, 0, 1500, kind="agent", name="agent run", app="bot"),
            span(TRACE_A, 4, 700, 800, parent=1, kind="tool", status="ERROR", session_id="s1"),
            span(TRACE_C, 1, 60_000, 65_000, kind="workflow", name="nightly", session_id="s2"),
        ]
    )
    records.append(
        [
            record("r2", TRACE_A, 2, 100, 400),
            record("r3", TRACE_A, 3, 900, 500),
            record("r9", TRACE_B, 9, 30_000, 250, status="ERROR", error={"type": "Throttled"}),
        ]
    )
    # B's record names a parent that never arrived: it is still the trace's root
    # (the earliest span once no span lacks a parent)


def test_trace_summaries(backend: tuple[SpanStore, RecordStore]) -> None:
    spans, records = backend
    _three_traces(spans, records)
    page = spans.find_traces(TraceQuery())
    assert [t.trace_id for t in page.traces] == [TRACE_C, TRACE_B, TRACE_A]
    assert page.next_cursor is None
    c, b, a = page.traces
    assert a.to_dict() == {
        "traceId": TRACE_A,
        "workspace": "default",
        "name": "agent run",
        "start": "2026-11-23T10:00:00.000Z",
        "end": "2026-11-23T10:00:01.500Z",
        "durationMs": 1500,
        "status": "OK",
        "spanCount": 4,
        "llmCalls": 2,
        "errorCount": 1,
        "inputTokens": 50,
        "outputTokens": 5,
        "sessionId": "s1",
        "app": "bot",
    }
    assert a.has_error
    assert (b.name, b.status, b.span_count, b.llm_calls, b.error_count) == (
        "ChatCompletions sim/echo",
        "ERROR",
        1,
        1,
        1,
    )
    assert (b.input_tokens, b.output_tokens, b.duration_ms, b.app) == (90, 9, 250, None)
    assert (c.name, c.duration_ms, c.session_id, c.llm_calls) == ("nightly", 5000, "s2", 0)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (TraceQuery(start=at(0), end=at(30_000)), ["A"]),
        (TraceQuery(start=at(1)), ["C", "B"]),  # A started before: it is not in the window
        (TraceQuery(end=at(60_000)), ["B", "A"]),
        (TraceQuery(app="bot"), ["A"]),
        (TraceQuery(session_id="s2"), ["C"]),
        (TraceQuery(status="ERROR"), ["B"]),
        (TraceQuery(status="OK"), ["C", "A"]),
        (TraceQuery(has_error=True), ["B", "A"]),
        (TraceQuery(has_error=False), ["C"]),
        (TraceQuery(min_duration_ms=1500), ["C", "A"]),
        (TraceQuery(min_duration_ms=1501), ["C"]),
        (TraceQuery(has_error=True, min_duration_ms=300, end=at(10)), ["A"]),
    ],
)
def test_find_traces_filters(
    backend: tuple[SpanStore, RecordStore], query: TraceQuery, expected: list[str]
) -> None:
    spans, records = backend
    _three_traces(spans, records)
    names = {TRACE_A: "A", TRACE_B: "B", TRACE_C: "C"}
    assert [names[t.trace_id] for t in spans.find_traces(query).traces] == expected


def test_cursor_paging_visits_each_trace_once(backend: tuple[SpanStore, RecordStore]) -> None:
    spans, records = backend
    ids = [f"{i:032x}" for i in range(1, 24)]
    spans.append([span(t, 1, 1000 * (i // 3), 1000 * (i // 3) + 5) for i, t in enumerate(ids)])
    records.append([record(f"r{i}", ids[i], 2, 1000 * (i // 3), 1) for i in range(0, 23, 4)])
    seen: list[str] = []
    cursor = None
    while True:
        page = spans.find_traces(TraceQuery(limit=5, cursor=cursor))
        assert len(page.traces) <= 5
        seen += [t.trace_id for t in page.traces]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert sorted(seen) == ids and len(seen) == len(set(seen))
    starts = [t.start for t in spans.find_traces(TraceQuery(limit=100)).traces]
    assert starts == sorted(starts, reverse=True)


def test_bad_cursor_is_a_validation_error(backend: tuple[SpanStore, RecordStore]) -> None:
    spans, _ = backend
    with pytest.raises(ValidationError) as err:
        spans.find_traces(TraceQuery(cursor="!!not-a-cursor"))
    assert err.value.field == "cursor"


def test_duckdb_spans_survive_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "llmtrail.duckdb"
    store = DuckDBSpanStore(Database(path))
    store.append([span(TRACE_A, 1, 0, 10, attributes={"k": "v"})])
    store.close()
    again = DuckDBSpanStore(Database(path))
    try:
        assert again.get_trace(TRACE_A) == [span(TRACE_A, 1, 0, 10, attributes={"k": "v"})]
    finally:
        again.close()


# -- the span's JSON ---------------------------------------------------------------------------


def test_span_json_round_trip() -> None:
    original = span(
        TRACE_A,
        2,
        0,
        5,
        parent=1,
        kind="retrieval",
        status="ERROR",
        error=SpanError("KeyError", "'doc'"),
        input={"q": "x"},
        attributes={"k": 1},
        tags=("t",),
        session_id="s",
        app="a",
    )
    doc = original.to_dict()
    assert doc["start"] == "2026-11-23T10:00:00.000Z" and doc["durationMs"] == 5
    assert Span.from_dict(doc) == original
    assert Span.from_dict(doc, workspace="w", source="otlp").workspace == "w"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"traceId": "A" * 32}, "traceId"),
        ({"traceId": "a" * 33}, "traceId"),
        ({"traceId": "0" * 32}, "traceId"),
        ({"spanId": "abc"}, "spanId"),
        ({"parentSpanId": "x" * 16}, "parentSpanId"),
        ({"kind": "chain"}, "kind"),
        ({"status": "CANCELLED"}, "status"),
        ({"start": "yesterday"}, "start"),
        ({"end": "2026-11-23T09:00:00Z"}, "end"),
        ({"name": ""}, "name"),
        ({"name": "n" * 1025}, "name"),
        ({"tags": ["ok", 3]}, "tags[1]"),
        ({"attributes": [1]}, "attributes"),
        ({"error": "boom"}, "error"),
        ({"sessionId": "s" * 257}, "sessionId"),
    ],
)
def test_bad_span_json_names_the_field(change: dict[str, Any], field: str) -> None:
    doc = span(TRACE_A, 2, 0, 5, parent=1).to_dict() | change
    with pytest.raises(ValidationError) as err:
        Span.from_dict(doc)
    assert err.value.field == field


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 10_001}, "limit"),
        ({"min_duration_ms": -1}, "minDurationMs"),
        ({"status": "FAILED"}, "status"),
    ],
)
def test_bad_trace_query_names_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as err:
        TraceQuery(**kwargs)
    assert err.value.field == field
