"""The invocation record and its validation.

A record is Bedrock's ``ModelInvocationLog`` (schemaVersion 1.0) plus llmtrail's additions
(recordId, workspace, provider, latencyMs, status, error, trace, …), held as the JSON document
itself so that keys llmtrail does not know survive at any depth. ``to_dict("bedrock")`` gives
the Bedrock view: llmtrail's additions are dropped unless the record arrived with them.

Validation is strict where the issue and Bedrock say so (``requestMetadata`` from the
``x-llmtrail-metadata`` header and the ingest API); the gateway copies OpenAI's and Anthropic's
own ``metadata``/``user`` fields leniently with `coerce_request_metadata`.
"""

from __future__ import annotations

import decimal
import os
import re
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from llmtrail.errors import ValidationError
from llmtrail.schema import ADDITION_KEYS, COLUMN_BY_PATH, Column, Type, held_values

SCHEMA_TYPE = "ModelInvocationLog"
SCHEMA_VERSION = "1.0"
STATUSES = ("OK", "ERROR", "CANCELLED")
DEFAULT_WORKSPACE = "default"

METADATA_MAX_ENTRIES = 16
METADATA_KEY_MAX = 256
METADATA_VALUE_MAX = 256
MODEL_ID_MAX = 2048  # Bedrock's InvokeModel / Converse modelId: 1 to 2,048 characters
ARN_MAX = 2048  # IAM and Bedrock ARNs: at most 2,048 characters
TAG_KEY_MAX = 128  # Bedrock's TagResource: keys 1–128, values 0–256 characters
TAG_VALUE_MAX = 256
TAGS_MAX = 50  # tags on one resource

# Every integer of a record (token and character counts, latencyMs, timeToFirstTokenMs,
# error.httpStatus) is at most 2^31-1: 2,147,483,647 tokens, or ms (about 24.8 days), so that
# sums over billions of records fit 64 bits and every duration fits an interval.
INT_MAX = 2**31 - 1
# Money (cost.*Usd): at most 1,000,000 USD either way per record (a single model call never
# costs more), to the 9 decimal places of the DECIMAL(38, 9) columns: sums over up to 10^23
# records fit.
MONEY_MAX_USD = decimal.Decimal(1_000_000)
MONEY_PLACES = 9
_MONEY_QUANTUM = decimal.Decimal(1).scaleb(-MONEY_PLACES)

# The longest text each identifying string of a record may hold, in characters: Bedrock's
# documented limit where there is one, otherwise a bound far above any real value. Free text
# (error.message, error.stackTrace, trace.name) has none here: the query compiler bounds
# what a sort, group or dedup key may hold instead.
STRING_LIMITS: dict[tuple[str, ...], int] = {
    ("modelId",): MODEL_ID_MAX,
    ("resolvedModelId",): MODEL_ID_MAX,
    ("identity", "arn"): ARN_MAX,
    ("inferenceProfile", "arn"): ARN_MAX,
    ("inferenceProfile", "name"): 64,  # CreateInferenceProfile's inferenceProfileName
    ("input", "inputBodyS3Path"): ARN_MAX,  # s3:// + bucket (63) + key (1,024 bytes)
    ("output", "outputBodyS3Path"): ARN_MAX,
    ("requestId",): 256,  # AWS request ids are UUIDs; other providers' ids are shorter
    ("responseId",): 256,
    ("accountId",): 128,  # twelve digits on AWS
    ("region",): 64,
    ("inferenceRegion",): 64,
    ("operation",): 128,  # an API operation name
    ("schemaType",): 64,
    ("schemaVersion",): 64,
    ("input", "inputContentType"): 256,  # a media type: 127 + "/" + 127 characters
    ("output", "outputContentType"): 256,
    ("errorCode",): 128,
    ("error", "type"): 256,
    ("stopReason",): 128,
    ("provider",): 128,
    ("source",): 64,
    ("identityType",): 64,
    ("trace", "traceId"): 128,  # W3C: 32 hex digits; X-Ray: 35 characters
    ("trace", "spanId"): 128,
    ("trace", "parentSpanId"): 128,
    ("trace", "sessionId"): 256,
    ("trace", "spanKind"): 64,
    ("cost", "priceVersion"): 256,
    ("cost", "reason"): 256,
}
_METADATA_CHARS = re.compile(r"[a-zA-Z0-9\s:_@$#=/+,\-.]*", re.ASCII)
_METADATA_BAD_CHAR = re.compile(r"[^a-zA-Z0-9\s:_@$#=/+,\-.]", re.ASCII)

