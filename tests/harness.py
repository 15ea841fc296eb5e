"""Run a real ``llmtrail serve`` process for end-to-end tests, on either store engine."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

# The engines the end-to-end suites run on (the ``engine`` fixture in tests/conftest.py).
ENGINES = ("duckdb", "chdb")


def engines(*names: str, reason: str) -> pytest.MarkDecorator:
    """Run a test that takes the ``engine`` fixture on ``names`` only; ``reason`` says why
    the others are left out (it is for the reader: a parametrize mark carries none)."""
    assert reason and set(names) <= set(ENGINES), (names, reason)
    return pytest.mark.parametrize("engine", names, indirect=True, scope="module")


def store_env(engine: str, data_dir: Path) -> dict[str, str]:
    """The environment choosing ``engine`` for a server or CLI on ``data_dir``: nothing for
    DuckDB (its default file in the data directory), a chdb directory inside it for chdb."""
    if engine == "duckdb":
        return {}
    assert engine == "chdb", engine
    return {"LLMTRAIL_STORE__URL": f"chdb://{Path(data_dir).resolve() / 'chdb'}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """``llmtrail serve`` in a subprocess on a free port; its output goes to ``log_path``.
    ``engine`` chooses the store (`store_env`); ``store_env`` is what a CLI run on the same
    data directory needs to find it."""

    def __init__(
        self,
        data_dir: Path,
        *,
        config: str | None = None,
        args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
        engine: str = "duckdb",
    ) -> None:
        self.data_dir = data_dir
        self.engine = engine
        self.store_env = store_env(engine, data_dir)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir.parent / f"server-{self.port}.log"
        self.args = list(args)
        if config is not None:
            path = data_dir.parent / f"llmtrail-{self.port}.toml"
            path.write_text(config)
            self.args += ["--config", str(path)]
        self.env = {**os.environ, **self.store_env, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, wait_ready: bool = True) -> ServerProcess:
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "llmtrail",
                "serve",
                "--data-dir",
                str(self.data_dir),
                "--port",
                str(self.port),
                *self.args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
        )
        log.close()
        self.wait("/readyz" if wait_ready else "/healthz")
        return self

    def wait(self, path: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.url + path, timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"server not ready after {timeout}s:\n{self.log()}")

    # sent as a bearer token by `get`, `metrics` and `settle` (once keys exist, every read
    # needs one)
    key: str | None = None

    def _read(self, path: str) -> bytes:
        headers = {"authorization": f"Bearer {self.key}"} if self.key else {}
        request = urllib.request.Request(self.url + path, headers=headers)
        with urllib.request.urlopen(request, timeout=30) as response:
            body: bytes = response.read()
            return body

    def get(self, path: str) -> Any:
        return json.loads(self._read(path))

    def metrics(self) -> dict[str, float]:
        text = self._read("/metrics").decode()
        # a sample is its name (labels, whose values may hold spaces, included) and its value
        samples = (line.rpartition(" ") for line in text.splitlines() if line[:1] not in "#")
        return {name.removeprefix("llmtrail_pipeline_"): float(value) for name, _, value in samples}

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def terminate(self, timeout: float = 60.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.terminate()

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_for_record(self, request_id: str, timeout: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.get(f"/api/records/{request_id}")  # type: ignore[no-any-return]
            except urllib.error.HTTPError as exc:
                if exc.code != 404 or time.monotonic() > deadline:
                    raise
            time.sleep(0.05)

    def settle(self, timeout: float = 20.0) -> dict[str, float]:
        """Wait until everything the pipeline accepted is in the store."""
        deadline = time.monotonic() + timeout
        while True:
            m = self.metrics()
            if (
                m["queue_depth"] == 0
                # gateway calls handed to the recorder process and not yet in its pipeline
                and m.get("handover_pending", 0) == 0
                and m.get("spans_stored", 0) >= m.get("spans_spooled", 0)
                # records another server had stored already are spooled here, not stored
                and m["stored"] + m.get("duplicates_elsewhere", 0)
                >= m["spooled"]
                >= m["accepted"] - (m["dropped_spool_full"])
            ):
                return m
            if time.monotonic() > deadline:
                raise TimeoutError(f"pipeline did not settle: {m}")
            time.sleep(0.05)


def call(
    url: str, method: str, path: str, body: Any = None, timeout: float = 120
) -> tuple[int, Any]:
    """Status and JSON answer of one request to a running server (error answers included)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url + path, data=data, method=method, headers={"content-type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read() or b"null")
