"""S3ObjectStore: the object store in an S3 bucket, through boto3 (``[objects] url =
"s3://bucket/prefix"``).

Keys land under the URL's prefix, so the record of a large body keeps
``s3://bucket/prefix/AWSLogs/…/data/<recordId>_input.json.gz`` — Bedrock's own layout — and
archives go under ``prefix/archive/``. ``endpoint_url`` points boto3 at an S3-compatible
store (MinIO, Ceph, moto's server in tests); credentials come only from boto3's standard chain
(environment, shared files, instance roles) and are never part of a setting or a log line.

Calls are bounded (connect and read timeouts, three attempts in botocore's standard retry
mode), because the pipeline's store thread offloads bodies and a hung endpoint must not stall
it: a failed put leaves the body inline in its record. ``delete`` asks ``HeadObject`` first,
as ``DeleteObject`` succeeds whether or not the key exists and erasure reports what it
removed. ``put_stream`` and ``open`` move large objects in parts (boto3's managed transfer
above 8 MiB, a streaming body when reading), never whole in memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any, cast

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

from llmtrail.errors import NotFound
from llmtrail.store.objects import ObjectInfo

_MISSING = {"NoSuchKey", "404", "NotFound"}
_TRANSFER = TransferConfig(
    multipart_threshold=8 * 1024 * 1024, multipart_chunksize=8 * 1024 * 1024, max_concurrency=4
)
_CLIENT_CONFIG = Config(
    connect_timeout=5,
    read_timeout=60,
    retries={"mode": "standard", "max_attempts": 3},
)


class S3ObjectStore:
    """Objects under ``prefix`` (empty, or ending with ``/``) in ``bucket``."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        client: Any = None,
        page_size: int = 1000,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.page_size = page_size  # keys a ListObjectsV2 page (S3's most)
        self.client = client or boto3.session.Session().client(
            "s3", endpoint_url=endpoint_url, region_name=region, config=_CLIENT_CONFIG
        )
        self._base = f"s3://{bucket}/{prefix}"

    def put(self, key: str, data: bytes) -> str:
        self.client.put_object(Bucket=self.bucket, Key=self._full(key), Body=data)
        return self.uri(key)

    def put_stream(self, key: str, source: IO[bytes]) -> str:
        self.client.upload_fileobj(source, self.bucket, self._full(key), Config=_TRANSFER)
        return self.uri(key)

    def get(self, uri: str) -> bytes:
        with self.open(uri) as body:
            return body.read()

    def open(self, uri: str) -> IO[bytes]:
        key = self._key(uri)
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _missing(exc):
                raise NotFound(f"no object at {uri}") from None
            raise
        return cast(IO[bytes], answer["Body"])  # botocore's StreamingBody, an io.IOBase

    def delete(self, uri: str) -> bool:
        try:
            key = self._key(uri)
            self.client.head_object(Bucket=self.bucket, Key=key)
        except NotFound:
            return False
        except ClientError as exc:
            if _missing(exc):
                return False
            raise
        self.client.delete_object(Bucket=self.bucket, Key=key)
        return True

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket,
            Prefix=self._full(prefix),
            PaginationConfig={"PageSize": self.page_size},
        )
        for page in pages:
            for item in page.get("Contents", ()):
                key = item["Key"][len(self.prefix) :]
                yield ObjectInfo(key, self.uri(key), int(item["Size"]), str(item["ETag"]))

    def uri(self, key: str) -> str:
        return self._base + key

    def _full(self, key: str) -> str:
        return self.prefix + key

    def _key(self, uri: str) -> str:
        if not uri.startswith(self._base) or len(uri) == len(self._base):
            raise NotFound(f"{uri} is not in this object store ({self._base})")
        return uri[len("s3://") + len(self.bucket) + 1 :]


def _missing(exc: ClientError) -> bool:
    return str(exc.response.get("Error", {}).get("Code")) in _MISSING
