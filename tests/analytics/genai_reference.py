"""What genai-prices itself says about a model, through its own public API, for differential
tests of llmtrail's adapter (`llmtrail.pricing.genai_source`).

The installed genai-prices package, and with it every price and model id in its bundled data,
changes whenever the lock is refreshed. So no test writes down a genai-prices price, model id
or version: it asks genai-prices (`genai_prices.calc_price`, which finds the model with
genai-prices' own matcher and picks the price in force with its own rule) about the same
model, usage and time, and compares. A data update moves both sides alike; llmtrail asking
for the wrong name, reading the wrong key or picking the wrong dated price still differs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import genai_prices
from genai_prices import Usage, calc_price

from llmtrail.pricing.price import Price, Rate

__all__ = [
    "BILLED",
    "GenaiAnswer",
    "assert_same_price",
    "genai_answer",
    "genai_cost",
    "genai_rate",
    "genai_version_count",
]

# llmtrail's token rate → the genai-prices keys it is read from, first present wins. Records
# do not tell 5-minute and 1-hour cache writes apart: writes use the default (5-minute) price.
TOKEN_KEYS = {
    "input_mtok": ("input_mtok",),
    "output_mtok": ("output_mtok",),
    "cache_read_mtok": ("cache_read_mtok",),
    "cache_write_mtok": ("cache_write_mtok", "cache_write_5m_mtok"),
}
# Keys llmtrail bills; every other key genai-prices prices must be listed as unsupported.
BILLED = frozenset({"input_mtok", "output_mtok", "cache_read_mtok", "cache_write_mtok"}) | {
    "cache_write_5m_mtok",
    "requests_kcount",
}
_OURS = {"aws": "bedrock"}


def genai_rate(value: Any) -> Rate:
    """A genai-prices price value (a Decimal or `TieredPrices`) as an llmtrail `Rate`."""
    if isinstance(value, Decimal):
        return Rate(value)
    tiers = tuple(sorted((int(t.start), t.price) for t in value.tiers))
    return Rate(value.base, tiers)


@dataclass(frozen=True)
class GenaiAnswer:
    """The model genai-prices finds for a reference, and its price in force at a time."""

    provider_id: str
    model_id: str
    label: str  # "initial", the start date, or "HH:MM-HH:MM" of the price in force
    effective_from: date | None
    prices: Any  # genai-prices' ModelPrice in force
    labels: tuple[str, ...]  # every price version of the model, in genai-prices' order
    start_dates: tuple[date, ...]  # the dates the model's dated prices start

    @property
    def provider(self) -> str:
        """llmtrail's name for the provider (``bedrock`` for genai-prices' ``aws``)."""
        return _OURS.get(self.provider_id, self.provider_id)

    @property
    def version(self) -> str:
        """The `Price.version` llmtrail must give this price."""
        return self._version(self.label)

    @property
    def all_versions(self) -> list[str]:
        """The `Price.version` of each of the model's prices, oldest first."""
        return [self._version(label) for label in self.labels]

    def _version(self, label: str) -> str:
        package = genai_prices.__version__
        return f"genai-prices:{package}:{self.provider_id}/{self.model_id}@{label}"

    def priced_keys(self) -> set[str]:
        """Every key the price in force sets."""
        return {k for k, v in vars(self.prices).items() if not k.startswith("_") and v is not None}

    def rates(self) -> dict[str, Rate]:
        """The rates llmtrail must read from the price in force."""
        values = {k: getattr(self.prices, k) for k in self.priced_keys()}
        out: dict[str, Rate] = {}
        for ours, keys in TOKEN_KEYS.items():
            found = next((values[k] for k in keys if k in values), None)
            if found is not None:
                out[ours] = genai_rate(found)
        if isinstance(values.get("requests_kcount"), Decimal):
            out["per_request"] = Rate(values["requests_kcount"] / 1000)
        return out


def genai_answer(
    model_ref: str | tuple[str, ...], provider_id: str | None, at: datetime
) -> GenaiAnswer | None:
    """What genai-prices prices ``model_ref`` as (the first of several references it knows),
    for ``provider_id`` (None: genai-prices infers the provider from the name), at ``at``; None
    when it knows none of them."""
    refs = (model_ref,) if isinstance(model_ref, str) else model_ref
    for ref in refs:
        try:
            calc = calc_price(Usage(), ref, provider_id=provider_id, genai_request_timestamp=at)
        except LookupError:
            continue
        return _answer(calc)
    return None


def _answer(calc: Any) -> GenaiAnswer:
    model = calc.model
    constraints = [c.constraint for c in model.prices] if isinstance(model.prices, list) else [None]
    in_force = None
    if isinstance(model.prices, list):  # calc_price hands back the very ModelPrice it chose
        in_force = next(c.constraint for c in model.prices if c.prices is calc.model_price)
    label, start = _label(in_force)
    return GenaiAnswer(
        provider_id=calc.provider.id,
        model_id=model.id,
        label=label,
        effective_from=start,
        prices=calc.model_price,
        labels=tuple(_label(c)[0] for c in constraints),
        start_dates=tuple(s for c in constraints if (s := _label(c)[1]) is not None),
    )


def _label(constraint: Any) -> tuple[str, date | None]:
    """How llmtrail's version names a price version: its start date, its time of day, or
    ``initial``; and the date it starts, if it has one."""
    start = getattr(constraint, "start_date", None)
    if isinstance(start, date):
        return start.isoformat(), start
    if getattr(constraint, "start_time", None) is not None:
        return f"{constraint.start_time:%H:%M}-{constraint.end_time:%H:%M}", None
    return "initial", None


def genai_version_count(provider_id: str | None = None) -> int:
    """How many price versions genai-prices' data holds (of one provider's models, if given)."""
    from genai_prices.data import providers

    return sum(
        len(model.prices) if isinstance(model.prices, list) else 1
        for provider in providers
        if provider_id is None or provider.id == provider_id
        for model in provider.models
    )


def assert_same_price(price: Price | None, expected: GenaiAnswer | None) -> None:
    """``price`` (llmtrail's) is the one genai-prices answered: the same model, version, start
    date and rates, every other key it prices listed as unsupported; or both have none."""
    if expected is None:
        assert price is None, price
        return
    assert price is not None, expected
    assert (price.provider, price.model, price.source) == (
        expected.provider,
        expected.model_id,
        "genai-prices",
    )
    assert (price.version, price.effective_from) == (expected.version, expected.effective_from)
    assert dict(price.rates) == expected.rates()
    assert price.unsupported == tuple(sorted(expected.priced_keys() - BILLED))


def genai_cost(
    model_ref: str | tuple[str, ...],
    provider_id: str | None,
    at: datetime,
    *,
    input_tokens: int,
    output_tokens: int,
    cache_read_tokens: int = 0,
    cache_write_tokens: int = 0,
) -> Any | None:
    """genai-prices' own `PriceCalculation` for this usage, or None when it knows no model.

    ``input_tokens`` is genai-prices' meaning: every input token, cached ones included."""
    refs = (model_ref,) if isinstance(model_ref, str) else model_ref
    usage = Usage(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_read_tokens=cache_read_tokens,
        cache_write_tokens=cache_write_tokens,
    )
    for ref in refs:
        try:
            return calc_price(usage, ref, provider_id=provider_id, genai_request_timestamp=at)
        except LookupError:
            continue
    return None
