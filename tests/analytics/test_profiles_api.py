"""The ``/api/profiles`` endpoints over a DuckDB state store, through Starlette's TestClient:
Bedrock-shaped bodies and answers, and problem JSON naming the field."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from llmtrail.analytics.profiles import ProfileService
from llmtrail.server.profiles_api import ProfilesAPI
from llmtrail.store.duckdb import Database, DuckDBStateStore
from llmtrail.store.interfaces import StateStore
from llmtrail.store.memory import MemoryStateStore

ACCOUNT = "123456789012"
HAIKU_ARN = "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0"
ARN1 = f"arn:aws:bedrock:us-east-1:{ACCOUNT}:application-inference-profile/prof00000001"


def profile_service(store: StateStore) -> ProfileService:
    counter = iter(range(1, 1000))
    return ProfileService(
        store,
        region="us-east-1",
        account_id=ACCOUNT,
        clock=lambda: datetime(2026, 11, 23, 10, 30, tzinfo=UTC),
        new_id=lambda: f"prof{next(counter):08d}",
    )


@pytest.fixture
def service(tmp_path: Path) -> Iterator[ProfileService]:
    store = DuckDBStateStore(Database(tmp_path / "llmtrail.duckdb"))
    yield profile_service(store)
    store.close()


@pytest.fixture
def client(service: ProfileService) -> Iterator[TestClient]:
    app = Starlette(routes=ProfilesAPI(service).routes())
    with TestClient(app) as c:
        yield c


@pytest.fixture
def memory_client() -> Iterator[TestClient]:
    """For the table of bad requests: the rules do not depend on the backend."""
    app = Starlette(routes=ProfilesAPI(profile_service(MemoryStateStore())).routes())
    with TestClient(app) as c:
        yield c


def create_body(name: str = "claims", **extra: object) -> dict[str, object]:
    return {
        "inferenceProfileName": name,
        "description": "Claims team",
        "modelSource": {"copyFrom": HAIKU_ARN},
        "tags": [{"key": "dept", "value": "claims"}],
        **extra,
    }


def test_profile_lifecycle(client: TestClient, service: ProfileService) -> None:
    created = client.post("/api/profiles", json=create_body())
    assert created.status_code == 201
    assert created.json() == {"inferenceProfileArn": ARN1, "status": "ACTIVE"}

    expected = {
        "inferenceProfileName": "claims",
        "description": "Claims team",
        "createdAt": "2026-11-23T10:30:00.000Z",
        "updatedAt": "2026-11-23T10:30:00.000Z",
        "inferenceProfileArn": ARN1,
        "models": [{"modelArn": HAIKU_ARN}],
        "inferenceProfileId": "prof00000001",
        "status": "ACTIVE",
        "type": "APPLICATION",
    }
    assert client.get("/api/profiles/prof00000001").json() == expected
    assert client.get(f"/api/profiles/{quote(ARN1, safe='')}").json() == expected
    assert client.get(f"/api/profiles/{ARN1}").json() == expected  # the ARN's '/' unencoded

    listed = client.get("/api/profiles", params={"typeEquals": "APPLICATION"}).json()
    assert listed == {"inferenceProfileSummaries": [expected]}

    tagged = client.post(
        f"/api/profiles/{quote(ARN1, safe='')}/tags",
        json={"tags": [{"key": "team", "value": "a"}, {"key": "dept", "value": "fraud"}]},
    )
    assert tagged.status_code == 200
    assert tagged.json() == {
        "tags": [{"key": "dept", "value": "fraud"}, {"key": "team", "value": "a"}]
    }
    resolved = service.resolve(ARN1)
    assert resolved is not None and resolved.stamp()["tags"] == {"dept": "fraud", "team": "a"}

    untagged = client.delete("/api/profiles/prof00000001/tags", params={"tagKeys": "team"})
    assert untagged.json() == {"tags": [{"key": "dept", "value": "fraud"}]}
    assert client.get(f"/api/profiles/{ARN1}/tags").json() == {
        "tags": [{"key": "dept", "value": "fraud"}]
    }

    assert client.delete(f"/api/profiles/{ARN1}").json() == {}
    gone = client.get("/api/profiles/prof00000001")
    assert gone.status_code == 404
    assert gone.headers["content-type"] == "application/problem+json"
    assert service.resolve(ARN1) is None


def test_idempotent_create_and_conflicts(client: TestClient) -> None:
    body = create_body(clientRequestToken="req-1")
    first = client.post("/api/profiles", json=body)
    again = client.post("/api/profiles", json=body)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    duplicate = client.post("/api/profiles", json=create_body())
    assert duplicate.status_code == 409
    assert duplicate.json()["field"] == "inferenceProfileName"
    reused = client.post("/api/profiles", json=create_body("other", clientRequestToken="req-1"))
    assert reused.status_code == 409 and reused.json()["field"] == "clientRequestToken"
    listed = client.get("/api/profiles", params={"typeEquals": "APPLICATION"}).json()
    assert len(listed["inferenceProfileSummaries"]) == 1


def test_list_pages_and_types(client: TestClient) -> None:
    for name in ("a", "b", "c"):
        assert client.post("/api/profiles", json=create_body(name)).status_code == 201
    first = client.get("/api/profiles", params={"typeEquals": "APPLICATION", "maxResults": 2})
    body = first.json()
    assert [s["inferenceProfileName"] for s in body["inferenceProfileSummaries"]] == ["a", "b"]
    rest = client.get(
        "/api/profiles",
        params={"typeEquals": "APPLICATION", "maxResults": 2, "nextToken": body["nextToken"]},
    ).json()
    assert [s["inferenceProfileName"] for s in rest["inferenceProfileSummaries"]] == ["c"]
    assert "nextToken" not in rest
    system = client.get("/api/profiles", params={"type": "SYSTEM_DEFINED", "maxResults": 1000})
    summaries = system.json()["inferenceProfileSummaries"]
    assert summaries and {s["type"] for s in summaries} == {"SYSTEM_DEFINED"}
    one = client.get("/api/profiles/us.anthropic.claude-3-haiku-20240307-v1:0").json()
    assert one["type"] == "SYSTEM_DEFINED"


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "field"),
    [
        ("POST", "/api/profiles", {"content": b"{nope"}, 400, "body"),
        ("POST", "/api/profiles", {"json": ["a list"]}, 400, "body"),
        ("POST", "/api/profiles", {"content": b"x" * 70_000}, 413, "body"),
        (
            "POST",
            "/api/profiles",
            {"json": {"modelSource": {"copyFrom": "m"}}},
            400,
            "inferenceProfileName",
        ),
        ("POST", "/api/profiles", {"json": {"inferenceProfileName": "a"}}, 400, "modelSource"),
        (
            "POST",
            "/api/profiles",
            {"json": {**create_body(), "copyFrom": HAIKU_ARN}},
            400,
            "copyFrom",
        ),
        ("POST", "/api/profiles", {"json": create_body("bad name!")}, 400, "inferenceProfileName"),
        (
            "POST",
            "/api/profiles",
            {"json": create_body(tags=[{"key": "a", "value": "1"}, {"key": "a", "value": "2"}])},
            400,
            "tags[1].key",
        ),
        ("POST", "/api/profiles", {"json": create_body(tags={"a": "b"})}, 400, "tags"),
        ("GET", "/api/profiles?typeEquals=ALL", {}, 400, "typeEquals"),
        ("GET", "/api/profiles?maxResults=ten", {}, 400, "maxResults"),
        ("GET", "/api/profiles?maxResults=5000", {}, 400, "maxResults"),
        ("GET", "/api/profiles?nextToken=zzz", {}, 400, "nextToken"),
        ("GET", "/api/profiles/has%20space", {}, 400, "inferenceProfileIdentifier"),
        ("POST", "/api/profiles/prof00000001/tags", {"json": {}}, 400, "tags"),
        (
            "POST",
            "/api/profiles/prof00000001/tags",
            {"json": {"tags": [{"key": "k"}]}},
            400,
            "tags[0]",
        ),
        ("DELETE", "/api/profiles/prof00000001/tags", {}, 400, "tagKeys"),
        ("DELETE", "/api/profiles/prof00000001/tags?tagKeys=aws:x", {}, 400, "tagKeys[0]"),
        (
            "DELETE",
            "/api/profiles/us.amazon.nova-lite-v1:0",
            {},
            400,
            "inferenceProfileIdentifier",
        ),
    ],
)
def test_bad_requests_are_problems_naming_the_field(
    memory_client: TestClient,
    method: str,
    path: str,
    kwargs: dict[str, object],
    status: int,
    field: str,
) -> None:
    client = memory_client
    assert client.post("/api/profiles", json=create_body()).status_code == 201
    answer = client.request(method, path, **kwargs)  # type: ignore[arg-type]
    assert answer.status_code == status
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["status"] == status and problem["field"] == field and problem["detail"]


def test_unknown_profile_is_404(client: TestClient) -> None:
    for method, path in (
        ("GET", "/api/profiles/nosuchprofil"),
        ("DELETE", "/api/profiles/nosuchprofil"),
        ("GET", "/api/profiles/nosuchprofil/tags"),
    ):
        answer = client.request(method, path)
        assert answer.status_code == 404, (method, path)
        assert "nosuchprofil" in answer.json()["detail"]
