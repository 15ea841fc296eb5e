"""One request never breaks the server for the next one, on the query side.

Against a running ``llmtrail serve``: a 10 MB ``modelId`` is refused on ingest and on every
gateway route, in each route's own error shape, naming the field and the limit; text that
may be long (a 10 MB error message) still goes through ``dedup``, ``stats … by`` and
``sort``; queries the engine refuses or that run past their time are 400s naming the query;
and after each of them the same server answers queries and takes records.

Then a fatal DuckDB error on a server run in this process (uvicorn on a thread, the real app
and runtime): DuckDB's own checkpoint failure (``debug_checkpoint_abort``, the way a full disk
fails it) strikes the automatic checkpoint after the pipeline's next commit, which
invalidates the database. ``/readyz`` answers 503 while the database is reopened, queries
answer 503, ingest is still acknowledged (the spool holds it), and afterwards every record
acknowledged before, during and after is there exactly once. A reader held open by the test
keeps the reopen waiting (DuckDB reopens a file only once every connection to it is
closed), so the 503 is seen without any timing.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anthropic
import duckdb
import openai
import pytest
import uvicorn

from llmtrail.config import load_settings
from llmtrail.record import MODEL_ID_MAX, format_timestamp
from llmtrail.server.app import create_app
from llmtrail.server.runtime import Runtime
from tests.harness import ServerProcess, call

NOW = datetime.now(UTC).replace(microsecond=0)
TEN_MB = 10 * 2**20
GIVE_UP = 60.0  # seconds: only so that a broken server fails the test instead of hanging
ITEMS = 200
CROSS_JOIN = (  # 6.4·10¹³ rows per record: hours on any engine, so it always meets the limit
    "unnest input.inputBodyJson.items into a | unnest input.inputBodyJson.items into b "
    "| unnest input.inputBodyJson.items into c | unnest input.inputBodyJson.items into d "
    "| unnest input.inputBodyJson.items into e | unnest input.inputBodyJson.items into f "
    "| stats count(*) as n"
)


def doc(request_id: str, minutes_ago: int = 1, **extra: Any) -> dict[str, Any]:
    return {
        "schemaType": "ModelInvocationLog",
        "schemaVersion": "1.0",
        "timestamp": format_timestamp(NOW - timedelta(minutes=minutes_ago)),
        "requestId": request_id,
        "operation": "Converse",
        "modelId": "amazon.nova-lite-v1:0",
        **extra,
    }


def query(url: str, text: str) -> tuple[int, Any]:
    return call(url, "POST", "/api/query", {"queryString": text, "since": "1d"})


def rows(answer: dict[str, Any]) -> list[dict[str, Any]]:
    return [{c["field"]: c["value"] for c in row} for row in answer["results"]]


def still_working(url: str, request_id: str) -> None:
    """The server takes a record and answers queries about it."""
    status, answer = call(url, "POST", "/api/records", doc(request_id))
    assert status == 200 and answer["stored"] == 1, answer
    deadline = time.monotonic() + GIVE_UP
    while True:
        status, answer = query(url, f'filter @requestId = "{request_id}" | stats count(*) as n')
        assert status == 200, answer
        if rows(answer) == [{"n": "1"}]:
            break
        assert time.monotonic() < deadline, "the record never became visible"
        time.sleep(0.05)
    assert call(url, "GET", "/readyz")[0] == 200


# -- a running server ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("poisoning")
    with ServerProcess(root / "data", config="[query]\ntimeout_s = 1\n") as proc:
        items = {"inputBodyJson": {"items": list(range(ITEMS))}, "inputTokenCount": 3}
        status, answer = call(proc.url, "POST", "/api/records", doc("items-1", input=items))
        assert status == 200 and answer["stored"] == 1
        yield proc


def test_an_over_long_model_id_is_rejected_on_ingest(server: ServerProcess) -> None:
    batch = [
        doc("too-long-model", modelId="x" * TEN_MB),
        doc("too-long-id" + "x" * 300),
        doc("fine-1"),
    ]
    status, answer = call(server.url, "POST", "/api/records", batch)
    assert status == 200
    assert (answer["stored"], answer["rejected"]) == (1, 2)
    model, request_id, fine = answer["results"]
    assert model["status"] == "rejected" and model["field"] == "modelId"
    assert f"the limit is {MODEL_ID_MAX} characters" in model["reason"]
    assert str(TEN_MB) in model["reason"]
    assert request_id["status"] == "rejected" and request_id["field"] == "requestId"
    assert "the limit is 256 characters" in request_id["reason"]
    assert fine["status"] == "stored"
    still_working(server.url, "after-ingest-refusal")


def test_long_text_goes_through_dedup_stats_and_sort(server: ServerProcess) -> None:
    """The poisoning query of the issue, on the longest text a record may still hold."""
    message = "m" * TEN_MB
    batch = [doc(f"long-{i}", error={"type": "server", "message": message}) for i in range(2)]
    assert call(server.url, "POST", "/api/records", batch)[1]["stored"] == 2
    server.settle()
    for text in (
        "fields error.message | dedup error.message",
        "fields modelId | dedup modelId",
        "stats count(*) as n by error.message",
        "fields strlen(error.message) as n | sort error.message desc | limit 2",
    ):
        status, answer = query(server.url, text)
        assert status == 200, (text, answer)
    status, answer = query(
        server.url, "filter ispresent(error.message) | stats count(*) as n by error.message"
    )
    assert [(len(r["error.message"]), r["n"]) for r in rows(answer)] == [(TEN_MB, "2")]
    still_working(server.url, "after-long-text")


@pytest.mark.parametrize(
    ("text", "field", "words"),
    [
        ("fields input.inputTokenCount * 9223372036854775807 as x", "queryString", "Overflow"),
        ("filter modelId like /a{1001}/", "queryString", "1001"),
        (CROSS_JOIN, "queryString", "longer than the limit of 1 seconds"),
        ("stats sum(count(*))", "queryString", "line 1, column 11"),
    ],
    ids=["overflow", "regex", "timeout", "nested-aggregate"],
)
def test_a_query_the_engine_cannot_run_is_a_400(
    server: ServerProcess, text: str, field: str, words: str
) -> None:
    status, answer = query(server.url, text)
    assert status == 400, answer
    assert answer["field"] == field and words in answer["detail"], answer
    still_working(server.url, f"after-{field}-{abs(hash(text))}")


def test_positions_beyond_any_text_answer_empty_text(server: ServerProcess) -> None:
    status, answer = query(
        server.url, 'filter @requestId = "items-1" | fields substr(modelId, 99999999999, 1) as s'
    )
    assert status == 200 and rows(answer) == [{"s": ""}]


def test_gateway_routes_refuse_an_over_long_model_id_in_their_own_shape(
    server: ServerProcess,
) -> None:
    model = "sim/" + "x" * TEN_MB
    message = [{"role": "user", "content": "hi"}]
    with (
        openai.OpenAI(base_url=server.url + "/v1", api_key="k", max_retries=0) as oa_client,
        pytest.raises(openai.BadRequestError) as oa,
    ):
        oa_client.chat.completions.create(model=model, messages=message)  # type: ignore[arg-type]
    assert oa.value.status_code == 400
    assert isinstance(oa.value.body, dict) and oa.value.body.get("param") == "model"
    assert f"the limit is {MODEL_ID_MAX} characters" in oa.value.message
    with (
        anthropic.Anthropic(base_url=server.url, api_key="k", max_retries=0) as an_client,
        pytest.raises(anthropic.BadRequestError) as an,
    ):
        an_client.messages.create(model=model, max_tokens=5, messages=message)  # type: ignore[arg-type]
    assert an.value.status_code == 400
    assert f"the limit is {MODEL_ID_MAX} characters" in an.value.message
    # botocore refuses a model id over 2,048 characters before sending: the wire request
    # is written here as boto3 would send it
    bedrock_id = urllib.parse.quote("x" * 5000, safe="")
    request = urllib.request.Request(
        f"{server.url}/model/{bedrock_id}/converse",
        data=json.dumps({"messages": [{"role": "user", "content": [{"text": "hi"}]}]}).encode(),
        headers={"content-type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as bd, urllib.request.urlopen(request, timeout=60):
        pass
    with bd.value:
        assert bd.value.code == 400
        assert bd.value.headers["x-amzn-ErrorType"] == "ValidationException"
        assert f"the limit is {MODEL_ID_MAX} characters" in json.loads(bd.value.read())["message"]
        bedrock_request_id = bd.value.headers["x-amzn-RequestId"]
    for request_id in (
        oa.value.response.headers["x-llmtrail-request-id"],
        an.value.response.headers["x-llmtrail-request-id"],
        bedrock_request_id,
    ):
        record = server.wait_for_record(request_id)
        assert len(record["modelId"]) == MODEL_ID_MAX  # what a record keeps of it
        assert record["errorCode"] == "ValidationException" and record["status"] == "ERROR"
    still_working(server.url, "after-gateway-refusals")


# -- a fatal DuckDB error on a server in this process -------------------------------------


class InProcessServer:
    """The real app and runtime behind uvicorn on a thread, so that the test can reach the
    server's own DuckDB connection."""

    def __init__(self, data_dir: Path) -> None:
        settings = load_settings(env={}, overrides={"data_dir": str(data_dir)})
        self.runtime = Runtime(settings)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        config = uvicorn.Config(
            create_app(self.runtime), lifespan="on", log_level="warning", loop="asyncio"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=lambda: asyncio.run(self.server.serve(sockets=[self.sock])), daemon=True
        )

    def start(self) -> InProcessServer:
        self.thread.start()
        wait_until(self.ready)
        return self

    def ready(self) -> bool:
        try:
            return call(self.url, "GET", "/readyz")[0] == 200
        except urllib.error.URLError:  # not listening yet
            return False

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(GIVE_UP)
        self.runtime.close()  # already closed by the app's shutdown unless that failed
        self.sock.close()


