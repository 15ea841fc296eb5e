"""POST /api/records and GET /api/records against a running server."""

from __future__ import annotations

import copy
import gzip
import json
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import bedrock_fixture_lines
from tests.harness import ServerProcess


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, engine: str) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("ingest")
    config = "[limits]\nmax_ingest_bytes = 2000000\nmax_ingest_records = 500\n"
    with ServerProcess(root / "data", config=config, engine=engine) as proc:
        yield proc


def record(i: int, **extra: object) -> dict:
    return {
        "timestamp": f"2026-11-23T10:{i // 60 % 60:02d}:{i % 60:02d}.000Z",
        "requestId": f"ingest-{i}",
        "modelId": "m",
        "operation": "Converse",
        "requestMetadata": {"tenant_id": f"t{i % 2}"},
        **extra,
    }


def post(server: ServerProcess, body: bytes, **headers: str) -> httpx.Response:
    return httpx.post(server.url + "/api/records", content=body, headers=headers, timeout=30)


def test_bedrock_fixtures_ingest_and_serialise_back(server: ServerProcess) -> None:
    lines = bedrock_fixture_lines()
    response = post(server, "\n".join(lines).encode())
    assert response.status_code == 200
    assert response.json()["stored"] == len(lines)
    for line in lines:
        doc = json.loads(line)
        got = server.wait_for_record(doc["requestId"])
        bedrock_view = {k: v for k, v in got.items() if k in doc}
        assert bedrock_view == doc
        assert got["source"] == "ingest" and got["provider"] == "bedrock"


def test_json_array_gzip_and_per_item_results(server: ServerProcess) -> None:
    docs = [
        record(1),
        record(2),
        {"requestId": "no-timestamp"},
        record(3, input="oops"),
        record(4, requestMetadata={"k": 5}),
        record(1),
    ]
    response = post(
        server, gzip.compress(json.dumps(docs).encode()), **{"content-encoding": "gzip"}
    )
    assert response.status_code == 200
    body = response.json()
    statuses = [r["status"] for r in body["results"]]
    assert statuses == ["stored", "stored", "rejected", "rejected", "rejected", "duplicate"]
    reasons = {
        r["index"]: (r["field"], r["reason"]) for r in body["results"] if r["status"] == "rejected"
    }
    assert reasons[2][0] == "timestamp"
    assert reasons[3][0] == "input" and "object" in reasons[3][1]
    assert reasons[4][0] == "requestMetadata.k" and "strings" in reasons[4][1]
    assert (body["stored"], body["duplicate"], body["rejected"]) == (2, 1, 3)
    again = post(server, json.dumps([record(1), record(2)]).encode()).json()
    assert again["duplicate"] == 2 and again["stored"] == 0


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        (b"", 400, "empty"),
        (b"[broken", 400, "NDJSON"),
        (b"\n".join(json.dumps(record(1000 + i)).encode() for i in range(501)), 413, "500"),
        (b"x" * 2_000_001, 413, "2000000"),
        (
            b'{"requestId": "d", "timestamp": "2026-11-23T10:00:00Z", "x": '
            + b"[" * 80
            + b"]" * 80
            + b"}",
            400,
            "nested",
        ),
    ],
)
def test_bad_ingest_bodies(server: ServerProcess, body: bytes, status: int, needle: str) -> None:
    server.settle()
    before = server.get("/api/records?limit=1000")["records"]
    response = post(server, body)
    assert response.status_code == status
    problem = response.json()
    assert response.headers["content-type"] == "application/problem+json"
    assert needle in problem["detail"] and problem["status"] == status
    after = server.get("/api/records?limit=1000")["records"]
    assert len(after) >= len(before)  # nothing already stored was lost


def test_list_filters_and_paging(server: ServerProcess) -> None:
    docs = [record(100 + i, modelId=f"page-model-{i % 2}") for i in range(30)]
    assert post(server, json.dumps(docs).encode()).json()["stored"] == 30
    server.settle()
    seen, cursor = [], None
    while True:
        url = "/api/records?model=page-model-1&limit=4" + (f"&cursor={cursor}" if cursor else "")
        page = server.get(url)
        seen += [r["requestId"] for r in page["records"]]
        cursor = page["nextCursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(d["requestId"] for d in docs if d["modelId"] == "page-model-1")
    tenant = server.get("/api/records?model=page-model-0&metadata=tenant_id=t0&limit=100")
    assert {r["requestMetadata"]["tenant_id"] for r in tenant["records"]} == {"t0"}
    assert len(tenant["records"]) == 15
    window = server.get(
        "/api/records?model=page-model-0&start=2026-11-23T10:01:50Z"
        "&end=2026-11-23T10:01:56Z&limit=100"
    )
    assert sorted(r["requestId"] for r in window["records"]) == [
        "ingest-110",
        "ingest-112",
        "ingest-114",
    ]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=abc", "limit"),
        ("start=yesterday", "start"),
        ("cursor=%21%21", "cursor"),
        ("metadata=novalue", "metadata"),
    ],
)
def test_bad_list_queries(server: ServerProcess, query: str, field: str) -> None:
    response = httpx.get(server.url + "/api/records?" + query)
    assert response.status_code == 400 and response.json()["field"] == field


@pytest.mark.parametrize(("encoding", "n"), [("br", 7000), ("deflate", 7001), ("gzip, br", 7002)])
def test_an_encoding_the_server_cannot_read_is_refused(
    server: ServerProcess, encoding: str, n: int
) -> None:
    body = json.dumps(record(n)).encode()
    response = post(server, body, **{"content-encoding": encoding})
    assert response.status_code == 400
    assert response.json()["field"] == "content-encoding" and encoding in response.json()["detail"]
    assert post(server, body).json()["stored"] == 1  # read as it is, it is stored


def test_missing_record_is_404(server: ServerProcess) -> None:
    response = httpx.get(server.url + "/api/records/does-not-exist")
    assert response.status_code == 404 and "does-not-exist" in response.json()["detail"]


def test_unchanged_docs_are_not_mutated_by_ingest(server: ServerProcess) -> None:
    doc = record(500, extraTopLevel={"nested": {"kept": True}})
    original = copy.deepcopy(doc)
    post(server, json.dumps([doc]).encode())
    got = server.wait_for_record("ingest-500")
    assert {k: v for k, v in got.items() if k in original} == original


def test_an_unreadable_ndjson_line_is_rejected_alone(server: ServerProcess) -> None:
    body = b"{broken\n" + json.dumps(record(900)).encode() + b"\n"
    result = post(server, body).json()
    assert [r["status"] for r in result["results"]] == ["rejected", "stored"]
    assert result["results"][0]["field"] == "record"
    assert "not valid JSON" in result["results"][0]["reason"]