View = Literal["full", "bedrock"]


def uuid7(now: datetime | None = None) -> str:
    """A time-ordered UUIDv7 string (RFC 9562), the record's paging cursor."""
    ms = time.time_ns() // 1_000_000 if now is None else int(now.timestamp() * 1000)
    ms &= 0xFFFF_FFFF_FFFF  # 48 bits
    drawn = _drawn
    try:
        tail = drawn.tails.pop()
        last, prefix = drawn.prefix
    except (AttributeError, IndexError):
        drawn.tails = _random_tails()
        tail = drawn.tails.pop()
        last, prefix = -1, ""
    if last != ms:
        h = f"{ms:012x}"
        prefix = f"{h[:8]}-{h[8:]}-"
        drawn.prefix = (ms, prefix)
    return prefix + tail


# Per thread: the next ids' random parts, the version (7) and 12 random bits, then the variant
# (0b10) and 62 random bits, as text, from one os.urandom call per 64 ids (a system call
# costs more than the rest of an id); and the last millisecond's text. A forked child starts
# with none of its parent's.
_drawn = threading.local()
os.register_at_fork(after_in_child=lambda: _drawn.__dict__.clear())  # the forking thread's


def _random_tails() -> list[str]:
    raw = os.urandom(640)
    version, variant = bytearray(raw[:128]), bytearray(raw[128:256])  # 64 ids' 2 bytes each
    version[::2] = version[::2].translate(_VERSION)
    variant[::2] = variant[::2].translate(_VARIANT)
    groups = version.hex(" ", 2).split(), variant.hex(" ", 2).split(), raw[256:].hex(" ", 6).split()
    return list(map("-".join, zip(*groups, strict=True)))


_VERSION = bytes(0x70 | b & 0x0F for b in range(256))  # 7, then 4 of rand_a's 12 bits
_VARIANT = bytes(0x80 | b & 0x3F for b in range(256))  # 0b10, then 6 of rand_b's 62 bits


def parse_timestamp(value: str, field: str = "timestamp") -> datetime:
    """An RFC 3339 timestamp as an aware UTC datetime (extra sub-microsecond digits dropped)."""
    if type(value) is str and (plain := _plain_timestamp(value)) is not None:
        return plain
    return _parse_timestamp_exactly(value, field)


def _parse_timestamp_exactly(value: str, field: str) -> datetime:
    """`parse_timestamp` the general way."""
    text = value.strip()
    match = _FRACTION.match(text)
    if match and match.group(2) and len(match.group(2)) > 7:
        text = match.group(1) + match.group(2)[:7] + match.group(3)
    try:
        parsed = datetime.fromisoformat(text)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        parsed = parsed.astimezone(UTC)
        if not 1 < parsed.year < 9999:
            raise ValueError("out of range")
    except (ValueError, OverflowError):
        raise ValidationError(
            field,
            "expected an RFC 3339 timestamp between years 2 and 9998, such as "
            f"2026-11-23T10:30:15.123Z, got {value!r}",
        ) from None
    return parsed


def _plain_timestamp(value: str) -> datetime | None:
    """`parse_timestamp` of the commonest shapes, 2026-11-23T10:30:15.123Z,
    2026-11-23T10:30:15Z and 2026-11-23T10:30:15.123456Z (`format_timestamp`'s, so every OTLP
    record's), or None (for any other, or an error). Their text is what the general way hands
    fromisoformat (nothing to strip; a fraction of seven digits or more needs 17 characters
    after a T, and this T is the 11th of 20, 24 or 27), and "Z" is UTC already."""
    if (
        len(value) not in (20, 24, 27)
        or value[10] != "T"
        or value[-1] != "Z"
        or not "0" <= value[0] <= "9"
    ):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except (ValueError, OverflowError):
        return None
    return parsed if parsed.tzinfo is UTC and 1 < parsed.year < 9999 else None


_FRACTION = re.compile(r"^(.*T\d\d:\d\d:\d\d)(\.\d+)?(.*)$")


def format_timestamp(value: datetime) -> str:
    """Milliseconds when they suffice, microseconds otherwise, always UTC with ``Z``."""
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    if value.year < 1000:  # strftime's %Y, unpadded on some platforms: as it always was
        if value.microsecond % 1000 == 0:
            return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
        return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    spec = "milliseconds" if value.microsecond % 1000 == 0 else "microseconds"
    return value.isoformat(timespec=spec)[:-6] + "Z"  # less "+00:00"


