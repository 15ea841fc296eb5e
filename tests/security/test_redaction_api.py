"""``/api/redaction`` mounted in a small Starlette app (until the server mounts it), with a
test middleware standing in for access control: it puts the principal a header names in the
scope, as the real front door does. The CLI is tested against the same app served by uvicorn
on 127.0.0.1."""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send

from llmtrail.cli import redaction as redaction_cli
from llmtrail.cli.client import HttpBackend
from llmtrail.errors import LlmtrailError
from llmtrail.security.principal import ROLES, SCOPE_KEY, Principal
from llmtrail.security.redaction_store import RedactionPolicies
from llmtrail.server.redaction_api import RedactionAPI
from llmtrail.store.memory import MemoryStateStore
from tests.harness import free_port

OPENAI = "sk-" + "Ab3" * 16


class AsHeaderSays:
    """Puts ``Principal(role=x-role, workspace=x-workspace)`` in the scope."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            role = headers.get(b"x-role", b"admin").decode()
            workspace = headers.get(b"x-workspace", b"default").decode()
            scope[SCOPE_KEY] = Principal(
                role=role, workspace=workspace, key_id="k1", permissions=ROLES[role]
            )
        await self.app(scope, receive, send)


def make_app() -> tuple[Starlette, RedactionPolicies]:
    state = MemoryStateStore()
    policies = RedactionPolicies(state, b"secret-derived-key")
    app = Starlette(routes=RedactionAPI(state, policies).routes())
    app.add_middleware(AsHeaderSays)
    return app, policies


@pytest.fixture
def client() -> Iterator[TestClient]:
    app, _ = make_app()
    with TestClient(app) as c:
        yield c


def test_get_put_delete_in_the_callers_workspace(client: TestClient) -> None:
    first = client.get("/api/redaction").json()
    assert first["isDefault"] is True and first["workspace"] == "default"
    assert first["policy"]["actions"] == {"bodies": "mask", "metadata": "mask", "errors": "mask"}
    policy = {"detectors": ["email"], "actions": {"metadata": "hash"}}
    put = client.put("/api/redaction", json=policy, headers={"x-workspace": "w1"})
    assert put.status_code == 200, put.text
    assert put.json()["policy"]["detectors"] == ["email"]
    assert client.get("/api/redaction", headers={"x-workspace": "w1"}).json() == put.json()
    assert client.get("/api/redaction").json()["isDefault"] is True  # another workspace
    # what GET answers can be PUT back as it is
    again = client.put("/api/redaction", json=put.json(), headers={"x-workspace": "w1"})
    assert again.json() == put.json()
    gone = client.delete("/api/redaction", headers={"x-workspace": "w1"}).json()
    assert gone["deleted"] is True and gone["isDefault"] is True


def test_permissions(client: TestClient) -> None:
    reader = {"x-role": "reader"}
    assert client.get("/api/redaction", headers=reader).status_code == 200
    for method, path in (("PUT", "/api/redaction"), ("DELETE", "/api/redaction"),
                         ("POST", "/api/redaction/test")):  # fmt: skip
        answer = client.request(method, path, json={"text": "x"}, headers=reader)
        assert answer.status_code == 403
        assert answer.json()["permission"] == "manage"
    ingester = {"x-role": "ingester"}
    assert client.get("/api/redaction", headers=ingester).status_code == 403


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"patterns": [{"name": "x", "pattern": "(a+)+"}]}, "patterns[0].pattern"),
        ({"detectors": ["names_addresses"]}, "detectors[0]"),
        ({"actions": {"bodies": "burn"}}, "actions.bodies"),
        ({"policy": {}, "workspace": "other"}, "workspace"),
        ([1, 2], "body"),
    ],
)
def test_bad_puts_are_problems_naming_the_field(client: TestClient, body: Any, field: str) -> None:
    if field == "detectors[0]" and importlib.util.find_spec("presidio_analyzer"):
        pytest.skip("Presidio is installed: names_addresses is accepted")
    answer = client.put("/api/redaction", json=body)
    assert answer.status_code == 400
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["field"] == field
    assert client.put("/api/redaction", content=b"{not json").json()["field"] == "body"


def test_try_a_policy(client: TestClient) -> None:
    text = f"key {OPENAI}, mail jane@example.com"
    stored = client.post("/api/redaction/test", json={"text": text, "group": "bodies"}).json()
    assert stored["text"] == "key [REDACTED:openai_key], mail jane@example.com"
    assert stored["findings"] == [
        {"kind": "openai_key", "start": 4, "end": 4 + len(OPENAI),
         "replacement": "[REDACTED:openai_key]"}
    ]  # fmt: skip
    trial = {"detectors": ["email"], "actions": {"bodies": "hash"}}
    tried = client.post("/api/redaction/test", json={"text": text, "policy": trial}).json()
    assert [f["kind"] for f in tried["findings"]] == ["openai_key", "email"]
    assert "[EMAIL:hmac:" in tried["text"]
    bad = client.post("/api/redaction/test", json={"text": text, "policy": {"detectors": [1]}})
    assert bad.json()["field"] == "policy.detectors[0]"
    assert client.post("/api/redaction/test", json={"group": "errors"}).json()["field"] == "text"


def test_a_put_applies_to_capture_at_once() -> None:
    app, policies = make_app()
    with TestClient(app) as c:
        assert policies.for_workspace("w").redact_text("jane@example.com", "bodies") == (
            "jane@example.com"
        )
        c.put("/api/redaction", json={"detectors": ["email"]}, headers={"x-workspace": "w"})
        assert policies.for_workspace("w").redact_text("jane@example.com", "bodies") == (
            "[REDACTED:email]"
        )


@pytest.fixture
def served() -> Iterator[str]:
    app, _ = make_app()
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def cli_main(argv: list[str]) -> int:
    """``llmtrail`` with only the redaction command registered (the lead adds it to the
    real parser), run as `llmtrail.cli.main` runs a command against a server."""
    parser = argparse.ArgumentParser(prog="llmtrail")
    redaction_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        return int(args.handler(HttpBackend(args.url), args))
    except LlmtrailError as exc:
        print(f"llmtrail: {exc}", file=sys.stderr)
        return 1


def test_cli_over_http(served: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    common = ["--url", served, "--data-dir", str(tmp_path / "data")]
    policy_file = tmp_path / "policy.json"
    policy_file.write_text(json.dumps({"detectors": ["card"], "actions": {"bodies": "drop"}}))
    assert cli_main(["redaction", "put", str(policy_file), *common]) == 0
    assert json.loads(capsys.readouterr().out)["policy"]["detectors"] == ["card"]
    assert cli_main(["redaction", "get", "--output", str(tmp_path / "out.json"), *common]) == 0
    capsys.readouterr()
    assert json.loads((tmp_path / "out.json").read_text())["actions"]["bodies"] == "drop"
    assert cli_main(["redaction", "test", "card 4111 1111 1111 1111", "--json", *common]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["text"] == "" and answer["findings"][0]["kind"] == "card"
    assert cli_main(["redaction", "test", "call 4111", "--group", "errors", *common]) == 0
    assert capsys.readouterr().out.startswith("call 4111\n0 finding(s), errors: mask")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"patterns": [{"name": "x", "pattern": "(a|b)*"}]}))
    assert cli_main(["redaction", "put", str(bad), *common]) == 1
    assert "patterns[0].pattern" in capsys.readouterr().err
    assert cli_main(["redaction", "delete", *common]) == 0
    assert json.loads(capsys.readouterr().out)["isDefault"] is True
