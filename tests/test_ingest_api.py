"""POST /api/records and GET /api/records against a running server."""

from __future__ import annotations

import copy
import gzip
import json
import random
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from llmtrail.capture.gateway.asgi import json_depth
from llmtrail.capture.ingest_body import (
    Unparsable,
    bracket_depth,
    parse_records,
    validate_batch,
)
from llmtrail.errors import ValidationError
from llmtrail.record import InvocationRecord
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


# -- decoding: the bracket scan against the walk over every value ------------------------------
# `bracket_depth` bounds how deep a body's values nest with passes of bytes methods; a body
# only the walk (`json_depth`) can clear is walked. Whatever the body, `validate_batch`
# answers as it did when every body with more brackets than the limit was walked.

TRICKY = ["[", "]", "{", "}", '"', "\\", '\\"', '"[', "\\\\", '\\\\"', '[{"', "é", "\u2028", "\x00"]


def _json_value(rng: random.Random, depth: int) -> Any:
    if depth == 0 or rng.random() < 0.25:
        scalars = [None, True, 1, -2.5, 10**18, "", "plain", "".join(rng.choices(TRICKY, k=4))]
        return rng.choice(scalars)
    size = rng.randint(0, 3)
    if rng.random() < 0.5:
        return [_json_value(rng, depth - 1) for _ in range(size)]
    keys = ["a", "[", '"k', "\\", "{}", "é"]
    return {rng.choice(keys) + str(i): _json_value(rng, depth - 1) for i in range(size)}


def _encodings(value: Any) -> list[bytes]:
    return [
        orjson.dumps(value),
        json.dumps(value).encode(),  # \uXXXX escapes
        json.dumps(value, indent=2, ensure_ascii=False).encode(),
    ]


def test_bracket_depth_is_the_depth_the_walk_finds() -> None:
    rng = random.Random(18)
    for _ in range(3000):
        value = _json_value(rng, rng.randint(0, 9))
        depth = json_depth(value)
        for raw in _encodings(value):
            assert orjson.loads(raw) == value
            for most in (1, 2, 5, 9, 12):
                assert bracket_depth(raw, most) == min(depth, most), raw


def test_bracket_depth_bounds_a_duplicate_keys_depth() -> None:
    """orjson keeps a duplicate key's last value: the brackets of the first one still count."""
    raw = b'{"a": ' + b"[" * 30 + b"]" * 30 + b', "a": 1}'
    assert json_depth(orjson.loads(raw)) == 1 and bracket_depth(raw, 100) == 31


def _deep_record(i: int, depth: int) -> dict[str, Any]:
    """A record whose values nest ``depth`` deep."""
    body: Any = "x"
    for _ in range(depth - 2):
        body = [body]
    return record(i, input={"inputBodyJson": body})


def _lines(rng: random.Random) -> list[bytes]:
    """Lines of every kind: valid records, deep ones around the limit, brackets in strings,
    escapes, duplicate keys, blank lines, lines that are not JSON or not UTF-8."""
    depths = (3, 4, 5, 6, 8, 9, 63, 64, 65, 66)
    deep = [orjson.dumps(_deep_record(i, depth)) for i, depth in enumerate(depths)]
    deep += [b"[" * depth + b"]" * depth for depth in depths]  # no bracket to spare
    deep += [b'{"a":' * depth + b"1" + b"}" * depth for depth in depths]
    return [
        *(json.dumps(json.loads(line)).encode() for line in bedrock_fixture_lines()),
        *deep,
        orjson.dumps(record(20, note="[" * 100 + "{" * 100)),
        orjson.dumps(record(21, note='\\"[[[[[[[[[[[[' * 9, other="\\\\")),
        json.dumps(record(22, note='"]]]][[[[' * 20)).encode(),
        b'{"requestId": "dup", "a": ' + b"[" * 70 + b"]" * 70 + b', "a": 1, '
        b'"timestamp": "2026-11-23T10:00:00Z"}',
        orjson.dumps(record(23)) + b"\r",
        orjson.dumps(record(24, requestMetadata={"k": "é"})),
        orjson.dumps({"requestId": 5}),
        b"5",
        b'"text"',
        b"[]",
        b"null",
        b'{"a": [',
        b"nope",
        b"\xff\xfe",
        b'{"requestId": "\xff", "timestamp": "2026-11-23T10:00:00Z"}',
        b"",
        b"  ",
        b"\r",
        b"\t \r",
    ] + [orjson.dumps(_json_value(rng, 8)) for _ in range(6)]