def validate_request_metadata(value: Any, field: str = "requestMetadata") -> dict[str, str]:
    """Bedrock's rules: string → string, at most 16 entries, keys 1–256 and values 0–256
    characters from ``[a-zA-Z0-9\\s:_@$#=/+,-.]``. Raises `ValidationError` naming the key."""
    if type(value) is dict and _plain_metadata(value):
        return dict(value)
    return _check_metadata_exactly(value, field)


def _check_metadata_exactly(value: Any, field: str = "requestMetadata") -> dict[str, str]:
    """`validate_request_metadata` the general way, which names the first offending key."""
    if not isinstance(value, Mapping):
        raise ValidationError(
            field, f"must be an object of string keys and values, got {_kind(value)}"
        )
    if len(value) > METADATA_MAX_ENTRIES:
        raise ValidationError(
            field, f"has {len(value)} entries; at most {METADATA_MAX_ENTRIES} are allowed"
        )
    for key, item in value.items():
        where = f"{field}.{key}"
        if not isinstance(key, str) or not 1 <= len(key) <= METADATA_KEY_MAX:
            raise ValidationError(where, f"keys must be 1–{METADATA_KEY_MAX} characters")
        if not _METADATA_CHARS.fullmatch(key):
            raise ValidationError(
                where, "key has a character outside [a-zA-Z0-9 whitespace :_@$#=/+,-.]"
            )
        if not isinstance(item, str):
            raise ValidationError(where, f"values must be strings, got {_kind(item)}")
        if len(item) > METADATA_VALUE_MAX:
            raise ValidationError(
                where, f"value is {len(item)} characters; at most {METADATA_VALUE_MAX} are allowed"
            )
        if not _METADATA_CHARS.fullmatch(item):
            raise ValidationError(
                where, "value has a character outside [a-zA-Z0-9 whitespace :_@$#=/+,-.]"
            )
    return dict(value)


def _plain_metadata(value: dict[Any, Any]) -> bool:
    """True only if `validate_request_metadata` accepts ``value``; False says nothing."""
    if len(value) > METADATA_MAX_ENTRIES:
        return False
    try:  # all of them in one: its characters are theirs
        text = "".join([*value, *value.values()])
    except TypeError:  # a key or value that is not a string
        return False
    # no key or value is longer than all of them together
    if len(text) > _METADATA_SHORT and (
        max(map(len, value)) > METADATA_KEY_MAX
        or max(map(len, value.values())) > METADATA_VALUE_MAX
    ):
        return False
    try:  # the allowed characters are ASCII: those not alphanumeric made so, all of it is
        allowed = text.encode().translate(_METADATA_ALNUM).isalnum()
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return allowed and "" not in value  # no key is empty (an empty map: the general way)


_METADATA_SHORT = min(METADATA_KEY_MAX, METADATA_VALUE_MAX)
_METADATA_PUNCTUATION = bytes(
    c for c in range(128) if _METADATA_CHARS.fullmatch(chr(c)) and not chr(c).isalnum()
)
_METADATA_ALNUM = bytes.maketrans(_METADATA_PUNCTUATION, b"a" * len(_METADATA_PUNCTUATION))


def coerce_request_metadata(value: Mapping[str, Any]) -> tuple[dict[str, str], bool]:
    """Fit arbitrary ``metadata`` into Bedrock's limits. Returns the map and whether anything
    was truncated, replaced or dropped; never raises."""
    out: dict[str, str] = {}
    changed = False
    for raw_key, raw_value in value.items():
        if len(out) >= METADATA_MAX_ENTRIES:
            return out, True
        if raw_value is None:
            changed = True
            continue
        key = _METADATA_BAD_CHAR.sub("_", str(raw_key))[:METADATA_KEY_MAX]
        text = raw_value if isinstance(raw_value, str) else _compact_json(raw_value)
        item = _METADATA_BAD_CHAR.sub("_", text)[:METADATA_VALUE_MAX]
        if not key:
            changed = True
            continue
        changed = changed or key != raw_key or item != raw_value
        out[key] = item
    return out, changed


def _compact_json(value: Any) -> str:
    import orjson

    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return str(value)


def _kind(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number" if isinstance(value, int | float) else type(value).__name__
    )


