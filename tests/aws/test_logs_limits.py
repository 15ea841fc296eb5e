"""The ``logs`` operations at their limits, on a server of their own with 10,050 records and a
query pool of one thread and one waiting place (``[query] concurrency = 1, queued = 1``):

* StartQuery's ``limit`` beyond the query API's 10,000 rows: GetQueryResults pages of
  10,000 continue by ``nextToken`` with the rows ``POST /api/query`` pages the same way;
* FilterLogEvents' pages hold at most 1 MB of messages, whatever the ``limit``;
* queries that never end by themselves (an unnest cross join of 200⁵ rows, as
  tests/test_query_concurrency.py uses): one runs, one waits, a third is refused with
  LimitExceededException; StopQuery stops the waiting one and the running one (both
  ``Cancelled``), and the pool serves the next query. Nothing waits on wall-clock time: the
  queries never end unless stopped, so "while they run" is an order, not a duration.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from llmtrail.record import format_timestamp
from tests.aws.conftest import aws_client
from tests.aws.test_logs_support import GROUP, api_records, code, finished, rows_of
from tests.harness import ServerProcess, call

CONFIG = "account_id = '123456789012'\n[query]\ntimeout_s = 3600\nconcurrency = 1\nqueued = 1\n"
RECORDS = 10_050
ENDLESS = (  # 200⁵ = 3.2·10¹¹ rows for the one record that has items: never ends here
    "unnest input.inputBodyJson.items into a | unnest input.inputBodyJson.items into b "
    "| unnest input.inputBodyJson.items into c | unnest input.inputBodyJson.items into d "
    "| unnest input.inputBodyJson.items into e | stats count(*) as n"
)
GIVE_UP = 120.0  # seconds: only so that a broken server fails the test instead of hanging


def doc(i: int, now: datetime, **extra: Any) -> dict[str, Any]:
    return {
        "schemaType": "ModelInvocationLog",
        "schemaVersion": "1.0",
        "timestamp": format_timestamp(
            now - timedelta(minutes=50) + timedelta(milliseconds=250 * i)
        ),
        "requestId": f"limits-{i:05d}",
        "operation": "Converse",
        "modelId": f"sim/m{i % 7}",
        "input": {"inputTokenCount": i % 50},
        "output": {"outputTokenCount": i % 30},
        "latencyMs": i % 100,
        "requestMetadata": {"tenant_id": f"t{i % 13}"},
        **extra,
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("logs-limits") / "data"
    now = datetime.now(UTC)
    docs = [doc(i, now) for i in range(RECORDS)]
    items = {"inputBodyJson": {"items": list(range(200))}, "inputTokenCount": 1}
    docs.append(doc(RECORDS, now, input=items))
    with ServerProcess(data, config=CONFIG) as proc:
        status, answer = call(proc.url, "POST", "/api/records", docs)
        assert status == 200 and answer["stored"] == len(docs), answer
        proc.settle()
        yield proc


@pytest.fixture
def logs(server: ServerProcess) -> Iterator[Any]:
    client = aws_client(server.url, "logs")
    yield client
    client.close()


def window() -> dict[str, int]:
    now = int(time.time())
    return {"startTime": now - 7200, "endTime": now + 60}


def test_a_limit_beyond_ten_thousand_rows(server: ServerProcess, logs: Any) -> None:
    text = "fields @requestId, latencyMs | sort @timestamp asc"
    started = logs.start_query(logGroupName=GROUP, queryString=text, limit=10_020, **window())
    first = finished(logs, started["queryId"])
    assert len(first["results"]) == 10_000 and "nextToken" in first
    second = logs.get_query_results(queryId=started["queryId"], nextToken=first["nextToken"])
    assert len(second["results"]) == 20 and "nextToken" not in second
    # llmtrail's query API pages the same query the same way
    body: dict[str, Any] = {"queryString": text, **window(), "limit": 10_000}
    body["endTime"] += 1
    status, api_first = call(server.url, "POST", "/api/query", body)
    assert status == 200, api_first
    status, api_second = call(
        server.url, "POST", "/api/query", {**body, "nextToken": api_first["nextToken"]}
    )
    assert status == 200, api_second
    expected = rows_of(api_first) + rows_of(api_second)[:20]
    assert rows_of(first) + rows_of(second) == expected
    assert first["statistics"]["recordsMatched"] == api_first["statistics"]["recordsMatched"]
    # the default limit is 10,000 rows, all of them in one GetQueryResults
    default = logs.start_query(logGroupName=GROUP, queryString=text, **window())
    whole = finished(logs, default["queryId"])
    assert rows_of(whole) == rows_of(api_first) and "nextToken" not in whole


def test_a_page_of_events_holds_at_most_a_megabyte(server: ServerProcess, logs: Any) -> None:
    seen: list[str] = []
    params: dict[str, Any] = {"logGroupName": GROUP}
    pages = 0
    while True:
        page = logs.filter_log_events(**params)
        pages += 1
        assert sum(len(e["message"]) for e in page["events"]) <= 1_048_576
        seen += [e["eventId"] for e in page["events"]]
        if "nextToken" not in page:
            break
        params["nextToken"] = page["nextToken"]
    expected = api_records(server.url)
    assert pages > 1  # 10,051 records of about 700 bytes: more than one megabyte
    assert seen == [r["recordId"] for r in expected] and len(seen) == RECORDS + 1
    assert [json.loads(e["message"]) for e in page["events"]] == expected[-len(page["events"]) :]


def status_of(logs: Any, query_id: str) -> str:
    return str(logs.get_query_results(queryId=query_id)["status"])


def wait_for(logs: Any, query_id: str, status: str) -> None:
    deadline = time.monotonic() + GIVE_UP
    while status_of(logs, query_id) != status:
        assert time.monotonic() < deadline, (query_id, status)
        time.sleep(0.02)


def test_the_query_pool_refuses_beyond_its_limit_and_stop_query_frees_it(logs: Any) -> None:
    started: list[str] = []
    try:
        running = logs.start_query(logGroupName=GROUP, queryString=ENDLESS, **window())
        started.append(running["queryId"])
        wait_for(logs, running["queryId"], "Running")  # the one query thread took it
        waiting = logs.start_query(logGroupName=GROUP, queryString=ENDLESS, **window())
        started.append(waiting["queryId"])
        assert status_of(logs, waiting["queryId"]) == "Scheduled"  # the one waiting place
        with pytest.raises(ClientError) as caught:
            logs.start_query(logGroupName=GROUP, queryString="stats count(*)", **window())
        assert code(caught) == "LimitExceededException"
        # the refused query is nowhere; the two others are listed as they are
        listed = {q["queryId"]: q["status"] for q in logs.describe_queries()["queries"]}
        listed = {k: v for k, v in listed.items() if v in ("Scheduled", "Running")}
        assert listed == {running["queryId"]: "Running", waiting["queryId"]: "Scheduled"}
        # stop the waiting one, then the running one
        assert logs.stop_query(queryId=waiting["queryId"])["success"] is True
        assert status_of(logs, waiting["queryId"]) == "Cancelled"
        assert status_of(logs, running["queryId"]) == "Running"
        assert logs.stop_query(queryId=running["queryId"])["success"] is True
        stopped = logs.get_query_results(queryId=running["queryId"])
        assert stopped["status"] == "Cancelled" and stopped["results"] == []
        with pytest.raises(ClientError) as caught:
            logs.stop_query(queryId=running["queryId"])
        assert code(caught) == "InvalidParameterException"
        cancelled = logs.describe_queries(status="Cancelled")["queries"]
        assert {q["queryId"] for q in cancelled} == set(started)
        # the pool is free again: the next query runs to the end
        after = logs.start_query(logGroupName=GROUP, queryString="stats count(*) as n", **window())
        assert rows_of(finished(logs, after["queryId"])) == [{"n": str(RECORDS + 1)}]
    finally:
        for query_id in started:  # never leave an endless query behind
            if status_of(logs, query_id) in ("Scheduled", "Running"):
                logs.stop_query(queryId=query_id)
