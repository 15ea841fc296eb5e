"""Cost Explorer's GetDimensionValues and GetTags with the official boto3 ``ce`` client
against a real server of this module's own (the records of `test_ce_expected.served`): every
value listed is one the records llmtrail's ``/api/records`` answers have, sorted, searched and
filtered as asked; what llmtrail has not is refused."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from botocore.exceptions import ClientError

from tests.aws.conftest import ACCOUNT
from tests.aws.test_ce_expected import World, grouped, served


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    yield from served(tmp_path_factory.mktemp("ce-values"))


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
