"""End to end against a running server: one request to the built-in ``sim`` cannot freeze or
exhaust the server.

- Embeddings are refused past OpenAI's own limits (2,048 inputs, 8,192 tokens an input,
  300,000 in all, ``dimensions`` from 1 to the model's size) with a 400 in OpenAI's shape whose
  ``param`` names the field and whose message names the limit; the next caller is served.
- The CPU work of an answer (vectors, token counting, hashing a 30 MB prompt) runs off the
  event loop: ``/healthz`` is answered while such a request is still in flight. Shown by
  order, not by time: the health check's answer arrives while the heavy request's socket has
  not received a byte.
"""

from __future__ import annotations

import json
import select
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from llmtrail.capture.gateway.providers.sim.embeddings import (
    MAX_INPUT_TOKENS,
    MAX_INPUTS,
    MAX_REQUEST_TOKENS,
)
from tests.harness import ServerProcess


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with ServerProcess(tmp_path_factory.mktemp("sim-limits") / "data") as proc:
        yield proc


def embed(server: ServerProcess, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(server.url + "/v1/embeddings", json=body, timeout=120)


# "the" is one token, and so is " the": N words are N tokens
def words(n: int) -> str:
    return " ".join(["the"] * n)


REFUSED = {
    "too many inputs": (
        {"input": [f"x{i}" for i in range(MAX_INPUTS + 1)]},
        "input",
        f"the limit is {MAX_INPUTS} per request",
    ),
    "dimensions over the largest model's": (
        {"input": "x", "dimensions": 8192},
        "dimensions",
        "from 1 to 3072",
    ),
    "dimensions over the model's size": (
        {"input": "x", "dimensions": 2048, "model": "sim/text-embedding-3-small"},
        "dimensions",
        "from 1 to 1536",
    ),
    "dimensions 0": ({"input": "x", "dimensions": 0}, "dimensions", "from 1 to 3072"),
    "dimensions not a number": ({"input": "x", "dimensions": "9"}, "dimensions", "integer"),
    "an input over the token limit": (
        {"input": ["ok", words(MAX_INPUT_TOKENS + 1)]},
        "input[1]",
        f"the limit is {MAX_INPUT_TOKENS} tokens per input",
    ),
    "a token array over the token limit": (
        {"input": [[1] * (MAX_INPUT_TOKENS + 1)]},
        "input[0]",
        f"the limit is {MAX_INPUT_TOKENS} tokens per input",
    ),
    "too many tokens in all": (
        {"input": [words(MAX_INPUT_TOKENS)] * (MAX_REQUEST_TOKENS // MAX_INPUT_TOKENS + 1)},
        "input",
        f"the limit is {MAX_REQUEST_TOKENS} tokens per request",
    ),
    "no input": ({"dimensions": 8}, "input", "is required"),
    "an empty list": ({"input": []}, "input", "is required"),  # the gateway says so first
    "an input of the wrong type": ({"input": ["x", {"a": 1}]}, "input[1]", "must be a string"),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_embeddings_past_openais_limits_are_a_400_naming_field_and_limit(
    server: ServerProcess, case: str
) -> None:
    body, param, limit = REFUSED[case]
    answer = embed(server, {"model": "sim/e", **body})
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert error["message"].startswith(f"{param}: ") and limit in error["message"], error
    # the call is recorded as the error it was
    record = server.wait_for_record(answer.headers["x-llmtrail-request-id"])
    assert record["status"] == "ERROR" and record["error"]["httpStatus"] == 400
    # and the next caller is served
    assert embed(server, {"model": "sim/e", "input": "next", "dimensions": 4}).status_code == 200


def test_the_openai_client_sees_a_bad_request_naming_the_field(server: ServerProcess) -> None:
    with openai.OpenAI(base_url=server.url + "/v1", api_key="sk-x", max_retries=0) as client:
        with pytest.raises(openai.BadRequestError) as refused:
            client.embeddings.create(model="sim/e", input="x", dimensions=8192)
        assert refused.value.param == "dimensions"
        ok = client.embeddings.create(model="sim/e", input=["a", "b"], dimensions=16)
    assert [len(d.embedding) for d in ok.data] == [16, 16]


def test_embeddings_at_the_limits_are_answered(server: ServerProcess) -> None:
    answer = embed(
        server,
        {"model": "sim/e", "input": [words(MAX_INPUT_TOKENS), "b"], "dimensions": 3072},
    )
    assert answer.status_code == 200, answer.text
    doc = answer.json()
    assert [len(d["embedding"]) for d in doc["data"]] == [3072, 3072]
    assert doc["usage"]["prompt_tokens"] == MAX_INPUT_TOKENS + 1


def raw_post(server: ServerProcess, path: str, body: dict[str, Any]) -> socket.socket:
    """Send a whole POST on a socket of its own and return it, unread."""
    payload = json.dumps(body).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
        f"content-length: {len(payload)}\r\nconnection: close\r\n\r\n"
    ).encode()
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=600)
    sock.sendall(head + payload)
    return sock


def answered_yet(sock: socket.socket) -> bool:
    return bool(select.select([sock], [], [], 0)[0])


def read_status(sock: socket.socket) -> int:
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection without an answer"
        data += chunk
    return int(data.split(b" ", 2)[1])


HEAVY = {
    "embeddings of 2,048 inputs at 3,072 dimensions": (
        "/v1/embeddings",
        {"model": "sim/e", "input": [f"x{i}" for i in range(MAX_INPUTS)], "dimensions": 3072},
    ),
    "a 30 MB chat prompt": (
        "/v1/chat/completions",
        {"model": "sim/big", "messages": [{"role": "user", "content": words(7_500_000)}]},
    ),
}


@pytest.mark.parametrize("case", list(HEAVY))
def test_the_event_loop_serves_others_while_sim_works(server: ServerProcess, case: str) -> None:
    path, body = HEAVY[case]
    with raw_post(server, path, body) as heavy:
        health = httpx.get(server.url + "/healthz", timeout=600)
        assert health.status_code == 200
        # the health check was answered before the heavy request's first byte
        assert not answered_yet(heavy), "the health check waited for the heavy request"
        assert read_status(heavy) == 200
