"""ObjectStore: where bodies over the offload threshold and retention's archives go,
addressed by S3-style URIs.

The default is a directory (``DATA_DIR/objects``) laid out as Bedrock lays out its bucket,
so ``s3://llmtrail/AWSLogs/…/data/<recordId>_input.json.gz`` is the file
``DATA_DIR/objects/AWSLogs/…/data/<recordId>_input.json.gz``; ``[objects] url =
"s3://bucket/prefix"`` puts the same keys in a bucket (`llmtrail.store.s3_objects`), and
`MemoryObjectStore` keeps them in a dict for tests. `open_object_store` picks one from the
settings.

Keys are relative to the store (``AWSLogs/…``); URIs are what records keep
(``s3://bucket/prefix/AWSLogs/…``). A store reads, lists and deletes only its own URIs, so a
record naming another bucket (or a path climbing out of the directory) is `NotFound`, never
a file elsewhere. ``list`` yields `ObjectInfo` in key order with an ``etag`` that, as S3's,
is opaque and changes when the bytes do (the directory and memory stores give the quoted MD5
S3 gives a single-part upload). ``open`` and ``put_stream`` move large objects without
holding them in memory.
"""

from __future__ import annotations

import builtins
import hashlib
import io
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

from llmtrail.errors import ConfigError, NotFound

if TYPE_CHECKING:
    from llmtrail.config import ObjectSettings, Settings

DEFAULT_BUCKET = "llmtrail"  # the directory store's URIs: s3://llmtrail/<key>
_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class ObjectInfo:
    """One listed object: its key (relative to the store), URI, size in bytes and ETag."""

    key: str
    uri: str
    size: int
    etag: str


class ObjectStore(Protocol):
    def put(self, key: str, data: bytes) -> str:
        """Store ``data`` under ``key`` (idempotent: the same key is overwritten); its URI."""
        ...

    def put_stream(self, key: str, source: IO[bytes]) -> str:
        """Store what ``source`` reads to its end under ``key``, in parts; its URI."""
        ...

    def get(self, uri: str) -> bytes:
        """The bytes stored at ``uri``; raises `NotFound`."""
        ...

    def open(self, uri: str) -> IO[bytes]:
        """A binary reader of the object at ``uri`` (close it); raises `NotFound`."""
        ...

    def delete(self, uri: str) -> bool:
        """Remove the object at ``uri``; False when there was none (or it is not this store's)."""
        ...

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """The objects whose key starts with ``prefix``, in key order, fetched a page at a
        time as the iterator advances."""
        ...

    def uri(self, key: str) -> str:
        """The URI an object stored under ``key`` has (whether it exists or not)."""
        ...


def quoted_md5(data: bytes) -> str:
    """S3's ETag of a single-part object: its MD5 in hex, in double quotes."""
    return f'"{hashlib.md5(data, usedforsecurity=False).hexdigest()}"'


