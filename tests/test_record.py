from __future__ import annotations

import copy
import json
import os
import random
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

import llmtrail
import llmtrail.record as record_module
from llmtrail.errors import ValidationError
from llmtrail.record import (
    METADATA_MAX_ENTRIES,
    STRING_LIMITS,
    InvocationRecord,
    check_types,
    coerce_request_metadata,
    format_timestamp,
    parse_timestamp,
    uuid7,
    validate_request_metadata,
)
from llmtrail.schema import COLUMN_BY_PATH, Type
from tests.conftest import bedrock_fixture_lines


def test_public_api_is_pinned() -> None:
    assert llmtrail.__all__ == sorted(llmtrail.__all__)
    assert set(llmtrail.__all__) == {
        "InvocationRecord",
        "LlmtrailError",
        "ValidationError",
        "__version__",
        "validate_request_metadata",
    }


def test_fixtures_import_and_serialise_back_in_bedrock_view() -> None:
    for line in bedrock_fixture_lines():
        doc = json.loads(line)
        record = InvocationRecord.from_dict(copy.deepcopy(doc))
        assert record.to_dict("bedrock") == doc
        full = record.to_dict("full")
        assert full["status"] in ("OK", "ERROR") and full["source"] == "import"
        assert set(record.derived) == {"recordId", "workspace", "status", "provider", "source"}


def test_record_id_and_workspace_are_never_the_callers() -> None:
    doc = {
        "requestId": "r",
        "timestamp": "2026-01-01T00:00:00Z",
        "recordId": "same",
        "workspace": "other",
    }
    record = InvocationRecord.from_dict(doc)
    assert record.record_id != "same" and record.workspace == "default"


def test_given_additions_are_kept_in_bedrock_view() -> None:
    doc = {
        "requestId": "r",
        "timestamp": "2026-01-01T00:00:00Z",
        "latencyMs": 5,
        "status": "CANCELLED",
    }
    record = InvocationRecord.from_dict(copy.deepcopy(doc))
    assert record.to_dict("bedrock") == doc


def test_metadata_validation_limits() -> None:
    ok = {f"k{i}": "v" for i in range(METADATA_MAX_ENTRIES)}
    assert validate_request_metadata(ok) == ok
    assert validate_request_metadata({"a b:_@$#=/+,-.": "x y:_@$#=/+,-."})
    assert validate_request_metadata({"k": ""}) == {"k": ""}
    cases = [
        ({**ok, "one-more": "v"}, "requestMetadata", "at most 16"),
        ({"": "v"}, "requestMetadata.", "1–256"),
        ({"k" * 257: "v"}, "requestMetadata." + "k" * 257, "1–256"),
        ({"k": "v" * 257}, "requestMetadata.k", "at most 256"),
        ({"k": "é"}, "requestMetadata.k", "character outside"),
        ({"k!": "v"}, "requestMetadata.k!", "character outside"),
        ({"k": 1}, "requestMetadata.k", "strings"),
        (["k"], "requestMetadata", "object"),
    ]
    for value, field, needle in cases:
        with pytest.raises(ValidationError) as err:
            validate_request_metadata(value)
        assert err.value.field == field and needle in err.value.message


