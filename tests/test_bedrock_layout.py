"""Bedrock's S3 layout as pure functions: keys, names, batches, and reading them back."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime

import orjson

from llmtrail.capture.bedrock_layout import (
    HourFolder,
    batch_name,
    batches,
    data_key,
    decode_batch,
    encode_batch,
    parse_key,
    request_ids,
    time_window,
)
from tests.conftest import bedrock_fixture_lines


def _doc(i: int, hour: int, account: str | None = "123456789012") -> dict[str, object]:
    doc: dict[str, object] = {
        "schemaType": "ModelInvocationLog",
        "timestamp": f"2026-11-23T{hour:02d}:{i % 60:02d}:15.123Z",
        "requestId": f"req-{hour}-{i}",
        "region": "eu-west-1",
    }
    if account:
        doc["accountId"] = account
    return doc


def test_hour_folder_key_matches_bedrocks_delivery_path() -> None:
    folder = HourFolder("123456789012", "us-east-1", datetime(2026, 6, 3, 6, tzinfo=UTC))
    assert (
        folder.key() == "AWSLogs/123456789012/BedrockModelInvocationLogs/us-east-1/2026/06/03/06/"
    )
    assert folder.key("/logs/llm/").startswith("logs/llm/AWSLogs/123456789012/")
    name = batch_name(datetime(2026, 6, 3, 6, 1, 2, tzinfo=UTC), ["a", "b"])
    assert name.startswith("20260603T060102Z_") and name.endswith(".json.gz")
    assert parse_key(folder.key("p") + name) == (folder, name)
    assert data_key(folder, "r/1", "input") == folder.key() + "data/r_1_input.json.gz"


def test_parse_key_ignores_what_is_not_a_batch() -> None:
    base = "AWSLogs/1/BedrockModelInvocationLogs/us-east-1/2026/06/03/06"
    assert parse_key(f"{base}/data/req_input.json.gz") is None
    assert parse_key("AWSLogs/1/BedrockModelInvocationLogs/permission-check") is None
    assert parse_key(f"{base}/x.json") is None
    assert (
        parse_key("AWSLogs/1/BedrockModelInvocationLogs/us-east-1/2026/13/03/06/x.json.gz") is None
    )
    parsed = parse_key(f"pre/fix/{base}/20260603T060102Z_9f2a.json.gz")
    assert parsed is not None and parsed[0].region == "us-east-1"


def test_batches_group_by_hour_account_and_region_oldest_first_inside() -> None:
    docs = [_doc(i, h) for h in (9, 8) for i in range(5, 0, -1)]  # newest first
    docs.insert(3, _doc(99, 9, account=None))  # no account: the default folder
    out = list(batches(docs, prefix="p", max_records=3))
    keys = [b.key for b in out]
    assert all(k.startswith("p/AWSLogs/") for k in keys)
    assert sum(len(b.request_ids) for b in out) == len(docs)
    assert {parse_key(k)[0].account for k in keys} == {"123456789012", "000000000000"}  # type: ignore[index]
    for batch in out:
        lines = decode_batch(batch.data)
        assert [orjson.loads(x)["requestId"] for x in lines] == list(batch.request_ids)
        stamps = [orjson.loads(x)["timestamp"] for x in lines]
        assert stamps == sorted(stamps)
        folder, _ = parse_key(batch.key)  # type: ignore[misc]
        assert all(s.startswith(f"2026-11-23T{folder.hour:%H}") for s in stamps)
    # an hour is complete before an earlier one starts: hour 9's objects come first
    hours = [parse_key(k)[0].hour.hour for k in keys]  # type: ignore[index]
    assert hours == sorted(hours, reverse=True)


def test_the_same_records_make_the_same_bytes() -> None:
    docs = [_doc(i, 7) for i in range(10, 0, -1)]
    first = list(batches(docs))
    again = list(batches([dict(d) for d in docs]))
    assert [(b.key, b.data) for b in first] == [(b.key, b.data) for b in again]
    assert gzip.decompress(first[0].data).endswith(b"\n")


def test_fixture_lines_survive_encode_and_decode() -> None:
    lines = [orjson.dumps(orjson.loads(x)) for x in bedrock_fixture_lines()]
    assert decode_batch(encode_batch(lines)) == lines
    assert decode_batch(b"\n".join(lines) + b"\n\n") == lines  # not gzip'd: read as is
    window = time_window(lines)
    assert window is not None and window[0].year == 2024 and window[1].year == 2025
    assert request_ids([*lines, b"not json", b'{"requestId": 3}'])[-2:] == [None, None]
    assert request_ids(lines)[1] == "abc123-def456"