class DirectoryObjectStore:
    def __init__(self, root: Path, bucket: str = DEFAULT_BUCKET) -> None:
        self.root = root
        self.bucket = bucket

    def put(self, key: str, data: bytes) -> str:
        return self.put_stream(key, io.BytesIO(data))

    def put_stream(self, key: str, source: IO[bytes]) -> str:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{threading.get_ident()}.tmp")
        with open(tmp, "wb") as f:
            while chunk := source.read(_CHUNK):
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        return self.uri(key)

    def get(self, uri: str) -> bytes:
        with self.open(uri) as f:
            return f.read()

    def open(self, uri: str) -> IO[bytes]:
        try:
            return open(self._path(self._key(uri)), "rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise NotFound(f"no object at {uri}") from None

    def delete(self, uri: str) -> bool:
        try:
            self._path(self._key(uri)).unlink()
        except (NotFound, FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return False
        return True

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        root = self.root.resolve()
        start = root / prefix.rpartition("/")[0]
        if not start.resolve().is_relative_to(root) or not start.is_dir():
            return
        keys: builtins.list[str] = []
        for folder, dirs, files in os.walk(start):
            dirs.sort()
            base = Path(folder).relative_to(root).as_posix()
            for name in files:
                key = name if base == "." else f"{base}/{name}"
                if key.startswith(prefix) and not _is_temporary(name):
                    keys.append(key)
        for key in sorted(keys):
            path = root / key
            try:
                digest, size = _file_md5(path)
            except FileNotFoundError:  # deleted since the walk
                continue
            yield ObjectInfo(key, self.uri(key), size, digest)

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def _key(self, uri: str) -> str:
        prefix = f"s3://{self.bucket}/"
        if not uri.startswith(prefix):
            raise NotFound(f"{uri} is not in this object store ({prefix})")
        return uri[len(prefix) :]

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not key or not path.is_relative_to(self.root.resolve()):
            raise NotFound(f"object key {key!r} leaves the object store")
        return path


def _is_temporary(name: str) -> bool:
    return name.startswith(".") and name.endswith(".tmp")


def _file_md5(path: Path) -> tuple[str, int]:
    digest = hashlib.md5(usedforsecurity=False)
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return f'"{digest.hexdigest()}"', size


class MemoryObjectStore:
    def __init__(self, bucket: str = "memory") -> None:
        self.bucket = bucket
        self.objects: dict[str, bytes] = {}  # by URI

    def put(self, key: str, data: bytes) -> str:
        uri = self.uri(key)
        self.objects[uri] = bytes(data)
        return uri

    def put_stream(self, key: str, source: IO[bytes]) -> str:
        return self.put(key, source.read())

    def get(self, uri: str) -> bytes:
        try:
            return self.objects[uri]
        except KeyError:
            raise NotFound(f"no object at {uri}") from None

    def open(self, uri: str) -> IO[bytes]:
        return io.BytesIO(self.get(uri))

    def delete(self, uri: str) -> bool:
        return self.objects.pop(uri, None) is not None

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        start = self.uri(prefix)
        for uri in sorted(u for u in self.objects if u.startswith(start)):
            data = self.objects.get(uri)
            if data is not None:
                yield ObjectInfo(uri[len(self.uri("")) :], uri, len(data), quoted_md5(data))

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"


@dataclass(frozen=True)
class S3Location:
    """A parsed ``s3://bucket/prefix`` URL; ``prefix`` is empty or ends with ``/``."""

    bucket: str
    prefix: str


def parse_s3_url(url: str, setting: str = "[objects] url") -> S3Location:
    """``s3://bucket[/prefix]`` as a bucket and a key prefix; `ConfigError` naming ``setting``
    when it is not one (credentials in it, a query, a bucket name S3 refuses)."""
    parts = urlsplit(url)
    bucket = parts.netloc
    problem = None
    if parts.scheme != "s3":
        problem = "must start with s3://"
    elif "@" in bucket or ":" in bucket:
        problem = "must not carry credentials or a port (boto3's credential chain is used)"
    elif parts.query or parts.fragment:
        problem = "must not have a query or a fragment"
    elif not 3 <= len(bucket) <= 63 or not all(c.isalnum() or c in ".-" for c in bucket):
        problem = "needs a bucket name of 3 to 63 letters, digits, dots and hyphens"
    elif bucket != bucket.lower() or not bucket[0].isalnum() or not bucket[-1].isalnum():
        problem = "needs a lowercase bucket name that starts and ends with a letter or digit"
    if problem is not None:
        shown = url.replace(bucket, "…@" + bucket.rpartition("@")[2]) if "@" in bucket else url
        raise ConfigError(f"{setting}: {shown!r} {problem} (s3://bucket/prefix)")
    prefix = parts.path.strip("/")
    return S3Location(bucket, f"{prefix}/" if prefix else "")


def check_object_settings(objects: ObjectSettings, setting: str = "[objects]") -> None:
    """`ConfigError` naming ``setting`` unless ``objects`` can open a store: ``url`` empty, a
    directory or ``s3://bucket/prefix``; ``endpoint_url`` an http(s) address without
    credentials."""
    url = objects.url
    scheme = urlsplit(url).scheme
    if scheme == "s3":
        parse_s3_url(url, f"{setting} url")
    elif scheme not in ("", "file") and len(scheme) > 1:  # one letter: a Windows drive
        raise ConfigError(f"{setting} url: {url!r} must be a directory or s3://bucket/prefix")
    if objects.endpoint_url:
        endpoint = urlsplit(objects.endpoint_url)
        if endpoint.scheme not in ("http", "https") or not endpoint.hostname:
            raise ConfigError(
                f"{setting} endpoint_url: {objects.endpoint_url!r} must be http(s)://host[:port]"
            )
        if endpoint.username is not None or endpoint.password is not None:
            raise ConfigError(
                f"{setting} endpoint_url: must not carry credentials (boto3's credential "
                "chain is used: AWS_ACCESS_KEY_ID, ~/.aws/credentials, roles)"
            )
        if scheme != "s3":
            raise ConfigError(f"{setting} endpoint_url: only for an s3:// url, got {url!r}")


def object_store_at(
    url: str,
    default_dir: Path,
    *,
    endpoint_url: str = "",
    region: str = "",
    setting: str = "[objects] url",
) -> ObjectStore:
    """The store ``url`` names: empty is ``default_dir``; ``s3://bucket/prefix`` a bucket (at
    ``endpoint_url`` when given); anything else a directory (``file://`` or a path)."""
    if not url:
        return DirectoryObjectStore(default_dir)
    scheme = urlsplit(url).scheme
    if scheme == "s3":
        location = parse_s3_url(url, setting)
        from llmtrail.store.s3_objects import S3ObjectStore

        return S3ObjectStore(
            location.bucket,
            location.prefix,
            endpoint_url=endpoint_url or None,
            region=region or None,
        )
    if scheme == "file":
        return DirectoryObjectStore(Path(urlsplit(url).path))
    if scheme and len(scheme) > 1:  # not a Windows drive letter
        raise ConfigError(f"{setting}: {url!r} must be a directory or s3://bucket/prefix")
    return DirectoryObjectStore(Path(url))


def open_object_store(settings: Settings) -> ObjectStore:
    """The object store ``settings.objects`` configures (``DATA_DIR/objects`` by default)."""
    o = settings.objects
    return object_store_at(
        o.url, settings.data_dir / "objects", endpoint_url=o.endpoint_url, region=o.region
    )
