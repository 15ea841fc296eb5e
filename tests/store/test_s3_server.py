"""A real ``llmtrail serve`` with ``[objects] url = "s3://bucket/prefix"`` on moto's server mode
(dummy credentials in the server's environment, found by boto3's standard chain): a body over
``offload_bytes`` lands in the bucket under the prefix, ``/api/records/{id}`` serves the record
naming it, the object holds the body sent; retention archives to the bucket; erasure removes
the object. Runs once `server.runtime` opens its object store with `open_object_store`."""

from __future__ import annotations

import gzip
import inspect
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import llmtrail.server.runtime
from tests.harness import ServerProcess, call
from tests.store.test_object_stores import DUMMY_CREDENTIALS, moto_s3, new_bucket

pytestmark = pytest.mark.skipif(
    "open_object_store(settings)" not in inspect.getsource(llmtrail.server.runtime),
    reason="server/runtime.py does not open its object store with open_object_store yet",
)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str, Any]]:
    root = tmp_path_factory.mktemp("s3-served")
    with moto_s3() as endpoint:
        bucket = new_bucket(endpoint)
        config = (
            "offload_bytes = 2000\n"
            f'[objects]\nurl = "s3://{bucket}/team/llm"\nendpoint_url = "{endpoint}"\n'
        )
        s3 = boto3.client("s3", endpoint_url=endpoint)
        try:
            with ServerProcess(root / "data", config=config, env=DUMMY_CREDENTIALS) as server:
                yield server, bucket, s3
        finally:
            s3.close()


def keys(s3: Any, bucket: str) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return [item["Key"] for page in pages for item in page.get("Contents", ())]


def doc(request_id: str, body: Any, age_days: float = 0) -> dict[str, Any]:
    moment = datetime.now(UTC) - timedelta(days=age_days)
    return {
        "requestId": request_id,
        "timestamp": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "modelId": "sim-model",
        "input": {"inputBodyJson": body, "inputTokenCount": 5},
        "output": {"outputBodyJson": {"text": "ok"}, "outputTokenCount": 1},
    }


def test_a_large_body_is_stored_in_the_bucket_and_erased_from_it(
    served: tuple[ServerProcess, str, Any],
) -> None:
    server, bucket, s3 = served
    large = {"messages": [{"role": "user", "content": [{"text": "lorem " * 5000}]}]}
    status, _ = call(server.url, "POST", "/api/records", [doc("s3-big", large)])
    assert status < 300
    got = server.wait_for_record("s3-big")
    path = got["input"]["inputBodyS3Path"]
    assert path.startswith(f"s3://{bucket}/team/llm/AWSLogs/")
    assert path.endswith(f"/data/{got['recordId']}_input.json.gz")
    key = path.removeprefix(f"s3://{bucket}/")
    assert key in keys(s3, bucket)
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    assert orjson.loads(gzip.decompress(body)) == large  # the body sent, whole
    assert got["output"]["outputBodyJson"] == {"text": "ok"}  # under the threshold: inline

    status, report = call(server.url, "POST", "/api/erase", {"requestIds": ["s3-big"]})
    assert status == 200, report
    assert report["removed"]["records"] == 1 and report["removed"]["objects"] == 1
    assert key not in keys(s3, bucket)


def test_retention_archives_into_the_bucket(served: tuple[ServerProcess, str, Any]) -> None:
    server, bucket, s3 = served
    old = [doc(f"s3-old-{i}", {"q": f"{i} " + "y" * 3000}, age_days=40 + i) for i in range(3)]
    status, _ = call(server.url, "POST", "/api/records", old)
    assert status < 300
    for d in old:
        server.wait_for_record(d["requestId"])
    status, _ = call(server.url, "PUT", "/api/retention", {"recordsDays": 30, "archive": True})
    assert status == 200
    status, report = call(server.url, "POST", "/api/retention/run", {})
    assert status == 200, report
    assert report["archiveDir"] == f"s3://{bucket}/team/llm/archive/"
    (done,) = report["workspaces"]
    assert done["records"] == len(old) and done["objects"] == len(old)
    archived: dict[str, Any] = {}
    for uri in done["archived"]:
        data = s3.get_object(Bucket=bucket, Key=uri.removeprefix(f"s3://{bucket}/"))["Body"]
        for row in pq.read_table(pa.BufferReader(data.read())).to_pylist():
            archived[row["requestId"]] = orjson.loads(row["record"])
    assert {rid: r["input"]["inputBodyJson"] for rid, r in archived.items()} == {
        d["requestId"]: d["input"]["inputBodyJson"] for d in old
    }
    assert not [k for k in keys(s3, bucket) if "/data/" in k]
    assert not (Path(server.data_dir) / "archive").exists()
