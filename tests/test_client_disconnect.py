"""A client that goes away in the middle of its body on ``POST /api/records`` or
``POST /v1/traces`` costs nothing: no traceback in the server's log (the body reader logs it at
debug level), and the next request is served."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.harness import ServerProcess

GONE = "client disconnected after"  # the body reader's debug line
WAIT_S = 60.0  # how long to wait for that line (not a timed assertion)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    config = 'log_level = "debug"\n'
    with ServerProcess(tmp_path_factory.mktemp("gone") / "data", config=config) as proc:
        yield proc


def send_half_and_close(server: ServerProcess, path: str, content_type: str) -> None:
    body = b'{"resourceSpans": []}' if path == "/v1/traces" else b'{"requestId": "r"}' * 1000
    head = (
        f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: {content_type}\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(head + body[: len(body) // 2])


def wait_for_log_lines(server: ServerProcess, text: str, count: int) -> None:
    deadline = time.monotonic() + WAIT_S
    while server.log().count(text) < count:
        assert time.monotonic() < deadline, f"no {text!r} in the log:\n{server.log()[-3000:]}"
        time.sleep(0.05)


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/api/records", "application/json"),
        ("/v1/traces", "application/json"),
        ("/v1/traces", "application/x-protobuf"),
    ],
)
def test_a_client_gone_mid_body_leaves_no_traceback(
    server: ServerProcess, path: str, content_type: str
) -> None:
    seen = server.log().count(GONE)
    send_half_and_close(server, path, content_type)
    wait_for_log_lines(server, GONE, seen + 1)
    log = server.log()
    assert "Traceback" not in log and "ClientDisconnect" not in log, log[-3000:]
    # later callers are served
    if path == "/api/records":
        record = {"requestId": f"after-{content_type}", "timestamp": "2026-01-01T00:00:00Z"}
        answer = httpx.post(server.url + path, json=record, timeout=30)
        assert answer.status_code == 200 and answer.json()["stored"] == 1, answer.text
    else:
        answer = httpx.post(
            server.url + path, content=b"{}", headers={"content-type": "application/json"}
        )
        assert answer.status_code == 200, answer.text
