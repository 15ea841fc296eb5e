"""Cost Explorer's GetCostAndUsage, GetDimensionValues and GetTags with the official boto3
``ce`` client against a real server of this module's own, every answer compared with what
llmtrail's own API says of the same records: ``/api/cost`` for the totals, ``/api/records``
(each record's stored cost and token counts) for every group.

The server holds gateway calls from the three wire formats and one through an application
inference profile with cost tags (today), and records ingested on earlier days: Bedrock with
cache reads and writes in us-west-2, OpenAI with cached tokens, Anthropic, a model without a
price, a model with a per-request price, and 300 tenants on one day (for pages).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from llmtrail.server.aws.ce import PAGE_SIZE
from tests.aws.conftest import ACCOUNT, CONFIG, REGION, aws_client, send_traffic
from tests.aws.test_ce_expected import Item, answered, day, grouped, items, records
from tests.harness import ServerProcess, call

TENANTS = 300
TAG_KEYS = ("dept", "team", "cost-center", "tenant_id")
TRAFFIC = (("openai", "sim/fast", 2), ("anthropic", "sim/smart", 2), ("bedrock", "sim/tiny", 2))


def _at(today: date, days_ago: int, hour: int = 10) -> str:
    moment = datetime(today.year, today.month, today.day, hour, tzinfo=UTC)
    return (moment - timedelta(days=days_ago)).isoformat().replace("+00:00", "Z")


def ingested(today: date) -> list[dict[str, Any]]:
    haiku = "anthropic.claude-3-5-haiku-20241022-v1:0"
    profile = f"arn:aws:bedrock:us-west-2:{ACCOUNT}:application-inference-profile/claims1"
    docs: list[dict[str, Any]] = [
        {
            "timestamp": _at(today, 3),
            "requestId": "ce-bedrock-cached",
            "provider": "bedrock",
            "modelId": haiku,
            "operation": "Converse",
            "region": "us-west-2",
            "input": {
                "inputTokenCount": 100,
                "cacheReadInputTokenCount": 1000,
                "cacheWriteInputTokenCount": 50,
            },
            "output": {"outputTokenCount": 20},
            "inferenceProfile": {
                "arn": profile,
                "name": "claims",
                "tags": {"dept": "claims", "team": "claims-ml"},
            },
            "requestMetadata": {"team": "search"},
        },
        {
            "timestamp": _at(today, 10),
            "requestId": "ce-openai-cached",
            "provider": "openai",
            "modelId": "gpt-4o-mini",
            "operation": "ChatCompletions",
            "input": {"inputTokenCount": 1000, "cacheReadInputTokenCount": 400},
            "output": {"outputTokenCount": 20},
            "requestMetadata": {"team": "web"},
        },
        {
            "timestamp": _at(today, 10, 14),
            "requestId": "ce-anthropic",
            "provider": "anthropic",
            "modelId": "claude-3-5-haiku-20241022",
            "operation": "Messages",
            "input": {"inputTokenCount": 300, "cacheWriteInputTokenCount": 200},
            "output": {"outputTokenCount": 80},
            "requestMetadata": {"dept": "research"},
        },
        {
            "timestamp": _at(today, 3, 12),
            "requestId": "ce-unpriced",
            "provider": "corp-gateway",
            "modelId": "house-model-7",
            "operation": "ChatCompletions",
            "input": {"inputTokenCount": 10},
            "output": {"outputTokenCount": 5},
        },
        {
            "timestamp": _at(today, 2),
            "requestId": "ce-per-request",
            "provider": "corp-media",
            "modelId": "render-1",
            "operation": "ChatCompletions",
            "input": {"inputTokenCount": 40},
            "output": {"outputTokenCount": 8},
        },
        {
            "timestamp": _at(today, 40),
            "requestId": "ce-nova",
            "provider": "bedrock",
            "modelId": "amazon.nova-lite-v1:0",
            "operation": "Converse",
            "input": {"inputTokenCount": 5000},
            "output": {"outputTokenCount": 700},
        },
    ]
    docs += [
        {
            "timestamp": _at(today, 5),
            "requestId": f"ce-tenant-{i}",
            "provider": "sim",
            "modelId": "sim/fast",
            "resolvedModelId": "fast",
            "operation": "Converse",
            "input": {"inputTokenCount": 10 + i},
            "output": {"outputTokenCount": 3 + i % 7},
            "requestMetadata": {"tenant_id": f"tenant-{i:03d}"},
        }
        for i in range(TENANTS)
    ]
    return docs


@dataclass
class World:
    url: str
    ce: Any
    today: date
    start: str  # of the window every test reads
    end: str
    docs: list[Any]  # the records of the window, from /api/records
    profile_arn: str

    def period(self, start: date | str | None = None, end: date | str | None = None) -> Any:
        return {"Start": str(start or self.start), "End": str(end or self.end)}

    def items(self, *tag_keys: str) -> list[Item]:
        return items(self.docs, account=ACCOUNT, region=REGION, tag_keys=tag_keys or TAG_KEYS)

    def pages(self, **request: Any) -> list[Any]:
        """Every page of one GetCostAndUsage request."""
        pages = []
        while True:
            page = self.ce.get_cost_and_usage(**request)
            pages.append(page)
            if "NextPageToken" not in page:
                return pages
            request = {**request, "NextPageToken": page["NextPageToken"]}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("ce")
    with ServerProcess(root / "data", config=CONFIG) as proc:
        status, body = call(
            proc.url,
            "PUT",
            "/api/prices",
            {
                "provider": "corp-media",
                "model": "render-1",
                "prices": {"input_mtok": "1", "output_mtok": "2", "per_request": "0.01"},
                "effective_from": "2020-01-01",
            },
        )
        assert status in (200, 201), body
        today = datetime.now(UTC).date()
        sent = httpx.post(
            proc.url + "/api/records",
            content="\n".join(json.dumps(d) for d in ingested(today)),
            timeout=60,
        )
        assert sent.status_code == 200 and sent.json()["stored"] == TENANTS + 6, sent.text
        send_traffic(proc.url, TRAFFIC)
        status, profile = call(
            proc.url,
            "POST",
            "/api/profiles",
            {
                "inferenceProfileName": "claims",
                "modelSource": {"copyFrom": "sim/tiny"},
                "tags": [
                    {"key": "dept", "value": "claims"},
                    {"key": "cost-center", "value": "cc-42"},
                ],
            },
        )
        assert status == 201, profile
        runtime = aws_client(proc.url, "bedrock-runtime")
        runtime.converse(
            modelId=profile["inferenceProfileArn"],
            messages=[{"role": "user", "content": [{"text": "a claim"}]}],
            requestMetadata={"team": "search"},
        )
        runtime.close()
        proc.settle()
        start, end = today - timedelta(days=45), today + timedelta(days=1)
        docs = records(proc.url, start.isoformat(), end.isoformat())
        ce = aws_client(proc.url, "ce")
        yield World(
            proc.url,
            ce,
            today,
            start.isoformat(),
            end.isoformat(),
            docs,
            profile["inferenceProfileArn"],
        )
        ce.close()


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
    pages = world.pages(**daily(world, GroupBy=by))
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
        assert result["Estimated"] == (result["TimePeriod"]["Start"] == world.today.isoformat())


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
    answer = world.ce.get_cost_and_usage(
        TimePeriod=world.period(start),
        Granularity="MONTHLY",
        Metrics=[*costs, "UsageQuantity"],
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
    assert [r["Estimated"] for r in results] == [False] * (len(results) - 1) + [True]


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
    today = world.today
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
        ((today, "tomorrow"), "MONTHLY", "Value 'tomorrow' at 'TimePeriod.End' failed to satisfy"),
    ]
    for (start, end), granularity, message in cases:
        got = refused(
            world,
            "ValidationException",
            TimePeriod=world.period(start, end),
            Granularity=granularity,
            Metrics=["UnblendedCost"],
        )
        assert message in got
    # the first day of next month is a valid End (a range to the end of this month)
    answer = world.ce.get_cost_and_usage(
        TimePeriod=world.period(today, month_after),
        Granularity="MONTHLY",
        Metrics=["UnblendedCost"],
    )
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


# -- GetDimensionValues and GetTags --------------------------------------------------------------
def test_dimension_values_are_those_costs_can_be_grouped_by(world: World) -> None:
    found = world.items()
    for dimension in ("SERVICE", "USAGE_TYPE", "REGION", "OPERATION", "LINKED_ACCOUNT"):
        answer = world.ce.get_dimension_values(TimePeriod=world.period(), Dimension=dimension)
        values = [v["Value"] for v in answer["DimensionValues"]]
        assert values == sorted({i.dimensions[dimension] for i in found} - {""})
        assert answer["TotalSize"] == answer["ReturnSize"] == len(values)
    account = world.ce.get_dimension_values(TimePeriod=world.period(), Dimension="LINKED_ACCOUNT")
    assert account["DimensionValues"] == [
        {"Value": ACCOUNT, "Attributes": {"description": "default"}}
    ]
    searched = world.ce.get_dimension_values(
        TimePeriod=world.period(), Dimension="USAGE_TYPE", SearchString="CACHE"
    )
    assert searched["DimensionValues"] and all(
        "cache" in v["Value"] for v in searched["DimensionValues"]
    )
    top = world.ce.get_dimension_values(
        TimePeriod=world.period(),
        Dimension="SERVICE",
        SortBy=[{"Key": "UnblendedCost", "SortOrder": "DESCENDING"}],
        MaxResults=2,
    )
    costs = grouped(found, lambda at: "", "SERVICE")
    ranked = sorted(costs, key=lambda k: costs[k][0], reverse=True)
    assert [v["Value"] for v in top["DimensionValues"]] == [k[1][0] for k in ranked[:2]]
    bedrock_only = world.ce.get_dimension_values(
        TimePeriod=world.period(),
        Dimension="REGION",
        Filter={"Dimensions": {"Key": "SERVICE", "Values": ["Amazon Bedrock"]}},
    )
    assert [v["Value"] for v in bedrock_only["DimensionValues"]] == sorted(
        {i.dimensions["REGION"] for i in found if i.dimensions["SERVICE"] == "Amazon Bedrock"}
    )


def test_tags_list_keys_and_a_keys_values(world: World) -> None:
    keys = world.ce.get_tags(TimePeriod=world.period())["Tags"]
    assert {"dept", "team", "cost-center", "tenant_id", "user_id"} <= set(keys)
    assert keys == sorted(keys)
    depts = world.ce.get_tags(TimePeriod=world.period(), TagKey="dept")["Tags"]
    assert depts == sorted({i.tags["dept"] for i in world.items() if i.tags["dept"]})
    filtered = world.ce.get_tags(
        TimePeriod=world.period(),
        TagKey="team",
        Filter={"Tags": {"Key": "dept", "Values": ["claims"]}},
    )["Tags"]
    assert filtered == sorted(
        {i.tags["team"] for i in world.items() if i.tags["dept"] == "claims" and i.tags["team"]}
    )
    with pytest.raises(ClientError) as caught:
        world.ce.get_tags(TimePeriod=world.period(), MaxResults=5)
    assert caught.value.response["Error"]["Code"] == "ValidationException"


def test_dimension_values_refuse_what_llmtrail_has_not(world: World) -> None:
    for request in (
        {"Dimension": "AZ"},
        {"Dimension": "SERVICE", "Context": "RESERVATIONS"},
        {"Dimension": "SERVICE", "SortBy": [{"Key": "UnblendedCost"}], "SearchString": "a"},
        {"Dimension": "SERVICE", "MaxResults": 5000, "SortBy": [{"Key": "UnblendedCost"}]},
    ):
        with pytest.raises(ClientError) as caught:
            world.ce.get_dimension_values(TimePeriod=world.period(), **request)
        assert caught.value.response["Error"]["Code"] == "ValidationException", request
