"""The one description of every stored column.

Each column has a name, a logical type, a role and the JSON path it occupies in the record.
The DuckDB DDL, the Arrow schema, the row ↔ record conversion and (later) the query
compiler's field resolver all derive from this list, so a column is added in one place.

A record is a JSON document (Bedrock's ``ModelInvocationLog`` plus llmtrail's additions). A
row is that document split into typed columns; whatever no column holds — unknown keys at any
depth, a timestamp written with another precision — is kept verbatim in the ``extra`` column
and merged back on the way out, so a record serialises back to the JSON it arrived as.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


class Type(enum.Enum):
    STRING = "string"
    INT = "int"
    BOOL = "bool"
    TIMESTAMP = "timestamp"  # UTC, microseconds
    MAP = "map"  # string → string
    JSON = "json"  # any JSON value, stored as text
    DECIMAL = "decimal"  # money: DECIMAL(38, 9); a decimal string in the record's JSON


class Role(enum.Enum):
    BEDROCK = "bedrock"  # a key of Bedrock's ModelInvocationLog (schemaVersion 1.0)
    ADDITION = "addition"  # llmtrail's own keys; never in Bedrock-format output unless given
    METADATA = "metadata"  # a promoted requestMetadata key
    INTERNAL = "internal"  # bookkeeping that is not part of the record


@dataclass(frozen=True)
class Column:
    name: str
    type: Type
    path: tuple[str, ...]
    role: Role
    low_cardinality: bool = False
    since: str | None = None  # the migration that added it; None: the first one

    @property
    def dotted(self) -> str:
        return ".".join(self.path)


def _c(
    name: str, type_: Type, path: str, role: Role, *, low: bool = False, since: str | None = None
) -> Column:
    return Column(name, type_, tuple(path.split(".")) if path else (), role, low, since)


B, A, INTERNAL = Role.BEDROCK, Role.ADDITION, Role.INTERNAL
S, N, T, BO, M, J = Type.STRING, Type.INT, Type.TIMESTAMP, Type.BOOL, Type.MAP, Type.JSON
D = Type.DECIMAL
_COST = "0004_cost_profile_characters"

RECORD_COLUMNS: tuple[Column, ...] = (
    _c("record_id", S, "recordId", A),
    _c("workspace", S, "workspace", A, low=True),
    _c("timestamp", T, "timestamp", B),
    _c("request_id", S, "requestId", B),
    _c("schema_type", S, "schemaType", B, low=True),
    _c("schema_version", S, "schemaVersion", B, low=True),
    _c("account_id", S, "accountId", B, low=True),
    _c("identity_arn", S, "identity.arn", B),
    _c("region", S, "region", B, low=True),
    _c("operation", S, "operation", B, low=True),
    _c("model_id", S, "modelId", B, low=True),
    _c("inference_region", S, "inferenceRegion", B, low=True),
    _c("request_metadata", M, "requestMetadata", B),
    _c("input_content_type", S, "input.inputContentType", B, low=True),
    _c("input_body_s3_path", S, "input.inputBodyS3Path", B),
    _c("input_token_count", N, "input.inputTokenCount", B),
    _c("cache_read_input_token_count", N, "input.cacheReadInputTokenCount", B),
    _c("cache_write_input_token_count", N, "input.cacheWriteInputTokenCount", B),
    _c("output_content_type", S, "output.outputContentType", B, low=True),
    _c("output_body_s3_path", S, "output.outputBodyS3Path", B),
    _c("output_token_count", N, "output.outputTokenCount", B),
    _c("error_code", S, "errorCode", B, low=True),
    _c("provider", S, "provider", A, low=True),
    _c("resolved_model_id", S, "resolvedModelId", A, low=True),
    _c("response_id", S, "responseId", A),
    _c("latency_ms", N, "latencyMs", A),
    _c("time_to_first_token_ms", N, "timeToFirstTokenMs", A),
    _c("stop_reason", S, "stopReason", A, low=True),
    _c("status", S, "status", A, low=True),
    _c("error_type", S, "error.type", A, low=True),
    _c("error_message", S, "error.message", A),
    _c("error_stack_trace", S, "error.stackTrace", A),
    _c("error_http_status", N, "error.httpStatus", A),
    _c("trace_id", S, "trace.traceId", A),
    _c("span_id", S, "trace.spanId", A),
    _c("parent_span_id", S, "trace.parentSpanId", A),
    _c("session_id", S, "trace.sessionId", A),
    _c("span_kind", S, "trace.spanKind", A, low=True),
    _c("span_name", S, "trace.name", A),
    _c("source", S, "source", A, low=True),
    _c("request_metadata_truncated", BO, "requestMetadataTruncated", A),
    _c("token_count_estimated", BO, "tokenCountEstimated", A),
    _c("request_headers", M, "requestHeaders", A),
    # how identity.arn was established: api_key_hash | sigv4_claimed (access key id, unverified)
    _c("identity_type", S, "identityType", A, low=True, since="0002_identity_type"),
    # cost at capture, with the price version used, or the reason there is none
    _c("cost_input_usd", D, "cost.inputUsd", A, since=_COST),
    _c("cost_output_usd", D, "cost.outputUsd", A, since=_COST),
    _c("cost_cache_read_usd", D, "cost.cacheReadUsd", A, since=_COST),
    _c("cost_cache_write_usd", D, "cost.cacheWriteUsd", A, since=_COST),
    _c("cost_total_usd", D, "cost.totalUsd", A, since=_COST),
    _c("price_version", S, "cost.priceVersion", A, low=True, since=_COST),
    _c("cost_reason", S, "cost.reason", A, low=True, since=_COST),
    # the application inference profile the caller named, and its tags
    _c("inference_profile_arn", S, "inferenceProfile.arn", A, low=True, since=_COST),
    _c("inference_profile_name", S, "inferenceProfile.name", A, low=True, since=_COST),
    _c("inference_profile_tags", M, "inferenceProfile.tags", A, since=_COST),
    # characters of input and output text (Bedrock's per-profile character count)
    _c("input_character_count", N, "textCharacters.input", A, since=_COST),
    _c("output_character_count", N, "textCharacters.output", A, since=_COST),
    _c("derived", J, "", INTERNAL),  # names of additions llmtrail derived on import
    _c("extra", J, "", INTERNAL),  # what no column holds, merged back on output
    _c("ingested_at", T, "", INTERNAL),
)

BODY_COLUMNS: tuple[Column, ...] = (
    _c("record_id", S, "recordId", A),
    _c("input_body_json", J, "input.inputBodyJson", B),
    _c("output_body_json", J, "output.outputBodyJson", B),
)

DEFAULT_PROMOTED_KEYS: tuple[str, ...] = (
    "application_name",
    "tenant_id",
    "user_id",
    "team",
    "cost_center",
    "environment",
    "variant",
)


@functools.lru_cache(maxsize=4096)
def metadata_column_name(key: str) -> str:
    """The column that holds promoted ``requestMetadata`` key ``key``."""
    safe = "".join(ch if ch.isalnum() else "_" for ch in key.lower())
    return f"meta_{safe}"


def promoted_columns(keys: Iterable[str]) -> tuple[Column, ...]:
    return tuple(
        Column(metadata_column_name(k), Type.STRING, ("requestMetadata", k), Role.METADATA, True)
        for k in keys
    )


ADDITION_KEYS: frozenset[str] = frozenset(
    c.path[0] for c in RECORD_COLUMNS + BODY_COLUMNS if c.role is Role.ADDITION
)
# Paths held by a column; a dict at such a path is stored whole (maps, bodies).
HELD_PATHS: frozenset[tuple[str, ...]] = frozenset(
    c.path for c in RECORD_COLUMNS + BODY_COLUMNS if c.path
)

COLUMN_BY_PATH: dict[tuple[str, ...], Column] = {
    c.path: c for c in RECORD_COLUMNS + BODY_COLUMNS if c.path
}


def held_values(doc: Mapping[str, Any]) -> dict[tuple[str, ...], Any]:
    """The value at every column path present in ``doc``, in one pass over it (paths are at
    most two keys deep). What is at a path may still be of the wrong type."""
    out: dict[tuple[str, ...], Any] = {}
    for key, value in doc.items():
        top = (key,)
        if top in HELD_PATHS:
            out[top] = value
        elif top in _PARENTS and type(value) is dict:
            for sub, item in value.items():
                path = (key, sub)
                if path in HELD_PATHS:
                    out[path] = item
    return out


# Proper prefixes of held paths: dicts there are split between columns and the residue.
_PARENTS: frozenset[tuple[str, ...]] = frozenset(
    h[:n] for h in HELD_PATHS for n in range(1, len(h))
)


def unheld(doc: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
    """Where ``doc`` holds what no column does (what `residue` collects: keys llmtrail does
    not know, kept for the round trip): each as the dict that holds it and its key, so that
    it can be changed in place."""
    out: list[tuple[dict[str, Any], str]] = []
    if _KNOWN_KEYS.issuperset(doc):  # the common case, each dict's keys checked in C
        for parent, held in _HELD_SUBKEYS.items():
            if parent not in doc:
                continue
            value = doc[parent]
            if type(value) is not dict:
                out.append((doc, parent))
            elif not held.issuperset(value):  # e.g. a priced record's ``cost.otherUsd``
                out += [(value, sub) for sub in value if sub not in held]
        return out
    for key, value in doc.items():
        if key in _HELD_KEYS:
            continue
        under = _HELD_SUBKEYS.get(key)
        if under is not None and type(value) is dict:
            out += [(value, sub) for sub in value if sub not in under]
        else:
            out.append((doc, key))
    return out


# `HELD_PATHS` by key (they are at most two keys deep): the keys a column holds whole, and
# under each parent the keys a column holds
_HELD_KEYS = frozenset(p[0] for p in HELD_PATHS if len(p) == 1)
_HELD_SUBKEYS = {
    parent: frozenset(p[1] for p in HELD_PATHS if len(p) == 2 and p[0] == parent)
    for (parent,) in _PARENTS
}
_KNOWN_KEYS = _HELD_KEYS | set(_HELD_SUBKEYS)


@dataclass(frozen=True)
class RecordSchema:
    """The record table's columns for one configuration of promoted metadata keys."""

    promoted_keys: tuple[str, ...] = DEFAULT_PROMOTED_KEYS

    @functools.cached_property
    def record_columns(self) -> tuple[Column, ...]:
        return RECORD_COLUMNS + promoted_columns(self.promoted_keys)

    @property
    def body_columns(self) -> tuple[Column, ...]:
        return BODY_COLUMNS


def get_path(doc: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    cur: Any = doc
    for part in path:
        if type(cur) is not dict and not isinstance(cur, Mapping):  # the first test is cheap
            return None
        cur = cur.get(part)
        if cur is None:
            return None
    return cur


def residue(doc: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> dict[str, Any]:
    """The parts of ``doc`` that no column holds, as a nested dict (empty if none)."""
    out: dict[str, Any] = {}
    for key, value in doc.items():
        path = (*prefix, key)
        if path in HELD_PATHS and value is not None:
            continue  # a column holds it (an explicit null stays here, to be written back)
        if isinstance(value, dict) and path in _PARENTS:
            inner = residue(value, path)
            if inner or not value:
                out[key] = inner
        else:
            out[key] = value
    return out


def merge_into(target: dict[str, Any], extra: Mapping[str, Any]) -> None:
    """Deep-merge ``extra`` into ``target``; ``extra`` wins where both hold a value."""
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            merge_into(target[key], value)
        else:
            target[key] = value