def test_coerce_never_raises_and_flags() -> None:
    meta, changed = coerce_request_metadata({"ok": "v"})
    assert meta == {"ok": "v"} and not changed
    meta, changed = coerce_request_metadata(
        {"é": "x", "n": 5, "long": "v" * 300, **{f"k{i}": "v" for i in range(20)}}
    )
    assert changed and len(meta) == 16
    assert meta["_"] == "x" and meta["n"] == "5" and meta["long"] == "v" * 256


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({"timestamp": "2026-01-01T00:00:00Z"}, "requestId"),
        ({"requestId": "r"}, "timestamp"),
        ({"requestId": "r", "timestamp": "soon"}, "timestamp"),
        ({"requestId": "r", "timestamp": "2026-01-01T00:00:00Z", "input": []}, "input"),
        (
            {
                "requestId": "r",
                "timestamp": "2026-01-01T00:00:00Z",
                "input": {"inputTokenCount": "5"},
            },
            "input.inputTokenCount",
        ),
        (
            {
                "requestId": "r",
                "timestamp": "2026-01-01T00:00:00Z",
                "input": {"inputTokenCount": True},
            },
            "input.inputTokenCount",
        ),
        (
            {
                "requestId": "r",
                "timestamp": "2026-01-01T00:00:00Z",
                "output": {"outputTokenCount": -1},
            },
            "output.outputTokenCount",
        ),
        ({"requestId": "r", "timestamp": "2026-01-01T00:00:00Z", "status": "FINE"}, "status"),
        ({"requestId": 5, "timestamp": "2026-01-01T00:00:00Z"}, "requestId"),
        ("not an object", "record"),
    ],
)
def test_record_validation_names_the_field(doc: object, field: str) -> None:
    with pytest.raises(ValidationError) as err:
        InvocationRecord.from_dict(doc)
    assert err.value.field == field


def test_timestamps() -> None:
    ts = parse_timestamp("2026-11-23T10:30:15.123456789Z")
    assert ts == datetime(2026, 11, 23, 10, 30, 15, 123456, tzinfo=UTC)
    assert format_timestamp(ts) == "2026-11-23T10:30:15.123456Z"
    assert format_timestamp(ts.replace(microsecond=123000)) == "2026-11-23T10:30:15.123Z"
    assert parse_timestamp("2026-11-23T11:30:15+01:00") == datetime(
        2026, 11, 23, 10, 30, 15, tzinfo=UTC
    )


def test_uuid7_is_time_ordered_and_versioned() -> None:
    a = uuid7(datetime(2026, 1, 1, tzinfo=UTC))
    b = uuid7(datetime(2026, 1, 2, tzinfo=UTC))
    assert a < b and a[14] == "7" and a[19] in "89ab"


# -- the fast paths decide as the general ones ------------------------------------------------
# `from_dict`, `check_types`, `validate_request_metadata` and `parse_timestamp` first ask a
# fast path whether a value is of the plainest valid shape and go the general way otherwise;
# over many varied and hostile records, the answer (the record, or the error's field and
# message) must be the general way's.