def _bodies(rng: random.Random) -> list[bytes]:
    lines = _lines(rng)
    valid = [line for line in lines if line.strip() and _is_json(line)]
    bodies = [*lines, b"\n".join(lines), b"\r\n".join(lines), b"[" + b",".join(valid) + b"]"]
    for _ in range(150):
        picked = rng.sample(lines, rng.randint(1, 8))
        bodies.append(b"\n".join(picked))
        chosen = rng.sample(valid, rng.randint(1, 8))
        bodies.append(b"[" + b",".join(chosen) + b"]")
        bodies.append(b"[" + b",\n".join(chosen) + b"]")
    for line in valid:  # one object, pretty-printed
        bodies.append(json.dumps(orjson.loads(line), indent=2).encode())
    return bodies


def _is_json(line: bytes) -> bool:
    try:
        orjson.loads(line)
    except orjson.JSONDecodeError:
        return False
    return True


def _reference_parse(raw: bytes, max_records: int, max_depth: int) -> list[Any]:
    """`parse_records` without its bracket scans: the body read with no depth limit, then
    every record's nesting walked, refusing a whole body or rejecting an NDJSON line."""
    docs = parse_records(raw, max_records, 10**9)  # no body holds that many brackets
    text = raw.strip()
    whole_body = text[:1] in (b"[", b"{") and _is_json(text)
    for i, doc in enumerate(docs):
        if isinstance(doc, dict | list) and json_depth(doc) > max_depth:
            if whole_body:
                raise ValidationError(f"[{i}]", f"is nested deeper than the limit of {max_depth}")
            docs[i] = Unparsable(f"is nested deeper than the limit of {max_depth} levels")
    return docs


def _reference_batch(raw: bytes, max_depth: int) -> tuple[Any, ...]:
    """`validate_batch`'s answer as it was, over `_reference_parse`."""
    try:
        docs = _reference_parse(raw, 10**4, max_depth)
    except ValidationError as exc:
        return ("refused", type(exc).__name__, exc.field, exc.message)
    results: list[dict[str, Any]] = []
    valid: list[InvocationRecord] = []
    where: list[int] = []
    for i, doc in enumerate(docs):
        if isinstance(doc, Unparsable):
            results.append({"index": i, "status": "rejected", "field": "record", "reason": doc})
            continue
        try:
            record = InvocationRecord.from_dict(doc, source="ingest", workspace="ws")
        except ValidationError as exc:
            results.append(
                {"index": i, "status": "rejected", "field": exc.field, "reason": exc.message}
            )
            continue
        results.append({"index": i, "requestId": record.request_id, "status": "stored"})
        valid.append(record)
        where.append(i)
    return _answer(results, valid, where)


def _batch(raw: bytes, max_depth: int) -> tuple[Any, ...]:
    try:
        results, valid, where = validate_batch(raw, False, 10**7, 10**4, max_depth, "ws")
    except ValidationError as exc:
        return ("refused", type(exc).__name__, exc.field, exc.message)
    return _answer(results, valid, where)


def _answer(
    results: list[dict[str, Any]], valid: list[InvocationRecord], where: list[int]
) -> tuple[Any, ...]:
    docs = [{**r.data, "recordId": "id"} for r in valid]
    reasons = [type(r.get("reason")) for r in results]  # an unreadable line's is Unparsable
    return ("answered", results, reasons, docs, [r.derived for r in valid], where)


def test_validate_batch_answers_as_when_every_deep_enough_body_was_walked() -> None:
    answers = set()
    for raw in _bodies(random.Random(1818)):
        for limit in (64, 8, 5, 3):
            got = _batch(raw, limit)
            assert got == _reference_batch(raw, limit), (raw, limit)
            answers.add(got[3] if got[0] == "refused" else None)
            if got[0] == "answered":
                answers.update(r.get("reason") for r in got[1])
    assert "is nested deeper than the limit of 64" in answers  # a whole body
    assert "is nested deeper than the limit of 64 levels" in answers  # a line
