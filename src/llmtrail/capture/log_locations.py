"""Where Bedrock-layout objects are written and read: a directory or an S3 prefix.

Export and import see one small interface (`Location`: put, list, get) so each is written
once for both. S3 goes through boto3 with its standard credential chain (environment,
shared files, instance roles) and an optional endpoint for S3-compatible stores; nothing here
knows the layout, only keys relative to the location's root.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from llmtrail.errors import LlmtrailError, ValidationError


@dataclass(frozen=True)
class Listed:
    """An object under the root: its key (relative to the root), its ETag (S3's, or size
    and modification time for a file) and its size in bytes."""

    key: str
    etag: str
    size: int


class Location(Protocol):
    uri: str  # the root, as the user named it: an absolute directory or s3://bucket/prefix

    def put(self, key: str, data: bytes) -> None:
        """Write ``data`` at ``key`` (replacing what was there)."""
        ...

    def list(self) -> Iterator[Listed]:
        """Every object under the root, keys sorted."""
        ...

    def get(self, key: str) -> bytes:
        """The bytes at ``key``."""
        ...

    def object_uri(self, key: str) -> str:
        """The full URI of ``key`` (what a manifest remembers)."""
        ...


class DirectoryLocation:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.uri = str(self.root)

    def put(self, key: str, data: bytes) -> None:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)

    def list(self) -> Iterator[Listed]:
        found = []
        for dirpath, _, names in os.walk(self.root):
            for name in names:
                if name.startswith("."):
                    continue
                path = Path(dirpath) / name
                st = path.stat()
                key = path.relative_to(self.root).as_posix()
                found.append(Listed(key, f"{st.st_size}-{st.st_mtime_ns}", st.st_size))
        yield from sorted(found, key=lambda f: f.key)

    def get(self, key: str) -> bytes:
        try:
            return (self.root / key).read_bytes()
        except OSError as exc:
            raise LlmtrailError(f"cannot read {self.root / key}: {exc.strerror or exc}") from None

    def object_uri(self, key: str) -> str:
        return (self.root / key).as_uri()


class S3Location:
    def __init__(self, uri: str, endpoint_url: str | None = None) -> None:
        import boto3

        bucket, _, prefix = uri.removeprefix("s3://").partition("/")
        if not bucket:
            raise ValidationError("destination", f"{uri!r} names no bucket (s3://bucket/prefix)")
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.uri = f"s3://{bucket}/{self.prefix}"
        self.client: Any = boto3.client("s3", endpoint_url=endpoint_url)

    def put(self, key: str, data: bytes) -> None:
        self._call(self.client.put_object, Bucket=self.bucket, Key=self.prefix + key, Body=data)

    def list(self) -> Iterator[Listed]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix
        )
        try:
            for page in pages:
                for item in page.get("Contents", []):
                    key = item["Key"][len(self.prefix) :]
                    yield Listed(key, str(item["ETag"]).strip('"'), int(item["Size"]))
        except Exception as exc:  # botocore's errors: no credentials, no bucket, no network
            raise LlmtrailError(f"cannot list {self.uri}: {exc}") from None

    def get(self, key: str) -> bytes:
        answer = self._call(self.client.get_object, Bucket=self.bucket, Key=self.prefix + key)
        return bytes(answer["Body"].read())

    def object_uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.prefix}{key}"

    def _call(self, method: Any, **params: Any) -> Any:
        try:
            return method(**params)
        except Exception as exc:  # botocore's errors, reported as llmtrail's
            raise LlmtrailError(f"S3 {params.get('Key', '')}: {exc}") from None


def open_location(target: str, endpoint_url: str | None = None) -> Location:
    """``s3://bucket/prefix`` or a directory."""
    if target.startswith("s3://"):
        return S3Location(target, endpoint_url)
    if "://" in target:
        raise ValidationError("destination", f"expected a directory or s3://…, got {target!r}")
    return DirectoryLocation(Path(target))