INT_MAX = 2**31 - 1
STAMPS = [
    "2026-11-23T10:30:15.123Z",
    "2026-11-23T10:30:15Z",
    "2026-11-23T10:30:15.1Z",
    "2026-11-23T10:30:15.123456Z",
    "2026-11-23T10:30:15.1234567Z",
    "2026-11-23T10:30:15.123456789Z",
    "2026-11-23T10:30:15.1234567890123Z",
    "2026-11-23T10:30:15.000000Z",
    "2026-11-23T10:30:15.Z",
    "2026-11-23T10:30:15,123Z",
    " 2026-11-23T10:30:15Z",
    "2026-11-23T10:30:15Z ",
    "2026-11-23T10:30:15Z\n",
    "2026-11-23T10:30:15.123Z\x00",
    "2026-11-23t10:30:15z",
    "2026-11-23 10:30:15Z",
    "2026-11-23T10:30:15+01:00",
    "2026-11-23T10:30:15.123+00:00",
    "2026-11-23T10:30:15-00:00",
    "2026-11-23T10:30:15",
    "2026-11-23",
    "20261123T103015Z",
    "2026-W47-1T10:30:15Z",
    "0000-01-01T00:00:00Z",
    "0001-01-01T00:00:00Z",
    "0002-01-01T00:00:00Z",
    "0002-01-01T00:30:00+01:00",
    "9998-12-31T23:59:59.999Z",
    "9998-12-31T23:30:00-01:00",
    "9999-01-01T00:00:00Z",
    "2026-02-30T00:00:00Z",
    "2026-11-23T24:00:00Z",
    "2026-11-23T10:30:60Z",
    "2026-13-01T00:00:00Z",
    "２０２６-11-23T10:30:15Z",
    "٢٠٢٦-11-23T10:30:15Z",
    "2026-11-23T10:30:15.١٢٣Z",
    "soon",
    "",
    "Z",
    # the fast way's lengths (20, 24), T 11th and Z last, and yet not what it takes
    "2026-11-23T10:30:15+00:0Z",
    "2026-11-23T10:30+00:00:Z",
    "2026-11-23T103015.12345Z",
    "2026-11-23T10:30+01Z",
    "2026-11-23T103015+0Z",
    "2026-11-23T10:30:15.1+1Z",
    "2026-11-23T10:30:15.12 Z",
    "2026-11-23T10:30:15.12\nZ",
    "2026-11-23T10:30:15 000Z",
    "2026-11-23T1:30:15.1234Z",
    " 026-11-23T10:30:15.123Z",
    "+026-11-23T10:30:15.123Z",
    "0001-01-01T00:00:00.000Z",
    "9999-12-31T23:59:59.999Z",
    "20261123T1T10:30:15.123Z",
    "2026-11-23T10:30:15.ZZZZ",
]
MONEY = [
    "0.000125",
    "0",
    "-0",
    "1000000",
    "1000000.000000000",
    "1000000.000000001",
    "-1000000",
    "-1000000.000000001",
    "999999.999999999",
    "0.0000000001",
    "0.1234567890",
    "000001.5",
    "1e-5",
    "1E3",
    "1_000",
    " 1 ",
    "+1",
    ".5",
    "5.",
    "NaN",
    "-Infinity",
    "sNaN",
    "٣",
    "１",
    "0x10",
    "",
    "abc",
    "1" * 50,
    0,
    1,
    -1,
    1_000_000,
    1_000_001,
    -1_000_001,
    10**30,
    0.1,
    1e-10,
    float("nan"),
    True,
]
HOSTILE = [
    None,
    True,
    False,
    0,
    -1,
    INT_MAX,
    INT_MAX + 1,
    2**63,
    -(2**63),
    1.5,
    -0.0,
    float("inf"),
    "",
    "x",
    "é",
    "a" * 65,
    "a" * 257,
    [],
    [1],
    {},
    {"k": "v"},
    {"k": 1},
    {"k": None},
]
META_GOOD = "abcXYZ019 \t\n\r\x0b\x0c:_@$#=/+,-."
META_BAD = "é!\x00\x1c\u00a0\u2028\ud800"  # outside, whitespace to str.isspace or not


def _metadata(rng: random.Random) -> Any:
    pick = rng.random()
    if pick < 0.1:
        return rng.choice([None, [], "k=v", 5, {}, {1: "v"}, {"k": ["v"]}])
    size = rng.choice([0, 1, 3, 5, 16, 16, 17])
    out: dict[Any, Any] = {}
    for i in range(size):
        key = f"k{i}"
        value: Any = f"value-{i}"
        if rng.random() < 0.15:  # an odd key or value
            length = rng.choice([0, 1, 255, 256, 257])
            text = "".join(rng.choice(META_GOOD) for _ in range(length))
            if rng.random() < 0.5:
                key = text
            else:
                value = text
        if rng.random() < 0.05:
            value = rng.choice([1, None, True, ["v"], {"v": "w"}])
        if rng.random() < 0.08:
            key += rng.choice(META_BAD)
        if rng.random() < 0.05 and type(value) is str:
            value += rng.choice(META_BAD)
        out[key] = value
    return out


def _string(rng: random.Random, longest: int | None) -> Any:
    if longest is not None and rng.random() < 0.5:
        return "s" * rng.choice([longest - 1, longest, longest, longest + 1])
    return rng.choice(["", "x", "Converse", "us-east-1", "sim/model", "a/b/c", "é", "5"])


