"""The server's front door on a real server: open on loopback without keys, closed once a key
exists or beyond loopback, refusals in each route's shape, Host and cross-site checks, the
login session, gateway keys' models and limits, and identities that are keyed hashes."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from tests.harness import ServerProcess, free_port

CHAT = {"model": "sim/echo", "messages": [{"role": "user", "content": "hello"}]}


def call(
    url: str,
    method: str = "GET",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any, bytes]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=30) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def create_key(url: str, key: str | None, **spec: Any) -> dict[str, Any]:
    headers = {"content-type": "application/json"}
    if key:
        headers["authorization"] = f"Bearer {key}"
    status, _, body = call(url + "/api/keys", "POST", json.dumps(spec).encode(), headers)
    assert status == 201, body
    return json.loads(body)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    data = tmp_path_factory.mktemp("front") / "data"
    env = {"LLMTRAIL_SERVER__KEY_REFRESH_S": "1"}
    with ServerProcess(data, env=env) as s:
        yield s


@pytest.fixture(scope="module")
def admin(server: ServerProcess) -> str:
    # open mode: anyone on loopback may make the first key, and it must be an admin key
    status, _, body = call(
        server.url + "/api/keys",
        "POST",
        b'{"role": "reader"}',
        {"content-type": "application/json"},
    )
    assert status == 400 and json.loads(body)["field"] == "role"
    return str(create_key(server.url, None, role="admin", name="operator")["key"])


def auth(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}", "content-type": "application/json"}


def test_once_a_key_exists_anonymous_callers_get_401_in_each_routes_shape(
    server: ServerProcess, admin: str
) -> None:
    u = server.url
    status, headers, body = call(u + "/api/records")
    assert status == 401 and json.loads(body)["status"] == 401
    assert headers.get("www-authenticate") == "Bearer"
    status, _, body = call(u + "/v1/chat/completions", "POST", json.dumps(CHAT).encode(),
                           {"content-type": "application/json"})  # fmt: skip
    assert status == 401 and json.loads(body)["error"]["code"] == "invalid_api_key"
    status, _, body = call(u + "/v1/messages", "POST", b"{}", {"content-type": "application/json"})
    assert status == 401 and json.loads(body)["error"]["type"] == "authentication_error"
    status, headers, _ = call(u + "/model/sim.x/converse", "POST", b"{}",
                              {"content-type": "application/json"})  # fmt: skip
    assert status == 403 and headers["x-amzn-ErrorType"] == "UnrecognizedClientException"
    for public in ("/healthz", "/readyz"):
        assert call(u + public)[0] == 200
    # a browser asking for a page goes to the login page, keeping where it was going
    status, headers, _ = call(u + "/logs?since=1h", headers={"accept": "text/html"})
    assert status == 303 and headers["location"].startswith("/login?next=/logs")
    # with the key, in any of the headers SDKs use
    assert call(u + "/api/records", headers=auth(admin))[0] == 200
    assert call(u + "/api/records", headers={"x-api-key": admin})[0] == 200
    assert call(u + "/api/records", headers={"x-llmtrail-key": admin})[0] == 200
    assert call(u + "/api/records", headers=auth(admin + "x"))[0] == 401


def test_every_route_needs_a_key(server: ServerProcess, admin: str, tmp_path: Path) -> None:
    """Every route the app mounts, with made-up path parameters: anonymous is 401 (or the
    Bedrock 403) everywhere but the public routes."""
    from llmtrail.config import Settings
    from llmtrail.server.app import create_app
    from llmtrail.server.runtime import Runtime

    runtime = Runtime(Settings(data_dir=tmp_path / "d"))
    try:
        app = create_app(runtime, lifespan=False, access=False)
        starlette = _starlette_of(app)
        paths = []
        for route in starlette.routes:
            path = re.sub(r"\{[^}]+\}", "x", route.path)
            for method in sorted(route.methods or {"GET"}):
                if method != "HEAD":
                    paths.append((method, path, getattr(route, "permission", "?")))
    finally:
        runtime.close()
    assert len(paths) > 40
    for method, path, permission in paths:
        status, _, body = call(server.url + path, method, b"{}" if method != "GET" else None,
                               {"content-type": "application/json"})  # fmt: skip
        if permission == "public" or path == "/static/x":
            assert status < 500, (method, path, body)
        else:
            assert status == 401, (method, path, status, body)


def _starlette_of(app: Any) -> Any:
    for cell in app.__closure__ or ():
        if type(cell.cell_contents).__name__ == "Starlette":
            return cell.cell_contents
    raise AssertionError("no Starlette app inside")


def test_foreign_host_and_cross_site_posts_are_refused(server: ServerProcess, admin: str) -> None:
    u = server.url
    status, _, _ = call(u + "/healthz", headers={"host": "attacker.example"})
    assert status == 421
    status, _, _ = call(u + "/api/records", headers={**auth(admin), "host": "rebound.example:80"})
    assert status == 421
    # a form post a foreign page could send with the operator's session cookie
    cookie = _login(u, admin)
    for kind in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; b=x"):
        status, _, body = call(u + "/api/records", "POST", b'{"requestId": "x"}',
                               {"content-type": kind, "cookie": cookie})  # fmt: skip
        assert status == 403 and b"Cross-site" in body, (kind, body)
    # a browser's POST without a content type (a typeless Blob) carries Origin
    status, _, body = call(u + "/api/records", "POST", b'{"requestId": "x"}',
                           {"origin": "http://attacker.example", "cookie": cookie})  # fmt: skip
    assert status == 403 and b"Cross-site" in body
    # the same form post with the page's CSRF token is the UI's own, and passes the check
    token = _csrf_of_page(u, cookie)
    status, _, body = call(u + "/api/records", "POST", b"{}",
                           {"content-type": "text/plain", "cookie": cookie,
                            "x-llmtrail-csrf": token})  # fmt: skip
    assert status != 403, body


def _csrf_of_page(u: str, cookie: str) -> str:
    status, _, page = call(u + "/logs", headers={"cookie": cookie, "accept": "text/html"})
    assert status == 200
    found = re.search(rb'<meta name="csrf-token" content="([^"]+)"', page)
    assert found is not None
    return found.group(1).decode()


def _login(u: str, key: str) -> str:
    status, _, page = call(u + "/login")
    assert status == 200
    token = re.search(rb'name="csrf" value="([^"]+)"', page)
    assert token is not None
    form = f"key={key}&csrf={token.group(1).decode()}&next=/logs".encode()
    status, headers, _ = call(u + "/login", "POST", form,
                              {"content-type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert status == 303 and headers["location"] == "/logs"
    set_cookie = headers["set-cookie"]
    assert "HttpOnly" in set_cookie and "SameSite=strict" in set_cookie
    return set_cookie.split(";", 1)[0]


def test_login_session_reads_pages_and_dies_with_its_key(server: ServerProcess, admin: str) -> None:
    u = server.url
    reader = create_key(u, admin, role="reader", name="ui")
    cookie = _login(u, reader["key"])
    status, _, page = call(u + "/logs", headers={"cookie": cookie, "accept": "text/html"})
    assert status == 200 and b"<html" in page
    # a login form without its CSRF token is refused (login CSRF)
    status, _, _ = call(u + "/login", "POST", f"key={reader['key']}".encode(),
                        {"content-type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert status == 403
    forged = cookie[:-4] + "abcd"
    assert call(u + "/logs", headers={"cookie": forged, "accept": "text/html"})[0] == 303
    status, _, _ = call(u + f"/api/keys/{reader['id']}", "DELETE", headers=auth(admin))
    assert status == 200
    server_sees_revocation(u, {"cookie": cookie, "accept": "application/json"})


def server_sees_revocation(u: str, headers: dict[str, str]) -> None:
    import time

    deadline = time.monotonic() + 10
    while call(u + "/api/records", headers=headers)[0] == 200:
        assert time.monotonic() < deadline, "a revoked key still works after 10 s"
        time.sleep(0.1)
    assert call(u + "/api/records", headers=headers)[0] == 401


def test_gateway_keys_models_limits_workspace_and_identity(
    server: ServerProcess, admin: str
) -> None:
    u = server.url
    gw = create_key(u, admin, role="gateway", workspace="acme", models=["sim/*"], rpm=2)
    with openai.OpenAI(base_url=u + "/v1", api_key=gw["key"], max_retries=0) as client:
        reply = client.chat.completions.with_raw_response.create(**CHAT)
        request_id = reply.headers["x-llmtrail-request-id"]
        with pytest.raises(openai.PermissionDeniedError):
            client.chat.completions.create(model="gpt-4o", messages=CHAT["messages"])
        client.chat.completions.create(**CHAT)
        with pytest.raises(openai.RateLimitError, match="requests per minute"):
            client.chat.completions.create(**CHAT)
    # the record is in the key's workspace, named by the key's id, never by the key
    acme_admin = create_key(u, admin, role="admin", workspace="acme")["key"]
    status, body = wait_for(u + f"/api/records/{request_id}", auth(acme_admin))
    assert status == 200, body
    record = json.loads(body)
    assert record["workspace"] == "acme"
    assert record["identity"]["arn"].endswith(f":key/{gw['id']}")
    assert call(u + f"/api/records/{request_id}", headers=auth(admin))[0] == 404
    # a gateway key reads nothing; a reader key calls no model
    assert call(u + "/api/records", headers=auth(gw["key"]))[0] == 403
    reader = create_key(u, admin, role="reader")["key"]
    with (
        anthropic.Anthropic(base_url=u, api_key=reader, max_retries=0) as claude,
        pytest.raises(anthropic.PermissionDeniedError),
    ):
        claude.messages.create(
            model="sim/echo", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        )


def wait_for(url: str, headers: dict[str, str]) -> tuple[int, bytes]:
    """The record once the pipeline stored it (404 until then)."""
    import time

    deadline = time.monotonic() + 20
    while True:
        status, _, body = call(url, headers=headers)
        if status != 404 or time.monotonic() > deadline:
            return status, body
        time.sleep(0.05)


def test_non_loopback_bind_needs_an_admin_key(tmp_path: Path) -> None:
    data = tmp_path / "data"
    port = free_port()
    argv = [sys.executable, "-m", "llmtrail", "serve", "--host", "0.0.0.0", "--port", str(port),
            "--data-dir", str(data)]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "LLMTRAIL_ADMIN_KEY"}
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "needs an admin key first" in done.stderr
    assert "llmtrail keys create --role admin" in done.stderr
    with socket.socket() as probe:  # nothing is left listening
        assert probe.connect_ex(("127.0.0.1", port)) != 0
    # with an admin key from the environment it starts, and wants keys everywhere
    key = "operator-chosen-admin-key-0123456789"
    server = ServerProcess(data, args=("--host", "0.0.0.0"), env={"LLMTRAIL_ADMIN_KEY": key})
    with server:
        assert call(server.url + "/api/records")[0] == 401
        assert call(server.url + "/api/records", headers=auth(key))[0] == 200
        assert call(server.url + "/healthz")[0] == 200
    assert key not in (data / "llmtrail.duckdb").read_bytes().decode("latin-1")


def test_a_server_started_with_another_secret_refuses(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = ServerProcess(data, env={"LLMTRAIL_SERVER__SECRET_ENV": "LT_SECRET",
                                     "LT_SECRET": "a" * 40})  # fmt: skip
    with first:
        pass
    argv = [sys.executable, "-m", "llmtrail", "serve", "--port", str(free_port()),
            "--data-dir", str(data)]  # fmt: skip
    env = {**os.environ, "LLMTRAIL_SERVER__SECRET_ENV": "LT_SECRET", "LT_SECRET": "b" * 40}
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "does not match" in done.stderr