_INT: tuple[type, ...] = (int,)
_MAP: tuple[type, ...] = (dict,)
_TIMESTAMP: tuple[type, ...] = (str,)  # a distinct tuple: parsed as well
_DECIMAL: tuple[type, ...] = (str, int, float)  # money: checked as a decimal number
_ALLOWED: dict[Type, tuple[tuple[type, ...], str]] = {
    Type.STRING: ((str,), "a string"),
    Type.INT: (_INT, "an integer"),
    Type.BOOL: ((bool,), "a boolean"),
    Type.TIMESTAMP: (_TIMESTAMP, "an RFC 3339 timestamp string"),
    Type.MAP: (_MAP, "an object"),
    Type.DECIMAL: (_DECIMAL, 'a decimal number (a string such as "0.000125")'),
}
# path → (column, allowed types, what to call them, longest text), without hashing enums
# per record
_CHECKS: dict[tuple[str, ...], tuple[Column, tuple[type, ...], str, int | None]] = {
    path: (column, *_ALLOWED[column.type], STRING_LIMITS.get(path))
    for path, column in COLUMN_BY_PATH.items()
    if column.type in _ALLOWED
}
# string maps whose entries are bounded: path → (entries, key length, value length)
BOUNDED_MAPS: dict[tuple[str, ...], tuple[int, int, int]] = {
    ("inferenceProfile", "tags"): (TAGS_MAX, TAG_KEY_MAX, TAG_VALUE_MAX),
}

# The fast way of `check_types`: a table from key to what its value must be (a kind and the
# longest text), walked over the record's own keys, that only says whether every value is
# of the plainest valid shape; anything else, and so every error, is left to the general way.
_K_STR, _K_INT, _K_BOOL, _K_TIME, _K_MAP, _K_MONEY, _K_OBJECT, _K_SLOW = range(8)
_KIND = {Type.STRING: _K_STR, Type.INT: _K_INT, Type.BOOL: _K_BOOL, Type.TIMESTAMP: _K_TIME}
_KIND |= {Type.MAP: _K_MAP, Type.DECIMAL: _K_MONEY}
_Table = dict[str, tuple[int, Any]]
# objects whatever their keys (`check_types` names them)
_OBJECTS = ("input", "output", "identity", "error", "trace")


def _plain_table(prefix: tuple[str, ...]) -> _Table:
    return {
        path[-1]: (
            _K_SLOW if path in BOUNDED_MAPS else _KIND[column.type],
            1 << 62 if longest is None else longest,
        )
        for path, (column, _, _, longest) in _CHECKS.items()
        if path[:-1] == prefix
    }


assert all(len(path) <= 2 for path in _CHECKS)  # held_values looks two keys deep
_PLAIN = _plain_table(())
_PARENT_KEYS = {path[0] for path in _CHECKS if len(path) == 2}.union(_OBJECTS)
assert not _PARENT_KEYS & {path[0] for path in COLUMN_BY_PATH if len(path) == 1}
_PLAIN.update((key, (_K_OBJECT, _plain_table((key,)))) for key in sorted(_PARENT_KEYS))
_JUST_STRINGS = frozenset({str})


def check_money(value: Any, field: str) -> None:
    """A money amount of one record: finite, at most `MONEY_MAX_USD` either way and at most
    `MONEY_PLACES` decimal places, so that it fits the DECIMAL(38, 9) columns exactly and
    sums over any realistic number of records cannot overflow them. Ingested money is
    refused rather than rounded: a rounded amount would be an amount nobody reported."""
    try:
        amount = decimal.Decimal(str(value))
    except decimal.InvalidOperation:
        raise ValidationError(field, f"must be a decimal number, got {str(value)[:40]!r}") from None
    if not amount.is_finite() or abs(amount) > MONEY_MAX_USD:
        raise ValidationError(
            field,
            f"is {str(value)[:40]}; the limit is {MONEY_MAX_USD:,} USD either way "
            "(one model call never costs more)",
        )
    if amount != amount.quantize(_MONEY_QUANTUM):
        raise ValidationError(
            field,
            f"has more than {MONEY_PLACES} decimal places ({str(value)[:40]}); "
            f"the limit is {MONEY_PLACES} (amounts are stored to 1e-{MONEY_PLACES} USD)",
        )


