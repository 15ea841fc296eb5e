"""The record field a chargeback (or any grouping) splits by.

A dimension is named the way queries name fields — by its path in the record's JSON — and is
checked and resolved by the one dimension resolver that cost attribution and budgets use too
(`llmtrail.query.dimensions`): a column (``modelId``, ``identity.arn``, a promoted
``requestMetadata.tenant_id``) or a key of a string map (``requestMetadata.team``,
``inferenceProfile.tags.dept``). Here it only gets a label for people.
"""

from __future__ import annotations

from dataclasses import dataclass

from llmtrail.query.dimensions import dimension_name, record_path
from llmtrail.schema import RecordSchema

DEFAULT_DIMENSION = "requestMetadata.tenant_id"


@dataclass(frozen=True)
class Dimension:
    """A checked dimension: its ``path`` (`llmtrail.query.dimensions`) and the ``label`` that
    names it for people (``tenant`` for ``…tenant_id``)."""

    path: str
    label: str


def resolve_dimension(path: str, schema: RecordSchema | None = None) -> Dimension:
    """The dimension ``path`` names. Raises `ValidationError` on ``dimension`` for a path
    that is no dimension (`llmtrail.query.dimensions.dimension_path`). ``schema`` is kept
    for callers that pass one; every schema resolves the same names."""
    name = dimension_name(path)
    return Dimension(name, _label(record_path(name)[-1]))


def _label(name: str) -> str:
    """``tenant_id`` → ``tenant``, ``cost_center`` → ``cost center``, ``modelId`` → ``model``."""
    for suffix in ("_id", "Id"):
        if name.endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)]
    return name.replace("_", " ")
