"""The read APIs answer alike whichever engine a server runs on: one ``llmtrail serve`` on a
DuckDB file and one on chdb (``LLMTRAIL_STORE__URL``) are sent the same records and spans, and
cost by dimension, the three reports, error groups, the timeline and budgets are asked on
both over HTTP; the answers are compared whole (floats approximately). The figures
themselves are checked against the records in `test_read_models_both_engines` and in each
feature's own tests; here the point is that the server reads through its engine."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from llmtrail.record import format_timestamp
from tests.harness import ServerProcess
from tests.wall_clock import wait_out_month_end

from ..query.differential_records import END, START, WORKSPACE, generated_records

pytest.importorskip("chdb")
WINDOW = {"start": format_timestamp(START), "end": format_timestamp(END)}


def _ndjson() -> bytes:
    docs = []
    for i, record in enumerate(r for r in generated_records(300) if r.workspace == WORKSPACE):
        doc = record.to_dict()
        if doc.get("trace"):
            doc["trace"]["traceId"] = f"{i % 12 + 1:032x}"
            doc["trace"]["sessionId"] = f"session-{i % 5}"
        docs.append(json.dumps(doc))
    return "\n".join(docs).encode()


def _spans() -> dict[str, Any]:
    """OTLP/JSON: a failed workflow around each of four traces' calls."""
    spans = []
    for n in range(4):
        at = int((START + timedelta(hours=n)).timestamp() * 1e9)
        spans.append(
            {
                "traceId": f"{n + 1:032x}",
                "spanId": f"{n + 1:016x}",
                "name": f"workflow-{n}",
                "startTimeUnixNano": str(at),
                "endTimeUnixNano": str(at + 30 * 10**9),
                "status": {"code": 2, "message": f"gave up {n % 2}"},
                "attributes": [
                    {"key": "traceloop.span.kind", "value": {"stringValue": "workflow"}}
                ],
            }
        )
    return {"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]}


def call(server: ServerProcess, method: str, path: str, body: Any = None) -> Any:
    data, headers = None, {}
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        kind = "application/x-ndjson" if isinstance(body, bytes) else "application/json"
        headers["content-type"] = kind
    req = urllib.request.Request(server.url + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=60) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise AssertionError(f"{method} {path}: {exc.code} {exc.read()[:500]!r}") from None


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[ServerProcess]]:
    root: Path = tmp_path_factory.mktemp("read-apis")
    stores = {"duckdb": f"duckdb://{root / 'duck.duckdb'}", "chdb": f"chdb://{root / 'chdb'}"}
    body, spans = _ndjson(), _spans()
    started: list[ServerProcess] = []
    try:
        for name, url in stores.items():
            proc = ServerProcess(root / name, env={"LLMTRAIL_STORE__URL": url})
            proc.start()
            started.append(proc)
            assert call(proc, "POST", "/api/records", body)["stored"] == body.count(b"\n") + 1
            call(proc, "POST", "/v1/traces", spans)
            proc.settle()
        budget = {"dimension": "requestMetadata.tenant_id", "value": "tenant-03", "limitUsd": "5"}
        for proc in started:
            call(proc, "PUT", "/api/budgets", budget)
        yield started
    finally:
        for proc in reversed(started):
            proc.stop()


def _approx(doc: Any) -> Any:
    if isinstance(doc, float):
        return pytest.approx(doc, rel=1e-9)
    if isinstance(doc, dict):
        return {k: _approx(v) for k, v in doc.items() if k != "generatedAt"}
    if isinstance(doc, list):
        return [_approx(v) for v in doc]
    return doc


@pytest.mark.parametrize(
    "path",
    [
        "/api/cost?granularity=DAILY&by=modelId&by=requestMetadata.tenant_id",
        "/api/cost?by=inferenceProfile.tags.dept&tz=Europe/Paris",
        "/api/reports/performance?format=json",
        "/api/reports/cost?format=json&tz=America/New_York",
        "/api/reports/chargeback?format=json&dimension=requestMetadata.feature",
        "/api/errors?limit=500",
        "/api/timeline?by=trace&limit=100",
        "/api/timeline?by=session&limit=100",
    ],
)
def test_each_read_api_answers_alike(servers: list[ServerProcess], path: str) -> None:
    sep = "&" if "?" in path else "?"
    full = f"{path}{sep}{urllib.parse.urlencode(WINDOW)}"
    duck, click = (call(s, "GET", full) for s in servers)
    assert _approx(duck) == _approx(click)
    assert json.dumps(duck).count("{") > 3  # an answer with content, not an empty shell


def test_budgets_answer_alike(servers: list[ServerProcess]) -> None:
    wait_out_month_end(timedelta(seconds=10))  # each answer names the month it was asked in
    duck, click = (call(s, "GET", "/api/budgets") for s in servers)
    assert duck == click and len(duck["budgets"]) == 1


def test_errors_hold_the_spans_failures(servers: list[ServerProcess]) -> None:
    for server in servers:
        full = f"/api/errors?limit=500&{urllib.parse.urlencode(WINDOW)}"
        messages = {g["message"] for g in call(server, "GET", full)["errors"]}
        assert {"gave up 0", "gave up 1"} <= messages
