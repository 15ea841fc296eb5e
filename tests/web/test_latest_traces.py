"""The traces page's first page found over a narrow window is the whole range's first page."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from llmtrail.span import Span
from llmtrail.store.memory import MemorySpanStore
from llmtrail.store.spans import TraceQuery
from llmtrail.web.traces import latest_traces

END = datetime(2026, 12, 6, tzinfo=UTC)


class Counting(MemorySpanStore):
    def __init__(self) -> None:
        super().__init__()
        self.asked: list[TraceQuery] = []

    def find_traces(self, query: TraceQuery):  # type: ignore[no-untyped-def]
        self.asked.append(query)
        return super().find_traces(query)


@pytest.fixture
def store() -> Counting:
    spans = Counting()
    ages = [timedelta(minutes=m) for m in (1, 5, 20, 50)]  # within the last hour
    ages += [timedelta(hours=h) for h in (2, 5, 30, 100, 300)]
    spans.append(
        [
            Span(
                f"{i + 1:032x}",
                f"{i + 1:016x}",
                f"t{i}",
                END - age,
                END - age + timedelta(seconds=1),
            )
            for i, age in enumerate(ages)
        ]
    )
    return spans


@pytest.mark.parametrize("limit", [1, 3, 4, 5, 8, 9, 20])
def test_the_first_page_and_the_next_are_the_whole_ranges(store: Counting, limit: int) -> None:
    query = TraceQuery(start=END - timedelta(days=30), end=END, limit=limit)
    expected = store.find_traces(query)
    store.asked.clear()
    page = latest_traces(store, query)
    assert [t.trace_id for t in page.traces] == [t.trace_id for t in expected.traces]
    assert page.next_cursor == expected.next_cursor
    if limit < 4:  # the last hour held more than the page: one narrow question answered it
        assert len(store.asked) == 1 and store.asked[0].start == END - timedelta(hours=1)
    if page.next_cursor is not None:
        following = latest_traces(store, replace(query, cursor=page.next_cursor))
        assert following == store.find_traces(replace(query, cursor=page.next_cursor))
