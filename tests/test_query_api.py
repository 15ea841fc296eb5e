"""The query surfaces against a running server: ``POST /api/query`` (GetQueryResults shape,
statistics, paging), saved queries, ``GET /api/records?filterPattern=``, and the CLI's
``llmtrail query`` / ``queries`` / ``logs --filter-pattern`` — with a server and without."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.harness import ServerProcess

NOW = datetime.now(UTC).replace(microsecond=0)
APPS = ("search", "chat", "billing")


def _records() -> list[dict[str, Any]]:
    out = []
    for i in range(60):
        out.append(
            {
                "schemaType": "ModelInvocationLog",
                "schemaVersion": "1.0",
                "timestamp": (NOW - timedelta(minutes=i)).isoformat().replace("+00:00", "Z"),
                "accountId": "123456789012",
                "region": "us-east-1",
                "requestId": f"req-{i:03d}",
                "operation": "Converse",
                "modelId": f"model-{i % 4}",
                "requestMetadata": {"application_name": APPS[i % 3], "tenant_id": f"t{i % 5}"},
                "input": {"inputContentType": "application/json", "inputTokenCount": 10 + i},
                "output": {"outputContentType": "application/json", "outputTokenCount": 2 * i},
                **({"errorCode": "ThrottlingException"} if i % 10 == 0 else {}),
            }
        )
    return out


RECORDS = _records()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, engine: str) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("query")
    with ServerProcess(root / "data", engine=engine) as proc:
        body = "\n".join(json.dumps(r) for r in RECORDS).encode()
        _call(proc, "POST", "/api/records", body, "application/x-ndjson")
        proc.settle()
        yield proc


def _call(
    server: ServerProcess,
    method: str,
    path: str,
    body: bytes | None = None,
    content_type: str = "application/json",
) -> Any:
    request = urllib.request.Request(
        server.url + path, data=body, method=method, headers={"content-type": content_type}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def _query(server: ServerProcess, **body: Any) -> Any:
    return _call(server, "POST", "/api/query", json.dumps(body).encode())


def _problem(error: urllib.error.HTTPError) -> Any:
    """The problem JSON of an error answer (closing it: it holds the socket)."""
    with error:
        return json.loads(error.read())


def _rows(answer: dict[str, Any]) -> list[dict[str, Any]]:
    return [{c["field"]: c["value"] for c in row} for row in answer["results"]]


def test_stats_answer_in_get_query_results_shape(server: ServerProcess) -> None:
    answer = _query(
        server,
        queryString="stats sum(input.inputTokenCount + output.outputTokenCount) as tokens, "
        "count(*) as calls by requestMetadata.application_name | sort tokens desc",
        since="1d",
    )
    assert answer["status"] == "Complete" and answer["queryId"]
    assert answer["fields"] == ["requestMetadata.application_name", "tokens", "calls"]
    expected: Counter[str] = Counter()
    for r in RECORDS:
        app = r["requestMetadata"]["application_name"]
        expected[app] += r["input"]["inputTokenCount"] + r["output"]["outputTokenCount"]
    got = {row["requestMetadata.application_name"]: int(row["tokens"]) for row in _rows(answer)}
    assert got == dict(expected)
    assert [int(r["tokens"]) for r in _rows(answer)] == sorted(expected.values(), reverse=True)
    assert {int(r["calls"]) for r in _rows(answer)} == {20}
    stats = answer["statistics"]
    assert stats["recordsScanned"] == len(RECORDS) and stats["recordsMatched"] == len(RECORDS)
    assert stats["bytesScanned"] > 0


def test_filter_and_records_matched(server: ServerProcess) -> None:
    answer = _query(
        server,
        queryString="fields @timestamp, modelId, errorCode "
        '| filter errorCode = "ThrottlingException" | limit 2',
        since="1d",
    )
    throttled = [r for r in RECORDS if r.get("errorCode")]
    assert len(_rows(answer)) == 2
    assert answer["statistics"]["recordsMatched"] == len(throttled)
    assert all(r["errorCode"] == "ThrottlingException" for r in _rows(answer))


def test_paging_with_next_token_returns_every_row_once(server: ServerProcess) -> None:
    body = {"queryString": "fields @requestId | sort @timestamp desc", "since": "1d", "limit": 7}
    seen, answer = [], _query(server, **body)
    seen += [r["@requestId"] for r in _rows(answer)]
    while answer.get("nextToken"):
        answer = _query(server, **body, nextToken=answer["nextToken"])
        seen += [r["@requestId"] for r in _rows(answer)]
    assert seen == [r["requestId"] for r in RECORDS]  # newest first, each once


def test_time_range_bounds_the_records(server: ServerProcess) -> None:
    start = (NOW - timedelta(minutes=9, seconds=30)).isoformat()
    answer = _query(server, queryString="stats count(*) as n", startTime=start)
    assert _rows(answer) == [{"n": "10"}]


def test_a_bad_query_names_line_column_and_shows_a_caret(server: ServerProcess) -> None:
    with pytest.raises(urllib.error.HTTPError) as info:
        _query(server, queryString="fields modelId\n| stats sum(modelId", since="1h")
    problem = _problem(info.value)
    assert info.value.code == 400 and problem["field"] == "queryString"
    assert "line 2" in problem["detail"] and "^" in problem["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"since": "1h"}, "queryString"),
        ({"queryString": "stats count(*)", "limit": 0}, "limit"),
        ({"queryString": "stats count(*)", "since": "eventually"}, "since"),
        ({"queryString": "stats count(*)", "nextToken": "nonsense"}, "nextToken"),
        ({"queryString": "stats count(*)", "startTime": "2026-01-02T00:00:00Z",
          "endTime": "2026-01-01T00:00:00Z"}, "endTime"),
    ],
)  # fmt: skip
def test_bad_parameters_are_problems_naming_the_field(
    server: ServerProcess, body: dict[str, Any], field: str
) -> None:
    with pytest.raises(urllib.error.HTTPError) as info:
        _query(server, **body)
    assert info.value.code == 400
    assert _problem(info.value)["field"] == field


def test_saved_queries_run_by_name(server: ServerProcess) -> None:
    text = "stats count(*) as n by modelId | sort modelId asc"
    _call(server, "PUT", "/api/saved-queries/per-model", json.dumps({"queryString": text}).encode())
    listed = _call(server, "GET", "/api/saved-queries")["queries"]
    assert {"name": "per-model", "queryString": text, "description": None} in listed
    answer = _query(server, name="per-model", since="1d")
    assert [r["modelId"] for r in _rows(answer)] == ["model-0", "model-1", "model-2", "model-3"]
    with pytest.raises(urllib.error.HTTPError) as info:
        bad = json.dumps({"queryString": "stats sum(("}).encode()
        _call(server, "PUT", "/api/saved-queries/broken", bad)
    assert info.value.code == 400 and _problem(info.value)["field"] == "queryString"


def test_filter_pattern_on_records(server: ServerProcess) -> None:
    pattern = '{ $.modelId = "model-1" && $.input.inputTokenCount > 40 }'
    query = urllib.parse.urlencode({"filterPattern": pattern, "limit": 100})
    page = _call(server, "GET", f"/api/records?{query}")
    expected = [
        r["requestId"]
        for r in RECORDS
        if r["modelId"] == "model-1" and r["input"]["inputTokenCount"] > 40
    ]
    assert [r["requestId"] for r in page["records"]] == expected


def _cli(
    *args: str, data_dir: Path | None = None, url: str | None = None, env: Mapping[str, str] = {}
) -> str:
    """``llmtrail ARGS`` against a server (``url``) or the store of ``data_dir``, which ``env``
    (`ServerProcess.store_env`) names when it is not DuckDB's default file."""
    where = ["--url", url] if url else ["--data-dir", str(data_dir)]
    result = subprocess.run(
        [sys.executable, "-m", "llmtrail", *args, *where],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_cli_query_formats_through_the_server(server: ServerProcess) -> None:
    text = "stats count(*) as calls by modelId | sort modelId asc"
    out = _cli("query", text, "--since", "1d", "--format", "csv", url=server.url)
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["modelId"], r["calls"]) for r in rows] == [(f"model-{i}", "15") for i in range(4)]
    rows = json.loads(_cli("query", text, "--since", "1d", "--json", url=server.url))
    assert rows[0] == {"modelId": "model-0", "calls": "15"} and len(rows) == 4
    table = _cli("query", text, "--since", "1d", url=server.url)
    assert "model-3" in table and "calls" in table


def test_cli_logs_filter_pattern(server: ServerProcess) -> None:
    out = _cli(
        "logs", "--filter-pattern", '{ $.errorCode = "Throttling*" }', "--json", url=server.url
    )
    ids = [record["requestId"] for record in json.loads(out)]
    assert ids == [r["requestId"] for r in RECORDS if r.get("errorCode")]


def test_cli_query_without_a_server_opens_the_data_directory(tmp_path: Path, engine: str) -> None:
    data = tmp_path / "data"
    with ServerProcess(data, engine=engine) as proc:
        body = "\n".join(json.dumps(r) for r in RECORDS[:5]).encode()
        _call(proc, "POST", "/api/records", body, "application/x-ndjson")
        proc.settle()
    store = proc.store_env
    out = _cli("query", "stats count(*) as n", "--since", "1d", "--json", data_dir=data, env=store)
    assert json.loads(out) == [{"n": "5"}]
    saved = ("fields modelId | limit 1", "--save", "one", "--since", "1d")
    _cli("query", *saved, data_dir=data, env=store)
    listed = _cli("queries", "list", "--json", data_dir=data, env=store)
    assert json.loads(listed)[0]["name"] == "one"
