"""Two ``llmtrail serve`` processes on one ClickHouse server, as behind a load balancer.

Runs only when ``CLICKHOUSE_URL`` names a ClickHouse server (chdb lets one process own its
directory, so two processes cannot share it; `test_servers_share_clickhouse` shows the same
behaviour with two runtimes in one process on chdb, in every run). Both servers get one
database, one server secret and ``[store] refresh_s = 1``.
"""

from __future__ import annotations

import json
import os
import secrets
import time
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import openai
import pytest

from tests.harness import ServerProcess
from tests.store.conftest import store_url
from tests.store.test_server_on_both_engines import _otlp_span, call, query

pytestmark = pytest.mark.skipif(
    not os.environ.get("CLICKHOUSE_URL"), reason="needs a ClickHouse server: CLICKHOUSE_URL"
)
REFRESH_S = 1


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, ...]]:
    root = tmp_path_factory.mktemp("two-processes")
    url, env = store_url(os.environ["CLICKHOUSE_URL"], f"two_{uuid.uuid4().hex[:12]}")
    env = {
        **env,
        "LLMTRAIL_STORE__URL": url,
        "LLMTRAIL_STORE__REFRESH_S": str(REFRESH_S),
        "LLMTRAIL_SERVER__SECRET_ENV": "LLMTRAIL_TEST_SHARED_SECRET",
        "LLMTRAIL_TEST_SHARED_SECRET": secrets.token_urlsafe(48),
    }
    with (
        ServerProcess(root / "a", env=env) as a,
        ServerProcess(root / "b", env=env) as b,
    ):
        yield a, b


def count(server: ServerProcess, condition: str) -> int:
    """How many records of the last two days match ``condition`` (a query filter)."""
    rows = query(server, f"filter {condition} | stats count(*) as n")
    return int(rows[0]["n"]) if rows else 0


def test_a_resend_to_the_other_server_is_stored_once(servers: tuple[ServerProcess, ...]) -> None:
    a, b = servers
    request_id = f"resend-{uuid.uuid4().hex[:8]}"
    doc = {
        "requestId": request_id,
        "timestamp": datetime.now(UTC).isoformat(),
        "modelId": "sim/a",
        "input": {"inputTokenCount": 5},
    }
    first = call(a, "POST", "/api/records", json.dumps(doc).encode())
    assert first["stored"] == 1
    a.settle()
    b.settle()
    call(b, "POST", "/api/records", json.dumps(doc).encode())  # stored or duplicate: never twice
    b.settle()
    mine = f'requestId = "{request_id}"'
    assert count(a, mine) == count(b, mine) == 1
    time.sleep(3 * REFRESH_S)  # b's view has refreshed: the resend is answered duplicate
    again = call(b, "POST", "/api/records", json.dumps(doc).encode())
    assert again["duplicate"] == 1 and again["stored"] == 0


def test_a_span_sent_to_b_merges_into_the_call_a_relayed(
    servers: tuple[ServerProcess, ...],
) -> None:
    a, b = servers
    trace_id, wrapper = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    with openai.OpenAI(
        base_url=a.url + "/v1",
        api_key="sk-test",
        max_retries=0,
        default_headers={"traceparent": f"00-{trace_id}-{wrapper}-01"},
    ) as client:
        client.chat.completions.create(
            model="sim/gpt", messages=[{"role": "user", "content": "go"}]
        )
    a.settle()
    time.sleep(3 * REFRESH_S)
    span = _otlp_span(trace_id, wrapper, None, "chat sim/gpt", time.time_ns(), 5, "llm")
    span["attributes"] = [
        {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
        {"key": "gen_ai.request.model", "value": {"stringValue": "sim/gpt"}},
        {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "3"}},
    ]
    body = {"resourceSpans": [{"scopeSpans": [{"scope": {"name": "t"}, "spans": [span]}]}]}
    request = urllib.request.Request(
        b.url + "/v1/traces",
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as answer:
        assert answer.headers.get("x-llmtrail-merged") == "1"
    b.settle()
    assert count(b, f'trace.traceId = "{trace_id}"') == 1  # one call, one record
