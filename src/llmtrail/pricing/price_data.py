"""llmtrail's own price data files: what the genai-prices snapshot lacks, and ``sim``'s prices.

Each file under ``llmtrail/pricing/prices/`` holds one provider's models::

    {"schema": "llmtrail.prices/1", "provider": "bedrock", "description": "…",
     "models": [{"model": "cohere.command-r-v1:0", "match": ["cohere.command-r-v1*"],
                 "source": "https://…", "note": "…",
                 "prices": [{"effective_from": "2024-04-30",
                             "input_mtok": "0.5", "output_mtok": "1.5"}]}]}

A model's ``prices`` is a list of versions in ascending ``effective_from`` order: a price change
is a new entry, never an edit, so records priced before it keep their version. A version
applies from its date (UTC) until the next one; before the first, the model has no price here.
``match`` holds glob patterns (``*``, ``?``) tried against the normalised model name; a
model's own id always matches it exactly, and exact matches win over patterns.

The schema check is plain Python run at load, so a malformed file fails at start-up with a
`PriceDataError` naming the file, the model and the field — not at the first record that
needs it. Loading is split from reading: `parse_price_file` is a pure function of the text.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from importlib import resources
from typing import Any

from llmtrail.errors import ConfigError
from llmtrail.pricing.price import Price, Rate, RateError, parse_date, parse_rates

__all__ = [
    "SCHEMA",
    "ModelPrices",
    "PriceDataError",
    "PriceFile",
    "packaged_price_files",
    "parse_price_file",
]

SCHEMA = "llmtrail.prices/1"
_FILE_KEYS = frozenset({"schema", "provider", "description", "models"})
_MODEL_KEYS = frozenset({"model", "match", "name", "source", "note", "prices"})
_NAME = re.compile(r"[a-z0-9][a-z0-9_.:-]{0,63}")
_MAX_MODEL = 256
_FIND_CACHE = 50_000


class PriceDataError(ConfigError):
    """A price data file breaks the schema. ``file``, ``model`` (None above model level) and
    ``field`` (a dotted path) say where; the message repeats them."""

    def __init__(self, file: str, model: str | None, field: str, message: str) -> None:
        where = f"{file}: model {model!r}: {field}" if model else f"{file}: {field}"
        super().__init__(f"{where}: {message}")
        self.file = file
        self.model = model
        self.field = field
        self.message = message


@dataclass(frozen=True)
class ModelPrices:
    """One model's price versions in a data file, oldest first."""

    model: str
    patterns: tuple[str, ...]
    versions: tuple[tuple[date, Mapping[str, Rate]], ...] = field(hash=False)
    name: str | None = None
    source: str | None = None


class PriceFile:
    """A validated data file: its stem (``bedrock`` for ``bedrock.json``), provider, models.

    Built once per process, so it indexes itself: literal names in a dict, glob patterns
    compiled, each version's `Price` made up front, and lookups remembered.
    """

    def __init__(self, name: str, provider: str, models: tuple[ModelPrices, ...]) -> None:
        self.name = name
        self.provider = provider
        self.models = models
        self._exact: dict[str, ModelPrices] = {}
        self._globs: list[tuple[re.Pattern[str], ModelPrices]] = []
        self._prices: dict[str, tuple[Price, ...]] = {}
        for entry in models:
            for pattern in (entry.model, *entry.patterns):
                if _is_glob(pattern):
                    self._globs.append((re.compile(fnmatch.translate(pattern)), entry))
                else:
                    self._exact.setdefault(pattern, entry)
            self._prices[entry.model] = tuple(
                Price(
                    provider,
                    entry.model,
                    f"llmtrail:{name}:{entry.model}@{day.isoformat()}",
                    "llmtrail",
                    day,
                    rates,
                )
                for day, rates in entry.versions
            )
        self._found: dict[str, ModelPrices | None] = {}

    def __repr__(self) -> str:
        return f"PriceFile({self.name!r}, provider={self.provider!r}, models={len(self.models)})"

    def find(self, name: str) -> ModelPrices | None:
        """The model ``name`` (already normalised, lower case) resolves to: an exact id or
        literal pattern first, then the first glob pattern in file order."""
        if name in self._found:
            return self._found[name]
        found = self._exact.get(name)
        if found is None:
            found = next((entry for rx, entry in self._globs if rx.match(name)), None)
        if len(self._found) < _FIND_CACHE:
            self._found[name] = found
        return found

    def price(self, entry: ModelPrices, on: date) -> Price | None:
        """The version of ``entry`` in force on ``on``, or None before the first."""
        current = None
        for price in self._prices[entry.model]:
            if price.effective_from is not None and price.effective_from > on:
                break
            current = price
        return current

    def all_prices(self, entry: ModelPrices) -> list[Price]:
        """Every version of ``entry``, oldest first."""
        return list(self._prices[entry.model])


