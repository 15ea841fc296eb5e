"""10,000 mutated credentials against a real server that needs keys: none succeeds, none
gets a 5xx, and the server answers the real key afterwards as before."""

from __future__ import annotations

import http.client
import json
import random
from typing import Any

import pytest

from tests.harness import ServerProcess

COUNT = 10_000
PATHS = [
    ("GET", "/api/records"),
    ("POST", "/api/query"),
    ("GET", "/api/keys"),
    ("POST", "/v1/chat/completions"),
    ("POST", "/v1/messages"),
    ("GET", "/logs"),
]


def mutate(rng: random.Random, key: str) -> str:
    """A credential near ``key``: a changed, dropped, doubled or added character, a cut, a
    case change, padding, another key's shape, or bytes that are not text."""
    choice = rng.randrange(10)
    i = rng.randrange(len(key))
    if choice == 0:
        return (
            key[:i] + chr(rng.randrange(33, 127)) + key[i + 1 :]
            if key[i] != "x"
            else key[:i] + "y" + key[i + 1 :]
        )
    if choice == 1:
        return key[:i] + key[i + 1 :]
    if choice == 2:
        return key[:i] + key[i] + key[i:]
    if choice == 3:
        return key[:i]
    if choice == 4:
        return key.swapcase()
    if choice == 5:
        return key + rng.choice(["=", "\t", "%00", "_", "x" * rng.randrange(1, 5000)])
    if choice == 6:
        return "ltk_" + "".join(rng.choice("abcdef0123456789") for _ in range(12)) + key[16:]
    if choice == 7:
        return "".join(rng.choice("ÿ\x01\x7f é") for _ in range(rng.randrange(1, 40)))
    if choice == 8:
        return key[: len(key) // 2] + key[len(key) // 2 :][::-1]
    return ""


def headers_for(rng: random.Random, credential: str) -> dict[str, str]:
    form = rng.randrange(6)
    if form == 0:
        return {"Authorization": f"Bearer {credential}"}
    if form == 1:
        return {
            "Authorization": rng.choice(["Basic ", "bearer", "Bearer  ", "Token "]) + credential
        }
    if form == 2:
        return {"x-api-key": credential}
    if form == 3:
        return {"x-llmtrail-key": credential}
    if form == 4:
        return {
            "Cookie": f"llmtrail_session={credential}.{rng.randrange(10**10)}.n.{credential[:8]}"
        }
    return {
        "Authorization": f"AWS4-HMAC-SHA256 Credential={credential[:20]}/20261206/us-east-1/"
        "bedrock/aws4_request, SignedHeaders=host;x-amz-date, Signature=" + "0" * 64
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with ServerProcess(tmp_path_factory.mktemp("fuzz") / "data") as s:
        yield s


def test_mutated_credentials_never_succeed_nor_fail_the_server(server: ServerProcess) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.request("POST", "/api/keys", b'{"role": "admin"}', {"content-type": "application/json"})
    key = json.loads(conn.getresponse().read())["key"]
    rng = random.Random(20261206)
    seen: dict[int, int] = {}
    for n in range(COUNT):
        method, path = PATHS[n % len(PATHS)]
        credential = mutate(rng, key)
        if credential.strip(" \t") == key:  # header values lose surrounding blanks: no change
            continue
        headers = {"content-type": "application/json", **headers_for(rng, credential)}
        body = b'{"query": "fields @timestamp"}' if method == "POST" else None
        if rng.randrange(8) == 0:
            path = "/model/sim.echo/converse"
            method = "POST"
            body = b'{"messages": []}'
        try:
            conn.request(method, path, body, _latin1(headers))
            response = conn.getresponse()
            response.read()
        except http.client.HTTPException:  # the server refused a header it cannot parse
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
            continue
        seen[response.status] = seen.get(response.status, 0) + 1
        assert response.status < 500, (n, path, headers)
        assert response.status in (303, 400, 401, 403, 413, 421), (
            n,
            path,
            headers,
            response.status,
        )
    conn.close()
    assert sum(seen.values()) > COUNT * 0.9, seen
    ok = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    ok.request("GET", "/api/records", headers={"authorization": f"Bearer {key}"})
    assert ok.getresponse().status == 200
    ok.close()


def _latin1(headers: dict[str, str]) -> dict[str, str]:
    """http.client sends header values as latin-1: keep what it can encode."""
    return {k: v.encode("latin-1", "replace").decode("latin-1") for k, v in headers.items()}