def wait_until(condition: Any) -> None:
    deadline = time.monotonic() + GIVE_UP
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.05)


def request_id_counts(url: str) -> dict[str, int]:
    status, answer = call(
        url,
        "POST",
        "/api/query",
        {"queryString": "stats count(*) as n by @requestId", "since": "1d", "limit": 10_000},
    )
    assert status == 200, answer
    return {r["@requestId"]: int(r["n"]) for r in rows(answer)}


@pytest.fixture
def local_server(tmp_path: Path) -> Iterator[InProcessServer]:
    server = InProcessServer(tmp_path / "data").start()
    try:
        yield server
    finally:
        server.stop()


def test_an_invalidated_database_is_reopened_and_nothing_acknowledged_is_lost(
    local_server: InProcessServer,
) -> None:
    url, db = local_server.url, local_server.runtime.db
    before = [doc(f"before-{i}") for i in range(5)]
    assert call(url, "POST", "/api/records", before)[1]["stored"] == 5
    wait_until(lambda: len(request_id_counts(url)) == 5)

    reading, release = threading.Event(), threading.Event()

    def held_reader(cursor: duckdb.DuckDBPyConnection) -> None:
        reading.set()
        release.wait(GIVE_UP)

    reader = threading.Thread(target=db.read, args=(held_reader,), daemon=True)
    reader.start()
    reading.wait(GIVE_UP)
    try:
        # the next commit is durable, and then its automatic checkpoint fails fatally
        db.write(lambda c: c.execute("SET debug_checkpoint_abort = 'before_header'"))
        db.write(lambda c: c.execute("SET checkpoint_threshold = '1KB'"))
        struck = [doc(f"struck-{i}") for i in range(5)]
        assert call(url, "POST", "/api/records", struck)[1]["stored"] == 5
        wait_until(lambda: call(url, "GET", "/readyz")[0] == 503)
        status, answer = query(url, "stats count(*) as n")
        assert status == 503 and "reopened" in answer["detail"], answer
        status, answer = call(url, "GET", "/api/records/before-0")
        assert status == 503 and "reopened" in answer["detail"], answer
        during = [doc(f"during-{i}") for i in range(5)]
        status, answer = call(url, "POST", "/api/records", during)
        assert status == 200 and answer["stored"] == 5  # acknowledged: in the spool
    finally:
        release.set()
        reader.join(GIVE_UP)
    wait_until(lambda: call(url, "GET", "/readyz")[0] == 200)
    assert db.reopened == 1
    wait_until(lambda: len(request_id_counts(url)) == 15)
    counts = request_id_counts(url)
    assert counts == {d["requestId"]: 1 for d in before + struck + during}
    still_working(url, "after-reopen")
    assert db.reopened == 1
