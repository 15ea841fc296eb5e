"""Bedrock's rules for inference-profile input, as pure functions that raise `ValidationError`
naming the field (Bedrock's own field names: ``inferenceProfileName``,
``modelSource.copyFrom``, ``tags[0].key``, …) and the limit.

The limits and patterns are those of botocore's ``bedrock`` service model
(CreateInferenceProfile, TagResource, ListInferenceProfiles). Two deliberate differences:
``copyFrom`` also takes a bare model id (``anthropic.claude-…``, ``us.anthropic.claude-…``,
``sim/claude``), because llmtrail routes more than Bedrock's models; and ``description`` is
checked for length and printable characters only, not Bedrock's narrow pattern (which refuses
commas), so a profile described in plain English is not refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from llmtrail.errors import ValidationError

NAME_MAX = 64
DESCRIPTION_MAX = 200
COPY_FROM_MAX = 2048
IDENTIFIER_MAX = 2048
TOKEN_MAX = 256
TAG_KEY_MAX = 128
TAG_VALUE_MAX = 256
TAG_LIST_MAX = 200  # entries in one TagList
MAX_TAGS = 50  # tags on one profile, as AWS allows per resource
MAX_RESULTS = 1000

_NAME = re.compile(r"([0-9a-zA-Z][ _-]?)+")
_TAG_CHARS = re.compile(r"[a-zA-Z0-9\s._:/=+@-]*", re.ASCII)
_TOKEN = re.compile(r"[a-zA-Z0-9]([-a-zA-Z0-9]{0,254}[a-zA-Z0-9])?")
_PRINTABLE = re.compile(r"[^\x00-\x1f\x7f]*")
_MODEL_ID = re.compile(r"[\x21-\x7e]+")  # printable ASCII without spaces
_COPY_FROM_ARN = re.compile(
    r"arn:aws(|-us-gov|-cn|-iso|-iso-b):bedrock:(|[0-9a-z-]{0,20}):(|[0-9]{12}):"
    r"(inference-profile|foundation-model)/[a-zA-Z0-9-:.]+"
)
PROFILE_ARN = re.compile(
    r"arn:aws(?:|-us-gov|-cn|-iso|-iso-b):bedrock:(?P<region>[0-9a-z-]{0,20}):"
    r"(?P<account>[0-9]{12}|):(?P<kind>inference-profile|application-inference-profile)/"
    r"(?P<id>[a-zA-Z0-9-:.]+)"
)
_IDENTIFIER = re.compile(r"[a-zA-Z0-9-:.]+")


def _string(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise ValidationError(field, f"must be a string, got {type(value).__name__}")
    return value


def validate_name(value: Any) -> str:
    """``inferenceProfileName``: 1–64 characters, ``([0-9a-zA-Z][ _-]?)+``."""
    name = _string(value, "inferenceProfileName")
    if not 1 <= len(name) <= NAME_MAX:
        raise ValidationError(
            "inferenceProfileName", f"must be 1–{NAME_MAX} characters, got {len(name)}"
        )
    if not _NAME.fullmatch(name):
        raise ValidationError(
            "inferenceProfileName",
            "must match ([0-9a-zA-Z][ _-]?)+: letters and digits, each optionally followed "
            "by one space, '_' or '-'",
        )
    return name


def validate_description(value: Any) -> str | None:
    """``description``: absent, or 1–200 printable characters."""
    if value is None:
        return None
    text = _string(value, "description")
    if not 1 <= len(text) <= DESCRIPTION_MAX:
        raise ValidationError(
            "description", f"must be 1–{DESCRIPTION_MAX} characters, got {len(text)}"
        )
    if not _PRINTABLE.fullmatch(text):
        raise ValidationError("description", "must not contain control characters")
    return text


def validate_copy_from(value: Any) -> str:
    """``modelSource.copyFrom``: a foundation-model or system-defined inference-profile ARN
    (Bedrock's pattern), or a model id the gateway routes (1–2048 characters, no spaces)."""
    field = "modelSource.copyFrom"
    source = _string(value, field)
    if not 1 <= len(source) <= COPY_FROM_MAX:
        raise ValidationError(field, f"must be 1–{COPY_FROM_MAX} characters, got {len(source)}")
    if source.startswith("arn:"):
        if not _COPY_FROM_ARN.fullmatch(source):
            raise ValidationError(
                field,
                "an ARN here must name a foundation model "
                "(arn:aws:bedrock:REGION::foundation-model/ID) or a system-defined inference "
                "profile (arn:aws:bedrock:REGION:ACCOUNT:inference-profile/ID); an application "
                "inference profile cannot be copied",
            )
    elif not _MODEL_ID.fullmatch(source):
        raise ValidationError(field, "a model id must be printable ASCII without spaces")
    return source


def underlying_model_id(copy_from: str) -> str:
    """The model id the gateway forwards to for a ``copyFrom``: the id inside an ARN, else the
    value as given (``us.anthropic.claude-…``, ``sim/claude``)."""
    if copy_from.startswith("arn:"):
        return copy_from.partition("/")[2]
    return copy_from


def validate_token(value: Any) -> str | None:
    """``clientRequestToken``: absent, or 1–256 letters, digits and inner hyphens."""
    if value is None:
        return None
    token = _string(value, "clientRequestToken")
    if len(token) > TOKEN_MAX or not _TOKEN.fullmatch(token):
        raise ValidationError(
            "clientRequestToken",
            f"must be 1–{TOKEN_MAX} letters, digits and inner hyphens",
        )
    return token


def validate_tag_key(value: Any, field: str) -> str:
    """A tag key: 1–128 characters of ``[a-zA-Z0-9\\s._:/=+@-]``, not starting with ``aws:``."""
    key = _string(value, field)
    if not 1 <= len(key) <= TAG_KEY_MAX:
        raise ValidationError(field, f"must be 1–{TAG_KEY_MAX} characters, got {len(key)}")
    if not _TAG_CHARS.fullmatch(key):
        raise ValidationError(field, "has a character outside [a-zA-Z0-9 whitespace ._:/=+@-]")
    if key.lower().startswith("aws:"):
        raise ValidationError(field, "the prefix 'aws:' is reserved")
    return key


def validate_tag_value(value: Any, field: str) -> str:
    """A tag value: 0–256 characters of ``[a-zA-Z0-9\\s._:/=+@-]``."""
    text = _string(value, field)
    if len(text) > TAG_VALUE_MAX:
        raise ValidationError(field, f"must be at most {TAG_VALUE_MAX} characters, got {len(text)}")
    if not _TAG_CHARS.fullmatch(text):
        raise ValidationError(field, "has a character outside [a-zA-Z0-9 whitespace ._:/=+@-]")
    return text


def validate_tags(tags: Mapping[str, str], field: str = "tags") -> dict[str, str]:
    """A tag map (insertion order kept): at most 50 entries, each key and value valid."""
    if not isinstance(tags, Mapping):
        raise ValidationError(field, f"must be a map of tags, got {type(tags).__name__}")
    if len(tags) > MAX_TAGS:
        raise ValidationError(field, f"has {len(tags)} tags; a profile has at most {MAX_TAGS}")
    out: dict[str, str] = {}
    for i, (key, value) in enumerate(tags.items()):
        out[validate_tag_key(key, f"{field}[{i}].key")] = validate_tag_value(
            value, f"{field}[{i}].value"
        )
    return out


def tags_from_list(value: Any, field: str = "tags") -> dict[str, str]:
    """Bedrock's ``TagList`` (``[{"key": …, "value": …}]``, at most 200) as a tag map; a key
    given twice is an error."""
    if not isinstance(value, list):
        raise ValidationError(field, 'must be a list of {"key": …, "value": …} objects')
    if len(value) > TAG_LIST_MAX:
        raise ValidationError(field, f"has {len(value)} entries; at most {TAG_LIST_MAX}")
    out: dict[str, str] = {}
    for i, item in enumerate(value):
        where = f"{field}[{i}]"
        if not isinstance(item, dict) or "key" not in item or "value" not in item:
            raise ValidationError(where, 'must be an object with "key" and "value"')
        key = validate_tag_key(item["key"], f"{where}.key")
        if key in out:
            raise ValidationError(f"{where}.key", f"repeats the key {key!r}")
        out[key] = validate_tag_value(item["value"], f"{where}.value")
    if len(out) > MAX_TAGS:
        raise ValidationError(field, f"has {len(out)} tags; a profile has at most {MAX_TAGS}")
    return out


def validate_tag_keys(keys: Sequence[Any], field: str = "tagKeys") -> list[str]:
    """The keys of an UntagResource call (at most 200)."""
    if isinstance(keys, str) or not isinstance(keys, Sequence):
        raise ValidationError(field, "must be a list of tag keys")
    if len(keys) > TAG_LIST_MAX:
        raise ValidationError(field, f"has {len(keys)} keys; at most {TAG_LIST_MAX}")
    return [validate_tag_key(k, f"{field}[{i}]") for i, k in enumerate(keys)]


def validate_identifier(value: Any, field: str = "inferenceProfileIdentifier") -> str:
    """A profile id or ARN (``application-inference-profile`` or ``inference-profile``)."""
    text = _string(value, field)
    if not 1 <= len(text) <= IDENTIFIER_MAX:
        raise ValidationError(field, f"must be 1–{IDENTIFIER_MAX} characters, got {len(text)}")
    if text.startswith("arn:"):
        if not PROFILE_ARN.fullmatch(text):
            raise ValidationError(
                field,
                "an ARN here must be arn:aws:bedrock:REGION:ACCOUNT:"
                "application-inference-profile/ID or …:inference-profile/ID",
            )
    elif not _IDENTIFIER.fullmatch(text):
        raise ValidationError(field, "an id has only letters, digits, '-', ':' and '.'")
    return text


def validate_max_results(value: Any) -> int:
    """``maxResults``: an integer 1–1000."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_RESULTS:
        raise ValidationError("maxResults", f"must be an integer from 1 to {MAX_RESULTS}")
    return value
