"""Cost Explorer's GetCostAndUsage with the official boto3 ``ce`` client against a real
server of this module's own (the records of `test_ce_expected.served`: every provider, cache
tokens, a profile's cost tags, per-request charges, 300 tenants), every answer compared with
what llmtrail's own API says of the same records: ``/api/cost`` for the totals,
``/api/records`` (each record's stored cost and token counts) for every group; and every
refusal in AWS's words."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from botocore.exceptions import ClientError

from llmtrail.server.aws.ce import PAGE_SIZE
from tests.aws.conftest import ACCOUNT
from tests.aws.test_ce_expected import TENANTS, Item, World, answered, day, grouped, served
from tests.harness import call
from tests.wall_clock import on_one_day


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    yield from served(tmp_path_factory.mktemp("ce"))


def refused(world: World, code: str, **request: Any) -> str:
    with pytest.raises(ClientError) as caught:
        world.ce.get_cost_and_usage(**request)
    error = caught.value.response["Error"]
    assert error["Code"] == code, error
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    return str(error["Message"])


def daily(world: World, **request: Any) -> dict[str, Any]:
    return {
        "TimePeriod": world.period(),
        "Granularity": "DAILY",
        "Metrics": ["UnblendedCost", "UsageQuantity"],
        **request,
    }


# -- GetCostAndUsage --------------------------------------------------------------------------
def test_daily_cost_by_service_and_usage_type_equals_each_records_cost(world: World) -> None:
    by = [{"Type": "DIMENSION", "Key": "SERVICE"}, {"Type": "DIMENSION", "Key": "USAGE_TYPE"}]
    pages, asked_on = on_one_day(lambda _: world.pages(**daily(world, GroupBy=by)))
    got = answered(pages)
    assert got == grouped(world.items(), day, "SERVICE", "USAGE_TYPE")
    services = {keys[0] for _, keys in got}
    assert {"Amazon Bedrock", "OpenAI", "Anthropic", "llmtrail sim", "corp-gateway"} <= services
    for suffix in ("-input-tokens", "-output-tokens", "-cache-read-input-token-count"):
        assert any(keys[1].endswith(suffix) for _, keys in got), suffix
    for suffix in ("-cache-write-input-token-count", "-other-charges"):
        assert any(keys[1].endswith(suffix) for _, keys in got), suffix
    # every period is there, each day's groups add up to /api/cost's total of that day
    results = [r for page in pages for r in page["ResultsByTime"]]
    assert results[0]["TimePeriod"]["Start"] == world.start
    assert len({r["TimePeriod"]["Start"] for r in results}) == 46
    status, ours = call(
        world.url, "GET", f"/api/cost?granularity=DAILY&start={world.start}&end={world.end}"
    )
    assert status == 200, ours
    for result in ours["resultsByTime"]:
        start = result["timePeriod"]["start"]
        mine = sum((c for (s, _), (c, _) in got.items() if s == start), Decimal(0))
        assert mine == Decimal(result["total"]["costUsd"]), start
    for result in results:
        assert result["Total"] == {}  # grouped: AWS leaves Total empty
        # estimated until it ends: the day it was asked on (world.today, unless the module
        # ran past midnight) is
        assert result["Estimated"] == (result["TimePeriod"]["Start"] == asked_on.isoformat())


def test_usage_quantity_counts_the_tokens_each_kind_was_billed_for(world: World) -> None:
    by = [{"Type": "DIMENSION", "Key": "USAGE_TYPE"}]
    got = answered(world.pages(**daily(world, GroupBy=by)))
    openai = next(d for d in world.docs if d["requestId"] == "ce-openai-cached")
    day_of = openai["timestamp"][:10]
    given, cached = openai["input"]["inputTokenCount"], openai["input"]["cacheReadInputTokenCount"]
    assert got[(day_of, ("USE1-gpt-4o-mini-input-tokens",))] == (
        Decimal(openai["cost"]["inputUsd"]),
        given - cached,  # OpenAI's prompt_tokens include the cached ones
    )
    assert got[(day_of, ("USE1-gpt-4o-mini-cache-read-input-token-count",))][1] == cached
    bedrock = next(d for d in world.docs if d["requestId"] == "ce-bedrock-cached")
    model = bedrock["modelId"]
    key = (bedrock["timestamp"][:10], (f"USW2-{model}-cache-write-input-token-count",))
    assert got[key] == (Decimal(bedrock["cost"]["cacheWriteUsd"]), 50)
    unpriced = next(d for d in world.docs if d["requestId"] == "ce-unpriced")
    assert "reason" in unpriced["cost"]
    key = (unpriced["timestamp"][:10], ("USE1-house-model-7-input-tokens",))
    assert got[key] == (Decimal(0), 10)


def test_monthly_totals_equal_api_cost_and_every_cost_metric_is_the_unblended_one(
    world: World,
) -> None:
    start = world.today - timedelta(days=40)
    costs = ["UnblendedCost", "BlendedCost", "AmortizedCost", "NetUnblendedCost"]
    costs += ["NetAmortizedCost", "UNBLENDED_COST"]
    answer, asked_on = on_one_day(
        lambda _: world.ce.get_cost_and_usage(
            TimePeriod=world.period(start),
            Granularity="MONTHLY",
            Metrics=[*costs, "UsageQuantity"],
        )
    )
    status, ours = call(
        world.url, "GET", f"/api/cost?granularity=MONTHLY&start={start}&end={world.end}"
    )
    assert status == 200, ours
    results = answer["ResultsByTime"]
    assert len(results) == len(ours["resultsByTime"]) >= 2
    assert results[0]["TimePeriod"]["Start"] == start.isoformat()  # cut to the range, as AWS
    assert results[-1]["TimePeriod"]["End"] == world.end
    expected = grouped(
        [i for i in world.items() if i.at.date() >= start],
        lambda at: at.date().replace(day=1).isoformat(),
    )
    for result, own in zip(results, ours["resultsByTime"], strict=True):
        total = result["Total"]
        assert {total[m]["Amount"] for m in costs} == {total["UnblendedCost"]["Amount"]}
        assert Decimal(total["UnblendedCost"]["Amount"]) == Decimal(own["total"]["costUsd"])
        assert total["UnblendedCost"]["Unit"] == "USD"
        month = result["TimePeriod"]["Start"][:8] + "01"
        assert int(total["UsageQuantity"]["Amount"]) == expected[(month, ())][1]
        charged_apart = any(
            i.dimensions["USAGE_TYPE"].endswith("-other-charges") and day(i.at)[:7] == month[:7]
            for i in world.items()
        )
        # tokens alone, or tokens and the calls with per-request charges (mixed units)
        assert total["UsageQuantity"]["Unit"] == ("N/A" if charged_apart else "Tokens")
        assert result["Groups"] == []
    # the last period ends at world.end (the day after world.today): estimated when asked
    # before that (the module may have run past midnight)
    open_when_asked = asked_on < date.fromisoformat(world.end)
    assert [r["Estimated"] for r in results] == [False] * (len(results) - 1) + [open_when_asked]


def test_tags_are_profile_tags_then_request_metadata(world: World) -> None:
    by = [{"Type": "TAG", "Key": "dept"}, {"Type": "TAG", "Key": "team"}]
    got = answered(world.pages(**daily(world, GroupBy=by)))
    assert got == grouped(world.items(), day, "tag:dept", "tag:team")
    keys = {k for _, k in got}
    assert ("dept$claims", "team$search") in keys  # the real profile call, metadata's team
    assert ("dept$claims", "team$claims-ml") in keys  # the profile's tag wins
    assert ("dept$research", "team$") in keys  # dept from requestMetadata, no team
    answer = world.ce.get_cost_and_usage(
        TimePeriod=world.period(),
        Granularity="MONTHLY",
        Metrics=["UnblendedCost", "UsageQuantity"],
        GroupBy=[
            {"Type": "TAG", "Key": "cost-center"},
            {"Type": "DIMENSION", "Key": "LINKED_ACCOUNT"},
        ],
    )
    assert answer["DimensionValueAttributes"] == [
        {"Value": ACCOUNT, "Attributes": {"description": "default"}}
    ]
    assert answered([answer]) == grouped(
        world.items(),
        lambda at: max(at.date().replace(day=1), date.fromisoformat(world.start)).isoformat(),
        "tag:cost-center",
        "LINKED_ACCOUNT",
    )


FILTERS: list[tuple[dict[str, Any], Callable[[Item], bool]]] = [
    (
        {"Dimensions": {"Key": "SERVICE", "Values": ["Amazon Bedrock", "OpenAI"]}},
        lambda i: i.dimensions["SERVICE"] in ("Amazon Bedrock", "OpenAI"),
    ),
    (
        {
            "And": [
                {"Dimensions": {"Key": "REGION", "Values": ["us-west-2"]}},
                {
                    "Not": {
                        "Dimensions": {
                            "Key": "USAGE_TYPE",
                            "Values": [
                                "USW2-anthropic.claude-3-5-haiku-20241022-v1:0-cache-read-input-token-count"
                            ],
                        }
                    }
                },
            ]
        },
        lambda i: (
            i.dimensions["REGION"] == "us-west-2"
            and not i.dimensions["USAGE_TYPE"].endswith("cache-read-input-token-count")
        ),
    ),
    (
        {
            "Or": [
                {"Tags": {"Key": "dept", "Values": ["claims"]}},
                {"Tags": {"Key": "team", "MatchOptions": ["ABSENT"]}},
            ]
        },
        lambda i: i.tags["dept"] == "claims" or i.tags["team"] is None,
    ),
    ({"Tags": {"Key": "dept", "Values": [""]}}, lambda i: i.tags["dept"] is None),
    ({"Not": {"Tags": {"Key": "tenant_id"}}}, lambda i: i.tags["tenant_id"] is None),
    (
        {"Dimensions": {"Key": "OPERATION", "Values": ["Messages"], "MatchOptions": ["EQUALS"]}},
        lambda i: i.dimensions["OPERATION"] == "Messages",
    ),
]


@pytest.mark.parametrize(("expression", "keeps"), FILTERS)
def test_filters_keep_what_they_say(
    world: World, expression: dict[str, Any], keeps: Callable[[Item], bool]
) -> None:
    by = [{"Type": "DIMENSION", "Key": "SERVICE"}, {"Type": "DIMENSION", "Key": "USAGE_TYPE"}]
    got = answered(world.pages(**daily(world, GroupBy=by, Filter=expression)))
    expected = grouped([i for i in world.items() if keeps(i)], day, "SERVICE", "USAGE_TYPE")
    assert got == expected
    assert got  # every filter here keeps something


@pytest.mark.parametrize(
    ("request_part", "named"),
    [
        ({"Filter": {"CostCategories": {"Key": "team", "Values": ["a"]}}}, "CostCategories"),
        ({"Filter": {"ProductAttributes": {"Key": "model", "Values": ["a"]}}}, "ProductAttributes"),
        ({"Filter": {"Dimensions": {"Key": "AZ", "Values": ["us-east-1a"]}}}, "AZ"),
        (
            {
                "Filter": {
                    "Dimensions": {"Key": "SERVICE", "Values": ["x"], "MatchOptions": ["CONTAINS"]}
                }
            },
            "CONTAINS",
        ),
        (
            {
                "Filter": {
                    "Dimensions": {"Key": "SERVICE", "Values": ["x"]},
                    "Not": {"Tags": {"Key": "a"}},
                }
            },
            "more than one roots",
        ),
        ({"Filter": {}}, "has no root"),
        ({"Filter": {"And": []}}, "Filter.And"),
        ({"Filter": {"Tags": {"Key": "a", "MatchOptions": ["STARTS_WITH"]}}}, "STARTS_WITH"),
        ({"GroupBy": [{"Type": "COST_CATEGORY", "Key": "team"}]}, "COST_CATEGORY"),
        ({"GroupBy": [{"Type": "DIMENSION", "Key": "INSTANCE_TYPE"}]}, "INSTANCE_TYPE"),
        ({"GroupBy": [{"Type": "TAG", "Key": "a"}] * 2}, "repeats"),
        ({"GroupBy": [{"Type": "TAG", "Key": k} for k in "abc"]}, "at most 2"),
        ({"Metrics": ["NormalizedUsageAmount"]}, "NormalizedUsageAmount"),
        ({"Metrics": []}, "at least one metric"),
        ({"BillingViewArn": f"arn:aws:billing::{ACCOUNT}:billingview/custom-1"}, "custom-1"),
    ],
)
def test_what_llmtrail_cannot_answer_is_refused_naming_it(
    world: World, request_part: dict[str, Any], named: str
) -> None:
    request = daily(world, **request_part)
    with pytest.raises(ClientError) as caught:
        world.ce.get_cost_and_usage(**request)
    error = caught.value.response["Error"]
    expected = "ResourceNotFoundException" if "BillingViewArn" in request else "ValidationException"
    assert error["Code"] == expected
    assert named in error["Message"]


def test_time_periods_are_checked_as_aws_checks_them(world: World) -> None:
    def ask(today: date) -> tuple[list[tuple[str, Any]], Any, date]:
        """Each refusal case's ClientError (None if it was answered), and the answer to a range
        ending on the first day of next month: asked on ``today``, the day the server checks
        the periods against."""
        month_after = date(today.year + today.month // 12, today.month % 12 + 1, 1)
        cases: list[tuple[tuple[date | str, date | str], str, str]] = [
            ((today, today), "DAILY", "Start date (and hour) should be before end date (and hour)"),
            (
                (today, month_after + timedelta(days=1)),
                "DAILY",
                "end date past the beginning of next month",
            ),
            ((today - timedelta(days=15), today), "HOURLY", "start date is too old for hourly"),
            (
                (f"{today}T05:00:00Z", today + timedelta(days=1)),
                "DAILY",
                "Hourly timePeriod is not supported",
            ),
            (("2026-13-01", today), "DAILY", "TimePeriod.Start '2026-13-01' is not a date"),
            ((today, "2026-02-30"), "MONTHLY", "TimePeriod.End '2026-02-30' is not a date"),
            (
                (today, "tomorrow"),
                "MONTHLY",
                "Value 'tomorrow' at 'TimePeriod.End' failed to satisfy",
            ),
        ]
        errors = []
        for (start, end), granularity, message in cases:
            try:
                world.ce.get_cost_and_usage(
                    TimePeriod=world.period(start, end),
                    Granularity=granularity,
                    Metrics=["UnblendedCost"],
                )
                errors.append((message, None))
            except ClientError as caught:
                errors.append((message, caught.response))
        # the first day of next month is a valid End (a range to the end of this month)
        answer = world.ce.get_cost_and_usage(
            TimePeriod=world.period(today, month_after),
            Granularity="MONTHLY",
            Metrics=["UnblendedCost"],
        )
        return errors, answer, month_after

    (errors, answer, month_after), today = on_one_day(ask)
    for message, response in errors:
        assert response is not None, f"answered, not refused: {message}"
        assert response["Error"]["Code"] == "ValidationException", response["Error"]
        assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert message in response["Error"]["Message"]
    assert answer["ResultsByTime"][0]["TimePeriod"] == world.period(today, month_after)


def test_a_range_retention_already_deleted_has_expired(world: World) -> None:
    status, body = call(world.url, "PUT", "/api/retention", {"recordsDays": 3650})
    assert status == 200, body
    try:
        long_ago = world.today - timedelta(days=3700)
        message = refused(
            world,
            "BillExpirationException",
            TimePeriod=world.period(long_ago, world.today),
            Granularity="MONTHLY",
            Metrics=["UnblendedCost"],
        )
        assert message == "The requested report expired. Update the date interval and try again."
        # within the ten years kept, the same request answers
        kept = world.today - timedelta(days=3600)
        answer = world.ce.get_cost_and_usage(
            TimePeriod=world.period(kept, world.end),
            Granularity="MONTHLY",
            Metrics=["UnblendedCost"],
        )
        assert len(answer["ResultsByTime"]) >= 118
    finally:
        status, body = call(world.url, "DELETE", "/api/retention")
        assert status in (200, 204), body


def test_hourly_groups_by_the_hour(world: World) -> None:
    today = world.today
    answer = world.ce.get_cost_and_usage(
        TimePeriod=world.period(f"{today}T00:00:00Z", f"{today + timedelta(days=1)}T00:00:00Z"),
        Granularity="HOURLY",
        Metrics=["UnblendedCost", "UsageQuantity"],
        GroupBy=[{"Type": "DIMENSION", "Key": "SERVICE"}],
    )
    results = answer["ResultsByTime"]
    assert len(results) == 24
    assert results[9]["TimePeriod"] == {"Start": f"{today}T09:00:00Z", "End": f"{today}T10:00:00Z"}
    hour = lambda at: at.strftime("%Y-%m-%dT%H:00:00Z")  # noqa: E731
    expected = grouped([i for i in world.items() if i.at.date() == today], hour, "SERVICE")
    assert answered([answer]) == expected
    assert expected  # today's gateway calls


def test_pages_hold_500_groups_and_tokens_are_bound_to_the_request(world: World) -> None:
    by = [{"Type": "TAG", "Key": "tenant_id"}, {"Type": "DIMENSION", "Key": "USAGE_TYPE"}]
    request = daily(world, GroupBy=by)
    pages = world.pages(**request)
    assert len(pages) >= 2
    assert sum(len(r["Groups"]) for r in pages[0]["ResultsByTime"]) == PAGE_SIZE
    assert answered(pages) == grouped(world.items(), day, "tag:tenant_id", "USAGE_TYPE")
    assert len({k for _, k in answered(pages) if k[0] != "tenant_id$"}) == 2 * TENANTS
    token = pages[0]["NextPageToken"]
    changed = {**request, "Metrics": ["UnblendedCost"], "NextPageToken": token}
    assert "changed between pages" in refused(world, "RequestChangedException", **changed)
    refused(world, "InvalidNextTokenException", **request, NextPageToken="not-a-token")
    with pytest.raises(ClientError) as caught:  # a token of another operation
        world.ce.get_tags(TimePeriod=world.period(), NextPageToken=token)
    assert caught.value.response["Error"]["Code"] == "InvalidNextTokenException"
