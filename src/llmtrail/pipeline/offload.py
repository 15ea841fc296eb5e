"""Large-body offload: a body whose JSON is over the threshold goes to the object store,
gzipped, and the record keeps its S3-style path instead — as Bedrock does over 100 KB."""

from __future__ import annotations

import gzip
import re

import orjson

from llmtrail.record import InvocationRecord
from llmtrail.store.objects import ObjectStore

_PARTS = (
    ("input", "inputBodyJson", "inputBodyS3Path"),
    ("output", "outputBodyJson", "outputBodyS3Path"),
)


def body_key(record: InvocationRecord, kind: str, prefix: str = "") -> str:
    """Bedrock's layout, under ``prefix`` (the workspace's configured bucket and key
    prefix): AWSLogs/<account>/BedrockModelInvocationLogs/<region>/YYYY/MM/DD/HH/data/."""
    d = record.data
    ts = record.timestamp
    account, region = _segment(d.get("accountId")), _segment(d.get("region"))
    return (
        f"{prefix}AWSLogs/{account}/BedrockModelInvocationLogs/{region}/{ts:%Y/%m/%d/%H}/data/"
        f"{_segment(record.record_id)}_{kind}.json.gz"
    )


def _segment(value: object) -> str:
    """One safe path segment from caller-supplied text: never a separator, never ``..``."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", str(value or ""))[:128].lstrip(".")
    return cleaned or "unknown"


def offload_bodies(
    record: InvocationRecord, objects: ObjectStore, threshold: int, prefix: str = ""
) -> int:
    """Move ``record``'s bodies over ``threshold`` bytes to ``objects``; returns how many moved.
    Idempotent: the key depends only on the record, so a replayed batch rewrites the same file."""
    moved = 0
    for part, body_field, path_field in _PARTS:
        section = record.data.get(part)
        if not isinstance(section, dict) or section.get(body_field) is None:
            continue
        encoded = orjson.dumps(section[body_field])
        if len(encoded) <= threshold:
            continue
        section[path_field] = objects.put(body_key(record, part, prefix), gzip.compress(encoded, 6))
        del section[body_field]
        moved += 1
    return moved
