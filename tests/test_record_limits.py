"""The length limits of a record's identifying strings (`llmtrail.record.STRING_LIMITS`):
each names a stored string column, a value at the limit passes, one character more is a
`ValidationError` naming the field and the limit; inference-profile tags follow Bedrock's
tag limits."""

from __future__ import annotations

from typing import Any

import pytest

from llmtrail.errors import ValidationError
from llmtrail.record import MODEL_ID_MAX, STRING_LIMITS, InvocationRecord
from llmtrail.schema import COLUMN_BY_PATH, Type


def doc(**extra: Any) -> dict[str, Any]:
    return {"requestId": "r-1", "timestamp": "2026-11-23T10:00:00Z", **extra}


def at(path: tuple[str, ...], value: str) -> dict[str, Any]:
    """A record with ``value`` at ``path``."""
    out = doc()
    node = out
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    return out


def test_every_limit_is_on_a_string_column() -> None:
    for path in STRING_LIMITS:
        assert COLUMN_BY_PATH[path].type is Type.STRING, path
    assert STRING_LIMITS[("modelId",)] == MODEL_ID_MAX == 2048


@pytest.mark.parametrize("path", list(STRING_LIMITS), ids=".".join)
def test_a_string_at_its_limit_passes_and_one_more_is_refused(path: tuple[str, ...]) -> None:
    longest = STRING_LIMITS[path]
    InvocationRecord.from_dict(at(path, "a" * longest))
    with pytest.raises(ValidationError) as info:
        InvocationRecord.from_dict(at(path, "a" * (longest + 1)))
    assert info.value.field == ".".join(path)
    assert info.value.message == (
        f"is {longest + 1} characters long; the limit is {longest} characters"
    )


def test_profile_tags_follow_bedrock_tag_limits() -> None:
    fine = {"k" * 128: "v" * 256}
    InvocationRecord.from_dict(doc(inferenceProfile={"tags": fine}))
    for tags, field, words in (
        ({"k" * 129: "v"}, "inferenceProfile.tags." + "k" * 128, "keys must be 1 to 128"),
        ({"dept": "v" * 257}, "inferenceProfile.tags.dept", "the limit is 256 characters"),
        ({f"t{i}": "v" for i in range(51)}, "inferenceProfile.tags", "the limit is 50"),
    ):
        with pytest.raises(ValidationError) as info:
            InvocationRecord.from_dict(doc(inferenceProfile={"tags": tags}))
        assert info.value.field == field and words in info.value.message


def test_free_text_has_no_limit_here() -> None:
    """The query compiler bounds keys over it instead (docs/query.md, "Limits")."""
    message = "m" * 100_000
    record = InvocationRecord.from_dict(doc(error={"type": "t", "message": message}))
    assert record.data["error"]["message"] == message