def _value_for(rng: random.Random, path: tuple[str, ...]) -> Any:
    """A value for a column's path: mostly of its type, near its limits, sometimes not."""
    if rng.random() < 0.2:
        return rng.choice(HOSTILE)
    column = COLUMN_BY_PATH[path]
    if column.type is Type.STRING:
        return _string(rng, STRING_LIMITS.get(path))
    if column.type is Type.INT:
        return rng.choice([0, 1, 5, INT_MAX, INT_MAX + 1, -1, 2**64, True, 1.0, "5"])
    if column.type is Type.TIMESTAMP:
        return rng.choice(STAMPS)
    if column.type is Type.DECIMAL:
        return rng.choice(MONEY)
    if column.type is Type.BOOL:
        return rng.choice([True, False, 0, 1, "true", None])
    if column.type is Type.MAP:
        if path == ("requestMetadata",):
            return _metadata(rng)
        size = rng.choice([0, 1, 50, 51])
        tags: dict[str, Any] = {f"t{i}": "v" for i in range(size)}
        tags[rng.choice(["", "k", "k" * 128, "k" * 129])] = rng.choice(
            ["", "v", "v" * 256, "v" * 257, 1, None]
        )
        return tags
    return rng.choice([{"messages": [{"role": "user"}]}, "text", [1, [2]], None])


def _realistic() -> dict[str, Any]:
    return {
        "schemaType": "ModelInvocationLog",
        "schemaVersion": "1.0",
        "timestamp": "2026-11-20T08:00:01.234Z",
        "accountId": "123456789012",
        "identity": {"arn": "arn:aws:iam::123456789012:user/app-7"},
        "region": "us-east-1",
        "requestId": "0badcafe-0000-4000-8000-000000000011",
        "operation": "Converse",
        "modelId": "amazon.nova-lite-v1:0",
        "requestMetadata": {"application_name": "BillingBot", "tenant_id": "tenant-11"},
        "input": {
            "inputContentType": "application/json",
            "inputBodyJson": {"messages": [{"role": "user", "content": [{"text": "hi"}]}]},
            "inputTokenCount": 181,
            "cacheReadInputTokenCount": 0,
        },
        "output": {"outputContentType": "application/json", "outputTokenCount": 41},
        "cost": {"inputUsd": "0.000125", "totalUsd": "0.0002", "priceVersion": "2026-11"},
        "trace": {"traceId": "a" * 32, "spanId": "b" * 16},
        "latencyMs": 812,
        "tokenCountEstimated": False,
    }


def _records(rng: random.Random, count: int) -> list[Any]:
    bases = [json.loads(line) for line in bedrock_fixture_lines()]
    bases += [_realistic(), {"requestId": "r", "timestamp": "2026-01-01T00:00:00Z"}]
    paths = [p for p, c in COLUMN_BY_PATH.items() if c.type is not Type.JSON]
    out: list[Any] = [copy.deepcopy(b) for b in bases]
    for _ in range(count):
        doc = copy.deepcopy(rng.choice(bases))
        for _ in range(rng.choice([0, 1, 1, 2, 3])):
            pick = rng.random()
            if pick < 0.7:
                path = rng.choice(paths)
                parent = doc
                if len(path) == 2:
                    if type(parent.get(path[0])) is not dict:
                        parent[path[0]] = {}
                    parent = parent[path[0]]
                parent[path[-1]] = _value_for(rng, path)
            elif pick < 0.8:
                key = rng.choice(["input", "output", "identity", "error", "trace", "cost"])
                doc[key] = rng.choice([*HOSTILE, "text"])
            elif pick < 0.9:
                doc.pop(rng.choice(["requestId", "timestamp", "requestMetadata", "status"]), 0)
            else:
                doc[rng.choice(["unknown", "Timestamp", "extra"])] = rng.choice(HOSTILE)
        out.append(doc)
    return [*out, "not an object", None, [], 5, [{"requestId": "r"}]]


