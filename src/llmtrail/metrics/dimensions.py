"""The dimensions metrics are rolled up by, and the sets of them that are kept.

A rolled-up series is named by an exact set of dimensions, as a CloudWatch metric is: the
total (no dimension), each dimension alone, and the pairs the web UI and alarms read. A set is
stored as a bit mask over `DIMENSIONS` (``dimset``), so a read names one set and filters on
its values. Values callers choose (models, applications, tenants, …) are capped per
dimension: past the configured top N, new values count under `OTHER`, so the number of
series stays bounded.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from llmtrail.errors import ValidationError

OTHER = "other"


@dataclass(frozen=True)
class Dimension:
    name: str  # the CloudWatch dimension name
    column: str  # the rollup tables' column
    record_field: str  # the record's field (query language path)
    metadata_key: str | None = None  # a requestMetadata key, when it is one
    capped: bool = True  # caller-chosen values, capped at the top N


DIMENSIONS: tuple[Dimension, ...] = (
    Dimension("ModelId", "model_id", "modelId"),
    Dimension("Operation", "operation", "operation", capped=False),
    Dimension("Provider", "provider", "provider", capped=False),
    Dimension(
        "ApplicationName",
        "application_name",
        "requestMetadata.application_name",
        "application_name",
    ),
    Dimension("TenantId", "tenant_id", "requestMetadata.tenant_id", "tenant_id"),
    Dimension("Team", "team", "requestMetadata.team", "team"),
    Dimension("CostCenter", "cost_center", "requestMetadata.cost_center", "cost_center"),
    Dimension("InferenceProfile", "inference_profile", "inferenceProfile.name"),
    Dimension("Status", "status", "status", capped=False),
    Dimension("ErrorType", "error_type", "error.type"),
)
BY_NAME: dict[str, Dimension] = {d.name: d for d in DIMENSIONS}
_ALIASES: dict[str, Dimension] = {}
for _d in DIMENSIONS:
    for _alias in {_d.name, _d.column, _d.record_field, _d.metadata_key or _d.name}:
        _ALIASES[_alias.lower()] = _d
_ALIASES["workspace"] = None  # type: ignore[assignment]  # every read names it apart

_PAIRS: tuple[tuple[str, ...], ...] = (
    ("ModelId", "ApplicationName"),
    ("ModelId", "TenantId"),
    ("ModelId", "Status"),
    ("ModelId", "Operation"),
    ("ModelId", "Provider"),
    ("ApplicationName", "TenantId"),
    ("ApplicationName", "Status"),
    ("CostCenter", "ApplicationName"),
    ("TenantId", "Status"),
    # the labels of the OpenTelemetry GenAI metrics on /metrics
    ("ModelId", "Operation", "Provider", "ErrorType"),
)


def mask_of(names: Iterable[str]) -> int:
    mask = 0
    for name in names:
        mask |= 1 << DIMENSIONS.index(BY_NAME[name])
    return mask


DIMENSION_SETS: tuple[int, ...] = (
    0,
    *(mask_of([d.name]) for d in DIMENSIONS),
    *(mask_of(pair) for pair in _PAIRS),
)


def names_of(mask: int) -> tuple[str, ...]:
    return tuple(d.name for i, d in enumerate(DIMENSIONS) if mask >> i & 1)


def resolve(name: str, field: str = "Dimensions") -> Dimension:
    """The dimension a caller named, by its CloudWatch name or its record field."""
    dim = _ALIASES.get(name.lower())
    if dim is None:
        known = ", ".join(d.name for d in DIMENSIONS)
        raise ValidationError(field, f"unknown dimension {name!r}; known: {known}")
    return dim


def dimension_set(names: Iterable[str], field: str = "Dimensions") -> int:
    """The stored set for exactly these dimensions, or a `ValidationError` naming the sets
    that are kept."""
    mask = mask_of(resolve(n, field).name for n in names)
    if mask not in DIMENSION_SETS:
        kept = "; ".join(" + ".join(names_of(m)) for m in DIMENSION_SETS if bin(m).count("1") > 1)
        asked = " + ".join(names_of(mask))
        raise ValidationError(
            field,
            f"no series is kept for {asked}: one dimension or none, or one of {kept}",
        )
    return mask
