"""User price overrides: prices a user adds or corrects, stored in the StateStore (``prices``).

An override is a plain dict so that it survives the StateStore, the HTTP API and a config
file alike::

    {"id": "acme-claude-discount",                # optional; default provider/model@date
     "provider": "bedrock",                       # a provider name, or "*" for any
     "model": "anthropic.claude-3-5-haiku*",      # a model id or glob pattern
     "prices": {"input_mtok": "0.72", "output_mtok": "3.6"},
     "effective_from": "2025-01-01",
     "created_at": "2025-01-02T09:00:00Z",        # optional in a config file
     "note": "negotiated rate"}

`validate_override` checks one and raises `llmtrail.errors.ValidationError` naming the field,
so ``prices set``, the API and config loading share one rule. An override replaces the price
of the models it matches from its date on (it does not patch single rates: what it leaves out
is not priced), and its cost carries the version ``override:<id>``.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from llmtrail.errors import ValidationError
from llmtrail.pricing.price import RATE_KEYS, Price, Rate, RateError, parse_date, parse_rates
from llmtrail.record import format_timestamp, parse_timestamp

__all__ = ["OVERRIDE_KEYS", "Override", "validate_override"]

OVERRIDE_KEYS = frozenset(
    {"id", "provider", "model", "prices", "effective_from", "created_at", "note"}
)
_PROVIDER = re.compile(r"\*|[a-z0-9][a-z0-9_.:-]{0,63}")
_ID = re.compile(r"[A-Za-z0-9_.:/@*?\[\]+=-]{1,200}")
_MAX_MODEL = 256
_MAX_NOTE = 1000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Override:
    """A validated override. ``model`` is a lower-case id or glob pattern."""

    id: str
    provider: str
    model: str
    rates: Mapping[str, Rate] = field(hash=False)
    effective_from: date
    created_at: datetime | None = None
    note: str | None = None
    _raw_prices: Mapping[str, Any] = field(
        default_factory=dict, repr=False, compare=False, hash=False
    )

    @property
    def is_pattern(self) -> bool:
        """True when ``model`` is a glob pattern rather than one model id."""
        return any(ch in self.model for ch in "*?[")

    def matches(self, provider: str | None, names: tuple[str, ...]) -> bool:
        """True when the override covers ``provider`` and any of the candidate ``names``."""
        if self.provider != "*" and self.provider != provider:
            return False
        if self.is_pattern:
            return any(fnmatch.fnmatchcase(n, self.model) for n in names)
        return self.model in names

    def precedence(self) -> tuple[bool, date, datetime, str]:
        """Sort key, highest wins: an exact model before a pattern, then the later
        ``effective_from``, then the later ``created_at``, then the id."""
        return (not self.is_pattern, self.effective_from, self.created_at or _EPOCH, self.id)

    def price(self, provider: str) -> Price:
        """The override as a `Price` for a record of ``provider``."""
        return Price(
            provider, self.model, f"override:{self.id}", "override", self.effective_from, self.rates
        )

    def to_dict(self) -> dict[str, Any]:
        """The storable form (the shape `validate_override` accepts; prices as given)."""
        out: dict[str, Any] = {
            "id": self.id,
            "provider": self.provider,
            "model": self.model,
            "prices": {k: _plain(v) for k, v in self._raw_prices.items()},
            "effective_from": self.effective_from.isoformat(),
        }
        if self.created_at is not None:
            out["created_at"] = format_timestamp(self.created_at)
        if self.note is not None:
            out["note"] = self.note
        return out


def _plain(value: Any) -> Any:
    """Decimals as strings so the stored JSON keeps every digit."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, int | str) or value is None:
        return value
    return str(value)


def validate_override(raw: Mapping[str, Any]) -> Override:
    """Check one override dict; raises `ValidationError` whose ``field`` names the culprit
    (``provider``, ``model``, ``prices.input_mtok``, ``effective_from``, …)."""
    if not isinstance(raw, Mapping):
        raise ValidationError("override", "must be an object")
    unknown = sorted(str(k) for k in raw if k not in OVERRIDE_KEYS)
    if unknown:
        allowed = ", ".join(sorted(OVERRIDE_KEYS))
        raise ValidationError(unknown[0], f"unknown key; allowed: {allowed}")
    provider = raw.get("provider")
    if not isinstance(provider, str) or not _PROVIDER.fullmatch(provider):
        raise ValidationError(
            "provider", f"must be a lower-case provider name or '*', got {provider!r}"
        )
    model = raw.get("model")
    if not isinstance(model, str) or not model.strip() or len(model) > _MAX_MODEL:
        raise ValidationError(
            "model", f"must be a model id or glob pattern of 1–{_MAX_MODEL} characters"
        )
    model = model.strip().lower()
    if "prices" not in raw:
        expected = ", ".join(RATE_KEYS)
        raise ValidationError("prices", f"is required: an object with any of {expected}")
    try:
        rates = parse_rates(raw["prices"], "prices")
        effective_from = parse_date(raw.get("effective_from"), "effective_from")
    except RateError as exc:
        raise ValidationError(exc.field, exc.message) from None
    created_at = _created_at(raw.get("created_at"))
    note = raw.get("note")
    if note is not None and (not isinstance(note, str) or len(note) > _MAX_NOTE):
        raise ValidationError("note", f"must be a string of at most {_MAX_NOTE} characters")
    override_id = raw.get("id")
    if override_id is None:
        override_id = f"{provider}/{model}@{effective_from.isoformat()}"
    if not isinstance(override_id, str) or not _ID.fullmatch(override_id):
        raise ValidationError(
            "id", "must be 1–200 characters of letters, digits and _ . : / @ * ? [ ] + = -"
        )
    return Override(
        id=override_id,
        provider=provider,
        model=model,
        rates=rates,
        effective_from=effective_from,
        created_at=created_at,
        note=note,
        _raw_prices=dict(raw["prices"]),
    )


def _created_at(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if not isinstance(value, str):
        raise ValidationError("created_at", "must be an RFC 3339 timestamp string")
    return parse_timestamp(value, "created_at")