def _outcome(call: Callable[..., Any], *args: Any) -> tuple[Any, ...]:
    try:
        value = call(*args)
    except ValidationError as exc:
        return ("rejected", type(exc).__name__, exc.field, exc.message)
    except Exception as exc:  # what the general way raises besides, the fast way must too
        return ("raised", type(exc).__name__, str(exc))
    return ("accepted", value)


def _general_from_dict(doc: Any, workspace: str, source: str) -> tuple[dict[str, Any], tuple]:
    """`InvocationRecord.from_dict` the general way, as it was before the fast paths."""
    record_module._check_record(doc)
    derived: list[str] = []

    def fill(key: str, value: Any) -> None:
        if key not in doc:
            doc[key] = value
            derived.append(key)

    doc["recordId"] = "id"
    doc["workspace"] = workspace
    derived += ["recordId", "workspace"]
    fill("status", "ERROR" if doc.get("errorCode") or doc.get("error") else "OK")
    fill("provider", record_module.infer_provider(doc))
    fill("source", source)
    return doc, tuple(derived)


def _fast_from_dict(doc: Any, workspace: str, source: str) -> tuple[dict[str, Any], tuple]:
    record = InvocationRecord.from_dict(doc, workspace=workspace, source=source)
    assert uuid7_shape.fullmatch(record.data["recordId"])
    record.data["recordId"] = "id"
    return record.data, record.derived


uuid7_shape = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def test_from_dict_and_check_types_decide_as_the_general_way() -> None:
    rng = random.Random(18)
    fast = 0
    for doc in _records(rng, 6000):
        plain = (
            type(doc) is dict
            and record_module._plain(doc, record_module._PLAIN)
            and record_module._plain_rest(doc)
        )
        fast += bool(plain)
        general = _outcome(_general_from_dict, copy.deepcopy(doc), "ws", "ingest")
        if plain:  # a record the fast way passes is one the general way passes
            assert general[0] == "accepted", (doc, general)
        got = _outcome(_fast_from_dict, copy.deepcopy(doc), "ws", "ingest")
        assert got == general, doc
        if type(doc) is dict:
            exactly = _outcome(record_module._check_types_exactly, doc)
            assert _outcome(check_types, doc) == exactly, doc
    assert 500 < fast < 5500  # both ways were taken, many times


def test_the_fast_way_takes_realistic_records() -> None:
    docs = [json.loads(line) for line in bedrock_fixture_lines()] + [_realistic()]
    for doc in docs:
        assert record_module._plain(doc, record_module._PLAIN)
        assert record_module._plain_rest(doc)


def test_metadata_decides_as_the_general_way() -> None:
    rng = random.Random(1818)
    fast = 0
    chars = [chr(c) for c in [*range(0x180), 0x2028, 0x3000, 0xD800, 0xFEFF, 0x1F600]]
    for value in [{"k": ch} for ch in chars] + [{ch: "v"} for ch in chars] + [{}]:
        general = _outcome(record_module._check_metadata_exactly, value)
        assert _outcome(validate_request_metadata, value) == general, value
    for _ in range(4000):
        value = _metadata(rng)
        general = _outcome(record_module._check_metadata_exactly, value)
        if type(value) is dict and record_module._plain_metadata(value):
            fast += 1
            assert general[0] == "accepted", value
        assert _outcome(validate_request_metadata, value) == general, value
    assert 500 < fast < 3900


