"""A workspace's redaction policy: which opt-in detectors are on, the workspace's own
patterns, and what happens to a finding in each group of fields.

The JSON form (``GET/PUT /api/redaction``), every field optional::

    {
      "keyDetectors": true,            # API keys, AWS keys, JWTs, bearer tokens in bodies
                                       # and metadata (error texts pass them always)
      "detectors": ["email", "phone", "card", "iban", "ip", "names_addresses"],
      "actions": {"bodies": "mask", "metadata": "hash", "errors": "mask"},
      "patterns": [{"name": "ticket", "pattern": "TICKET-[0-9]{6}"}]
    }

Groups: ``bodies`` (``input.inputBodyJson``, ``output.outputBodyJson``: every JSON string at
any depth, keys untouched), ``metadata`` (``requestMetadata`` values), ``errors``
(``error.message``, ``error.stackTrace``, and the upstream's error body, which is a failed
call's ``output.outputBodyJson``). Actions: ``mask`` (``[REDACTED:email]``), ``hash`` (a
keyed HMAC-SHA256, shortened: ``[EMAIL:hmac:1a2b3c4d5e6f]``, equal values stay joinable),
``drop`` (the value holding a finding becomes empty; a metadata entry is removed).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from llmtrail.errors import ValidationError
from llmtrail.security.detectors import KEY_DETECTORS
from llmtrail.security.detectors_custom import (
    MAX_PATTERNS,
    PATTERN_NAME,
    compile_user_pattern,
    presidio_problem,
)
from llmtrail.security.detectors_pii import PII_DETECTORS

GROUPS = ("bodies", "metadata", "errors")
ACTIONS = ("mask", "hash", "drop")
OPT_IN = (*PII_DETECTORS, "names_addresses")
FIELDS = ("keyDetectors", "detectors", "actions", "patterns")
# kinds a finding can have besides the detectors' names: a pattern may not take one
RESERVED_KINDS = frozenset(
    {d.name for d in KEY_DETECTORS} | set(OPT_IN) | {"name", "address", "redacted"}
)


@dataclass(frozen=True)
class UserPattern:
    name: str
    pattern: str


def _default_actions() -> dict[str, str]:
    return dict.fromkeys(GROUPS, "mask")


@dataclass(frozen=True)
class RedactionPolicy:
    key_detectors: bool = True
    detectors: tuple[str, ...] = ()
    actions: Mapping[str, str] = field(default_factory=_default_actions)
    patterns: tuple[UserPattern, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "keyDetectors": self.key_detectors,
            "detectors": list(self.detectors),
            "actions": {g: self.actions[g] for g in GROUPS},
            "patterns": [{"name": p.name, "pattern": p.pattern} for p in self.patterns],
        }


DEFAULT_POLICY = RedactionPolicy()


def parse_policy(value: Any, *, check_presidio: bool = True) -> RedactionPolicy:
    """The policy ``value`` describes, or `ValidationError` naming the field and the limit.
    ``check_presidio=False`` accepts ``names_addresses`` without asking whether Presidio
    runs here (a policy read back from the store: the caller decides what to do)."""
    if not isinstance(value, dict):
        raise ValidationError("policy", "must be a JSON object")
    for key in value:
        if key not in FIELDS:
            raise ValidationError(
                str(key)[:64], f"is not a field of a redaction policy ({', '.join(FIELDS)})"
            )
    key_detectors = value.get("keyDetectors", True)
    if not isinstance(key_detectors, bool):
        raise ValidationError("keyDetectors", "must be true or false")
    return RedactionPolicy(
        key_detectors,
        _detectors(value.get("detectors", []), check_presidio),
        _actions(value.get("actions", {})),
        _patterns(value.get("patterns", [])),
    )


def _detectors(value: Any, check_presidio: bool) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ValidationError("detectors", f"must be a list of names among {', '.join(OPT_IN)}")
    names: list[str] = []
    for i, name in enumerate(value):
        if name not in OPT_IN:
            raise ValidationError(
                f"detectors[{i}]",
                f"unknown detector {str(name)[:64]!r}; one of {', '.join(OPT_IN)}",
            )
        if name not in names:
            names.append(name)
    if check_presidio and "names_addresses" in names:
        problem = presidio_problem()
        if problem:
            index = value.index("names_addresses")
            raise ValidationError(f"detectors[{index}]", f"names_addresses {problem}")
    return tuple(n for n in OPT_IN if n in names)


def _actions(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ValidationError("actions", f"must be an object of groups ({', '.join(GROUPS)})")
    actions = _default_actions()
    for group, action in value.items():
        if group not in GROUPS:
            raise ValidationError(
                f"actions.{str(group)[:64]}", f"is not a group; one of {', '.join(GROUPS)}"
            )
        if action not in ACTIONS:
            raise ValidationError(f"actions.{group}", f"must be one of {', '.join(ACTIONS)}")
        actions[group] = action
    return actions


def _patterns(value: Any) -> tuple[UserPattern, ...]:
    if not isinstance(value, list):
        raise ValidationError("patterns", "must be a list of {name, pattern} objects")
    if len(value) > MAX_PATTERNS:
        raise ValidationError("patterns", f"has {len(value)} patterns; the limit is {MAX_PATTERNS}")
    patterns: list[UserPattern] = []
    for i, item in enumerate(value):
        where = f"patterns[{i}]"
        if not isinstance(item, dict) or set(item) - {"name", "pattern"}:
            raise ValidationError(where, "must be an object with name and pattern only")
        name = item.get("name")
        if not isinstance(name, str) or not PATTERN_NAME.fullmatch(name):
            raise ValidationError(
                f"{where}.name", "must be 1 to 32 of a-z, 0-9 and _, starting with a letter"
            )
        if name in RESERVED_KINDS or any(p.name == name for p in patterns):
            raise ValidationError(f"{where}.name", f"{name!r} is taken (a detector or a pattern)")
        compile_user_pattern(item.get("pattern"), f"{where}.pattern")
        patterns.append(UserPattern(name, item["pattern"]))
    return tuple(patterns)
