"""A real local HTTP server for SDK tests: it collects the OTLP JSON the SDK posts to
``/v1/traces`` and answers the official clients' calls (OpenAI chat completions, Anthropic
messages, Bedrock Converse) with minimal valid responses, recording every request's headers.

Tests wait on it with `Collector.wait_for` (a condition, not a timed assertion) and can make
``/v1/traces`` fail (`trace_status`) or hang until released (`hold_traces`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

CHAT_COMPLETION = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1700000000,
    "model": "gpt-test",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
}
ANTHROPIC_MESSAGE = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "claude-test",
    "content": [{"type": "text", "text": "hi"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 3, "output_tokens": 1},
}
CONVERSE = {
    "output": {"message": {"role": "assistant", "content": [{"text": "hi"}]}},
    "stopReason": "end_turn",
    "usage": {"inputTokens": 3, "outputTokens": 1, "totalTokens": 4},
    "metrics": {"latencyMs": 1},
}


@dataclass(frozen=True)
class Received:
    """One request the collector answered."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


class Collector:
    """The server; use as a context manager. ``url`` is its base URL."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.trace_status = 200
        self._cond = threading.Condition()
        self._hold: threading.Event | None = None
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.url = f"http://127.0.0.1:{self._server.server_port}"

    def __enter__(self) -> Collector:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)

    def hold_traces(self) -> None:
        """Make ``/v1/traces`` requests wait (after being recorded) until `release`."""
        self._hold = threading.Event()

    def release(self) -> None:
        """Let held ``/v1/traces`` requests answer."""
        if self._hold is not None:
            self._hold.set()

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 30.0) -> bool:
        """Wait until ``predicate()`` holds, re-checking on every request received."""
        with self._cond:
            return self._cond.wait_for(predicate, timeout)

    def trace_posts(self) -> list[Received]:
        with self._cond:
            return [r for r in self.requests if r.path == "/v1/traces"]

    def calls(self) -> list[Received]:
        """Requests other than span exports: the model calls of the official clients."""
        with self._cond:
            return [r for r in self.requests if r.path != "/v1/traces"]

    def spans(self) -> list[dict[str, Any]]:
        """Every exported span, in the order received, with ``attrs`` as a plain dict and
        ``resource`` as the resource's attributes."""
        out = []
        for post in self.trace_posts():
            for resource_spans in post.json()["resourceSpans"]:
                resource = attributes(resource_spans["resource"]["attributes"])
                for scope_spans in resource_spans["scopeSpans"]:
                    for span in scope_spans["spans"]:
                        out.append(
                            {**span, "attrs": attributes(span["attributes"]), "resource": resource}
                        )
        return out

    def span_named(self, name: str) -> dict[str, Any]:
        matches = [s for s in self.spans() if s["name"] == name]
        assert len(matches) == 1, f"{len(matches)} spans named {name!r}"
        return matches[0]

    def _record(self, received: Received) -> None:
        with self._cond:
            self.requests.append(received)
            self._cond.notify_all()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        collector = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                collector._record(Received("POST", self.path, headers, body))
                status, answer = 200, b"{}"
                if self.path == "/v1/traces":
                    hold = collector._hold
                    if hold is not None:
                        hold.wait(60)
                    status = collector.trace_status
                elif self.path.endswith("/chat/completions"):
                    answer = orjson.dumps(CHAT_COMPLETION)
                elif self.path.endswith("/messages"):
                    answer = orjson.dumps(ANTHROPIC_MESSAGE)
                elif self.path.endswith("/converse"):
                    answer = orjson.dumps(CONVERSE)
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                return

        return Handler


def attributes(key_values: list[dict[str, Any]]) -> dict[str, Any]:
    """An OTLP ``KeyValue`` list as a dict of plain values."""
    return {kv["key"]: plain(kv["value"]) for kv in key_values}


def plain(value: dict[str, Any]) -> Any:
    (kind, inner), *_ = value.items()
    if kind == "intValue":
        return int(inner)
    if kind == "arrayValue":
        return [plain(v) for v in inner.get("values", [])]
    return inner
