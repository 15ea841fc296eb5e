"""Where the CLI gets its data: the running server over HTTP (found through ``server.json``,
``--url`` or ``LLMTRAIL_URL``), or, with no server, the data directory itself."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol

from llmtrail.config import Settings
from llmtrail.errors import LlmtrailError, NotFound, Unavailable, ValidationError

if TYPE_CHECKING:
    from llmtrail.server.runtime import Runtime


class Backend(Protocol):
    def find(self, params: dict[str, Any], metadata: list[str]) -> dict[str, Any]:
        """One page: ``{"records": [...], "nextCursor": ...}``."""
        ...

    def get(self, request_id: str) -> dict[str, Any]:
        """One record; raises `NotFound`."""
        ...

    def ingest(self, body: bytes) -> dict[str, Any]:
        """Send NDJSON records; the per-item results."""
        ...

    def request(
        self,
        method: str,
        path: str,
        query: dict[str, Any] | None = None,
        body: Any = None,
        raw: bool = False,
    ) -> Any:
        """Call the HTTP API (in process when there is no server): the JSON answer, or the
        bytes with ``raw``; an error answer raises the `LlmtrailError` it describes."""
        ...

    def close(self) -> None:
        """Release what the backend holds."""
        ...


def _query_string(query: dict[str, Any] | None) -> str:
    pairs: list[tuple[str, str]] = []
    for key, value in (query or {}).items():
        if value is None:
            continue
        values = value if isinstance(value, list | tuple) else [value]
        pairs += [(key, str(v)) for v in values]
    return urllib.parse.urlencode(pairs)


def raise_for(status: int, detail: bytes) -> None:
    """The `LlmtrailError` an API error answer (problem JSON) stands for."""
    text = detail.decode("utf-8", "replace")
    field = None
    try:
        problem = json.loads(text)
        text = problem.get("detail", text)
        field = problem.get("field")
    except (ValueError, AttributeError):
        pass
    if status == 404:
        raise NotFound(text)
    if status == 503:
        raise Unavailable(text)
    if status in (401, 403):
        hint = " (set LLMTRAIL_KEY to a key of this server)" if status == 401 else ""
        raise LlmtrailError(f"{text}{hint}")
    raise ValidationError(field or "request", text)


class HttpBackend:
    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def _call(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        content_type: str = "application/x-ndjson",
        raw: bool = False,
    ) -> Any:
        headers = {"content-type": content_type}
        key = os.environ.get("LLMTRAIL_KEY")
        if key:  # a server that needs keys: the caller's, from the environment
            headers["authorization"] = f"Bearer {key}"
        request = urllib.request.Request(self.url + path, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=300) as response:
                data = response.read()
                return data if raw else json.loads(data)
        except urllib.error.HTTPError as exc:
            with exc:  # it holds the connection: closed here, not when collected
                raise_for(exc.code, exc.read())
        except urllib.error.URLError as exc:
            raise LlmtrailError(f"cannot reach the server at {self.url}: {exc.reason}") from None

    def request(
        self,
        method: str,
        path: str,
        query: dict[str, Any] | None = None,
        body: Any = None,
        raw: bool = False,
    ) -> Any:
        qs = _query_string(query)
        data = None if body is None else json.dumps(body).encode()
        return self._call(
            method, path + ("?" + qs if qs else ""), data, "application/json", raw=raw
        )

    def find(self, params: dict[str, Any], metadata: list[str]) -> dict[str, Any]:
        query = [(k, str(v)) for k, v in params.items() if v is not None]
        query += [("metadata", m) for m in metadata]
        return self._call("GET", "/api/records?" + urllib.parse.urlencode(query))

    def get(self, request_id: str) -> dict[str, Any]:
        return self._call("GET", "/api/records/" + urllib.parse.quote(request_id, safe=""))

    def ingest(self, body: bytes) -> dict[str, Any]:
        return self._call("POST", "/api/records", body)

    def close(self) -> None:
        pass


class LocalBackend:
    """Opens the data directory in this process (only when no server owns it), when the
    command first asks for data: a command that stops at its arguments opens nothing. The
    tokenizer and the price table load only if the command uses them (a server warms them
    up before its first call; a command would pay seconds for nothing)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._runtime: Runtime | None = None
        self._app: Any = None

    @property
    def runtime(self) -> Runtime:
        if self._runtime is None:
            from llmtrail.server.runtime import Runtime

            runtime = Runtime(self.settings)
            try:
                runtime.start(warm=False)
            except BaseException:
                runtime.close()
                raise
            self._runtime = runtime
        return self._runtime

    def find(self, params: dict[str, Any], metadata: list[str]) -> dict[str, Any]:
        answer: dict[str, Any] = self.request(
            "GET", "/api/records", {**params, "metadata": metadata}
        )
        return answer

    def get(self, request_id: str) -> dict[str, Any]:
        record = self.runtime.records.get(request_id)
        if record is None:
            raise NotFound(f"no record with requestId {request_id!r}")
        return record.data

    def request(
        self,
        method: str,
        path: str,
        query: dict[str, Any] | None = None,
        body: Any = None,
        raw: bool = False,
    ) -> Any:
        import asyncio

        from llmtrail.server.app import create_app
        from llmtrail.server.inprocess import call_asgi

        if self._app is None:
            self._app = create_app(self.runtime, lifespan=False)
        data = b"" if body is None else json.dumps(body).encode()
        status, answer = asyncio.run(call_asgi(self._app, method, path, _query_string(query), data))
        if status >= 400:
            raise_for(status, answer)
        return answer if raw else json.loads(answer)

    def ingest(self, body: bytes) -> dict[str, Any]:
        from llmtrail.capture.ingest_body import ingest_summary
        from llmtrail.record import DEFAULT_WORKSPACE
        from llmtrail.server.record_path import LocalRecording

        recording = self.runtime.recording
        assert isinstance(recording, LocalRecording)  # no server: the record path is here
        spooled = recording.path.ingest_body(body, False, DEFAULT_WORKSPACE)
        results, where, fresh = spooled.result()  # after the spool's fsync
        return ingest_summary(results, where, fresh)

    def close(self) -> None:
        if self._runtime is not None:
            self._runtime.close()


def server_url(settings: Settings, url: str | None) -> str | None:
    """The URL of the server that owns the data directory, if one runs."""
    if url:
        return url
    if os.environ.get("LLMTRAIL_URL"):
        return os.environ["LLMTRAIL_URL"]
    marker = settings.data_dir / "server.json"
    try:
        info = json.loads(marker.read_text())
        os.kill(int(info["pid"]), 0)
        return str(info["url"])
    except (FileNotFoundError, ValueError, KeyError, ProcessLookupError, PermissionError):
        return None


def open_backend(settings: Settings, url: str | None) -> Backend:
    found = server_url(settings, url)
    return HttpBackend(found) if found else LocalBackend(settings)


def iter_pages(
    backend: Backend, params: dict[str, Any], metadata: list[str], limit: int
) -> Iterator[dict[str, Any]]:
    cursor = None
    sent = 0
    while sent < limit:
        page = backend.find(
            {**params, "limit": min(1000, limit - sent), "cursor": cursor}, metadata
        )
        for record in page["records"]:
            yield record
            sent += 1
        cursor = page.get("nextCursor")
        if not cursor:
            return