def _stamps(rng: random.Random) -> list[str]:
    out = list(STAMPS)
    for _ in range(3000):
        year = rng.choice([0, 1, 2, 1970, 2026, 9998, 9999, rng.randint(0, 9999)])
        text = (
            f"{year:04d}-{rng.randint(0, 13):02d}-{rng.randint(0, 32):02d}"
            f"{rng.choice('TT t')}{rng.randint(0, 24):02d}:{rng.randint(0, 60):02d}"
            f":{rng.randint(0, 60):02d}"
        )
        digits = rng.choice([0, 0, 1, 3, 3, 6, 7, 9])
        if digits or rng.random() < 0.1:
            text += "." + "".join(rng.choice("0123456789") for _ in range(digits))
        text += rng.choice(["Z", "Z", "Z", "z", "", "+00:00", "+05:30", "-23:59", "+24:00"])
        if rng.random() < 0.1:
            text = rng.choice([" ", "\t", "\n", ""]) + text + rng.choice([" ", "\n", ""])
        out.append(text)
    return out


def test_timestamps_parse_as_the_general_way() -> None:
    fast = 0
    for text in _stamps(random.Random(181818)):
        general = _outcome(record_module._parse_timestamp_exactly, text, "at")
        plain = record_module._plain_timestamp(text)
        if plain is not None:
            fast += 1
            assert general == ("accepted", plain) and plain.tzinfo is UTC, text
        assert _outcome(parse_timestamp, text, "at") == general, text
    assert fast > 100  # the fast way was taken, many times


def test_uuid7_ids_are_unique_and_a_forked_child_draws_its_own() -> None:
    ids = {uuid7() for _ in range(5000)}
    assert len(ids) == 5000 and all(uuid7_shape.fullmatch(i) for i in ids)
    assert {i[19] for i in ids} == set("89ab")  # the variant's two random bits
    uuid7()  # this thread now holds random bits drawn ahead
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next id, then out at once
        os.write(write, uuid7().encode())
        os._exit(0)
    os.close(write)
    try:
        child = os.read(read, 100).decode()
    finally:
        os.close(read)
        os.waitpid(pid, 0)
    assert uuid7_shape.fullmatch(child) and child[14:] != uuid7()[14:]


def test_format_timestamp_is_strftime_s() -> None:
    """The formatting without strftime gives what strftime gave, for any zone and precision."""
    from datetime import timedelta, timezone

    from llmtrail.record import format_timestamp

    def by_strftime(value: datetime) -> str:
        value = value.astimezone(UTC)
        if value.microsecond % 1000 == 0:
            return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
        return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    rnd = random.Random(7)
    zones = [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))]
    for _ in range(3000):
        moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(
            seconds=rnd.randrange(0, 4_000_000_000), microseconds=rnd.randrange(0, 1_000_000)
        )
        if rnd.random() < 0.3:
            moment = moment.replace(microsecond=rnd.randrange(0, 1000) * 1000)
        value = moment.astimezone(rnd.choice(zones))
        assert format_timestamp(value) == by_strftime(value), value
    for value in (datetime(999, 1, 2, 3, 4, 5, tzinfo=UTC), datetime(9999, 12, 31, tzinfo=UTC)):
        assert format_timestamp(value) == by_strftime(value)


def test_records_and_spans_pickle_whole() -> None:
    """Records and spans cross between processes pickled (`Span.__reduce__` and
    `InvocationRecord.__reduce__` list their fields): every field comes back."""
    import pickle
    from dataclasses import fields

    from llmtrail.span import Span
    from tests.test_frames import every_field

    record = InvocationRecord.from_dict(
        {"timestamp": "2026-11-23T10:30:15.123456Z", "requestId": "r-1", "modelId": "m"}
    )
    assert record.derived and pickle.loads(pickle.dumps(record)).derived == record.derived
    assert pickle.loads(pickle.dumps(record)).data == record.data
    values = every_field(record=record)
    assert set(values) == {f.name for f in fields(Span)}  # every field set, none default
    span = Span(**values)
    back = pickle.loads(pickle.dumps(span, pickle.HIGHEST_PROTOCOL))
    assert {name: getattr(back, name) for name in values} == values