def _is_glob(pattern: str) -> bool:
    return any(ch in pattern for ch in "*?[")


def parse_price_file(text: str, file: str) -> PriceFile:
    """Validate and read one data file's JSON text; ``file`` is its name (``bedrock.json``).

    Raises `PriceDataError` naming the file, the model and the field on any schema violation.
    """
    try:
        raw = json.loads(text, parse_float=Decimal)
    except ValueError as exc:
        raise PriceDataError(file, None, "(file)", f"is not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise PriceDataError(file, None, "(file)", "must hold a JSON object")
    unknown = sorted(set(raw) - _FILE_KEYS)
    if unknown:
        raise PriceDataError(file, None, unknown[0], f"unknown key; allowed: {sorted(_FILE_KEYS)}")
    if raw.get("schema") != SCHEMA:
        raise PriceDataError(file, None, "schema", f"must be {SCHEMA!r}, got {raw.get('schema')!r}")
    provider = raw.get("provider")
    if not isinstance(provider, str) or not _NAME.fullmatch(provider):
        raise PriceDataError(
            file, None, "provider", f"must be a lower-case provider name, got {provider!r}"
        )
    if "description" in raw and not isinstance(raw["description"], str):
        raise PriceDataError(file, None, "description", "must be a string")
    models = raw.get("models")
    if not isinstance(models, list) or not models:
        raise PriceDataError(file, None, "models", "must be a non-empty list")
    parsed: list[ModelPrices] = []
    seen: set[str] = set()
    for i, item in enumerate(models):
        entry = _model(item, file, f"models[{i}]")
        if entry.model in seen:
            raise PriceDataError(file, entry.model, f"models[{i}].model", "appears twice")
        seen.add(entry.model)
        parsed.append(entry)
    stem = file.rsplit("/", 1)[-1].removesuffix(".json")
    return PriceFile(stem, provider, tuple(parsed))


def _model(item: Any, file: str, where: str) -> ModelPrices:
    if not isinstance(item, dict):
        raise PriceDataError(file, None, where, "must be an object")
    model = item.get("model")
    if not isinstance(model, str) or not model.strip() or len(model) > _MAX_MODEL:
        raise PriceDataError(file, None, f"{where}.model", f"must be a model id, got {model!r}")
    if model != model.strip().lower():
        raise PriceDataError(file, model, f"{where}.model", "must be lower case, no spaces")
    unknown = sorted(set(item) - _MODEL_KEYS)
    if unknown:
        raise PriceDataError(
            file, model, f"{where}.{unknown[0]}", f"unknown key; allowed: {sorted(_MODEL_KEYS)}"
        )
    for key in ("name", "source", "note"):
        if key in item and not isinstance(item[key], str):
            raise PriceDataError(file, model, f"{where}.{key}", "must be a string")
    patterns = item.get("match", [])
    if not isinstance(patterns, list) or not all(
        isinstance(p, str) and p and p == p.strip().lower() and len(p) <= _MAX_MODEL
        for p in patterns
    ):
        raise PriceDataError(
            file, model, f"{where}.match", "must be a list of lower-case model ids or glob patterns"
        )
    versions = item.get("prices")
    if not isinstance(versions, list) or not versions:
        raise PriceDataError(file, model, f"{where}.prices", "must be a non-empty list")
    parsed: list[tuple[date, Mapping[str, Rate]]] = []
    for j, version in enumerate(versions):
        at = f"{where}.prices[{j}]"
        if not isinstance(version, dict):
            raise PriceDataError(file, model, at, "must be an object")
        rates_raw = {k: v for k, v in version.items() if k != "effective_from"}
        try:
            day = parse_date(version.get("effective_from"), f"{at}.effective_from")
            rates = parse_rates(rates_raw, at)
        except RateError as exc:
            raise PriceDataError(file, model, exc.field, exc.message) from None
        if parsed and day <= parsed[-1][0]:
            raise PriceDataError(
                file,
                model,
                f"{at}.effective_from",
                f"{day} is not after the previous version's {parsed[-1][0]}; versions are "
                "listed oldest first and a change is a new version",
            )
        parsed.append((day, rates))
    return ModelPrices(
        model=model,
        patterns=tuple(patterns),
        versions=tuple(parsed),
        name=item.get("name"),
        source=item.get("source"),
    )


def packaged_price_files() -> list[PriceFile]:
    """The data files shipped in ``llmtrail/pricing/prices/``, validated, sorted by name."""
    folder = resources.files("llmtrail.pricing").joinpath("prices")
    found = sorted(
        (item for item in folder.iterdir() if item.name.endswith(".json")), key=lambda i: i.name
    )
    return [parse_price_file(item.read_text(encoding="utf-8"), item.name) for item in found]
