"""A record's cost from its token counts and the price table, and re-pricing of history.

`cost_of` is a pure function of a record document and a `PriceTable`: it finds the price in
force at the record's ``timestamp`` for its ``provider`` and model (``resolvedModelId`` first,
then ``modelId``), turns the counts into disjoint kinds (`usage_counts`: OpenAI's cached tokens
are a subset of its input count, Bedrock's and Anthropic's are not), and multiplies.

Money is `decimal.Decimal` throughout, never float. Each part is rounded half-even to
`MONEY_QUANTUM` (1e-9 USD, which a ``DECIMAL(18, 9)`` column holds exactly) and the total is
the sum of the rounded parts, so the parts always add up to the total. Cache reads and writes
without a price of their own are billed at the input price (genai-prices' rule); a model
priced only per image or per request is not billed for tokens.

A cost is either complete or empty with a ``reason`` — ``no_model``, ``no_timestamp``,
``no_token_counts``, ``bad_token_counts``, ``inconsistent_token_counts``, ``no_price``,
``incomplete_price`` (tokens of a kind the price has no rate for), ``no_image_count``,
``no_embedding_count`` — never a guessed number, and `cost_of` never raises (an unexpected
failure is the reason ``internal_error``): logging must not break a call.

`recompute` re-prices records under a new table and reports what changed; it returns the new
costs and leaves persisting them to the caller.

Every record of the record path is priced, so the common case — a record whose timestamp
`datetime.fromisoformat` reads as UTC, plain integer token counts, a price billed per token —
takes a fast way (`_fast`): the price from the table's per-day memo
(`PriceTable.lookup_on_day`), the price's per-token rates worked out once (`_Plan`), and Decimal
operations in one shared 60-digit context rather than a local context per call. Anything else
(odd counts, per-image or per-embedding prices, unusual rates, every failure it does not know
for certain) goes the general way (`uncached_cost_of`), which is also what the fast way is
tested against: both give the same result for every record. `cost_dict` is the record's stored
``cost`` block, made without the intermediate `CostResult`.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation, localcontext
from typing import Any

from llmtrail.errors import ValidationError
from llmtrail.pricing.model_names import normalise_provider
from llmtrail.pricing.price import RATE_KEYS, Price, Rate
from llmtrail.pricing.table import PriceTable
from llmtrail.pricing.usage_counts import (
    TokenCounts,
    embedding_count,
    image_count,
    input_includes_cache,
    usage_counts,
)
from llmtrail.record import parse_timestamp

__all__ = [
    "MONEY_QUANTUM",
    "CostChange",
    "CostResult",
    "RecomputeReport",
    "cost_dict",
    "cost_of",
    "recompute",
    "uncached_cost_of",
]

MONEY_QUANTUM = Decimal("0.000000001")  # 1e-9 USD
_MILLION = Decimal(1_000_000)
_CONTEXT = Context(prec=60)
_ZERO = Decimal(0)
_PARTS = ("input_usd", "output_usd", "cache_read_usd", "cache_write_usd", "other_usd")
_KEYS = {
    "input_usd": "inputUsd",
    "output_usd": "outputUsd",
    "cache_read_usd": "cacheReadUsd",
    "cache_write_usd": "cacheWriteUsd",
    "other_usd": "otherUsd",
    "total_usd": "totalUsd",
}


def _text_money(value: Decimal | None) -> str | None:
    """A plain decimal string (``0.000000000``, never ``0E-9``)."""
    return None if value is None else format(value, "f")


def _money(value: Decimal) -> Decimal:
    return value.quantize(MONEY_QUANTUM, rounding=ROUND_HALF_EVEN, context=_CONTEXT)


@dataclass(frozen=True)
class CostResult:
    """A record's cost in USD, or an empty cost with the ``reason`` there is none.

    ``other_usd`` holds per-image, per-embedding and per-request charges. Amounts are None
    exactly when ``reason`` is set.
    """

    input_usd: Decimal | None = None
    output_usd: Decimal | None = None
    cache_read_usd: Decimal | None = None
    cache_write_usd: Decimal | None = None
    other_usd: Decimal | None = None
    total_usd: Decimal | None = None
    price_version: str | None = None
    reason: str | None = None

    @property
    def priced(self) -> bool:
        """True when the cost holds amounts."""
        return self.reason is None

    @classmethod
    def empty(cls, reason: str) -> CostResult:
        """No cost, for ``reason``."""
        return cls(reason=reason)

    def to_dict(self, *, money_as_text: bool = False) -> dict[str, Any]:
        """The record's ``cost`` block: ``inputUsd``, ``outputUsd``, ``cacheReadUsd``,
        ``cacheWriteUsd``, ``otherUsd``, ``totalUsd`` and ``priceVersion``, or just
        ``reason``. Amounts are Decimals, or strings with ``money_as_text`` (for JSON)."""
        if self.reason is not None:
            return {"reason": self.reason}
        out: dict[str, Any] = {}
        for attr, key in _KEYS.items():
            value = getattr(self, attr)
            out[key] = _text_money(value) if money_as_text else value
        out["priceVersion"] = self.price_version
        return out

    @classmethod
    def from_dict(cls, value: Any) -> CostResult:
        """A stored ``cost`` block read back (numbers, decimal strings or floats); a missing
        or unreadable block is an empty cost with reason ``not_computed``."""
        if not isinstance(value, Mapping):
            return cls.empty("not_computed")
        if isinstance(value.get("reason"), str):
            return cls.empty(value["reason"])
        amounts: dict[str, Decimal] = {}
        for attr, key in _KEYS.items():
            raw = value.get(key, 0 if attr != "total_usd" else None)
            if isinstance(raw, bool) or not isinstance(raw, int | float | str | Decimal):
                return cls.empty("not_computed")
            try:
                number = Decimal(repr(raw) if isinstance(raw, float) else raw)
            except InvalidOperation:
                return cls.empty("not_computed")
            if not number.is_finite():
                return cls.empty("not_computed")
            amounts[attr] = _money(number)
        version = value.get("priceVersion")
        return _result(amounts, amounts["total_usd"], version if isinstance(version, str) else None)


def _result(amounts: Mapping[str, Decimal], total: Decimal, version: str | None) -> CostResult:
    return CostResult(
        input_usd=amounts["input_usd"],
        output_usd=amounts["output_usd"],
        cache_read_usd=amounts["cache_read_usd"],
        cache_write_usd=amounts["cache_write_usd"],
        other_usd=amounts["other_usd"],
        total_usd=total,
        price_version=version,
    )


def _record_time(doc: Mapping[str, Any]) -> datetime | None:
    value = doc.get("timestamp")
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        return None
    try:
        return parse_timestamp(value)
    except ValidationError:
        return None


def _part(tokens: int, rate: Rate | None, total_input: int) -> Decimal | None:
    if tokens == 0:
        return _ZERO
    if rate is None:
        return None
    return rate.at(total_input) * tokens / _MILLION  # in `_CONTEXT`: see `cost_of`


def _token_parts(counts: TokenCounts, price: Price) -> dict[str, Decimal] | None:
    input_rate = price.rate("input_mtok")
    total = counts.total_input
    parts = {
        "input_usd": _part(counts.input, input_rate, total),
        "output_usd": _part(counts.output, price.rate("output_mtok"), total),
        "cache_read_usd": _part(
            counts.cache_read, price.rate("cache_read_mtok") or input_rate, total
        ),
        "cache_write_usd": _part(
            counts.cache_write, price.rate("cache_write_mtok") or input_rate, total
        ),
    }
    if any(v is None for v in parts.values()):
        return None
    return {k: v for k, v in parts.items() if v is not None}


def _cost(doc: Mapping[str, Any], table: PriceTable) -> CostResult:
    models = [doc.get("resolvedModelId"), doc.get("modelId")]
    if not any(isinstance(m, str) and m.strip() for m in models):
        return CostResult.empty("no_model")
    at = _record_time(doc)
    if at is None:
        return CostResult.empty("no_timestamp")
    raw_provider = doc.get("provider")
    provider = raw_provider if isinstance(raw_provider, str) else None
    price = table.lookup_any(provider, [m if isinstance(m, str) else None for m in models], at)
    counts = usage_counts(doc, price.provider if price else normalise_provider(provider))
    if price is None:
        return CostResult.empty("no_token_counts" if counts is None else "no_price")
    if not any(price.rate(key) is not None for key in RATE_KEYS):
        return CostResult.empty("incomplete_price")  # billed only in units records lack
    bills_tokens = price.rate("input_mtok") is not None or price.rate("output_mtok") is not None
    parts = dict.fromkeys(_PARTS[:4], _ZERO)
    if bills_tokens:
        if counts is None:
            return CostResult.empty("no_token_counts")
        if isinstance(counts, str):
            return CostResult.empty(counts)
        token_parts = _token_parts(counts, price)
        if token_parts is None:
            return CostResult.empty("incomplete_price")
        parts.update(token_parts)
    other = _ZERO
    for key, count_of, reason in (
        ("per_image", image_count, "no_image_count"),
        ("per_embedding", embedding_count, "no_embedding_count"),
    ):
        rate = price.rate(key)
        if rate is not None:
            units = count_of(doc)
            if units is None:
                return CostResult.empty(reason)
            other += rate.base * units
    request_rate = price.rate("per_request")
    if request_rate is not None:
        other += request_rate.base
    amounts = {k: _money(v) for k, v in parts.items()}
    amounts["other_usd"] = _money(other)
    return _result(amounts, sum(amounts.values(), _ZERO), price.version)


def uncached_cost_of(record_doc: Mapping[str, Any], table: PriceTable) -> CostResult:
    """`cost_of` the general way, with no memo and no fast way: what `cost_of` falls back to
    and is tested against."""
    try:
        if not isinstance(record_doc, Mapping):
            return CostResult.empty("no_model")
        with localcontext(_CONTEXT):  # 60 digits: no product of a count and a price rounds
            return _cost(record_doc, table)
    except Exception:  # logging never breaks a call; the reason makes the bug visible
        return CostResult.empty("internal_error")


def cost_of(record_doc: Mapping[str, Any], table: PriceTable) -> CostResult:
    """The cost of the call ``record_doc`` describes, priced by ``table`` at its timestamp.

    Never raises: a record that cannot be priced gets an empty cost with its reason.
    """
    try:
        found = _fast(record_doc, table) if type(record_doc) is dict else None
    except Exception:
        return _EMPTY["internal_error"]
    if found is None:
        return uncached_cost_of(record_doc, table)
    if isinstance(found, str):
        return _EMPTY.get(found) or CostResult.empty(found)
    inp, out, read, write, other, total, version = found
    return CostResult(inp, out, read, write, other, total, version)


def cost_dict(record_doc: Mapping[str, Any], table: PriceTable) -> dict[str, Any]:
    """The record's ``cost`` block as stored: ``cost_of(record_doc, table)`` as
    `CostResult.to_dict` with ``money_as_text`` gives it, made more cheaply."""
    try:
        found = _fast(record_doc, table) if type(record_doc) is dict else None
    except Exception:
        return {"reason": "internal_error"}
    if found is None:
        return uncached_cost_of(record_doc, table).to_dict(money_as_text=True)
    if isinstance(found, str):
        return {"reason": found}
    inp, out, read, write, other, total, version = found
    return {
        "inputUsd": _ZERO_TEXT if inp is _ZERO_MONEY else format(inp, "f"),
        "outputUsd": _ZERO_TEXT if out is _ZERO_MONEY else format(out, "f"),
        "cacheReadUsd": _ZERO_TEXT if read is _ZERO_MONEY else format(read, "f"),
        "cacheWriteUsd": _ZERO_TEXT if write is _ZERO_MONEY else format(write, "f"),
        "otherUsd": _ZERO_TEXT if other is _ZERO_MONEY else format(other, "f"),
        "totalUsd": _ZERO_TEXT if total is _ZERO_MONEY else format(total, "f"),
        "priceVersion": version,
    }


# -- the fast way ----------------------------------------------------------------------------

_ZERO_MONEY = Decimal(0).quantize(MONEY_QUANTUM)  # what `_money` makes of 0: 0E-9
_ZERO_TEXT = format(_ZERO_MONEY, "f")
_EMPTY = {
    reason: CostResult.empty(reason)
    for reason in (
        "no_model",
        "no_timestamp",
        "no_token_counts",
        "bad_token_counts",
        "inconsistent_token_counts",
        "no_price",
        "incomplete_price",
        "internal_error",
    )
}
_NO_SECTION: dict[str, Any] = {}  # never written to
_MAX_COUNT = 2**63  # `usage_counts` refuses counts from here on
_MAX_RATE = Decimal(1_000_000)  # what data files and overrides allow (`price.parse_decimal`)
_MAX_RATE_DIGITS = 40  # a count (19 digits) times the rate stays well within 60 digits
_PLANS = 1024
_plans: dict[int, tuple[Price, _Plan]] = {}  # by id(price); the entry keeps the price alive
_multiply = _CONTEXT.multiply
_add = _CONTEXT.add
_quantize = Context(prec=_CONTEXT.prec, rounding=ROUND_HALF_EVEN).quantize  # as `_money`
_count_provider = functools.lru_cache(maxsize=1024)(normalise_provider)

# USD per token for input, output, cache-read and cache-write tokens, None where not priced
_TokenRates = tuple[Decimal | None, Decimal | None, Decimal | None, Decimal | None]


class _Plan:
    """What a `Price` bills, worked out once: its reason when it bills nothing a record
    counts, or its rates per token (cache reads and writes falling back to the input rate)
    and its per-request fee. ``general`` marks a price the fast way leaves to the general
    way: per-image or per-embedding rates, or a rate that is not a plain bounded number."""

    __slots__ = (
        "_per_token",
        "bills_tokens",
        "general",
        "other",
        "rates",
        "reason",
        "tiered",
        "version",
    )

    def __init__(self, price: Price) -> None:
        rates = price.rates
        self.version = price.version
        self.reason = None if any(k in rates for k in RATE_KEYS) else "incomplete_price"
        self.general = (
            "per_image" in rates
            or "per_embedding" in rates
            or not all(_plain_rate(rates[k]) for k in RATE_KEYS if k in rates)
        )
        self.bills_tokens = "input_mtok" in rates or "output_mtok" in rates
        input_rate = rates.get("input_mtok")
        self.rates = (
            input_rate,
            rates.get("output_mtok"),
            rates.get("cache_read_mtok") or input_rate,
            rates.get("cache_write_mtok") or input_rate,
        )
        self.tiered = any(r is not None and r.tiers for r in self.rates)
        self.other = _ZERO_MONEY
        request = rates.get("per_request")
        if request is not None and not self.general:
            self.other = _money(_add(_ZERO, request.base))
        self._per_token: _TokenRates | None = None
        if not self.general and not self.tiered:
            self._per_token = self.per_token(0)

    def per_token(self, total_input: int) -> _TokenRates:
        """The rates per token for a call with this many input tokens (`Rate.at`)."""
        if self._per_token is not None:
            return self._per_token
        i, o, r, w = (
            None if rate is None else _per_token(rate.at(total_input)) for rate in self.rates
        )
        return i, o, r, w


def _plain_decimal(value: Any) -> bool:
    return (
        isinstance(value, Decimal)
        and value.is_finite()
        and _ZERO <= value <= _MAX_RATE
        and len(value.as_tuple().digits) <= _MAX_RATE_DIGITS
    )


def _plain_rate(rate: Any) -> bool:
    return (
        isinstance(rate, Rate)
        and _plain_decimal(rate.base)
        and all(type(start) is int and _plain_decimal(price) for start, price in rate.tiers)
    )


def _per_token(per_million: Decimal) -> Decimal:
    """``per_million`` / 1e6, exactly: the same digits, the exponent six lower."""
    sign, digits, exponent = per_million.as_tuple()
    assert isinstance(exponent, int)  # finite: `_plain_rate`
    return Decimal((sign, digits, exponent - 6))


def _plan(price: Price) -> _Plan:
    entry = _plans.get(id(price))
    if entry is not None and entry[0] is price:
        return entry[1]
    plan = _Plan(price)
    if len(_plans) >= _PLANS:
        _plans.clear()
    _plans[id(price)] = (price, plan)
    return plan


# The fast way's answer: a reason, or the five rounded parts, the total and the price version.
_Found = str | tuple[Decimal, Decimal, Decimal, Decimal, Decimal, Decimal, str]


def _fast(doc: dict[str, Any], table: PriceTable) -> _Found | None:
    """`_cost` for the common case, or None for the general way. Each step mirrors `_cost`
    and `usage_counts`, in the same order, so the same record gives the same answer."""
    resolved, model = doc.get("resolvedModelId"), doc.get("modelId")
    if not isinstance(resolved, str):
        resolved = None
    if not isinstance(model, str):
        model = None
    if not ((resolved is not None and resolved.strip()) or (model is not None and model.strip())):
        return "no_model"
    stamp = doc.get("timestamp")
    if type(stamp) is str:
        try:
            at = datetime.fromisoformat(stamp)
        except ValueError:
            return None
        # what `parse_timestamp` returns for it (it truncates extra digits the same way)
        if at.tzinfo is not UTC or not 1 < at.year < 9999:
            return None
    elif isinstance(stamp, datetime):
        at = stamp
    else:
        return None
    provider = doc.get("provider")
    if not isinstance(provider, str):
        provider = None
    price = table.lookup_on_day(provider, (resolved, model), at)
    inp, out = doc.get("input", _NO_SECTION), doc.get("output", _NO_SECTION)
    if type(inp) is not dict or type(out) is not dict:
        return None  # `usage_counts` reads any Mapping, and takes anything else as {}
    raw_input = inp.get("inputTokenCount")
    raw_output = out.get("outputTokenCount")
    raw_read = inp.get("cacheReadInputTokenCount")
    raw_write = inp.get("cacheWriteInputTokenCount")
    for count in (raw_input, raw_output, raw_read, raw_write):
        if count is not None and (type(count) is not int or not 0 <= count < _MAX_COUNT):
            return None  # bad, or a whole float: `usage_counts` decides
    given, output = raw_input or 0, raw_output or 0
    read, write = raw_read or 0, raw_write or 0
    counted = not (
        raw_input is None and raw_output is None and raw_read is None and raw_write is None
    )
    consistent = True
    if counted:
        count_provider = price.provider if price else _count_provider(provider)
        if input_includes_cache(doc, count_provider) and raw_input is not None:
            if read + write > given:
                consistent = False
            else:
                given -= read + write
    if price is None:
        return "no_price" if counted else "no_token_counts"
    plan = _plan(price)
    if plan.reason is not None:
        return plan.reason
    if plan.general:
        return None
    parts = [_ZERO_MONEY] * 4  # input, output, cache read, cache write
    total = other = plan.other
    if plan.bills_tokens:
        if not counted:
            return "no_token_counts"
        if not consistent:
            return "inconsistent_token_counts"
        # `_part` then `_money`: tokens × USD per million / 1e6, rounded half-even to 1e-9
        rates = plan.per_token(given + read + write)
        for n, (rate, tokens) in enumerate(zip(rates, (given, output, read, write), strict=True)):
            if tokens:
                if rate is None:
                    return "incomplete_price"
                parts[n] = _quantize(_multiply(rate, tokens), MONEY_QUANTUM)
                total = _add(total, parts[n])
    return parts[0], parts[1], parts[2], parts[3], other, total, plan.version


# -- re-pricing history --------------------------------------------------------------------


@dataclass(frozen=True)
class CostChange:
    """One record whose cost differs under the new table.

    ``kind`` is ``repriced`` (amounts changed), ``version_only`` (same amounts, new price
    version), ``newly_priced``, ``unpriced`` (had a cost, has none now) or ``reason_changed``
    (still no cost, for another reason).
    """

    record_id: str | None
    request_id: str | None
    provider: str | None
    model: str | None
    kind: str
    old: CostResult
    new: CostResult

    @property
    def delta_usd(self) -> Decimal:
        """New total minus old total (an empty cost counts as 0)."""
        return (self.new.total_usd or _ZERO) - (self.old.total_usd or _ZERO)


def _kind(old: CostResult, new: CostResult) -> str:
    if old.priced and new.priced:
        same = old.total_usd == new.total_usd and _parts_equal(old, new)
        return "version_only" if same else "repriced"
    if new.priced:
        return "newly_priced"
    return "unpriced" if old.priced else "reason_changed"


def _parts_equal(old: CostResult, new: CostResult) -> bool:
    return all(getattr(old, p) == getattr(new, p) for p in _PARTS)


@dataclass(frozen=True)
class RecomputeReport:
    """What re-pricing changed: counts, totals before and after, and each changed record."""

    records: int = 0
    unchanged: int = 0
    old_total_usd: Decimal = _ZERO
    new_total_usd: Decimal = _ZERO
    changes: tuple[CostChange, ...] = field(default=())

    @property
    def delta_usd(self) -> Decimal:
        """New total minus old total over all records seen."""
        return self.new_total_usd - self.old_total_usd

    def counts(self) -> dict[str, int]:
        """Changed records by `CostChange.kind`."""
        out: dict[str, int] = {}
        for change in self.changes:
            out[change.kind] = out.get(change.kind, 0) + 1
        return out

    def by_model(self) -> dict[str, dict[str, Any]]:
        """Changed records per model: how many, and their old and new totals."""
        out: dict[str, dict[str, Any]] = {}
        for c in self.changes:
            row = out.setdefault(c.model or "", {"records": 0, "oldUsd": _ZERO, "newUsd": _ZERO})
            row["records"] += 1
            row["oldUsd"] += c.old.total_usd or _ZERO
            row["newUsd"] += c.new.total_usd or _ZERO
        return out

    def merge(self, other: RecomputeReport) -> RecomputeReport:
        """Both reports as one (recompute a long history batch by batch)."""
        return RecomputeReport(
            records=self.records + other.records,
            unchanged=self.unchanged + other.unchanged,
            old_total_usd=self.old_total_usd + other.old_total_usd,
            new_total_usd=self.new_total_usd + other.new_total_usd,
            changes=self.changes + other.changes,
        )

    def to_dict(self, *, max_changes: int | None = None) -> dict[str, Any]:
        """A JSON-ready summary (amounts as decimal strings), with at most ``max_changes``
        changed records listed."""
        shown = self.changes if max_changes is None else self.changes[:max_changes]
        return {
            "records": self.records,
            "unchanged": self.unchanged,
            "changed": len(self.changes),
            "counts": self.counts(),
            "oldTotalUsd": _text_money(self.old_total_usd),
            "newTotalUsd": _text_money(self.new_total_usd),
            "deltaUsd": _text_money(self.delta_usd),
            "byModel": {
                m: {**r, "oldUsd": _text_money(r["oldUsd"]), "newUsd": _text_money(r["newUsd"])}
                for m, r in self.by_model().items()
            },
            "changes": [
                {
                    "recordId": c.record_id,
                    "requestId": c.request_id,
                    "provider": c.provider,
                    "model": c.model,
                    "kind": c.kind,
                    "old": c.old.to_dict(money_as_text=True),
                    "new": c.new.to_dict(money_as_text=True),
                }
                for c in shown
            ],
        }


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def recompute(
    records: Iterable[Mapping[str, Any]], old: PriceTable | None, new: PriceTable
) -> RecomputeReport:
    """Re-price ``records`` under ``new`` and report what changed against ``old`` — or, when
    ``old`` is None, against the ``cost`` block each record already holds.

    Pure: the caller writes `CostChange.new` back for each change it accepts.
    """
    seen = unchanged = 0
    old_total = new_total = _ZERO
    changes: list[CostChange] = []
    for doc in records:
        seen += 1
        before = cost_of(doc, old) if old is not None else CostResult.from_dict(doc.get("cost"))
        after = cost_of(doc, new)
        old_total += before.total_usd or _ZERO
        new_total += after.total_usd or _ZERO
        if before == after:
            unchanged += 1
            continue
        model = _text(doc.get("resolvedModelId")) or _text(doc.get("modelId"))
        changes.append(
            CostChange(
                record_id=_text(doc.get("recordId")),
                request_id=_text(doc.get("requestId")),
                provider=_text(doc.get("provider")),
                model=model,
                kind=_kind(before, after),
                old=before,
                new=after,
            )
        )
    return RecomputeReport(seen, unchanged, old_total, new_total, tuple(changes))
