"""Query definitions with boto3's ``logs`` client against a real server are llmtrail's saved
queries: what ``put_query_definition`` saves, ``GET /api/saved-queries`` lists and
``POST /api/query`` runs by name; what ``/api/saved-queries`` saves,
``describe_query_definitions`` lists; an update by id (a rename included) keeps the id;
deletes go both ways; pages continue without repeats; refusals are AWS's codes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from botocore.exceptions import ClientError

from tests.aws.conftest import AwsServer
from tests.aws.test_logs_support import GROUP, code, logs_client, rows_of, unchecked_logs
from tests.harness import call


@pytest.fixture
def logs(aws_server: AwsServer) -> Iterator[Any]:
    yield from logs_client(aws_server)


@pytest.fixture
def unchecked(aws_server: AwsServer) -> Iterator[Any]:
    yield from unchecked_logs(aws_server)


def saved(url: str) -> dict[str, dict[str, Any]]:
    status, answer = call(url, "GET", "/api/saved-queries")
    assert status == 200, answer
    return {q["name"]: q for q in answer["queries"]}


def definitions(logs: Any, prefix: str) -> dict[str, dict[str, Any]]:
    found = logs.describe_query_definitions(queryDefinitionNamePrefix=prefix)
    return {d["name"]: d for d in found["queryDefinitions"]}


def test_a_definition_is_a_saved_query(aws_server: AwsServer, logs: Any, unique: str) -> None:
    name = f"{unique}/slow calls"
    text = "fields @timestamp, modelId, latencyMs | filter latencyMs > 1 | sort latencyMs desc"
    made = logs.put_query_definition(name=name, queryString=text, logGroupNames=[GROUP])
    mine = saved(aws_server.url)[name]
    assert mine["queryString"] == text
    # llmtrail runs it by name, as POST /api/query does any saved query
    status, by_name = call(aws_server.url, "POST", "/api/query", {"name": name, "since": "1d"})
    assert status == 200, by_name
    assert by_name["fields"] == ["@timestamp", "modelId", "latencyMs"]
    listed = definitions(logs, unique)
    assert listed == {
        name: {
            "queryLanguage": "CWLI",
            "queryDefinitionId": made["queryDefinitionId"],
            "name": name,
            "queryString": text,
            "lastModified": listed[name]["lastModified"],
            "logGroupNames": [GROUP],
        }
    }
    assert listed[name]["lastModified"] > 0


def test_a_saved_query_is_a_definition(aws_server: AwsServer, logs: Any, unique: str) -> None:
    name = f"{unique}-errors"
    text = 'filter status = "ERROR" | stats count(*) by error.type'
    status, answer = call(
        aws_server.url, "PUT", f"/api/saved-queries/{quote(name)}", {"queryString": text}
    )
    assert status == 200, answer
    listed = definitions(logs, unique)[name]
    assert listed["queryString"] == text and listed["logGroupNames"] == []
    # the id is stable: asked twice, the same; deleting by it removes the saved query
    assert definitions(logs, unique)[name]["queryDefinitionId"] == listed["queryDefinitionId"]
    assert logs.delete_query_definition(queryDefinitionId=listed["queryDefinitionId"])["success"]
    assert name not in saved(aws_server.url)
    status, _ = call(aws_server.url, "GET", f"/api/saved-queries/{quote(name)}")
    assert status == 404


def test_an_update_by_id_keeps_the_id_through_a_rename(
    aws_server: AwsServer, logs: Any, unique: str
) -> None:
    first = logs.put_query_definition(name=f"{unique}-a", queryString="stats count(*)")
    ident = first["queryDefinitionId"]
    again = logs.put_query_definition(
        queryDefinitionId=ident,
        name=f"{unique}-b",
        queryString="stats count(*) by modelId",
        parameters=[{"name": "model", "defaultValue": "sim/fast", "description": "model id"}],
    )
    assert again["queryDefinitionId"] == ident
    listed = definitions(logs, unique)
    assert list(listed) == [f"{unique}-b"]
    assert listed[f"{unique}-b"]["queryDefinitionId"] == ident
    assert listed[f"{unique}-b"]["queryString"] == "stats count(*) by modelId"
    assert listed[f"{unique}-b"]["parameters"] == [
        {"name": "model", "defaultValue": "sim/fast", "description": "model id"}
    ]
    assert listed[f"{unique}-b"]["logGroupNames"] == []  # an update replaces every member
    names = saved(aws_server.url)
    assert f"{unique}-b" in names and f"{unique}-a" not in names
    # the renamed query runs through llmtrail's own API by its new name
    status, ran = call(aws_server.url, "POST", "/api/query", {"name": f"{unique}-b"})
    assert status == 200, ran
    assert ran["fields"] == ["modelId", "count(*)"] and rows_of(ran)
    assert logs.delete_query_definition(queryDefinitionId=ident)["success"]
    assert definitions(logs, unique) == {}


def test_a_put_of_a_saved_name_replaces_it(aws_server: AwsServer, logs: Any, unique: str) -> None:
    name = f"{unique}-same"
    one = logs.put_query_definition(name=name, queryString="stats count(*)")
    two = logs.put_query_definition(name=name, queryString="stats avg(latencyMs)")
    assert one["queryDefinitionId"] == two["queryDefinitionId"]
    assert saved(aws_server.url)[name]["queryString"] == "stats avg(latencyMs)"
    assert len(definitions(logs, unique)) == 1


def test_pages_of_definitions(logs: Any, unique: str) -> None:
    names = [f"{unique}-{i:02d}" for i in range(7)]
    for name in names:
        logs.put_query_definition(name=name, queryString="stats count(*)")
    walked, token = [], None
    while True:
        extra = {"nextToken": token} if token else {}
        page = logs.describe_query_definitions(
            queryDefinitionNamePrefix=unique, maxResults=3, **extra
        )
        assert len(page["queryDefinitions"]) <= 3
        walked += [d["name"] for d in page["queryDefinitions"]]
        token = page.get("nextToken")
        if token is None:
            break
    assert walked == names


@pytest.mark.parametrize(
    ("operation", "params", "expected"),
    [
        (
            "put_query_definition",
            {"name": "x", "queryString": "stats count(", "queryDefinitionId": None},
            "InvalidParameterException",
        ),
        (
            "put_query_definition",
            {"name": "bad*name", "queryString": "stats count(*)"},
            "InvalidParameterException",
        ),
        (
            "put_query_definition",
            {"name": "x", "queryString": "stats count(*)", "queryDefinitionId": "nope"},
            "ResourceNotFoundException",
        ),
        (
            "put_query_definition",
            {"name": "x", "queryString": "stats count(*)", "logGroupNames": ["/no/such"]},
            "ResourceNotFoundException",
        ),
        ("delete_query_definition", {"queryDefinitionId": "nope"}, "ResourceNotFoundException"),
        ("describe_query_definitions", {"nextToken": "garbage"}, "InvalidParameterException"),
    ],
)
def test_refusals(logs: Any, operation: str, params: dict[str, Any], expected: str) -> None:
    params = {k: v for k, v in params.items() if v is not None}
    with pytest.raises(ClientError) as caught:
        getattr(logs, operation)(**params)
    assert code(caught) == expected


def test_a_rename_onto_another_definition_is_refused(logs: Any, unique: str) -> None:
    one = logs.put_query_definition(name=f"{unique}-1", queryString="stats count(*)")
    logs.put_query_definition(name=f"{unique}-2", queryString="stats count(*)")
    with pytest.raises(ClientError) as caught:
        logs.put_query_definition(
            queryDefinitionId=one["queryDefinitionId"],
            name=f"{unique}-2",
            queryString="stats count(*)",
        )
    assert code(caught) == "InvalidParameterException"
    assert sorted(definitions(logs, unique)) == [f"{unique}-1", f"{unique}-2"]


@pytest.mark.parametrize(
    ("operation", "params"),
    [
        ("put_query_definition", {"queryString": "stats count(*)"}),  # no name
        ("put_query_definition", {"name": "", "queryString": "stats count(*)"}),
        ("describe_query_definitions", {"maxResults": 1001}),
        ("delete_query_definition", {}),
    ],
)
def test_input_breaking_the_model_is_refused_by_the_server(
    unchecked: Any, operation: str, params: dict[str, Any]
) -> None:
    with pytest.raises(ClientError) as caught:
        getattr(unchecked, operation)(**params)
    assert code(caught) == "InvalidParameterException"
    assert "validation error" in caught.value.response["Error"]["Message"]
