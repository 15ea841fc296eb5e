"""``llmtrail export --format bedrock|parquet`` and ``llmtrail import``, as a user runs them:
real servers, the real CLI in a subprocess, a directory and moto's S3 in server mode."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import boto3
import orjson
import pytest
from moto.server import ThreadedMotoServer

from llmtrail.capture.bedrock_layout import batches, decode_batch, parse_key
from tests.conftest import bedrock_fixture_lines
from tests.harness import ServerProcess, call

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
OPERATIONS = ("Converse", "ConverseStream", "InvokeModel", "ChatCompletions", "Messages")


def run(*args: str) -> dict[str, Any]:
    """The CLI's JSON answer; fails the test on a non-zero exit."""
    done = subprocess.run(
        [sys.executable, "-m", "llmtrail", *args],
        capture_output=True,
        timeout=600,
        env={**os.environ, **CREDENTIALS},
    )
    assert done.returncode == 0, done.stderr.decode()
    answer: dict[str, Any] = orjson.loads(done.stdout)
    return answer


def make_records(n: int, hours: int, tag: str) -> list[dict[str, Any]]:
    """``n`` records of several providers over ``hours`` hours of June 2026 (months before
    the tests run, far outside the ingest path's one-hour resend window)."""
    out = []
    for i in range(n):
        hour, minute = i % hours, (i // hours) % 60
        second = (i * 7) % 60
        if i % 3 == 0:
            stamp = f"2026-06-{1 + hour // 24:02d}T{hour % 24:02d}:{minute:02d}:{second:02d}Z"
        else:
            frac = f".{i % 1000:03d}" if i % 3 == 1 else f".{i % 1000000:06d}"
            stamp = f"2026-06-{1 + hour // 24:02d}T{hour % 24:02d}:{minute:02d}:{second:02d}{frac}Z"
        op = OPERATIONS[i % len(OPERATIONS)]
        doc: dict[str, Any] = {
            "schemaType": "ModelInvocationLog",
            "schemaVersion": "1.0",
            "timestamp": stamp,
            "requestId": f"{tag}-{i:07d}-{uuid.UUID(int=i).hex[:8]}",
            "operation": op,
            "modelId": "amazon.nova-lite-v1:0" if i % 2 else "openai/gpt-4o-mini",
            "requestMetadata": {"tenant_id": f"t{i % 17}", "app": "web app"},
            "input": {
                "inputContentType": "application/json",
                "inputBodyJson": {"messages": [{"role": "user", "content": f"q{i} ✓ ünï"}]},
                "inputTokenCount": i % 500,
            },
            "output": {"outputTokenCount": (i * 3) % 700, "outputBodyJson": {"x": i / 7}},
        }
        if i % 5:
            doc["accountId"] = "123456789012"
            doc["region"] = ("us-east-1", "eu-west-1")[i % 2]
        if op == "ChatCompletions":
            doc["provider"] = "openai"
            doc["latencyMs"] = i % 900
        if i % 11 == 0:
            doc["errorCode"] = "ThrottlingException"
        if i % 13 == 0:
            doc["someFutureKey"] = {"nested": [1, {"deep": None}]}
        out.append(doc)
    return out


def ingest(server: ServerProcess, docs: list[dict[str, Any]]) -> None:
    """Send ``docs`` as gzip'd NDJSON, 50,000 a request, and wait until they are stored."""
    for start in range(0, len(docs), 50_000):
        body = gzip.compress(b"\n".join(orjson.dumps(d) for d in docs[start : start + 50_000]))
        headers = {"content-type": "application/x-ndjson", "content-encoding": "gzip"}
        request = urllib.request.Request(
            server.url + "/api/records", data=body, method="POST", headers=headers
        )
        with urllib.request.urlopen(request, timeout=300) as response:
            answer = orjson.loads(response.read())
        assert answer["stored"] == min(50_000, len(docs) - start), answer
    server.settle(timeout=120)


@contextmanager
def serving(data_dir: Path, stop: bool = True) -> Iterator[ServerProcess]:
    """A server for the block; stopped with time to checkpoint what it was sent (a busy
    machine needs more than the harness's minute), killed if even that is not enough. With
    ``stop=False`` it is killed at once: a server that served 100,000 bodies owes the audit's
    reads index one entry per record read, minutes of writing before it stops, and nothing
    the test still needs."""
    server = ServerProcess(data_dir).start()
    try:
        yield server
    finally:
        if not stop:
            server.kill()
        else:
            try:
                server.terminate(timeout=600)
            except subprocess.TimeoutExpired:
                server.kill()
                raise


def files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def lines_of(objects: dict[str, bytes]) -> list[bytes]:
    return [line for data in objects.values() for line in decode_batch(data)]


@pytest.fixture(scope="module")
def s3() -> Iterator[str]:
    """moto's S3 on 127.0.0.1 and a free port, credentials in the environment; stopped at
    the end with none of its threads left."""
    before = set(threading.enumerate())
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    with pytest.MonkeyPatch.context() as env:
        for name, value in CREDENTIALS.items():
            env.setenv(name, value)
        server.start()
        try:
            host, port = server.get_host_and_port()
            yield f"http://{host}:{port}"
        finally:
            server.stop()
    left = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    for thread in left:
        thread.join(10)
    assert not [t for t in left if t.is_alive()], "moto's server left threads running"


def s3_objects(endpoint: str, bucket: str, prefix: str) -> dict[str, bytes]:
    client = boto3.client("s3", endpoint_url=endpoint)
    out = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            body = client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            out[item["Key"][len(prefix) :]] = body
    client.close()
    return out


@pytest.mark.slow  # two servers ingest 100,000 records each: minutes on a busy machine
@pytest.mark.timeout(1200)
def test_100k_records_round_trip_through_s3_and_a_directory(tmp_path: Path, s3: str) -> None:
    """Server A exports to S3, server B imports from there and exports to a directory:
    the same objects, byte for byte, each line the record as it was sent."""
    docs = make_records(100_000, hours=200, tag="rt")
    bucket = f"rt-{uuid.uuid4().hex[:10]}"
    with closing(boto3.client("s3", endpoint_url=s3)) as client:
        client.create_bucket(Bucket=bucket)
    to = f"s3://{bucket}/exports/a"
    with serving(tmp_path / "a", stop=False) as a:
        ingest(a, docs)
        out = run("export", "--url", a.url, "--to", to, "--endpoint-url", s3)
    assert out["records"] == 100_000
    exported = s3_objects(s3, bucket, "exports/a/")
    assert all(parse_key(k) for k in exported) and len(exported) == out["objects"]
    # each line is the record as it was sent: llmtrail's derived keys left out
    by_id = {d["requestId"]: d for d in docs}
    lines = lines_of(exported)
    assert len(lines) == 100_000
    assert all(orjson.loads(x) == by_id[orjson.loads(x)["requestId"]] for x in lines)
    with serving(tmp_path / "b", stop=False) as b:
        done = run("import", to, "--url", b.url, "--endpoint-url", s3)
        assert (done["stored"], done["duplicate"], done["rejected"]) == (100_000, 0, 0)
        b.settle(timeout=300)
        again = tmp_path / "again"
        run("export", "--url", b.url, "--to", str(again))
    assert files(again) == exported  # B's Bedrock JSON is A's, byte for byte, object by object


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Path]]:
    """A server and a layout of 3,000 records in 12 hour objects, not yet imported."""
    root = tmp_path_factory.mktemp("small")
    layout = root / "layout"
    docs = make_records(3_000, hours=12, tag="small")
    docs.sort(key=lambda d: d["timestamp"], reverse=True)
    for batch in batches(docs, prefix="p"):
        (layout / batch.key).parent.mkdir(parents=True, exist_ok=True)
        (layout / batch.key).write_bytes(batch.data)
    with serving(root / "data") as server:
        yield server, layout


