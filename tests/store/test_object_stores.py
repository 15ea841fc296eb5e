"""The `ObjectStore` contract, run on every implementation: a directory, memory, and S3 through
boto3 on moto's server mode (a real HTTP endpoint on 127.0.0.1, one per module; no real
S3-compatible server installs on these machines). The tests see only the protocol; the S3
store lists two keys a page, so every listing here crosses pages."""

from __future__ import annotations

import gzip
import hashlib
import io
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from llmtrail.errors import NotFound
from llmtrail.store.objects import DirectoryObjectStore, MemoryObjectStore, ObjectStore
from llmtrail.store.s3_objects import S3ObjectStore

IMPLEMENTATIONS = ["directory", "memory", "s3"]
DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@contextmanager
def moto_s3() -> Iterator[str]:
    """moto's S3 in server mode on 127.0.0.1 and a free port, with dummy credentials in the
    environment (boto3's standard chain finds them); its endpoint URL. Stops the server and
    checks that none of its threads is left."""
    before = set(threading.enumerate())
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    with pytest.MonkeyPatch.context() as env:
        for name, value in DUMMY_CREDENTIALS.items():
            env.setenv(name, value)
        server.start()
        try:
            host, port = server.get_host_and_port()
            yield f"http://{host}:{port}"
        finally:
            server.stop()
    left = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    for thread in left:  # request threads finish once their connection is closed
        thread.join(10)
    assert not [t for t in left if t.is_alive()], "moto's server left threads running"


def new_bucket(endpoint: str) -> str:
    """A fresh bucket (moto's state is shared by every server in the process)."""
    name = f"llmtrail-{uuid.uuid4().hex[:12]}"
    client = boto3.client("s3", endpoint_url=endpoint)
    client.create_bucket(Bucket=name)
    client.close()
    return name


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with moto_s3() as endpoint:
        yield endpoint


@pytest.fixture(params=IMPLEMENTATIONS)
def objects(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ObjectStore]:
    if request.param == "directory":
        yield DirectoryObjectStore(tmp_path / "objects")
    elif request.param == "memory":
        yield MemoryObjectStore()
    else:
        endpoint = request.getfixturevalue("s3_endpoint")
        bucket = new_bucket(endpoint)
        store = S3ObjectStore(bucket, "team/logs/", endpoint_url=endpoint, page_size=2)
        yield store
        store.client.close()


KEY = "AWSLogs/123456789012/BedrockModelInvocationLogs/us-east-1/2026/12/06/14/data/r1.json.gz"


def test_put_then_get_returns_the_bytes_at_the_uri(objects: ObjectStore) -> None:
    body = gzip.compress(b'{"messages": []}')
    uri = objects.put(KEY, body)
    assert uri == objects.uri(KEY)
    assert uri.startswith("s3://") and uri.endswith(KEY)
    assert objects.get(uri) == body


def test_put_is_idempotent_and_overwrites(objects: ObjectStore) -> None:
    first = objects.put("a/b.json", b"one")
    second = objects.put("a/b.json", b"two")
    assert first == second
    assert objects.get(first) == b"two"
    assert [info.key for info in objects.list("a/")] == ["a/b.json"]


def test_missing_and_foreign_uris_are_not_found(objects: ObjectStore) -> None:
    objects.put("here.json", b"x")
    with pytest.raises(NotFound):
        objects.get(objects.uri("nothing/here.json"))
    with pytest.raises(NotFound):
        objects.get("s3://some-other-bucket/here.json")
    with pytest.raises(NotFound):
        objects.open(objects.uri("nothing/here.json"))


def test_delete_says_whether_there_was_an_object(objects: ObjectStore) -> None:
    uri = objects.put("gone/soon.json", b"x")
    other = objects.put("gone/stays.json", b"y")
    assert objects.delete(uri) is True
    assert objects.delete(uri) is False
    assert objects.delete("s3://some-other-bucket/gone/stays.json") is False
    with pytest.raises(NotFound):
        objects.get(uri)
    assert objects.get(other) == b"y"
    assert [info.uri for info in objects.list("gone/")] == [other]


