"""The price table: model resolution, sources and their order, versions, overrides, data files.

No test here writes down a price, model id or version from the genai-prices snapshot: that
data changes with every release of the package, and the lock refresh installs the newest. How
llmtrail finds and reads a genai-prices model is checked against what genai-prices itself
answers for the same model and time (`tests.analytics.genai_reference`), and the reading of
genai-prices' price records against records built here. llmtrail's own logic (lookup order,
dates, overrides, ``missing``) is checked with data files and overrides written by the tests,
or with llmtrail's packaged data files, which are llmtrail's own.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pytest
from genai_prices.types import (
    ClauseEquals,
    ConditionalPrice,
    ModelInfo,
    ModelPrice,
    Provider,
    StartDateConstraint,
    Tier,
    TieredPrices,
    TimeOfDateConstraint,
)

from llmtrail.errors import ConfigError, ValidationError
from llmtrail.pricing.genai_source import GenaiPrices
from llmtrail.pricing.price import Rate
from llmtrail.pricing.price_data import PriceDataError, packaged_price_files, parse_price_file
from llmtrail.pricing.price_overrides import validate_override
from llmtrail.pricing.table import PriceTable, SeenModel
from tests.analytics.genai_reference import (
    assert_same_price,
    genai_answer,
    genai_version_count,
)

D = Decimal
AT = datetime(2025, 9, 1, tzinfo=UTC)
HAIKU_BASE = "anthropic.claude-3-5-haiku-20241022-v1:0"


@pytest.fixture(scope="module")
def table() -> PriceTable:
    return PriceTable()


def version_of(table: PriceTable, provider: str | None, model: str, at: datetime) -> str:
    price = table.lookup(provider, model, at)
    assert price is not None, (provider, model)
    return price.version


def model_of(table: PriceTable, provider: str | None, model: str, at: datetime) -> str:
    price = table.lookup(provider, model, at)
    assert price is not None, (provider, model)
    return price.model


def rates(price: Any) -> dict[str, str]:
    return {key: rate.describe() for key, rate in price.rates.items()}


def data_file(models: list[dict[str, Any]], provider: str = "acme", name: str = "acme.json") -> Any:
    doc = {"schema": "llmtrail.prices/1", "provider": provider, "models": models}
    return parse_price_file(json.dumps(doc), name)


WIDGET = [
    {
        "model": "widget-1",
        "match": ["widget-1-*"],
        "prices": [
            {"effective_from": "2025-01-01", "input_mtok": "1", "output_mtok": "2"},
            {"effective_from": "2025-06-01", "input_mtok": "0.5", "output_mtok": "1.5"},
        ],
    },
    {
        "model": "widget-any",
        "match": ["widget*"],
        "prices": [{"effective_from": "2024-01-01", "input_mtok": "9"}],
    },
]
# An OpenAI model as a data file of the test's own, for tests of lookup order and overrides.
OPENAI_MINI = data_file(
    [
        {
            "model": "gpt-4o-mini",
            "match": ["gpt-4o-mini-*"],
            "prices": [
                {"effective_from": "2024-07-18", "input_mtok": "0.15", "output_mtok": "0.6"}
            ],
        }
    ],
    provider="openai",
    name="openai.json",
)
MINI_VERSION = "llmtrail:openai:gpt-4o-mini@2024-07-18"


# -- model resolution ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "model", "bedrock_id"),
    [
        ("bedrock", HAIKU_BASE, HAIKU_BASE),
        ("bedrock", f"us.{HAIKU_BASE}", f"us.{HAIKU_BASE}"),
        ("bedrock", f"eu.{HAIKU_BASE}", f"eu.{HAIKU_BASE}"),
        ("bedrock", f"apac.{HAIKU_BASE}", f"apac.{HAIKU_BASE}"),
        ("bedrock", f"jp.{HAIKU_BASE}", f"jp.{HAIKU_BASE}"),
        ("bedrock", f"bedrock/us.{HAIKU_BASE}", f"us.{HAIKU_BASE}"),
        ("bedrock", f"arn:aws:bedrock:us-east-1::foundation-model/{HAIKU_BASE}", HAIKU_BASE),
        (
            "bedrock",
            f"arn:aws:bedrock:us-west-2:123456789012:inference-profile/us.{HAIKU_BASE}",
            f"us.{HAIKU_BASE}",
        ),
        (None, f"us.{HAIKU_BASE}", f"us.{HAIKU_BASE}"),  # an imported Bedrock log
        ("AWS", HAIKU_BASE, HAIKU_BASE),
    ],
)
def test_bedrock_id_variants_resolve_to_the_bedrock_id(
    table: PriceTable, provider: str | None, model: str, bedrock_id: str
) -> None:
    # Each way of naming a Bedrock model gets the price genai-prices itself gives the id as
    # Bedrock writes it (a cross-region id, else its base model id), under provider ``bedrock``.
    price = table.lookup(provider, model, AT)
    assert_same_price(price, genai_answer((bedrock_id, HAIKU_BASE), "aws", AT))
    assert price is None or price.provider == "bedrock"


def test_global_and_regional_profiles_are_looked_up_apart(table: PriceTable) -> None:
    # genai-prices prices ``global.`` and regional cross-region profiles apart: llmtrail asks
    # for the profile as named before its base model, so each gets genai-prices' own answer.
    base = "anthropic.claude-sonnet-4-5-20250929-v1:0"
    for name in (f"global.{base}", f"us.{base}", base):
        assert_same_price(table.lookup("bedrock", name, AT), genai_answer((name, base), "aws", AT))


@pytest.mark.parametrize(
    ("provider", "model", "genai_provider", "genai_ref"),
    [
        ("openai", "gpt-4o-mini", "openai", "gpt-4o-mini"),
        ("openai", "gpt-4o-mini-2024-07-18", "openai", "gpt-4o-mini-2024-07-18"),
        ("openai", "openai/gpt-4o-mini", "openai", "gpt-4o-mini"),
        (None, "openai/gpt-4o-mini", "openai", "gpt-4o-mini"),
        (None, "gpt-4o-mini", None, "gpt-4o-mini"),  # genai-prices' own model → provider rules
        ("anthropic", "claude-3-5-haiku-20241022", "anthropic", "claude-3-5-haiku-20241022"),
        (
            "anthropic",
            "anthropic/claude-3-5-haiku-20241022",
            "anthropic",
            "claude-3-5-haiku-20241022",
        ),
    ],
)
def test_openai_and_anthropic_names(
    table: PriceTable, provider: str | None, model: str, genai_provider: str | None, genai_ref: str
) -> None:
    assert_same_price(
        table.lookup(provider, model, AT), genai_answer(genai_ref, genai_provider, AT)
    )


@pytest.mark.parametrize(
    ("provider", "model"),
    [("openai", "gpt-4o-mini"), ("anthropic", "claude-sonnet-4-5")],  # the second is tiered
)
def test_genai_rates_and_unsupported_keys_are_read_as_genai_prices_has_them(
    table: PriceTable, provider: str, model: str
) -> None:
    price = table.lookup(provider, model, AT)
    expected = genai_answer(model, provider, AT)
    assert_same_price(price, expected)  # rates (tiers too), and unsupported keys listed
    if price is not None:
        assert not set(price.unsupported) & {"input_mtok", "output_mtok", "cache_read_mtok"}


# genai-prices price records built here, as its data module builds them, so that how llmtrail
# reads one (keys, tiers, request fees, dated and time-of-day prices) is checked on values the
# test chose.
ACME_GENAI = Provider(id="acme-genai", name="Acme", api_pattern=r"https://acme\.invalid")


@pytest.fixture(scope="module")
def genai() -> GenaiPrices:
    return GenaiPrices()


def test_a_genai_price_record_becomes_rates_and_unsupported_keys(genai: GenaiPrices) -> None:
    model = ModelInfo(
        id="widget-pro",
        match=ClauseEquals(equals="widget-pro"),
        prices=ModelPrice(
            input_mtok=TieredPrices(base=D("3"), tiers=[Tier(start=200_000, price=D("6"))]),
            output_mtok=D("15"),
            cache_read_mtok=D("0.3"),
            cache_write_5m_mtok=D("3.75"),
            cache_write_1h_mtok=D("6"),
            requests_kcount=D("5"),
            web_searches_kcount=D("10"),
        ),
    )
    (price,) = genai.all_prices(ACME_GENAI, model)
    assert price.version == f"genai-prices:{genai.package_version}:acme-genai/widget-pro@initial"
    assert (price.provider, price.model, price.source, price.effective_from) == (
        "acme-genai",
        "widget-pro",
        "genai-prices",
        None,
    )
    assert dict(price.rates) == {
        "input_mtok": Rate(D("3"), ((200_000, D("6")),)),
        "output_mtok": Rate(D("15")),
        "cache_read_mtok": Rate(D("0.3")),
        "cache_write_mtok": Rate(D("3.75")),  # the 5-minute write price: records don't say
        "per_request": Rate(D("0.005")),
    }
    assert price.unsupported == ("cache_write_1h_mtok", "web_searches_kcount")
    at = datetime(2025, 1, 1, tzinfo=UTC)
    assert genai.price(ACME_GENAI, model, at) == price


def test_genai_dated_and_time_of_day_prices_are_versions(genai: GenaiPrices) -> None:
    model = ModelInfo(
        id="widget-dated",
        match=ClauseEquals(equals="widget-dated"),
        prices=[
            ConditionalPrice(prices=ModelPrice(input_mtok=D("10"), output_mtok=D("40"))),
            ConditionalPrice(
                constraint=StartDateConstraint(start_date=date(2025, 6, 10)),
                prices=ModelPrice(input_mtok=D("2"), output_mtok=D("8")),
            ),
            ConditionalPrice(
                constraint=TimeOfDateConstraint(start_time=time(16, 30), end_time=time(0, 30)),
                prices=ModelPrice(input_mtok=D("1"), output_mtok=D("4")),
            ),
        ],
    )
    prefix = f"genai-prices:{genai.package_version}:acme-genai/widget-dated@"
    versions = genai.all_prices(ACME_GENAI, model)
    assert [p.version.removeprefix(prefix) for p in versions] == [
        "initial",
        "2025-06-10",
        "16:30-00:30",
    ]
    assert [p.effective_from for p in versions] == [None, date(2025, 6, 10), None]

    def label(at: datetime) -> tuple[str, str]:
        price = genai.price(ACME_GENAI, model, at)
        return price.version.removeprefix(prefix), rates(price)["input_mtok"]

    # the last price whose constraint holds wins, else the first
    assert label(datetime(2025, 6, 9, 16, 29, tzinfo=UTC)) == ("initial", "10")
    assert label(datetime(2025, 6, 10, 12, tzinfo=UTC)) == ("2025-06-10", "2")
    assert label(datetime(2025, 6, 10, 16, 30, tzinfo=UTC)) == ("16:30-00:30", "1")
    assert label(datetime(2025, 6, 9, 0, 29, tzinfo=UTC)) == ("16:30-00:30", "1")
    assert label(datetime(2025, 6, 11, 0, 30, tzinfo=UTC)) == ("2025-06-10", "2")


@pytest.mark.parametrize("model", ["sim/demo", "demo", "sim/claude-haiku", "sim/"])
def test_sim_models_have_prices(table: PriceTable, model: str) -> None:
    price = table.lookup("sim", model, AT)
    assert price is not None
    assert price.version == "llmtrail:sim:default@2024-01-01"
    assert rates(price)["input_mtok"] == "0.25" and rates(price)["output_mtok"] == "1.25"


def test_sim_embeddings_are_priced_as_embeddings(table: PriceTable) -> None:
    price = table.lookup("sim", "sim/embed-small", AT)
    assert price is not None and price.version == "llmtrail:sim:embed@2024-01-01"
    assert rates(price) == {"input_mtok": "0.02"}


def test_llmtrail_files_fill_gaps_in_genai_prices(table: PriceTable) -> None:
    price = table.lookup("bedrock", "us.cohere.command-r-plus-v1:0", AT)
    assert price is not None
    assert price.version == "llmtrail:bedrock:cohere.command-r-plus-v1:0@2024-04-01"
    assert rates(price) == {"input_mtok": "3", "output_mtok": "15"}
    claude2 = table.lookup("bedrock", "anthropic.claude-v2:1", AT)
    assert claude2 is not None and claude2.model == "anthropic.claude-v2"


def test_unknown_models_have_no_price(table: PriceTable) -> None:
    assert table.lookup("bedrock", "acme.no-such-model-v1:0", AT) is None
    assert table.lookup("openai", "no-such-model", AT) is None
    assert table.lookup("corp-llm", "llama-3-8b-local", AT) is None
    assert table.lookup(None, "", AT) is None
    # An application inference profile's ARN names no model; the record's resolvedModelId does.
    arn = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3d4e5f6"
    assert table.lookup("bedrock", arn, AT) is None


def test_provider_aliases_price_a_configured_provider_as_its_kind(table: PriceTable) -> None:
    aliased = PriceTable(
        files=[OPENAI_MINI], genai=False, provider_aliases={"corp-openai": "openai"}
    )
    price = aliased.lookup("corp-openai", "gpt-4o-mini", AT)
    assert price is not None and (price.provider, price.version) == ("openai", MINI_VERSION)
    assert (
        PriceTable(files=[OPENAI_MINI], genai=False).lookup("corp-openai", "gpt-4o-mini", AT)
        is None
    )
    # with genai-prices: the price OpenAI's own name gets, whatever the snapshot says it is
    with_genai = PriceTable(provider_aliases={"corp-openai": "openai"})
    assert with_genai.lookup("corp-openai", "gpt-4o-mini", AT) == table.lookup(
        "openai", "gpt-4o-mini", AT
    )


# -- versions by date ------------------------------------------------------------------------


def test_genai_prices_dated_changes_are_versions(table: PriceTable) -> None:
    # o3's price cut is a dated price in genai-prices: each of the model's versions is listed,
    # and each dated one applies from its date, exactly as genai-prices applies it.
    answer = genai_answer("o3", "openai", AT)
    shown = [p.version for p in table.versions("openai", "o3")]
    assert shown == (answer.all_versions if answer is not None else [])
    for start in answer.start_dates if answer is not None else ():
        at = datetime.combine(start, time(), UTC)
        for when in (at - timedelta(minutes=1), at):
            assert_same_price(
                table.lookup("openai", "o3", when), genai_answer("o3", "openai", when)
            )


def test_data_file_versions_apply_from_their_date() -> None:
    widgets = PriceTable(files=[data_file(WIDGET)], genai=False)
    assert widgets.lookup("acme", "widget-1", datetime(2024, 12, 31, 23, 59, tzinfo=UTC)) is None
    old = widgets.lookup("acme", "widget-1", datetime(2025, 5, 31, 23, 59, tzinfo=UTC))
    new = widgets.lookup("acme", "widget-1", datetime(2025, 6, 1, tzinfo=UTC))
    assert old is not None and new is not None
    assert old.version == "llmtrail:acme:widget-1@2025-01-01"
    assert new.version == "llmtrail:acme:widget-1@2025-06-01"
    assert old.rate("input_mtok") is not None and new.rate("input_mtok") is not None
    assert (old.rates["input_mtok"].base, new.rates["input_mtok"].base) == (
        Decimal(1),
        Decimal("0.5"),
    )
    # A naive datetime is UTC; another zone is converted first.
    naive = widgets.lookup("acme", "widget-1", datetime(2025, 6, 1, 0, 30))
    assert naive is not None and naive.version == new.version


def test_exact_names_win_over_patterns_and_patterns_apply_in_file_order() -> None:
    widgets = PriceTable(files=[data_file(WIDGET)], genai=False)
    at = datetime(2025, 7, 1, tzinfo=UTC)
    assert model_of(widgets, "acme", "widget-1-mini", at) == "widget-1"
    assert model_of(widgets, "acme", "widget-2", at) == "widget-any"
    assert widgets.lookup("other", "widget-1", at) is None  # patterns stay within their provider


# -- overrides -------------------------------------------------------------------------------


def override(**changes: Any) -> dict[str, Any]:
    base = {
        "provider": "openai",
        "model": "gpt-4o-mini",
        "prices": {"input_mtok": "0.1", "output_mtok": "0.4"},
        "effective_from": "2025-01-01",
        "created_at": "2025-01-02T09:00:00Z",
    }
    base.update(changes)
    return base


def test_overrides_win_from_their_date(table: PriceTable) -> None:
    filed = PriceTable(files=[OPENAI_MINI], genai=False)
    layered = filed.with_overrides([override(id="discount", effective_from="2025-03-01")])
    before = layered.lookup("openai", "gpt-4o-mini", datetime(2025, 2, 28, tzinfo=UTC))
    # the data file's model id names its dated variant too, so the override covers it
    after = layered.lookup("openai", "gpt-4o-mini-2024-07-18", datetime(2025, 3, 1, tzinfo=UTC))
    assert before is not None and before.version == MINI_VERSION
    assert after is not None and after.version == "override:discount"
    assert rates(after) == {"input_mtok": "0.1", "output_mtok": "0.4"}
    assert version_of(filed, "openai", "gpt-4o-mini", AT) == MINI_VERSION
    # over genai-prices alike: before its date, the override leaves the snapshot's price
    on_genai = table.with_overrides([override(id="discount", effective_from="2025-03-01")])
    feb, mar = datetime(2025, 2, 28, tzinfo=UTC), datetime(2025, 3, 1, tzinfo=UTC)
    assert on_genai.lookup("openai", "gpt-4o-mini", feb) == table.lookup(
        "openai", "gpt-4o-mini", feb
    )
    assert version_of(on_genai, "openai", "gpt-4o-mini", mar) == "override:discount"


def test_an_override_on_the_callers_model_name_wins_over_the_upstream_names_file_price(
    table: PriceTable,
) -> None:
    names = ["demo", "sim/demo"]  # resolvedModelId, then modelId, as a gateway record has them
    before = table.lookup_any("sim", names, AT)
    assert before is not None and before.source != "override"
    layered = table.with_overrides(
        [override(id="demo-price", provider="sim", model="sim/demo", effective_from="2025-01-01")]
    )
    after = layered.lookup_any("sim", names, AT)
    assert after is not None and after.version == "override:demo-price"


def test_override_precedence_exact_then_latest_then_newest() -> None:
    table = PriceTable(
        [
            override(id="pattern-new", model="gpt-*", effective_from="2025-06-01"),
            override(id="exact-old", effective_from="2025-01-01"),
            override(id="exact-mid", effective_from="2025-03-01"),
            override(
                id="exact-mid-fix", effective_from="2025-03-01", created_at="2025-03-05T00:00:00Z"
            ),
        ],
        genai=False,
        files=[],
    )
    at = datetime(2025, 7, 1, tzinfo=UTC)
    assert version_of(table, "openai", "gpt-4o-mini", at) == "override:exact-mid-fix"
    assert version_of(table, "openai", "gpt-4o", at) == "override:pattern-new"
    early = datetime(2025, 2, 1, tzinfo=UTC)
    assert version_of(table, "openai", "gpt-4o-mini", early) == "override:exact-old"
    assert table.lookup("anthropic", "gpt-4o-mini", at) is None


def test_override_for_any_provider_and_bedrock_patterns() -> None:
    table = PriceTable(
        [
            override(id="any", provider="*", model="house-model"),
            override(id="haiku", provider="bedrock", model="anthropic.claude-3-5-haiku*"),
        ],
        genai=False,
        files=[],
    )
    assert version_of(table, "vllm", "house-model", AT) == "override:any"
    assert version_of(table, None, "house-model", AT) == "override:any"
    arn = (
        "arn:aws:bedrock:eu-west-1:1:inference-profile/eu.anthropic.claude-3-5-haiku-20241022-v1:0"
    )
    assert version_of(table, "bedrock", arn, AT) == "override:haiku"


def test_validate_override_round_trip() -> None:
    checked = validate_override(override(note="negotiated", model=" GPT-4o-Mini "))
    assert checked.id == "openai/gpt-4o-mini@2025-01-01"
    assert checked.model == "gpt-4o-mini"
    assert checked.created_at == datetime(2025, 1, 2, 9, tzinfo=UTC)
    stored = checked.to_dict()
    assert json.loads(json.dumps(stored)) == stored
    assert validate_override(stored) == checked


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"provider": "Open AI"}, "provider"),
        ({"provider": None}, "provider"),
        ({"model": ""}, "model"),
        ({"model": 7}, "model"),
        ({"prices": {}}, "prices"),
        ({"prices": "cheap"}, "prices"),
        ({"prices": {"input": "1"}}, "prices.input"),
        ({"prices": {"input_mtok": "-1"}}, "prices.input_mtok"),
        ({"prices": {"input_mtok": "NaN"}}, "prices.input_mtok"),
        ({"prices": {"input_mtok": True}}, "prices.input_mtok"),
        (
            {"prices": {"output_mtok": {"base": "1", "tiers": [{"start": -1, "price": "2"}]}}},
            "prices.output_mtok.tiers[0].start",
        ),
        ({"effective_from": "2025-13-01"}, "effective_from"),
        ({"effective_from": "20250101"}, "effective_from"),
        ({"effective_from": None}, "effective_from"),
        ({"created_at": "yesterday"}, "created_at"),
        ({"id": "has space"}, "id"),
        ({"note": 5}, "note"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_validate_override_names_the_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        validate_override(override(**changes))
    assert caught.value.field == field
    assert field in str(caught.value)


def test_missing_prices_key_is_named() -> None:
    raw = override()
    del raw["prices"]
    with pytest.raises(ValidationError) as caught:
        validate_override(raw)
    assert caught.value.field == "prices"


def test_a_bad_override_fails_the_table() -> None:
    with pytest.raises(ValidationError):
        PriceTable([override(prices={"input_mtok": "x"})], genai=False)


# -- listing ---------------------------------------------------------------------------------


def test_entries_and_versions_for_prices_list_and_show(table: PriceTable) -> None:
    layered = table.with_overrides([override(id="mine")])
    openai = layered.entries("openai")
    assert openai[0].version == "override:mine"
    assert openai[1:] == table.entries("openai")
    assert {p.provider for p in openai} == {"openai"}
    # every price version genai-prices holds for OpenAI's models, and nothing else
    assert [p.source for p in openai[1:]] == ["genai-prices"] * genai_version_count("openai")
    sim = layered.entries("sim")
    assert [p.version for p in sim] == [
        "llmtrail:sim:embed@2024-01-01",
        "llmtrail:sim:default@2024-01-01",
    ]
    shown = layered.versions("openai", "gpt-4o-mini")
    answer = genai_answer("gpt-4o-mini", "openai", AT)
    genai_versions = answer.all_versions if answer is not None else []
    assert [p.version for p in shown] == ["override:mine", *genai_versions]
    listed = shown[0].to_dict()
    assert listed["prices"] == {"input_mtok": "0.1", "output_mtok": "0.4"}
    assert listed["effectiveFrom"] == "2025-01-01"
    in_files = sum(len(entry.versions) for f in table.files for entry in f.models)
    assert len(layered.entries()) == 1 + in_files + genai_version_count()  # every model listed


def test_missing_lists_models_seen_without_a_price() -> None:
    haiku = data_file(
        [
            {
                "model": "anthropic.claude-3-5-haiku-20241022-v1:0",
                "prices": [{"effective_from": "2024-11-04", "input_mtok": "0.8"}],
            }
        ],
        provider="bedrock",
        name="bedrock-test.json",
    )
    # llmtrail's packaged files (its own data) and the test's; genai-prices' data left out
    table = PriceTable(files=[*packaged_price_files(), OPENAI_MINI, haiku], genai=False)
    seen: list[SeenModel | dict[str, Any]] = [
        {"provider": "bedrock", "modelId": "acme.house-v1:0", "count": 3},
        {"provider": "sim", "modelId": "sim/x", "count": 9},
        {"provider": "openai", "modelId": "gpt-4o-mini", "count": 7},
        SeenModel("openai", "brand-new-model", count=12, last_seen=AT),
        {
            "provider": "bedrock",
            "modelId": "arn:aws:bedrock:us-east-1:1:application-inference-profile/abc",
            "resolvedModelId": "anthropic.claude-3-5-haiku-20241022-v1:0",
            "count": 2,
            "lastSeen": "2025-09-01T00:00:00Z",
        },
        # priced today (llmtrail's file, from 2024-04-01), but not when it was last seen
        {
            "provider": "bedrock",
            "modelId": "cohere.command-r-v1:0",
            "count": 1,
            "lastSeen": "2023-01-05T00:00:00Z",
        },
        # seen without a date: any version will do
        {"provider": "bedrock", "modelId": "cohere.command-r-v1:0", "count": 4},
    ]
    missing = table.missing(seen)
    assert [(m.provider, m.model, m.count) for m in missing] == [
        ("openai", "brand-new-model", 12),
        ("bedrock", "acme.house-v1:0", 3),
        ("bedrock", "cohere.command-r-v1:0", 1),
    ]


# -- data files ------------------------------------------------------------------------------


def test_packaged_files_validate_and_cover_sim() -> None:
    files = {f.name: f for f in packaged_price_files()}
    assert {"sim", "bedrock", "anthropic"} <= set(files)
    assert files["sim"].provider == "sim"
    for price_file in files.values():
        for entry in price_file.models:
            assert entry.versions, entry.model


GOOD: dict[str, Any] = {
    "schema": "llmtrail.prices/1",
    "provider": "acme",
    "models": [
        {
            "model": "widget-1",
            "prices": [
                {"effective_from": "2025-01-01", "input_mtok": "1", "output_mtok": "2"},
                {"effective_from": "2025-06-01", "input_mtok": "0.5"},
            ],
        }
    ],
}


def broken(path: str, value: Any) -> dict[str, Any]:
    """GOOD with the value at ``path`` (dotted, list indexes as numbers) replaced; a value of
    `DELETE` removes the key."""
    doc = copy.deepcopy(GOOD)
    *parents, last = path.split(".")
    node: Any = doc
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    key: Any = int(last) if last.isdigit() else last
    if value is DELETE:
        del node[key]
    else:
        node[key] = value
    return doc


DELETE = object()


@pytest.mark.parametrize(
    ("doc", "model", "field", "words"),
    [
        (broken("schema", "prices/2"), None, "schema", "must be 'llmtrail.prices/1'"),
        (broken("provider", "Acme Corp"), None, "provider", "lower-case provider name"),
        (broken("models", []), None, "models", "non-empty list"),
        (broken("extra", 1), None, "extra", "unknown key"),
        (broken("models.0.model", "Widget-1"), "Widget-1", "models[0].model", "lower case"),
        (broken("models.0.model", 3), None, "models[0].model", "must be a model id"),
        (broken("models.0.colour", "red"), "widget-1", "models[0].colour", "unknown key"),
        (broken("models.0.match", "widget*"), "widget-1", "models[0].match", "list"),
        (broken("models.0.prices", []), "widget-1", "models[0].prices", "non-empty list"),
        (
            broken("models.0.prices.1.effective_from", "2024-12-31"),
            "widget-1",
            "models[0].prices[1].effective_from",
            "not after the previous version",
        ),
        (
            broken("models.0.prices.0.effective_from", DELETE),
            "widget-1",
            "models[0].prices[0].effective_from",
            "YYYY-MM-DD",
        ),
        (
            broken("models.0.prices.0.input_mtok", -2),
            "widget-1",
            "models[0].prices[0].input_mtok",
            "≥ 0",
        ),
        (
            broken("models.0.prices.0.input_mtok", "cheap"),
            "widget-1",
            "models[0].prices[0].input_mtok",
            "decimal number",
        ),
        (
            broken("models.0.prices.0.inptu_mtok", 1),
            "widget-1",
            "models[0].prices[0].inptu_mtok",
            "unknown price",
        ),
        (
            broken("models.0.prices.1", {"effective_from": "2025-07-01"}),
            "widget-1",
            "models[0].prices[1]",
            "needs at least one of",
        ),
    ],
)
def test_data_file_schema_violations_are_clear_errors(
    doc: dict[str, Any], model: str | None, field: str, words: str
) -> None:
    with pytest.raises(PriceDataError) as caught:
        parse_price_file(json.dumps(doc), "acme.json")
    error = caught.value
    assert isinstance(error, ConfigError)
    assert (error.file, error.model, error.field) == ("acme.json", model, field)
    assert str(error).startswith(
        f"acme.json: model {model!r}: {field}: " if model else f"acme.json: {field}: "
    )
    assert words in str(error)


def test_duplicate_models_and_bad_json_are_named() -> None:
    twice = copy.deepcopy(GOOD)
    twice["models"].append(copy.deepcopy(GOOD["models"][0]))
    with pytest.raises(
        PriceDataError, match=r"acme.json: model 'widget-1': models\[1\].model: appears twice"
    ):
        parse_price_file(json.dumps(twice), "acme.json")
    with pytest.raises(PriceDataError, match=r"acme.json: \(file\): is not valid JSON"):
        parse_price_file("{", "acme.json")


def test_data_file_prices_keep_every_digit() -> None:
    text = json.dumps(GOOD).replace('"0.5"', "0.1234567890123456789")
    price_file = parse_price_file(text, "acme.json")
    assert price_file.models[0].versions[1][1]["input_mtok"].base == Decimal(
        "0.1234567890123456789"
    )