def check_types(doc: Mapping[str, Any]) -> None:
    """Every value at a column's path has the column's type (string maps hold strings,
    integers are between 0 and `INT_MAX`, money is bounded by `check_money`) and identifying
    strings are no longer than `STRING_LIMITS` allows, so that a record that passes can
    always be stored and queried."""
    if type(doc) is not dict or not _plain(doc, _PLAIN):
        _check_types_exactly(doc)


def _check_types_exactly(doc: Mapping[str, Any]) -> None:
    """`check_types` the general way, which names the first offending field."""
    for path, value in held_values(doc).items():
        if value is None:
            continue
        check = _CHECKS.get(path)
        if check is None:  # JSON columns hold anything
            continue
        column, allowed, word, longest = check
        if type(value) not in allowed:  # exact types: a boolean is not an integer
            raise ValidationError(column.dotted, f"must be {word}, got {_kind(value)}")
        if longest is not None and len(value) > longest:
            raise ValidationError(
                column.dotted,
                f"is {len(value)} characters long; the limit is {longest} characters",
            )
        if allowed is _INT and not 0 <= value <= INT_MAX:
            raise ValidationError(
                column.dotted, f"is {value}; it must be between 0 and {INT_MAX:,}"
            )
        if allowed is _MAP:
            for key, item in value.items():
                if type(item) is not str:
                    raise ValidationError(
                        f"{column.dotted}.{key}", f"values must be strings, got {_kind(item)}"
                    )
            if path in BOUNDED_MAPS:
                check_bounded_map(value, column.dotted, *BOUNDED_MAPS[path])
        elif allowed is _TIMESTAMP:
            _parse_timestamp_exactly(value, column.dotted)
        elif allowed is _DECIMAL:
            check_money(value, column.dotted)
    for key in _OBJECTS:
        if key in doc and doc[key] is not None and type(doc[key]) is not dict:
            raise ValidationError(key, f"must be an object, got {_kind(doc[key])}")


def _plain(doc: dict[str, Any], table: _Table) -> bool:
    """True only if `check_types` passes ``doc`` (``table``: `_PLAIN`); False says nothing."""
    for key, value in doc.items():
        spec = table.get(key)
        if spec is None or value is None:
            continue
        kind, arg = spec  # arg: the longest text, or an object's own table
        if kind == _K_STR:
            if type(value) is not str or len(value) > arg:
                return False
        elif kind == _K_OBJECT:
            if type(value) is not dict:
                return False
            for sub, item in value.items():  # as below, the commonest kinds inline
                spec = arg.get(sub)
                if spec is None or item is None:
                    continue
                kind, longest = spec
                if kind == _K_STR:
                    if type(item) is not str or len(item) > longest:
                        return False
                elif kind == _K_INT:
                    if type(item) is not int or not 0 <= item <= INT_MAX:
                        return False
                elif not _plain({sub: item}, arg):
                    return False
        elif kind == _K_INT:
            if type(value) is not int or not 0 <= value <= INT_MAX:
                return False
        elif kind == _K_TIME:
            if type(value) is not str or _plain_timestamp(value) is None:
                return False
        elif kind == _K_MAP:
            if type(value) is not dict or not set(map(type, value.values())) <= _JUST_STRINGS:
                return False
        elif kind == _K_BOOL:
            if type(value) is not bool:
                return False
        elif kind == _K_MONEY:
            if type(value) is str:
                if _PLAIN_MONEY.fullmatch(value) is None:
                    return False
            elif type(value) is not int or not -1_000_000 <= value <= 1_000_000:
                return False
        else:
            return False
    return True


# Money `check_money` always accepts: below 1,000,000 either way, at most 9 decimal places
_PLAIN_MONEY = re.compile(r"-?\d{1,6}(?:\.\d{1,9})?", re.ASCII)


def check_bounded_map(
    value: Mapping[str, str], field: str, entries: int, key_max: int, value_max: int
) -> None:
    """A string map with at most ``entries`` entries, keys of 1 to ``key_max`` and values of
    at most ``value_max`` characters."""
    if len(value) > entries:
        raise ValidationError(field, f"has {len(value)} entries; the limit is {entries}")
    for key, item in value.items():
        if not 1 <= len(key) <= key_max:
            raise ValidationError(
                f"{field}.{key[:key_max]}", f"keys must be 1 to {key_max} characters long"
            )
        if len(item) > value_max:
            raise ValidationError(
                f"{field}.{key}",
                f"is {len(item)} characters long; the limit is {value_max} characters",
            )


