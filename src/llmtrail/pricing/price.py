"""One model's price at one time, and the parsing of price values shared by every source.

A `Price` is what every source (the packaged ``genai-prices`` snapshot, llmtrail's own data
files, user overrides) is turned into, so that cost computation sees one shape. Rates carry
genai-prices' key names (``input_mtok`` … USD per million tokens) plus ``per_image``,
``per_embedding`` and ``per_request`` (USD per unit) for models billed that way.

Money is `decimal.Decimal` from the data to the result: JSON numbers are read with
``parse_float=Decimal`` and strings are accepted too, so a price is never a binary float. A rate
may be tiered the way genai-prices tiers it (a context-length cliff): past ``start`` tokens of
total input, the tier's price applies to every token of that kind.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from llmtrail.errors import Picklable

__all__ = [
    "PER_UNIT_KEYS",
    "RATE_KEYS",
    "TOKEN_RATE_KEYS",
    "Price",
    "Rate",
    "RateError",
    "parse_date",
    "parse_decimal",
    "parse_rates",
]

TOKEN_RATE_KEYS = ("input_mtok", "output_mtok", "cache_read_mtok", "cache_write_mtok")
PER_UNIT_KEYS = ("per_image", "per_embedding", "per_request")
RATE_KEYS = TOKEN_RATE_KEYS + PER_UNIT_KEYS
_MAX_PRICE = Decimal(1_000_000)  # USD per million tokens or per unit; anything above is a typo


class RateError(Picklable, ValueError):
    """A price value that breaks the schema; ``field`` is its dotted path."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Rate:
    """A price for one kind of usage: ``base``, or a tier's price once total input tokens
    exceed the tier's ``start`` (``tiers`` ascending by start)."""

    base: Decimal
    tiers: tuple[tuple[int, Decimal], ...] = ()

    def at(self, total_input_tokens: int) -> Decimal:
        """The price that applies to a call with this many input tokens (cache included)."""
        for start, price in reversed(self.tiers):
            if total_input_tokens > start:
                return price
        return self.base

    def describe(self) -> str:
        """``3`` or ``3 (6 above 200000)`` for listings."""
        if not self.tiers:
            return str(self.base)
        extra = ", ".join(f"{price} above {start}" for start, price in self.tiers)
        return f"{self.base} ({extra})"


@dataclass(frozen=True)
class Price:
    """A model's rates from one source, valid from ``effective_from``.

    ``version`` names the source, the model and the date, e.g.
    ``genai-prices:0.2.3:aws/amazon.nova-lite-v1:0@initial``,
    ``llmtrail:bedrock:cohere.command-r-v1:0@2024-04-30`` or ``override:<id>``; costs store it
    so a price change is visible as a new version. ``unsupported`` lists price keys of the
    source that llmtrail's records cannot count (audio tokens, web searches, …) and so are not
    billed. ``effective_from`` is None for a genai-prices price with no start date.
    """

    provider: str
    model: str
    version: str
    source: str  # "override" | "llmtrail" | "genai-prices"
    effective_from: date | None
    rates: Mapping[str, Rate] = field(default_factory=dict, hash=False)
    unsupported: tuple[str, ...] = ()

    def rate(self, key: str) -> Rate | None:
        """The rate for one of `RATE_KEYS`, or None when the source has none."""
        return self.rates.get(key)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view for ``prices list|show``: rates as decimal strings."""
        return {
            "provider": self.provider,
            "model": self.model,
            "source": self.source,
            "version": self.version,
            "effectiveFrom": self.effective_from.isoformat() if self.effective_from else None,
            "prices": {key: self.rates[key].describe() for key in RATE_KEYS if key in self.rates},
            "unsupported": list(self.unsupported),
        }


def parse_decimal(value: Any, where: str) -> Decimal:
    """A non-negative, finite price from a JSON number (read as Decimal) or a decimal string."""
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise RateError(where, f"must be a number or a decimal string, got {_kind(value)}")
    if isinstance(value, float):  # only from callers that parsed JSON without parse_float
        value = repr(value)
    try:
        number = Decimal(value.strip() if isinstance(value, str) else value)
    except InvalidOperation:
        raise RateError(where, f"must be a decimal number, got {value!r}") from None
    if not number.is_finite() or number < 0:
        raise RateError(where, f"must be a finite number ≥ 0, got {value!r}")
    if number > _MAX_PRICE:
        raise RateError(where, f"must be at most {_MAX_PRICE} USD, got {value!r}")
    return number


def _parse_rate(value: Any, where: str) -> Rate:
    if not isinstance(value, Mapping):
        return Rate(parse_decimal(value, where))
    unknown = sorted(set(value) - {"base", "tiers"})
    if unknown:
        raise RateError(f"{where}.{unknown[0]}", "unknown key (a tiered rate has base and tiers)")
    if "base" not in value:
        raise RateError(f"{where}.base", "is required for a tiered rate")
    tiers = value.get("tiers")
    if not isinstance(tiers, list) or not tiers:
        raise RateError(f"{where}.tiers", "must be a non-empty list of {start, price}")
    parsed: list[tuple[int, Decimal]] = []
    for i, tier in enumerate(tiers):
        at = f"{where}.tiers[{i}]"
        if not isinstance(tier, Mapping) or set(tier) != {"start", "price"}:
            raise RateError(at, "must be an object with exactly start and price")
        start = tier["start"]
        if isinstance(start, Decimal) and start == start.to_integral_value():
            start = int(start)
        if type(start) is not int or start < 0:
            raise RateError(f"{at}.start", f"must be a whole number of tokens ≥ 0, got {start!r}")
        if parsed and start <= parsed[-1][0]:
            raise RateError(f"{at}.start", "tiers must be in ascending order of start")
        parsed.append((start, parse_decimal(tier["price"], f"{at}.price")))
    return Rate(parse_decimal(value["base"], f"{where}.base"), tuple(parsed))


def parse_rates(value: Any, where: str) -> dict[str, Rate]:
    """The rates object of a data-file price or an override: at least one of `RATE_KEYS`,
    each a price or a tiered ``{"base", "tiers": [{"start", "price"}]}``; other keys refused."""
    if not isinstance(value, Mapping):
        raise RateError(where, f"must be an object of prices, got {_kind(value)}")
    rates: dict[str, Rate] = {}
    for key, raw in value.items():
        if key not in RATE_KEYS:
            expected = ", ".join(RATE_KEYS)
            raise RateError(f"{where}.{key}", f"unknown price; expected one of {expected}")
        rates[key] = _parse_rate(raw, f"{where}.{key}")
    if not rates:
        raise RateError(where, f"needs at least one of {', '.join(RATE_KEYS)}")
    return rates


def parse_date(value: Any, where: str) -> date:
    """A ``YYYY-MM-DD`` date (or a `date`; a `datetime` gives its own date)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        raise RateError(where, f"must be a YYYY-MM-DD date, got {_kind(value)}")
    try:
        parsed = date.fromisoformat(value.strip())
    except ValueError:
        raise RateError(where, f"must be a YYYY-MM-DD date, got {value!r}") from None
    if len(value.strip()) != 10:
        raise RateError(where, f"must be a YYYY-MM-DD date, got {value!r}")
    return parsed


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    return type(value).__name__
