"""ObjectStore: where bodies over the offload threshold go, addressed by S3-style URIs.

The default is a directory (``DATA_DIR/objects``) laid out as Bedrock lays out its bucket,
so ``s3://llmtrail/AWSLogs/…/data/<recordId>_input.json.gz`` is the file
``DATA_DIR/objects/AWSLogs/…/data/<recordId>_input.json.gz``.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Protocol

from llmtrail.errors import NotFound


class ObjectStore(Protocol):
    def put(self, key: str, data: bytes) -> str:
        """Store ``data`` under ``key`` (idempotent); returns its URI."""
        ...

    def get(self, uri: str) -> bytes:
        """The bytes stored at ``uri``; raises `NotFound`."""
        ...


class DirectoryObjectStore:
    def __init__(self, root: Path, bucket: str = "llmtrail") -> None:
        self.root = root
        self.bucket = bucket

    def put(self, key: str, data: bytes) -> str:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{threading.get_ident()}.tmp")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        return f"s3://{self.bucket}/{key}"

    def get(self, uri: str) -> bytes:
        prefix = f"s3://{self.bucket}/"
        if not uri.startswith(prefix):
            raise NotFound(f"{uri} is not in this object store ({prefix})")
        try:
            return self._path(uri[len(prefix) :]).read_bytes()
        except FileNotFoundError:
            raise NotFound(f"no object at {uri}") from None

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise NotFound(f"object key {key!r} leaves the object store")
        return path


class MemoryObjectStore:
    def __init__(self, bucket: str = "memory") -> None:
        self.bucket = bucket
        self.objects: dict[str, bytes] = {}

    def put(self, key: str, data: bytes) -> str:
        uri = f"s3://{self.bucket}/{key}"
        self.objects[uri] = data
        return uri

    def get(self, uri: str) -> bytes:
        try:
            return self.objects[uri]
        except KeyError:
            raise NotFound(f"no object at {uri}") from None
