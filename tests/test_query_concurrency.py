"""Slow queries never hold up ingest or cancellation.

Against a running ``llmtrail serve`` whose queries run on a pool of their own (``[query]
concurrency = 3``, ``queued = 3``): six queries that cannot end by themselves (an unnest cross
join of 200⁵ rows per record, under a time limit far beyond the test) hold every query
thread and waiting place. Meanwhile a seventh query is refused at once with 429
LimitExceededException and ``Retry-After``; a one-record ingest is acknowledged; a running
query and a waiting one are each cancelled (``cancelled: true``, and their own requests answer
``Cancelled``) while the other queries are still running. No assertion is on wall-clock time:
the queries never end unless cancelled, so "while they run" is an ordering, not a duration.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from llmtrail.record import format_timestamp
from tests.harness import ServerProcess

NOW = datetime.now(UTC).replace(microsecond=0)
GIVE_UP = 120.0  # seconds: only so that a broken server fails the test instead of hanging
ENDLESS = (  # 200⁵ = 3.2·10¹¹ rows for the one record: never ends within the test
    "unnest input.inputBodyJson.items into a | unnest input.inputBodyJson.items into b "
    "| unnest input.inputBodyJson.items into c | unnest input.inputBodyJson.items into d "
    "| unnest input.inputBodyJson.items into e | stats count(*) as n"
)
CONFIG = "[query]\ntimeout_s = 3600\nconcurrency = 3\nqueued = 3\n"


def doc(request_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "schemaType": "ModelInvocationLog",
        "schemaVersion": "1.0",
        "timestamp": format_timestamp(NOW - timedelta(minutes=1)),
        "requestId": request_id,
        "operation": "Converse",
        "modelId": "amazon.nova-lite-v1:0",
        **extra,
    }


def call(url: str, method: str, path: str, body: Any = None) -> tuple[int, Any, Any]:
    """Status, JSON answer and headers of one request (error answers included)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url + path, data=data, method=method, headers={"content-type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=GIVE_UP * 2) as response:
            return response.status, json.loads(response.read()), response.headers
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read() or b"null"), error.headers


class Query(threading.Thread):
    """One ``POST /api/query`` on a thread of the test; ``answer`` once it has returned."""

    def __init__(self, url: str, query_id: str) -> None:
        super().__init__(daemon=True)
        self.url, self.query_id = url, query_id
        self.answer: tuple[int, Any] | None = None

    def run(self) -> None:
        body = {"queryString": ENDLESS, "since": "1d", "queryId": self.query_id}
        status, answer, _ = call(self.url, "POST", "/api/query", body)
        self.answer = (status, answer)


def status_of(url: str, query_id: str) -> str | None:
    status, answer, _ = call(url, "GET", f"/api/query/{query_id}")
    return answer["status"] if status == 200 else None


def wait_until(check: Any, what: str) -> None:
    deadline = time.monotonic() + GIVE_UP
    while not check():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.05)


@pytest.fixture
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("concurrency")
    with ServerProcess(root / "data", config=CONFIG) as proc:
        items = {"inputBodyJson": {"items": list(range(200))}, "inputTokenCount": 3}
        status, answer, _ = call(proc.url, "POST", "/api/records", [doc("items-1", input=items)])
        assert status == 200 and answer["stored"] == 1, answer
        proc.settle()
        yield proc


def test_ingest_and_cancel_are_not_held_up_by_slow_queries(server: ServerProcess) -> None:
    url = server.url
    queries = [Query(url, f"slow-{i}") for i in range(6)]
    try:
        for query in queries:
            query.start()
        states = lambda: [status_of(url, q.query_id) for q in queries]  # noqa: E731
        wait_until(
            lambda: sorted(map(str, states())) == ["Running"] * 3 + ["Scheduled"] * 3,
            "three queries running and three waiting",
        )
        running = [q for q, s in zip(queries, states(), strict=True) if s == "Running"]
        waiting = [q for q in queries if q not in running]

        # every thread and waiting place is taken: one more is refused at once
        status, answer, headers = call(url, "POST", "/api/query", {"queryString": ENDLESS})
        assert status == 429, answer
        assert answer["title"] == "LimitExceededException" and "concurrency 3" in answer["detail"]
        assert headers["retry-after"] == "1"

        # ingest is acknowledged while the queries run
        status, answer, _ = call(url, "POST", "/api/records", [doc("during-queries")])
        assert status == 200 and answer["stored"] == 1, answer
        assert all(q.answer is None for q in queries), "a query ended by itself"

        # a running query is cancelled while the others run
        target = running[0]
        status, answer, _ = call(url, "DELETE", f"/api/query/{target.query_id}")
        assert (status, answer) == (200, {"queryId": target.query_id, "cancelled": True})
        target.join(GIVE_UP)
        assert target.answer is not None and target.answer[0] == 200, target.answer
        assert target.answer[1]["status"] == "Cancelled"
        others = [q for q in queries if q is not target]
        assert all(q.answer is None for q in others), "a query ended by itself"

        # a waiting query (or one just started in the freed thread) is cancelled too
        target = waiting[-1]
        status, answer, _ = call(url, "DELETE", f"/api/query/{target.query_id}")
        assert (status, answer) == (200, {"queryId": target.query_id, "cancelled": True})
        target.join(GIVE_UP)
        assert target.answer is not None and target.answer[1]["status"] == "Cancelled"
        assert call(url, "GET", "/readyz")[0] == 200
    finally:
        for query in queries:
            if query.answer is None:
                call(url, "DELETE", f"/api/query/{query.query_id}")
        for query in queries:
            query.join(GIVE_UP)
    assert all(q.answer is not None and q.answer[1]["status"] == "Cancelled" for q in queries)
    assert call(url, "DELETE", "/api/query/slow-0")[1] == {"queryId": "slow-0", "cancelled": False}
    assert status_of(url, "slow-0") is None

    server.settle()  # acknowledged means spooled: wait until the store has it too
    status, answer, _ = call(url, "POST", "/api/query", {"queryString": "stats count(*) as n"})
    assert status == 200 and answer["status"] == "Complete", answer
    assert answer["results"] == [[{"field": "n", "value": "2"}]]
