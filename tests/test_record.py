from __future__ import annotations

import copy
import json
from datetime import UTC, datetime

import pytest

import llmtrail
from llmtrail.errors import ValidationError
from llmtrail.record import (
    METADATA_MAX_ENTRIES,
    InvocationRecord,
    coerce_request_metadata,
    format_timestamp,
    parse_timestamp,
    uuid7,
    validate_request_metadata,
)
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