class InvocationRecord:
    """One model invocation, as the JSON document it serialises to."""

    __slots__ = ("data", "derived")

    def __init__(self, data: dict[str, Any], derived: tuple[str, ...] = ()) -> None:
        self.data = data
        self.derived = derived

    def __reduce__(self) -> tuple[type[InvocationRecord], tuple[Any, ...]]:
        """Pickled as its two fields (OTLP records cross to the recorder process): cheaper
        than the slots' state."""
        return InvocationRecord, (self.data, self.derived)

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def from_dict(
        cls,
        doc: Any,
        *,
        workspace: str = DEFAULT_WORKSPACE,
        source: str = "import",
        now: datetime | None = None,
    ) -> InvocationRecord:
        """Validate a record that arrived whole (ingest API, importers) and fill what llmtrail
        derives: recordId, workspace, status, provider, source. Raises `ValidationError`."""
        if not (type(doc) is dict and _plain(doc, _PLAIN) and _plain_rest(doc)):
            _check_record(doc)  # the general way: raises the first error, if any
        # recordId and workspace are llmtrail's own: never taken from the caller
        doc["recordId"] = uuid7(now)
        doc["workspace"] = workspace
        derived = ["recordId", "workspace"]
        if "status" not in doc:
            doc["status"] = "ERROR" if doc.get("errorCode") or doc.get("error") else "OK"
            derived.append("status")
        if "provider" not in doc:
            doc["provider"] = infer_provider(doc)
            derived.append("provider")
        if "source" not in doc:
            doc["source"] = source
            derived.append("source")
        return cls(doc, tuple(derived))

    # -- accessors --------------------------------------------------------------------------
    @property
    def record_id(self) -> str:
        return str(self.data["recordId"])

    @property
    def request_id(self) -> str:
        return str(self.data["requestId"])

    @property
    def workspace(self) -> str:
        return str(self.data.get("workspace", DEFAULT_WORKSPACE))

    @property
    def timestamp(self) -> datetime:
        return parse_timestamp(self.data["timestamp"])

    def to_dict(self, view: View = "full") -> dict[str, Any]:
        if view == "full":
            return self.data
        return {
            k: v
            for k, v in self.data.items()
            if k not in ADDITION_KEYS or (k not in self.derived and k not in _ALWAYS_LLMTRAIL)
        }

    def __eq__(self, other: object) -> bool:
        return isinstance(other, InvocationRecord) and self.data == other.data

    def __repr__(self) -> str:
        return f"InvocationRecord({self.data.get('requestId')!r}, {self.data.get('modelId')!r})"


def _check_record(doc: Any) -> None:
    """`InvocationRecord.from_dict`'s rules the general way: raises the first error, if any."""
    if not isinstance(doc, dict):
        raise ValidationError("record", f"must be a JSON object, got {_kind(doc)}")
    _check_types_exactly(doc)
    if not doc.get("requestId"):
        raise ValidationError("requestId", "is required (a non-empty string)")
    if not doc.get("timestamp"):
        raise ValidationError("timestamp", "is required (an RFC 3339 timestamp)")
    if "requestMetadata" in doc:
        _check_metadata_exactly(doc["requestMetadata"])
    status = doc.get("status")
    if status is not None and status not in STATUSES:
        raise ValidationError("status", f"must be one of {'|'.join(STATUSES)}, got {status!r}")


def _plain_rest(doc: dict[str, Any]) -> bool:
    """True only if `_check_record` passes a record whose types `_plain` passed."""
    status = doc.get("status")
    if not (doc.get("requestId") and doc.get("timestamp")):
        return False
    if status is not None and status not in STATUSES:
        return False
    if "requestMetadata" not in doc:
        return True
    meta = doc["requestMetadata"]
    return type(meta) is dict and _plain_metadata(meta)


# Keys that only llmtrail writes: even when given they are not Bedrock's.
_ALWAYS_LLMTRAIL = frozenset({"recordId", "workspace"})


def infer_provider(doc: Mapping[str, Any]) -> str:
    """The provider a record's own keys imply: Bedrock's log shape means ``bedrock``."""
    if doc.get("schemaType") == SCHEMA_TYPE and doc.get("operation") in {
        "Converse",
        "ConverseStream",
        "InvokeModel",
        "InvokeModelWithResponseStream",
    }:
        return "bedrock"
    model = str(doc.get("modelId") or "")
    return model.split("/", 1)[0] if "/" in model else "unknown"
