"""Prices from the ``genai-prices`` package's bundled data snapshot, as llmtrail `Price`s.

genai-prices is maintained data (providers, model match rules, dated price changes, context
tiers); llmtrail reads its bundled snapshot only — `genai_prices.data.providers` — and never
its auto-update, so a price never changes at run time and the version string
``genai-prices:{package version}:{provider id}/{model id}@{start}`` says exactly which data
priced a record. ``start`` is the date of the conditional price in force (``initial`` for a
model's unconditional or first price, ``HH:MM-HH:MM`` for a time-of-day price).

Only the parts records can count are used: input, output, cache-read and cache-write tokens
(Anthropic's 1-hour cache writes are not told apart in records, so writes use the default
``cache_write_mtok``) and per-request fees. Other keys (audio or image tokens, web searches,
…) are listed in `Price.unsupported`. Request-context variants (service tiers) are ignored:
records are priced at the standard tier.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from llmtrail.pricing.model_names import BEDROCK
from llmtrail.pricing.price import Price, Rate

__all__ = ["GenaiPrices"]

_TO_GENAI = {BEDROCK: "aws"}
_FROM_GENAI = {genai: ours for ours, genai in _TO_GENAI.items()}
_NOT_IN_GENAI = frozenset({"sim"})
_TOKEN_KEYS = {
    "input_mtok": ("input_mtok",),
    "output_mtok": ("output_mtok",),
    "cache_read_mtok": ("cache_read_mtok",),
    "cache_write_mtok": ("cache_write_mtok", "cache_write_5m_mtok"),
}
_USED = frozenset({"input_mtok", "output_mtok", "cache_read_mtok", "cache_write_mtok"})

_CACHE_LIMIT = 50_000


class GenaiPrices:
    """The bundled genai-prices snapshot, loaded once (importing it takes ~0.5 s)."""

    def __init__(self) -> None:
        import genai_prices
        from genai_prices.data import providers

        self.package_version: str = genai_prices.__version__
        self._providers: list[Any] = list(providers)
        self._by_id: dict[str, Any] = {p.id: p for p in self._providers}
        self._found: dict[tuple[str | None, tuple[str, ...]], tuple[Any, Any] | None] = {}
        self._prices: dict[tuple[str, str], tuple[Price, ...]] = {}

    def provider_ids(self) -> frozenset[str]:
        """llmtrail's names for the providers the snapshot prices (``bedrock`` for ``aws``)."""
        return frozenset(_FROM_GENAI.get(pid, pid) for pid in self._by_id)

    def _genai_provider(self, provider: str | None, name: str) -> Any | None:
        if provider in _NOT_IN_GENAI:
            return None
        if provider is None:  # nothing says: genai-prices' own model → provider rules
            return next(
                (p for p in self._providers if p.model_match and p.model_match.is_match(name)),
                None,
            )
        wanted = _TO_GENAI.get(provider, provider)
        if wanted in self._by_id:
            return self._by_id[wanted]
        return next(
            (p for p in self._providers if p.provider_match and p.provider_match.is_match(wanted)),
            None,
        )

    def find(self, provider: str | None, names: tuple[str, ...]) -> tuple[Any, Any] | None:
        """The genai-prices (provider, model) for the first candidate name that has one."""
        key = (provider, names)
        if key in self._found:
            return self._found[key]
        found = None
        for name in names:
            genai_provider = self._genai_provider(provider, name)
            if genai_provider is None:
                continue
            model = genai_provider.find_model(name, all_providers=self._providers)
            if model is not None:
                found = (genai_provider, model)
                break
        if len(self._found) < _CACHE_LIMIT:
            self._found[key] = found
        return found

    def price(self, genai_provider: Any, model: Any, at: datetime) -> Price:
        """The model's price in force at ``at`` (genai-prices' rule: the last conditional
        price whose constraint holds, else the first)."""
        conditional = model.prices
        index = 0
        if isinstance(conditional, list):
            for i in range(len(conditional) - 1, -1, -1):
                constraint = conditional[i].constraint
                if constraint is None or constraint.active(at):
                    index = i
                    break
        return self.all_prices(genai_provider, model)[index]

    def all_prices(self, genai_provider: Any, model: Any) -> list[Price]:
        """Every price version of the model, in the snapshot's order."""
        key = (genai_provider.id, model.id)
        if key not in self._prices:
            conditional = model.prices
            if not isinstance(conditional, list):
                made = [self._price(genai_provider, model, conditional, None)]
            else:
                made = [
                    self._price(genai_provider, model, c.prices, c.constraint) for c in conditional
                ]
            self._prices[key] = tuple(made)
        return list(self._prices[key])

    def models(self, provider: str | None = None) -> Iterator[tuple[Any, Any]]:
        """Every (genai provider, model), or only those of one llmtrail provider name."""
        for genai_provider in self._providers:
            ours = _FROM_GENAI.get(genai_provider.id, genai_provider.id)
            if provider is None or provider == ours:
                for model in genai_provider.models:
                    yield genai_provider, model

    def _price(self, genai_provider: Any, model: Any, prices: Any, constraint: Any) -> Price:
        start, label = _start(constraint)
        values = {k: v for k, v in vars(prices).items() if not k.startswith("_") and v is not None}
        rates: dict[str, Rate] = {}
        for ours, keys in _TOKEN_KEYS.items():
            value = next((values[k] for k in keys if k in values), None)
            if value is not None:
                rates[ours] = _rate(value)
        request_fee = values.get("requests_kcount")
        if isinstance(request_fee, Decimal):
            rates["per_request"] = Rate(request_fee / 1000)
        used = _USED | {"cache_write_5m_mtok"}
        if "per_request" in rates:
            used |= {"requests_kcount"}
        unsupported = tuple(sorted(k for k in values if k not in used))
        ours = _FROM_GENAI.get(genai_provider.id, genai_provider.id)
        version = f"genai-prices:{self.package_version}:{genai_provider.id}/{model.id}@{label}"
        return Price(ours, model.id, version, "genai-prices", start, rates, unsupported)


def _rate(value: Any) -> Rate:
    if isinstance(value, Decimal):
        return Rate(value)
    tiers = tuple((int(t.start), t.price) for t in sorted(value.tiers, key=lambda t: t.start))
    return Rate(value.base, tiers)


def _start(constraint: Any) -> tuple[date | None, str]:
    if constraint is None:
        return None, "initial"
    start_date = getattr(constraint, "start_date", None)
    if isinstance(start_date, date):
        return start_date, start_date.isoformat()
    start_time = getattr(constraint, "start_time", None)
    end_time = getattr(constraint, "end_time", None)
    if start_time is not None and end_time is not None:
        return None, f"{start_time:%H:%M}-{end_time:%H:%M}"
    return None, "initial"
