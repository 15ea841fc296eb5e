"""The price table: which price applied to a model at a time, and under which version.

Three sources, highest first:

1. user overrides (StateStore namespace ``prices``, or the config), see `price_overrides`;
2. llmtrail's own data files (``pricing/prices/*.json``): what genai-prices lacks, and
   ``sim``'s prices, see `price_data`;
3. the bundled ``genai-prices`` snapshot, see `genai_source`.

A lookup normalises the record's provider and model name (`model_names`) and asks each source
in turn; the first price in force at the record's time wins, and its `Price.version` is what
the cost stores. The table is pure: it reads the clock never and the disk only when built (the
packaged files and the genai-prices snapshot, each loaded once per process and shared), so
the same record and table always give the same price. Overrides change by building a new
table with `PriceTable.with_overrides`, which shares the loaded data.

Every source's versions change at UTC midnight (genai-prices' start dates are UTC days), except
genai-prices' time-of-day prices (DeepSeek's off-peak hours). So `PriceTable.lookup_on_day`
remembers a lookup per provider, model names and UTC day — the record path's price lookup — in
a bounded memo that lives and dies with the table, and asks the sources afresh for a model with
a time-of-day price.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from llmtrail.pricing.genai_source import GenaiPrices
from llmtrail.pricing.model_names import ModelQuery, model_query, normalise_provider
from llmtrail.pricing.price import Price
from llmtrail.pricing.price_data import ModelPrices, PriceFile, packaged_price_files
from llmtrail.pricing.price_overrides import Override, validate_override
from llmtrail.record import parse_timestamp

__all__ = ["PriceTable", "SeenModel"]


@functools.cache
def _packaged_files() -> tuple[PriceFile, ...]:
    return tuple(packaged_price_files())


@functools.cache
def _genai_prices() -> GenaiPrices:
    return GenaiPrices()


def as_utc(at: datetime) -> datetime:
    """``at`` as an aware UTC datetime (a naive one is taken as UTC)."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


_RESOLVE_CACHE = 50_000
_DAY_MEMO = 4096  # (provider, names, day) answers; emptied when full, so a backfill over many
# days costs one fresh lookup per model and day
_MISSING: Any = object()


@dataclass(frozen=True)
class _Resolved:
    query: ModelQuery
    file_entries: tuple[tuple[PriceFile, ModelPrices], ...]
    genai: tuple[Any, Any] | None
    daily: bool = True  # the price changes only at UTC midnight (see `_changes_daily`)

    @property
    def names(self) -> tuple[str, ...]:
        """What an override may name the model by: as written, each candidate name, and the
        ids the sources know it by (so ``gpt-4o-mini`` covers ``gpt-4o-mini-2024-07-18``)."""
        known = [entry.model for _, entry in self.file_entries]
        if self.genai is not None:
            known.append(str(self.genai[1].id).lower())
        return (self.query.raw, *self.query.names, *known)


@dataclass(frozen=True)
class SeenModel:
    """A model as records name it, for ``prices missing``: how often and when last seen."""

    provider: str | None
    model: str
    resolved_model: str | None = None
    count: int = 0
    last_seen: datetime | None = None

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> SeenModel:
        """From a query row: ``provider``, ``modelId`` (or ``model``), ``resolvedModelId``,
        ``count``, ``lastSeen`` (a datetime or an RFC 3339 string)."""
        last = raw.get("lastSeen", raw.get("last_seen"))
        if isinstance(last, str):
            last = parse_timestamp(last, "lastSeen")
        count = raw.get("count", 0)
        return cls(
            provider=raw.get("provider"),
            model=str(raw.get("modelId", raw.get("model")) or ""),
            resolved_model=raw.get("resolvedModelId", raw.get("resolved_model")),
            count=count if type(count) is int else 0,
            last_seen=last if isinstance(last, datetime) else None,
        )