def test_list_filters_by_prefix_in_key_order_with_sizes_and_etags(objects: ObjectStore) -> None:
    data = {
        "d/2026/12/06/b.json": b"bb",
        "d/2026/12/06/a.json": b"a",
        "d/2026/12/07/c.json": b"ccc",
        "d/2026/12.txt": b"dddd",
        "d/2026-other/e.json": b"e",
        "elsewhere/f.json": b"f",
    }
    for key, body in data.items():
        objects.put(key, body)
    listed = list(objects.list("d/2026/12"))
    assert [i.key for i in listed] == sorted(k for k in data if k.startswith("d/2026/12"))
    assert [i.size for i in listed] == [len(data[i.key]) for i in listed]
    assert [i.uri for i in listed] == [objects.uri(i.key) for i in listed]
    assert all(objects.get(i.uri) == data[i.key] for i in listed)
    everything = list(objects.list())
    assert [i.key for i in everything] == sorted(data)
    assert list(objects.list("nothing/")) == []
    assert list(objects.list("d/2026/12/06/")) == [i for i in listed if "/06/" in i.key]
    assert [i.key for i in listed][:2] == ["d/2026/12.txt", "d/2026/12/06/a.json"]  # '.' < '/'


def test_etag_is_stable_and_changes_with_the_bytes(objects: ObjectStore) -> None:
    objects.put("e/one.json", b"first")
    (before,) = objects.list("e/")
    assert list(objects.list("e/")) == [before]
    objects.put("e/one.json", b"second")
    (after,) = objects.list("e/")
    assert after.etag != before.etag
    assert after.etag == f'"{hashlib.md5(b"second").hexdigest()}"'  # single part: S3's MD5


def test_large_objects_stream_in_and_out(objects: ObjectStore) -> None:
    block = hashlib.sha256(b"seed").digest() * 4096  # 128 KiB
    size = 9 * 1024 * 1024 + 123  # over boto3's 8 MiB multipart threshold
    payload = (block * (size // len(block) + 1))[:size]
    uri = objects.put_stream("big/blob.bin", io.BytesIO(payload))
    assert uri == objects.uri("big/blob.bin")
    digest = hashlib.sha256()
    read = 0
    with objects.open(uri) as reader:
        while chunk := reader.read(1024 * 1024):
            digest.update(chunk)
            read += len(chunk)
    assert read == size
    assert digest.hexdigest() == hashlib.sha256(payload).hexdigest()
    (info,) = objects.list("big/")
    assert info.size == size


def test_open_reads_gzip_as_a_stream(objects: ObjectStore) -> None:
    lines = b"".join(b'{"requestId": "r-%d"}\n' % i for i in range(1000))
    uri = objects.put("g/batch.json.gz", gzip.compress(lines))
    with objects.open(uri) as raw, gzip.GzipFile(fileobj=raw) as unzipped:
        assert unzipped.readline() == b'{"requestId": "r-0"}\n'
        assert unzipped.read() == lines.split(b"\n", 1)[1]


def test_a_directory_key_never_leaves_the_root(tmp_path: Path) -> None:
    store = DirectoryObjectStore(tmp_path / "objects")
    (tmp_path / "secret.txt").write_bytes(b"not an object")
    with pytest.raises(NotFound):
        store.put("../secret.txt", b"x")
    with pytest.raises(NotFound):
        store.get("s3://llmtrail/../secret.txt")
    assert store.delete("s3://llmtrail/../secret.txt") is False
    assert list(store.list("../")) == []
    assert (tmp_path / "secret.txt").read_bytes() == b"not an object"


def test_a_directory_lists_no_half_written_file(tmp_path: Path) -> None:
    store = DirectoryObjectStore(tmp_path / "objects")
    store.put("x/done.json", b"{}")
    (tmp_path / "objects" / "x" / ".partial.json.1.tmp").write_bytes(b"{")
    assert [i.key for i in store.list()] == ["x/done.json"]
