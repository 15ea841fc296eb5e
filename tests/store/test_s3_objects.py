"""``[objects] url = "s3://bucket/prefix"`` in-process, on moto's server mode (one per module):
the setting and its refusals, `open_object_store`, the pipeline offloading a large body to the
bucket (read back with boto3, removed by erasure), and retention archiving to the bucket (and
erasure rewriting that archive). What is compared is computed from the records sent."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from llmtrail.config import SpoolSettings, load_settings
from llmtrail.errors import ConfigError
from llmtrail.pipeline.pipeline import Pipeline
from llmtrail.pipeline.spool import Spool
from llmtrail.record import InvocationRecord
from llmtrail.security.archive import erase_from_archives
from llmtrail.security.erasure import Eraser
from llmtrail.security.retention import RetentionPolicies
from llmtrail.security.retention_runner import RetentionRunner
from llmtrail.store.duckdb import Database, DuckDBRecordStore, DuckDBStateStore
from llmtrail.store.duckdb.erasure import DuckDBEraser
from llmtrail.store.duckdb.metrics import DuckDBRollups
from llmtrail.store.interfaces import RecordQuery
from llmtrail.store.objects import DirectoryObjectStore, open_object_store
from llmtrail.store.s3_objects import S3ObjectStore
from tests.store.test_object_stores import moto_s3, new_bucket

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with moto_s3() as endpoint:
        yield endpoint


@pytest.fixture
def s3(s3_endpoint: str) -> Iterator[Any]:
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    yield client
    client.close()


def bucket_keys(s3: Any, bucket: str) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return [item["Key"] for page in pages for item in page.get("Contents", ())]


def record(request_id: str, body: dict[str, Any], age_days: float = 0) -> InvocationRecord:
    moment = NOW - timedelta(days=age_days)
    return InvocationRecord.from_dict(
        {
            "requestId": request_id,
            "timestamp": moment.isoformat().replace("+00:00", "Z"),
            "accountId": "123456789012",
            "region": "us-east-1",
            "modelId": "m",
            "operation": "Converse",
            "input": {"inputBodyJson": body, "inputTokenCount": 3},
            "output": {"outputBodyJson": {"text": "ok"}, "outputTokenCount": 1},
        },
        now=NOW,
    )


def test_objects_setting_from_the_file_and_the_environment(tmp_path: Path) -> None:
    config = tmp_path / "llmtrail.toml"
    config.write_text(
        '[objects]\nurl = "s3://team-logs/llm/"\n'
        'endpoint_url = "http://127.0.0.1:9000"\nregion = "eu-west-1"\n'
    )
    settings = load_settings(config, env={})
    assert (settings.objects.url, settings.objects.endpoint_url, settings.objects.region) == (
        "s3://team-logs/llm/",
        "http://127.0.0.1:9000",
        "eu-west-1",
    )
    env = {"LLMTRAIL_OBJECTS__URL": "s3://other-bucket/p"}
    assert load_settings(config, env=env).objects.url == "s3://other-bucket/p"
    assert load_settings(env={}).objects.url == ""


@pytest.mark.parametrize(
    ("objects", "named"),
    [
        ({"url": "s3://Team_Logs/x"}, "[objects] url"),
        ({"url": "s3://ab"}, "[objects] url"),
        ({"url": "ftp://host/x"}, "[objects] url"),
        ({"url": "s3://bucket-name/x?versionId=1"}, "[objects] url"),
        ({"url": "s3://AKIA:hunter2@bucket-name/x"}, "[objects] url"),
        ({"url": "s3://bucket-name", "endpoint_url": "localhost:9000"}, "[objects] endpoint_url"),
        (
            {"url": "s3://bucket-name", "endpoint_url": "http://AKIA:hunter2@127.0.0.1:9000"},
            "[objects] endpoint_url",
        ),
        ({"url": "", "endpoint_url": "http://127.0.0.1:9000"}, "[objects] endpoint_url"),
        ({"bucket": "x"}, "[objects]"),
    ],
)
def test_bad_objects_settings_name_the_setting(
    tmp_path: Path, objects: dict[str, str], named: str
) -> None:
    config = tmp_path / "llmtrail.toml"
    config.write_text("[objects]\n" + "".join(f'{k} = "{v}"\n' for k, v in objects.items()))
    with pytest.raises(ConfigError) as caught:
        load_settings(config, env={})
    assert named in str(caught.value)
    assert "hunter2" not in str(caught.value)  # a secret put in a URL is never repeated


def test_the_default_object_store_is_the_data_directory(tmp_path: Path) -> None:
    settings = load_settings(env={"LLMTRAIL_DATA_DIR": str(tmp_path)})
    store = open_object_store(settings)
    assert isinstance(store, DirectoryObjectStore)
    uri = store.put("AWSLogs/x/data/r_input.json.gz", b"body")
    assert uri == "s3://llmtrail/AWSLogs/x/data/r_input.json.gz"
    assert (tmp_path / "objects" / "AWSLogs/x/data/r_input.json.gz").read_bytes() == b"body"


def test_an_s3_url_opens_the_bucket_under_its_prefix(s3_endpoint: str, s3: Any) -> None:
    bucket = new_bucket(s3_endpoint)
    settings = load_settings(
        env={"LLMTRAIL_OBJECTS__URL": f"s3://{bucket}/team/llm", "LLMTRAIL_DATA_DIR": "unused"}
    )
    settings.objects.endpoint_url = s3_endpoint
    store = open_object_store(settings)
    assert isinstance(store, S3ObjectStore)
    uri = store.put("AWSLogs/k.json.gz", b"payload")
    assert uri == f"s3://{bucket}/team/llm/AWSLogs/k.json.gz"
    got = s3.get_object(Bucket=bucket, Key="team/llm/AWSLogs/k.json.gz")["Body"].read()
    assert got == b"payload"
    store.client.close()


class Parts:
    """A DuckDB file, a spool and the pipeline offloading to an S3 bucket."""

    def __init__(self, root: Path, endpoint: str) -> None:
        self.bucket = new_bucket(endpoint)
        self.objects = S3ObjectStore(self.bucket, "llm/", endpoint_url=endpoint)
        self.db = Database(root / "llmtrail.duckdb")
        self.rollups = DuckDBRollups(self.db.schema)
        self.records = DuckDBRecordStore(self.db, self.rollups)
        self.state = DuckDBStateStore(self.db)
        self.eraser = DuckDBEraser(self.db, self.rollups)
        self.spool = Spool(root / "spool")
        self.pipeline = Pipeline(
            self.spool,
            self.records,
            objects=self.objects,
            settings=SpoolSettings(batch_wait_ms=10),
            offload_bytes=1000,
        )

    def close(self) -> None:
        self.pipeline.stop()
        self.db.close()
        self.objects.client.close()


@pytest.fixture
def parts(tmp_path: Path, s3_endpoint: str) -> Iterator[Parts]:
    p = Parts(tmp_path, s3_endpoint)
    yield p
    p.close()


def test_the_pipeline_offloads_a_large_body_to_the_bucket_and_erasure_removes_it(
    parts: Parts, s3: Any
) -> None:
    large = {"messages": [{"role": "user", "content": [{"text": "word " * 20_000}]}]}
    parts.pipeline.start()
    _, stored = parts.pipeline.ingest([record("big-1", large), record("small-1", {"q": "hi"})])
    stored.result(30)
    parts.pipeline.stop()

    by_id = {r.request_id: r.data for r in parts.records.find(RecordQuery(limit=10)).records}
    path = by_id["big-1"]["input"]["inputBodyS3Path"]
    key = (
        "llm/AWSLogs/123456789012/BedrockModelInvocationLogs/us-east-1/"
        f"{NOW:%Y/%m/%d/%H}/data/{by_id['big-1']['recordId']}_input.json.gz"
    )
    assert path == f"s3://{parts.bucket}/{key}"
    assert "inputBodyJson" not in by_id["big-1"]["input"]
    assert by_id["small-1"]["input"]["inputBodyJson"] == {"q": "hi"}  # under the threshold
    assert bucket_keys(s3, parts.bucket) == [key]
    body = s3.get_object(Bucket=parts.bucket, Key=key)["Body"].read()
    assert orjson.loads(gzip.decompress(body)) == large
    assert orjson.loads(gzip.decompress(parts.objects.get(path))) == large

    report = Eraser(parts.eraser, objects=parts.objects).erase("default", ["big-1"])
    assert (report.records, report.objects) == (1, 1)
    assert bucket_keys(s3, parts.bucket) == []


def test_retention_archives_to_the_bucket_and_erasure_rewrites_that_archive(
    parts: Parts, s3: Any, tmp_path: Path
) -> None:
    bodies = {f"old-{i}": {"q": f"{i} " + "x" * (3000 if i % 2 else 10)} for i in range(6)}
    old = [record(rid, body, age_days=40 + i) for i, (rid, body) in enumerate(bodies.items())]
    parts.pipeline.start()
    _, stored = parts.pipeline.ingest([*old, record("new-1", {"q": "kept"})])
    stored.result(30)
    parts.pipeline.stop()
    offloaded = [k for k in bucket_keys(s3, parts.bucket) if "/data/" in k]
    assert len(offloaded) == 3  # the odd ones

    RetentionPolicies(parts.state).put("default", {"recordsDays": 30, "archive": True})
    local = tmp_path / "archive"
    report = RetentionRunner(parts.state, parts.eraser, parts.objects, local, page=4).run(NOW)
    (done,) = report.workspaces
    assert done.records == len(old) and done.objects == len(offloaded)
    assert report.archive_dir == f"s3://{parts.bucket}/llm/archive/"
    assert done.archived and all(
        uri.startswith(f"s3://{parts.bucket}/llm/archive/default/") for uri in done.archived
    )
    assert not local.exists()  # nothing on the server's disk
    keys = bucket_keys(s3, parts.bucket)
    assert not [k for k in keys if "/data/" in k]  # the body objects went with their records
    assert sorted(f"s3://{parts.bucket}/{k}" for k in keys) == sorted(done.archived)

    def archived() -> dict[str, Any]:
        rows: dict[str, Any] = {}
        for key in bucket_keys(s3, parts.bucket):
            data = s3.get_object(Bucket=parts.bucket, Key=key)["Body"].read()
            for row in pq.read_table(pa.BufferReader(data)).to_pylist():
                rows[row["requestId"]] = orjson.loads(row["record"])
        return rows

    before = archived()
    assert {rid: doc["input"]["inputBodyJson"] for rid, doc in before.items()} == bodies
    left = [r.request_id for r in parts.records.find(RecordQuery(limit=10)).records]
    assert left == ["new-1"]

    erased = erase_from_archives(local, "default", request_ids=["old-1"], objects=parts.objects)
    assert erased.records == 1 and erased.files_rewritten + erased.files_removed == 1
    assert sorted(archived()) == sorted(rid for rid in bodies if rid != "old-1")
