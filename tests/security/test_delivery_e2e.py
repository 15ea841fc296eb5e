"""The logging configuration and ``x-llmtrail-no-log`` on a real server: bodies not
delivered are absent from the stored record, counts and metadata stay, and a change
applies to the next call without a restart."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.harness import ServerProcess
from tests.security.test_front_door import call, wait_for

JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with ServerProcess(tmp_path_factory.mktemp("delivery") / "data") as s:
        yield s


def chat(server: ServerProcess, prompt: str = "a secret prompt", **headers: str) -> dict[str, Any]:
    messages = [{"role": "user", "content": prompt}]
    with openai.OpenAI(base_url=server.url + "/v1", api_key="sk-caller", max_retries=0) as c:
        reply = c.chat.completions.with_raw_response.create(
            model="sim/echo", messages=messages, extra_headers=headers
        )
    status, body = wait_for(
        server.url + f"/api/records/{reply.headers['x-llmtrail-request-id']}", {}
    )
    assert status == 200, body
    return json.loads(body)  # type: ignore[no-any-return]


def put_config(server: ServerProcess, config: dict[str, Any]) -> None:
    body = json.dumps({"loggingConfig": config}).encode()
    status, _, answer = call(server.url + "/api/logging-configuration", "PUT", body, JSON)
    assert status == 200, answer


def test_default_delivers_and_no_log_withholds(server: ServerProcess) -> None:
    record = chat(server)
    assert record["input"]["inputBodyJson"]["messages"][0]["content"] == "a secret prompt"
    quiet = chat(server, **{"x-llmtrail-no-log": "true"})
    assert "inputBodyJson" not in quiet["input"] and "outputBodyJson" not in quiet["output"]
    assert quiet["input"]["inputTokenCount"] > 0 and quiet["output"]["outputTokenCount"] > 0


def test_text_delivery_off_then_deleted_then_no_opt_out(server: ServerProcess) -> None:
    put_config(server, {"textDataDeliveryEnabled": False})
    record = chat(server)
    assert "inputBodyJson" not in record["input"]
    assert record["input"]["inputTokenCount"] > 0 and record["latencyMs"] >= 0
    put_config(server, {"textDataDeliveryEnabled": True})
    assert "inputBodyJson" in chat(server)["input"]
    # DELETE turns delivery off, as on Bedrock
    status, _, _ = call(server.url + "/api/logging-configuration", "DELETE", None, JSON)
    assert status == 200
    off = chat(server)
    assert "inputBodyJson" not in off["input"] and off["output"]["outputTokenCount"] > 0
    # a workspace that forbids opting out keeps bodies despite the header
    body = json.dumps({"loggingConfig": {"textDataDeliveryEnabled": True}, "allowNoLog": False})
    status, _, _ = call(server.url + "/api/logging-configuration", "PUT", body.encode(), JSON)
    assert status == 200
    kept = chat(server, **{"x-llmtrail-no-log": "true"})
    assert kept["input"]["inputBodyJson"]["messages"][0]["content"] == "a secret prompt"


def test_the_configured_log_group_names_the_workspaces_records(server: ServerProcess) -> None:
    query = b'{"queryString": "SOURCE \'/acme/llm-calls\' | stats count(*) as n", "since": "1h"}'
    status, _, answer = call(server.url + "/api/query", "POST", query, JSON)
    assert status == 400 and b"/acme/llm-calls" in answer  # unknown until configured
    role = "arn:aws:iam::123456789012:role/llmtrail-logging"
    group = {"logGroupName": "/acme/llm-calls", "roleArn": role}
    put_config(server, {"textDataDeliveryEnabled": True, "cloudWatchConfig": group})
    status, _, answer = call(server.url + "/api/query", "POST", query, JSON)
    assert status == 200, answer
    counted = int(json.loads(answer)["results"][0][0]["value"])
    plain = b'{"queryString": "stats count(*) as n", "since": "1h"}'
    expected = json.loads(call(server.url + "/api/query", "POST", plain, JSON)[2])
    assert counted == int(expected["results"][0][0]["value"]) > 0


def test_large_bodies_go_under_the_configured_prefix(tmp_path: Path) -> None:
    with ServerProcess(tmp_path / "data", config="offload_bytes = 200\n") as small:
        role = "arn:aws:iam::123456789012:role/llmtrail-logging"
        large = {"bucketName": "acme-logs", "keyPrefix": "large"}
        group = {"logGroupName": "/acme/llm", "roleArn": role, "largeDataDeliveryS3Config": large}
        put_config(small, {"textDataDeliveryEnabled": True, "cloudWatchConfig": group})
        record = chat(small, "a long prompt " * 40)
        path = record["input"]["inputBodyS3Path"]
        assert "/acme-logs/large/AWSLogs/" in path, path
        stored = list((tmp_path / "data" / "objects").rglob("*_input.json.gz"))
        assert len(stored) == 1 and "acme-logs/large/AWSLogs" in stored[0].as_posix()


def test_every_surface_that_shows_bodies_is_audited(server: ServerProcess) -> None:
    """A query showing bodies is one audit entry per request whichever surface ran it: the
    query API, a dashboard's log widget, the Logs page."""
    chat(server)
    board = {"widgets": [{"type": "log", "x": 0, "y": 0, "width": 24, "height": 6,
                          "properties": {"query": "fields @requestId, @message | limit 5",
                                         "view": "table"}}]}  # fmt: skip
    status, _, answer = call(server.url + "/api/dashboards/bodies", "PUT",
                             json.dumps(board).encode(), JSON)  # fmt: skip
    assert status == 200, answer
    status, _, answer = call(server.url + "/api/dashboards/bodies/view?since=1h")
    assert status == 200, answer
    status, _, page = call(server.url + "/logs?q=fields+%40requestId%2C+%40message&range=1h")
    assert status == 200, page
    query = b'{"queryString": "fields @requestId, @message | limit 5", "since": "1h"}'
    assert call(server.url + "/api/query", "POST", query, JSON)[0] == 200
    entries = json.loads(call(server.url + "/api/audit?limit=100")[2])["entries"]
    surfaces = {e["surface"] for e in entries if e["action"] == "read-bodies"}
    assert {"dashboards", "ui", "query"} <= surfaces, surfaces