def stored_ids(server: ServerProcess) -> list[str]:
    """The request ids of every stored record of the small layout (one per record)."""
    out, cursor = [], ""
    while True:
        path = "/api/records?bodies=0&limit=1000&start=2026-06-01T00:00:00Z&cursor=" + cursor
        _, page = call(server.url, "GET", path)
        out += [r["requestId"] for r in page["records"] if r["requestId"].startswith("small-")]
        cursor = page["nextCursor"]
        if not cursor:
            return out


def test_an_interrupted_import_resumes_and_stores_each_record_once(
    small: tuple[ServerProcess, Path],
) -> None:
    server, layout = small
    objects = sum(1 for p in layout.rglob("*.json.gz"))
    part = run("import", str(layout), "--url", server.url, "--max-objects", "3")
    assert part["objects"] == 3 and part["stoppedEarly"] is True
    # killed mid-way: as soon as the manifest shows one more batch done
    command = ["import", str(layout), "--url", server.url, "--batch", "20"]
    cli = subprocess.Popen(
        [sys.executable, "-m", "llmtrail", *command],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            manifest = call(server.url, "GET", "/api/imports")[1]["objects"]
            if any(not e["done"] for e in manifest.values()) or len(manifest) > 3:
                break
            time.sleep(0.01)
    finally:
        cli.send_signal(signal.SIGKILL)
        cli.wait(10)
    manifest = call(server.url, "GET", "/api/imports")[1]["objects"]
    finished = sum(1 for e in manifest.values() if e["done"])
    assert 3 <= finished < objects
    rest = run("import", str(layout), "--url", server.url)
    assert rest["objectsAlreadyDone"] == finished and rest["objects"] == objects - finished
    server.settle()
    ids = stored_ids(server)
    assert len(ids) == len(set(ids)) == 3_000
    # once more, the same prefix: nothing read, nothing sent
    again = run("import", str(layout), "--url", server.url)
    assert (again["objectsAlreadyDone"], again["objects"], again["stored"]) == (objects, 0, 0)


def test_the_same_records_again_months_later_are_not_stored_twice(
    small: tuple[ServerProcess, Path], tmp_path: Path
) -> None:
    """The records are from June, far outside the ingest path's one-hour resend window; the
    same objects under another prefix (the manifest does not know them) are read, and each
    batch's requestIds are found in the store for its time span: none is sent."""
    server, layout = small
    run("import", str(layout), "--url", server.url)
    server.settle()
    before = len(stored_ids(server))
    copy = tmp_path / "elsewhere"
    for path in layout.rglob("*.json.gz"):
        target = copy / "other-prefix" / path.relative_to(layout)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
    objects = sum(1 for p in layout.rglob("*.json.gz"))
    later = run("import", str(copy), "--url", server.url)
    assert (later["objects"], later["alreadyStored"]) == (objects, before)
    assert (later["stored"], later["duplicate"], later["rejected"]) == (0, 0, 0)
    server.settle()
    assert len(stored_ids(server)) == before == 3_000


def test_parquet_export_holds_what_the_api_lists(
    small: tuple[ServerProcess, Path], tmp_path: Path
) -> None:
    import pyarrow.parquet as pq

    server, layout = small
    run("import", str(layout), "--url", server.url)
    server.settle()
    out = run("export", "--format", "parquet", "--url", server.url, "--to", str(tmp_path))
    table = pq.read_table(tmp_path / out["key"]).to_pylist()
    assert len(table) == out["records"] == len(stored_ids(server))
    records = {}
    cursor = ""
    while True:
        _, page = call(server.url, "GET", f"/api/records?limit=1000&cursor={cursor}")
        records.update({r["requestId"]: r for r in page["records"]})
        cursor = page["nextCursor"]
        if not cursor:
            break
    for row in table:
        record = records[row["requestId"]]
        assert orjson.loads(row["record"]) == record
        assert row["inputTokenCount"] == record["input"].get("inputTokenCount")
        assert row["provider"] == record["provider"] and row["status"] == record["status"]
        assert dict(row["requestMetadata"]) == record["requestMetadata"]
    stamps = [row["timestamp"] for row in table]
    assert stamps == sorted(stamps)


def test_the_fixture_records_import_from_the_layout(
    small: tuple[ServerProcess, Path], tmp_path: Path
) -> None:
    """Bedrock's own lines (as delivered) in hour folders come back out as the same JSON."""
    server = small[0]
    lines = bedrock_fixture_lines()
    root = tmp_path / "bucket"
    for line in lines:
        doc = orjson.loads(line)
        stamp = doc["timestamp"]
        key = (
            f"logs/AWSLogs/{doc['accountId']}/BedrockModelInvocationLogs/{doc['region']}/"
            f"{stamp[:4]}/{stamp[5:7]}/{stamp[8:10]}/{stamp[11:13]}/{doc['requestId']}.json.gz"
        )
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        with open(root / key, "ab") as f:
            f.write(gzip.compress(line.encode() + b"\n"))
    (root / "logs/AWSLogs/permission-check").write_text("")  # Bedrock's marker: not a record
    done = run("import", str(root), "--url", server.url)
    assert (done["stored"], done["rejected"], done["objects"]) == (len(lines), 0, len(lines))
    out = tmp_path / "out"
    server.settle()
    run("export", "--to", str(out), "--url", server.url, "--start", "2024-01-01")
    back = {orjson.loads(x)["requestId"]: orjson.loads(x) for x in lines_of(files(out))}
    assert len(back) >= len(lines)
    for line in lines:
        doc = orjson.loads(line)
        assert back[doc["requestId"]] == doc


def test_an_s3_export_is_the_directory_export_and_imports_back(
    small: tuple[ServerProcess, Path], s3: str, tmp_path: Path
) -> None:
    server, layout = small
    run("import", str(layout), "--url", server.url)
    server.settle()
    bucket = f"small-{uuid.uuid4().hex[:10]}"
    with closing(boto3.client("s3", endpoint_url=s3)) as client:
        client.create_bucket(Bucket=bucket)
    to = f"s3://{bucket}/x/y"
    out = run("export", "--url", server.url, "--to", to, "--endpoint-url", s3)
    run("export", "--url", server.url, "--to", str(tmp_path / "dir"))
    in_s3 = s3_objects(s3, bucket, "x/y/")
    assert in_s3 == files(tmp_path / "dir") and len(in_s3) == out["objects"]
    back = run("import", to, "--url", server.url, "--endpoint-url", s3)
    assert (back["alreadyStored"], back["stored"]) == (out["records"], 0)


def test_large_bodies_go_to_data_objects_and_come_back(
    small: tuple[ServerProcess, Path], tmp_path: Path
) -> None:
    """A body the server offloaded (over 100 KB) is exported as the hour's data/ object the
    record points to, as Bedrock delivers it; importing that layout reads it back in."""
    server, _ = small
    body = {"messages": [{"role": "user", "content": "large " * 30_000}]}
    doc = {
        "schemaType": "ModelInvocationLog",
        "timestamp": "2026-05-31T05:30:00.5Z",
        "requestId": "large-body-1",
        "accountId": "123456789012",
        "region": "us-east-1",
        "operation": "Converse",
        "modelId": "amazon.nova-lite-v1:0",
        "input": {"inputBodyJson": body, "inputTokenCount": 30_000},
    }
    ingest(server, [doc])
    first = tmp_path / "first"
    out = run("export", "--url", server.url, "--to", str(first), "--start", "2026-05-31")
    assert out["bodies"] == 1
    (line,) = [x for x in lines_of(files(first)) if b"large-body-1" in x]
    path = orjson.loads(line)["input"]["inputBodyS3Path"]
    hour = first / "AWSLogs/123456789012/BedrockModelInvocationLogs/us-east-1/2026/05/31/05"
    assert path == (hour / "data/large-body-1_input.json.gz").as_uri()
    assert (
        orjson.loads(gzip.decompress((hour / "data/large-body-1_input.json.gz").read_bytes()))
        == body
    )
    # the same record under a new request id, in an object of its own: imported with its body
    copy = line.replace(b"large-body-1", b"large-body-2", 1)
    (hour / "20260531T053000Z_copy.json.gz").write_bytes(gzip.compress(copy + b"\n"))
    done = run("import", str(first), "--url", server.url)
    assert done["stored"] == 1 and done["rejected"] == 0
    server.settle()
    request = urllib.request.Request(
        server.url + "/api/bedrock/body?requestId=large-body-2&part=input"
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        assert orjson.loads(gzip.decompress(response.read())) == body


def test_one_put_notes_the_objects_one_request_carried(
    small: tuple[ServerProcess, Path],
) -> None:
    """``PUT /api/imports`` with ``objects`` writes several manifest entries at once; a
    wrong list is refused naming the field (and the limit)."""
    server, _ = small
    notes = [
        {"uri": f"s3://put-many/{n}.json.gz", "etag": f"e{n}", "offset": n, "done": n == 2}
        for n in range(3)
    ]
    status, answer = call(server.url, "PUT", "/api/imports", {"objects": notes})
    assert status == 200, answer
    assert [(o["uri"], o["offset"], o["done"]) for o in answer["objects"]] == [
        (n["uri"], n["offset"], n["done"]) for n in notes
    ]
    _, manifest = call(server.url, "GET", "/api/imports?source=s3://put-many/")
    assert {uri: e["etag"] for uri, e in manifest["objects"].items()} == {
        n["uri"]: n["etag"] for n in notes
    }
    status, problem = call(server.url, "PUT", "/api/imports", {"objects": "all of them"})
    assert status == 400 and problem["field"] == "objects"
    too_many = [notes[0]] * 10_001
    status, problem = call(server.url, "PUT", "/api/imports", {"objects": too_many})
    assert status == 400 and problem["field"] == "objects" and "10000" in problem["detail"]
    status, problem = call(server.url, "PUT", "/api/imports", {"objects": [{"offset": 1}]})
    assert status == 400 and problem["field"] == "uri"
