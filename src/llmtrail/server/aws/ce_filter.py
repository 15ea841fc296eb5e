"""Cost Explorer's ``Filter`` (an ``Expression``) as a predicate on line items (`ce_usage`).

What it takes, as GetCostAndUsage documents it:

- ``Dimensions``: ``SERVICE``, ``USAGE_TYPE``, ``LINKED_ACCOUNT``, ``REGION`` or ``OPERATION``
  equal to one of ``Values``; MatchOptions ``EQUALS`` and ``CASE_SENSITIVE`` (the defaults);
- ``Tags``: tag ``Key`` (an inference-profile tag, else a ``requestMetadata`` key) equal to one
  of ``Values``, or without a value with ``ABSENT`` (or the value ``""``, as the group key
  ``key$`` shows them); MatchOptions ``EQUALS``, ``ABSENT``,
  ``CASE_SENSITIVE``. A ``Tags`` filter with neither values nor ``ABSENT`` keeps the costs
  that have the tag at all;
- ``And``, ``Or``, ``Not`` of those, nested up to `MAX_DEPTH` levels.

Everything else is refused with a ValidationException that names it: another dimension
(llmtrail has no ``AZ`` or ``INSTANCE_TYPE``), ``CostCategories`` and ``ProductAttributes``
(llmtrail keeps neither), a match option GetCostAndUsage does not take, and an expression
with no root or more than one (AWS's own message).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from llmtrail.server.aws.ce_usage import DIMENSIONS, LineItem
from llmtrail.server.aws.operations import AwsError

__all__ = ["MAX_DEPTH", "Filter", "read_filter", "refuse"]

Predicate = Callable[[LineItem], bool]
MAX_DEPTH = 10
_ROOTS = ("And", "Or", "Not", "Dimensions", "Tags", "CostCategories", "ProductAttributes")
_DIMENSION_OPTIONS = frozenset({"EQUALS", "CASE_SENSITIVE"})
_TAG_OPTIONS = frozenset({"EQUALS", "ABSENT", "CASE_SENSITIVE"})


def refuse(message: str) -> AwsError:
    """A ValidationException saying ``message``."""
    return AwsError("ValidationException", message)


@dataclass(frozen=True)
class Filter:
    """A compiled filter: ``keeps`` a line item or not; ``tag_keys`` it reads."""

    keeps: Predicate
    tag_keys: tuple[str, ...]


def _everything(item: LineItem) -> bool:
    return True


def read_filter(expression: Mapping[str, Any] | None) -> Filter:
    """The predicate of ``expression`` (None: keep everything); a ValidationException for
    what it cannot do."""
    if expression is None:
        return Filter(_everything, ())
    keys: list[str] = []
    predicate = _compile(expression, "Filter", 1, keys)
    return Filter(predicate, tuple(dict.fromkeys(keys)))


def _compile(expr: Mapping[str, Any], path: str, depth: int, keys: list[str]) -> Predicate:
    if depth > MAX_DEPTH:
        raise refuse(f"{path}: expressions nest at most {MAX_DEPTH} levels deep")
    roots = [name for name in _ROOTS if name in expr]
    if len(roots) != 1:
        problem = "has more than one roots" if roots else "has no root"
        raise refuse(
            f"{path}: Expression {problem}. Only one root operator is allowed for each "
            "expression: And, Or, Not, Dimensions, Tags, CostCategories"
        )
    root = roots[0]
    where = f"{path}.{root}"
    value = expr[root]
    if root in ("And", "Or"):
        if not value:
            raise refuse(f"{where} must hold at least one expression")
        parts = [_compile(e, f"{where}[{i}]", depth + 1, keys) for i, e in enumerate(value)]
        if root == "And":
            return lambda item: all(p(item) for p in parts)
        return lambda item: any(p(item) for p in parts)
    if root == "Not":
        inner = _compile(value, where, depth + 1, keys)
        return lambda item: not inner(item)
    if root == "Dimensions":
        return _dimension(value, where)
    if root == "Tags":
        return _tag(value, where, keys)
    raise refuse(f"{where} is not supported: llmtrail keeps no {root} of its costs")


def _options(spec: Mapping[str, Any], allowed: frozenset[str], where: str) -> set[str]:
    options = set(spec.get("MatchOptions") or ())
    unsupported = sorted(options - allowed)
    if unsupported:
        raise refuse(
            f"{where}.MatchOptions {unsupported[0]} is not supported by GetCostAndUsage here; "
            f"use {', '.join(sorted(allowed))}"
        )
    return options


def _dimension(spec: Mapping[str, Any], where: str) -> Predicate:
    key = spec.get("Key")
    if key is None:
        raise refuse(f"{where}.Key is required")
    if key not in DIMENSIONS:
        raise refuse(
            f"{where}.Key {key} is not a dimension of llmtrail's costs; use one of "
            f"{', '.join(DIMENSIONS)}"
        )
    _options(spec, _DIMENSION_OPTIONS, where)
    values = frozenset(spec.get("Values") or ())
    if not values:
        raise refuse(f"{where}.Values must name at least one value of {key}")
    return lambda item: item.dimensions[key] in values


def _tag(spec: Mapping[str, Any], where: str, keys: list[str]) -> Predicate:
    key = spec.get("Key")
    if key is None:
        raise refuse(f"{where}.Key is required")
    options = _options(spec, _TAG_OPTIONS, where)
    keys.append(key)
    values = frozenset(spec.get("Values") or ())
    absent = "ABSENT" in options
    if not values and not absent:
        return lambda item: item.tags[key] is not None
    untagged = absent or "" in values  # a group key ``key$`` names the untagged costs
    return lambda item: (item.tags[key] is None and untagged) or item.tags[key] in values
