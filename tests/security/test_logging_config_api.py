"""GET/PUT/DELETE /api/logging-configuration on a small Starlette app (the real API class and
routes, a test front door putting a principal in the scope), and ``llmtrail logging`` against
it over real HTTP."""

from __future__ import annotations

import argparse
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send

from llmtrail.cli import logging_config as cli
from llmtrail.cli.client import HttpBackend
from llmtrail.errors import ValidationError
from llmtrail.security.logging_config import (
    OFF,
    LoggingConfigs,
    LoggingConfigStore,
)
from llmtrail.security.principal import ROLES, SCOPE_KEY, Permission, Principal
from llmtrail.server.logging_config_api import MAX_BODY, PATH, LoggingConfigAPI
from llmtrail.store.memory import MemoryStateStore
from tests.served import Served

from .test_logging_config import AWS_BODY


class FrontDoor:
    """Puts the principal named by ``x-test-role`` / ``x-test-workspace`` in the scope, as
    the access middleware does from a key."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            role = headers.get(b"x-test-role", b"admin").decode()
            workspace = headers.get(b"x-test-workspace", b"default").decode()
            scope[SCOPE_KEY] = Principal(
                role=role, workspace=workspace, key_id=f"{role}-key", permissions=ROLES[role],
                via="bearer",
            )  # fmt: skip
        await self.app(scope, receive, send)


@pytest.fixture
def parts() -> tuple[LoggingConfigStore, LoggingConfigs]:
    store = LoggingConfigStore(MemoryStateStore())
    return store, LoggingConfigs(store)


def make_app(store: LoggingConfigStore, configs: LoggingConfigs) -> Starlette:
    api = LoggingConfigAPI(store, configs)
    app = Starlette(routes=api.routes())
    app.add_middleware(FrontDoor)
    return app


@pytest.fixture
def client(parts: Any) -> Iterator[TestClient]:
    with TestClient(make_app(*parts)) as test_client:
        yield test_client


def as_(role: str = "admin", workspace: str = "default") -> dict[str, str]:
    return {"x-test-role": role, "x-test-workspace": workspace}


def test_routes_declare_their_permissions(parts: Any) -> None:
    routes = LoggingConfigAPI(parts[0]).routes()
    declared = {
        (tuple(sorted((r.methods or set()) - {"HEAD"})), getattr(r, "permission", None))
        for r in routes
    }
    assert declared == {
        (("GET",), Permission.READ),
        (("PUT",), Permission.MANAGE),
        (("DELETE",), Permission.MANAGE),
    }


def test_get_answers_the_default(client: TestClient) -> None:
    answer = client.get(PATH, headers=as_("reader")).json()
    assert answer["llmtrail"]["state"] == "default" and answer["llmtrail"]["isDefault"] is True
    assert answer["loggingConfig"]["textDataDeliveryEnabled"] is True
    assert answer["allowNoLog"] is True


def test_put_get_delete_in_bedrocks_shape(client: TestClient, parts: Any) -> None:
    store, configs = parts
    put = client.put(PATH, json=AWS_BODY, headers=as_())
    assert put.status_code == 200, put.text
    got = client.get(PATH, headers=as_("reader")).json()
    assert got == put.json()
    given = AWS_BODY["loggingConfig"]
    assert {k: got["loggingConfig"][k] for k in given} == given
    assert got["llmtrail"]["state"] == "configured" and got["llmtrail"]["updatedBy"] == (
        "key/admin-key"
    )
    assert configs.for_workspace("default").image_data_delivery_enabled is False
    deleted = client.delete(PATH, headers=as_())
    assert deleted.status_code == 200
    got = client.get(PATH, headers=as_("reader")).json()
    assert "loggingConfig" not in got and got["llmtrail"]["state"] == "off"
    assert "no request or response body" in got["llmtrail"]["meaning"]
    assert configs.for_workspace("default") == store.get("default")
    assert store.get("default").state == OFF.state
    assert deleted.json()["llmtrail"]["updatedBy"] == "key/admin-key"
    # a GET's answer goes back in unchanged
    client.put(PATH, json=AWS_BODY, headers=as_())
    again = client.put(PATH, json=client.get(PATH, headers=as_()).json(), headers=as_())
    assert again.json()["loggingConfig"] == client.get(PATH).json()["loggingConfig"]


def test_each_workspace_sees_only_its_own(client: TestClient) -> None:
    client.put(PATH, json=AWS_BODY, headers=as_(workspace="claims"))
    client.delete(PATH, headers=as_(workspace="billing"))
    states = {
        ws: client.get(PATH, headers=as_("reader", ws)).json()["llmtrail"]["state"]
        for ws in ("claims", "billing", "default")
    }
    assert states == {"claims": "configured", "billing": "off", "default": "default"}


@pytest.mark.parametrize("role", ["reader", "ingester", "gateway"])
def test_changes_need_manage(client: TestClient, role: str) -> None:
    for method in ("PUT", "DELETE"):
        answer = client.request(method, PATH, json=AWS_BODY, headers=as_(role))
        assert answer.status_code == 403
        assert answer.json()["permission"] == "manage"
    assert client.get(PATH).json()["llmtrail"]["state"] == "default"
    expected = 200 if role == "reader" else 403
    assert client.get(PATH, headers=as_(role)).status_code == expected


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"", "body"),
        (b"{not json", "body"),
        (b"[]", "body"),
        (b'{"loggingConfig": {"retentionInDays": 3}}', "loggingConfig.retentionInDays"),
        (
            json.dumps({"loggingConfig": {"s3Config": {"bucketName": "b" * 64}}}).encode(),
            "loggingConfig.s3Config.bucketName",
        ),
        (b'{"loggingConfig": {"cloudWatchConfig": {"logGroupName": "g"}}}',
         "loggingConfig.cloudWatchConfig.roleArn"),
    ],
)  # fmt: skip
def test_bad_bodies_are_problem_json_naming_the_field(
    client: TestClient, body: bytes, field: str
) -> None:
    answer = client.put(PATH, content=body, headers={**as_(), "content-type": "application/json"})
    assert answer.status_code == 400
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["field"] == field
    assert client.get(PATH).json()["llmtrail"]["state"] == "default"  # nothing stored


def test_a_body_over_the_limit_is_413(client: TestClient) -> None:
    body = b'{"loggingConfig": {}, "x": "' + b"y" * MAX_BODY + b'"}'
    answer = client.put(PATH, content=body, headers=as_())
    assert answer.status_code == 413 and answer.json()["field"] == "body"
    assert str(MAX_BODY) in answer.json()["detail"]


# -- the CLI, against the app over real HTTP ------------------------------------------------------


@pytest.fixture
def served(parts: Any) -> Iterator[Served]:
    server = Served(make_app(*parts)).start()
    yield server
    server.stop()


def run_cli(url: str, *argv: str) -> tuple[int, Any]:
    parser = argparse.ArgumentParser(prog="llmtrail")
    cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    return args.handler(HttpBackend(url), args), args


def test_cli_put_get_delete(
    served: Served, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = tmp_path / "logging.json"
    body.write_text(json.dumps({**AWS_BODY, "allowNoLog": False}))
    assert run_cli(served.url, "logging", "put", str(body), "--format", "json")[0] == 0
    put = json.loads(capsys.readouterr().out)
    with urllib.request.urlopen(served.url + PATH) as response:
        assert json.loads(response.read()) == put  # the CLI printed the server's answer
    assert put["allowNoLog"] is False

    run_cli(served.url, "logging", "get")
    table = capsys.readouterr().out
    assert "configured" in table and "claims-bedrock-logs/bedrock/invocations/" in table

    out = tmp_path / "saved.json"
    run_cli(served.url, "logging", "get", "--output", str(out))
    capsys.readouterr()
    assert json.loads(out.read_text()) == put
    assert run_cli(served.url, "logging", "put", str(out), "--json")[0] == 0  # round trip
    assert json.loads(capsys.readouterr().out)["loggingConfig"] == put["loggingConfig"]

    run_cli(served.url, "logging", "delete", "--json")
    assert json.loads(capsys.readouterr().out)["llmtrail"]["state"] == "off"


def test_cli_put_from_stdin_and_its_errors(
    served: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps({"loggingConfig": {}})))
    assert run_cli(served.url, "logging", "put", "-", "--json")[0] == 0
    assert json.loads(capsys.readouterr().out)["llmtrail"]["state"] == "configured"
    bad = tmp_path / "bad.json"
    bad.write_text('{"loggingConfig": {"textDataDeliveryEnabled": "yes"}}')
    with pytest.raises(ValidationError) as caught:
        run_cli(served.url, "logging", "put", str(bad))
    assert caught.value.field == "loggingConfig.textDataDeliveryEnabled"
    bad.write_text("{")
    with pytest.raises(ValidationError) as caught:
        run_cli(served.url, "logging", "put", str(bad))
    assert caught.value.field == "FILE"
    with pytest.raises(ValidationError):
        run_cli(served.url, "logging", "put", str(tmp_path / "missing.json"))


def test_served_app_answers_problem_json_over_http(served: Served) -> None:
    request = urllib.request.Request(served.url + PATH, data=b"{", method="PUT")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request)
    assert caught.value.code == 400
    assert json.loads(caught.value.read())["field"] == "body"