class PriceTable:
    """Prices by provider, model and time, with user overrides layered on top.

    ``overrides`` are override dicts (validated here with `validate_override`) or `Override`s.
    ``files`` replaces the packaged data files (tests, or a deployment's own); ``genai=False``
    leaves genai-prices out. ``provider_aliases`` maps configured provider names to the kind
    they speak, e.g. ``{"corp-openai": "openai"}``, so a record of ``corp-openai`` is priced
    as OpenAI's model of that name.
    """

    def __init__(
        self,
        overrides: Iterable[Override | Mapping[str, Any]] = (),
        *,
        files: Sequence[PriceFile] | None = None,
        provider_aliases: Mapping[str, str] | None = None,
        genai: bool = True,
    ) -> None:
        self._files = tuple(files) if files is not None else _packaged_files()
        self._genai = _genai_prices() if genai else None
        aliases = provider_aliases or {}
        self._aliases = {str(k).lower(): str(v).lower() for k, v in aliases.items()}
        checked = [o if isinstance(o, Override) else validate_override(o) for o in overrides]
        self._overrides = tuple(sorted(checked, key=Override.precedence, reverse=True))
        known = {f.provider for f in self._files} | {o.provider for o in checked}
        if self._genai is not None:
            known |= self._genai.provider_ids()
        self._known = frozenset(known - {"*"})
        self._resolved: dict[tuple[str | None, str | None], _Resolved] = {}
        self._by_day: dict[tuple[str | None, tuple[str | None, ...], date], Price | None] = {}

    @property
    def overrides(self) -> tuple[Override, ...]:
        """The overrides in force, highest precedence first."""
        return self._overrides

    @property
    def files(self) -> tuple[PriceFile, ...]:
        """llmtrail's data files the table reads."""
        return self._files

    @property
    def genai_prices_version(self) -> str | None:
        """The genai-prices package whose snapshot is used, or None when it is left out."""
        return self._genai.package_version if self._genai is not None else None

    def with_overrides(self, overrides: Iterable[Override | Mapping[str, Any]]) -> PriceTable:
        """A table with the same data and these overrides instead (cheap: data is shared)."""
        return PriceTable(
            overrides,
            files=self._files,
            provider_aliases=self._aliases,
            genai=self._genai is not None,
        )

    def query(self, provider: str | None, model: str | None) -> ModelQuery:
        """How ``model`` of ``provider`` is looked up: the price provider and candidate names."""
        return model_query(normalise_provider(provider, self._aliases), model, self._known)

    def lookup(self, provider: str | None, model: str | None, at: datetime) -> Price | None:
        """The price of ``model`` (as a record of ``provider`` names it) in force at ``at``,
        or None when no source has one."""
        found = self._resolve(provider, model)
        if not found.query.raw:
            return None
        day = as_utc(at).date()
        override = self._override(found, day)
        if override is not None:
            return override.price(found.query.provider or override.provider)
        for price_file, entry in found.file_entries:
            price = price_file.price(entry, day)
            if price is not None:
                return price
        if found.genai is not None and self._genai is not None:
            return self._genai.price(found.genai[0], found.genai[1], as_utc(at))
        return None

    def _resolve(self, provider: str | None, model: str | None) -> _Resolved:
        """Which data-file entries and genai-prices model a name resolves to (time-free, so
        remembered per table)."""
        key = (provider, model)
        cached = self._resolved.get(key)
        if cached is not None:
            return cached
        q = self.query(provider, model)
        entries = []
        for name in q.names:
            for price_file in self._files_of(q.provider):
                entry = price_file.find(name)
                if entry is not None:
                    entries.append((price_file, entry))
        genai_hit = None
        if self._genai is not None and q.names:
            genai_hit = self._genai.find(q.provider, q.names)
        daily = genai_hit is None or _changes_daily(genai_hit[1])
        found = _Resolved(q, tuple(entries), genai_hit, daily)
        if len(self._resolved) < _RESOLVE_CACHE:
            self._resolved[key] = found
        return found

    def lookup_any(
        self, provider: str | None, models: Iterable[str | None], at: datetime
    ) -> Price | None:
        """The first price found for any of ``models`` (e.g. ``resolvedModelId``, then
        ``modelId``). An override for any of the names wins over the data files for all of
        them: a user who priced ``sim/demo`` means the calls named so, whatever the upstream
        calls the model."""
        names = [m for m in models if m]
        day = as_utc(at).date()
        for model in names:
            found = self._resolve(provider, model)
            if not found.query.raw:
                continue
            override = self._override(found, day)
            if override is not None:
                return override.price(found.query.provider or override.provider)
        for model in names:
            price = self.lookup(provider, model, at)
            if price is not None:
                return price
        return None

    def lookup_on_day(
        self, provider: str | None, models: tuple[str | None, ...], at: datetime
    ) -> Price | None:
        """`lookup_any`, remembered per ``provider``, ``models`` and the UTC day of ``at``
        (thread-safe: a race at worst looks the same answer up twice)."""
        day = at.date() if at.tzinfo is UTC else as_utc(at).date()
        key = (provider, models, day)
        price = self._by_day.get(key, _MISSING)
        if price is not _MISSING:
            return price
        price = self.lookup_any(provider, models, at)
        if all(self._resolve(provider, m).daily for m in models if m):
            if len(self._by_day) >= _DAY_MEMO:
                self._by_day.clear()
            self._by_day[key] = price
        return price

    def versions(self, provider: str | None, model: str | None) -> list[Price]:
        """Every price version that could apply to ``model``, for ``prices show``: matching
        overrides (highest first), then llmtrail's and genai-prices' versions, oldest first."""
        found = self._resolve(provider, model)
        q = found.query
        if not q.raw:
            return []
        out = [
            o.price(q.provider or o.provider)
            for o in self._overrides
            if o.matches(q.provider, found.names)
        ]
        seen_files: set[int] = set()
        for price_file, entry in found.file_entries:  # the first entry of each file
            if id(price_file) not in seen_files:
                seen_files.add(id(price_file))
                out += price_file.all_prices(entry)
        if found.genai is not None and self._genai is not None:
            out += self._genai.all_prices(*found.genai)
        return out

    def entries(self, provider: str | None = None) -> list[Price]:
        """Every price version the table holds (of one provider, if given), for
        ``prices list``: overrides, then llmtrail's files, then genai-prices."""
        wanted = normalise_provider(provider, self._aliases) if provider else None
        out = [
            o.price(o.provider)
            for o in self._overrides
            if wanted is None or o.provider in (wanted, "*")
        ]
        for price_file in self._files:
            if wanted is not None and price_file.provider != wanted:
                continue
            for entry in price_file.models:
                out += price_file.all_prices(entry)
        if self._genai is not None:
            for genai_provider, model in self._genai.models(wanted):
                out += self._genai.all_prices(genai_provider, model)
        return out

    def missing(self, models_seen: Iterable[SeenModel | Mapping[str, Any]]) -> list[SeenModel]:
        """The models among ``models_seen`` that have no price, most seen first.

        A model seen with ``last_seen`` needs a price in force then; without it, any version.
        """
        out: list[SeenModel] = []
        for item in models_seen:
            seen = item if isinstance(item, SeenModel) else SeenModel.from_mapping(item)
            names = [seen.resolved_model, seen.model]
            if seen.last_seen is not None:
                priced = self.lookup_any(seen.provider, names, seen.last_seen) is not None
            else:
                priced = any(self.versions(seen.provider, n) for n in names)
            if not priced:
                out.append(seen)
        return sorted(out, key=lambda s: (-s.count, s.provider or "", s.model))

    def _override(self, found: _Resolved, day: date) -> Override | None:
        names = found.names
        for override in self._overrides:
            if override.effective_from <= day and override.matches(found.query.provider, names):
                return override
        return None

    def _files_of(self, provider: str | None) -> list[PriceFile]:
        """The data files of ``provider``; none when the provider is unknown, since a data
        file's patterns (``sim``'s ``*``) only make sense within their provider."""
        return [f for f in self._files if provider is not None and f.provider == provider]


def _changes_daily(model: Any) -> bool:
    """True when a genai-prices model's price depends on the day only: no time-of-day price."""
    prices = getattr(model, "prices", None)
    if not isinstance(prices, list):
        return True
    from genai_prices.types import StartDateConstraint  # loaded with the snapshot already

    return all(c.constraint is None or type(c.constraint) is StartDateConstraint for c in prices)
