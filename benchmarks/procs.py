"""Server processes for the benchmarks: start, wait until they answer, stop by pid."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
Log = Callable[[str], None]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http(
    url: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 5,
    method: str | None = None,
) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()


def metrics(url: str) -> dict[str, float]:
    """llmtrail's ``/metrics`` as ``{name: value}`` (the ``llmtrail_pipeline_`` prefix cut)."""
    _, raw = http(url + "/metrics", timeout=30)
    return parse_metrics(raw.decode())


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text as ``{name: value}``, the ``llmtrail_pipeline_`` prefix cut; a labelled
    sample keeps its labels in its name (their values may hold spaces: the value is last)."""
    samples = (line.rpartition(" ") for line in text.splitlines() if line[:1] not in "#")
    return {name.removeprefix("llmtrail_pipeline_"): float(value) for name, _, value in samples}


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def stat_of(path: str) -> tuple[str, list[str]] | None:
    """A ``/proc/<pid>/stat`` (or a thread's ``/proc/<pid>/task/<tid>/stat``): the command
    name, and the fields after it; None when the process or thread is gone."""
    try:
        raw = Path(path).read_text()
    except OSError:
        return None
    return raw[raw.index("(") + 1 : raw.rindex(")")], raw[raw.rindex(")") + 2 :].split()


def stat_cpu_seconds(fields: list[str]) -> float:
    """User + system CPU seconds of `stat_of`'s fields (utime, stime)."""
    return (int(fields[11]) + int(fields[12])) / _TICK


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (all its threads), from /proc."""
    stat = stat_of(f"/proc/{pid}/stat")
    return float("nan") if stat is None else stat_cpu_seconds(stat[1])


def children_of(pid: int) -> list[int]:
    """The processes ``pid`` started itself (not the ones they started)."""
    out: set[int] = set()
    for path in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            out |= {int(k) for k in path.read_text().split()}
        except OSError:  # the thread or the process ended meanwhile
            continue
    return sorted(out)


def children(pid: int) -> list[int]:
    """The processes ``pid`` started and the ones they started (the recorder and its ingest
    workers, the decoding workers), from /proc."""
    out: set[int] = set()
    todo = [pid]
    while todo:
        found = set(children_of(todo.pop()))
        todo += found - out
        out |= found
    return sorted(out)


def tree_cpu_seconds(pid: int) -> float:
    """`cpu_seconds` of ``pid`` and of the processes it started (llmtrail's recorder and its
    workers): the CPU a record costs is counted over every llmtrail process."""
    total = cpu_seconds(pid)
    for child in children(pid):
        stat = stat_of(f"/proc/{child}/stat")
        if stat is not None:  # not gone meanwhile
            total += stat_cpu_seconds(stat[1])
    return total


class Proc:
    """One server subprocess; stdout and stderr go to ``log_path``."""

    def __init__(self, name: str, argv: list[str], log_path: Path, env: dict[str, str]) -> None:
        self.name = name
        self.log_path = log_path
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **env},
                cwd=str(log_path.parent),
                start_new_session=True,  # a Ctrl-C in the terminal reaches only run.py
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_until(
        self,
        url: str,
        timeout: float,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Poll ``url`` until it answers 200 (or raise with the log's tail)."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited early ({self.proc.returncode}):\n{self.tail()}"
                )
            try:
                status, raw = http(url, body, headers, timeout=2)
                if status == 200:
                    return
                last = f"HTTP {status}: {raw[:200]!r}"
            except OSError as exc:
                last = repr(exc)
            time.sleep(0.1)
        raise TimeoutError(f"{self.name} not ready after {timeout:g}s ({last}):\n{self.tail()}")

    def wait_for_log(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log_path.read_text(errors="replace"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.name}: never logged {text!r}:\n{self.tail()}")
            time.sleep(0.05)

    def tail(self, lines: int = 15) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 60) -> None:
        """SIGTERM this process (only it, by pid), then SIGKILL if it does not exit."""
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def start_upstream(workdir: Path, response_bytes: int = 1000) -> tuple[Proc, str]:
    port = free_port()
    argv = [sys.executable, "-m", "llmtrail.testing.openai_upstream", "--port", str(port)]
    argv += ["--response-bytes", str(response_bytes)]
    proc = Proc("openai-upstream", argv, workdir / "upstream.log", {})
    base = f"http://127.0.0.1:{port}"
    proc.wait_until(base + "/v1/models", 30)
    return proc, base


def start_llmtrail(
    workdir: Path, name: str, *, upstream: str | None = None, record: bool = True
) -> tuple[Proc, str]:
    """``llmtrail serve`` on a fresh data directory; routes ``bench-*`` to ``upstream``."""
    port = free_port()
    data = workdir / f"data-{name}"
    argv = [sys.executable, "-m", "llmtrail", "serve", "--data-dir", str(data)]
    argv += ["--port", str(port)]
    if upstream is not None:
        config = workdir / f"{name}.toml"
        config.write_text(
            "[providers.up]\n"
            'type = "openai"\n'
            f'base_url = "{upstream}/v1"\n'
            "[[routes]]\n"
            'match = "bench-*"\n'
            'provider = "up"\n'
        )
        argv += ["--config", str(config)]
    if not record:
        argv.append("--no-record")
    proc = Proc(name, argv, workdir / f"{name}.log", {"LLMTRAIL_LOG_LEVEL": "info"})
    base = f"http://127.0.0.1:{port}"
    proc.wait_until(base + "/readyz", 60)
    # /readyz turns ready before the record path's warm-up ends (tokenizer, prices, pyarrow):
    # wait for it, so that no round pays for it
    proc.wait_for_log("pipeline ready", 60)
    if record:
        proc.wait_for_log("record path warm", 120)
    return proc, base


def wait_drained(base: str, timeout: float = 120) -> dict[str, float]:
    """Wait until llmtrail has stored everything it accepted; returns the last metrics."""
    deadline = time.monotonic() + timeout
    while True:
        m = metrics(base)
        drained = (
            m.get("handover_pending", 0) == 0
            and m["stored"] + m["dropped_queue_full"] >= m["accepted"]
        )
        if drained or time.monotonic() > deadline:
            return m
        time.sleep(0.05)


def wait_metric(base: str, name: str, at_least: float, timeout: float = 120) -> float:
    """Wait until ``/metrics`` shows ``name`` at ``at_least`` or more; its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = metrics(base).get(name, 0.0)
        if value >= at_least:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} stayed at {value} (waited for {at_least})")
        time.sleep(0.05)


PORTKEY_PACKAGE = "@portkey-ai/gateway"
PORTKEY_DIR = CACHE / "portkey"
PORTKEY_SCRIPT = (
    PORTKEY_DIR / "node_modules" / "@portkey-ai" / "gateway" / "build" / "start-server.js"
)


def install_portkey(timeout: float = 120) -> str | None:
    """``npm install`` the Portkey gateway into benchmarks/.cache; None, or why it failed."""
    if PORTKEY_SCRIPT.exists():
        return None
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not on PATH"
    PORTKEY_DIR.mkdir(parents=True, exist_ok=True)
    if not (PORTKEY_DIR / "package.json").exists():
        (PORTKEY_DIR / "package.json").write_text(json.dumps({"private": True}))
    try:
        done = subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", PORTKEY_PACKAGE],
            cwd=PORTKEY_DIR,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"npm install {PORTKEY_PACKAGE} did not finish within {timeout:g}s"
    if done.returncode != 0 or not PORTKEY_SCRIPT.exists():
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-3:]
        return f"npm install {PORTKEY_PACKAGE} failed ({done.returncode}): {' | '.join(tail)}"
    return None


def start_portkey(workdir: Path, upstream: str, headers: dict[str, str]) -> tuple[Proc, str]:
    port = free_port()
    argv = ["node", str(PORTKEY_SCRIPT), f"--port={port}", "--headless"]
    proc = Proc("portkey", argv, workdir / "portkey.log", {"NODE_ENV": "production"})
    base = f"http://127.0.0.1:{port}"
    probe = json.dumps({"model": "bench-probe", "messages": [{"role": "user", "content": "hi"}]})
    try:
        probe_headers = {"content-type": "application/json", **headers}
        proc.wait_until(base + "/v1/chat/completions", 60, probe.encode(), probe_headers)
    except BaseException:
        proc.stop()
        raise
    return proc, base


def portkey_version() -> str:
    try:
        meta = json.loads((PORTKEY_SCRIPT.parents[1] / "package.json").read_text())
        return str(meta["version"])
    except (OSError, ValueError, KeyError):
        return "(unknown version)"


@contextlib.contextmanager
def stopping(procs: list[Proc]) -> Iterator[list[Proc]]:
    """Stop every process in ``procs`` (in reverse order) when the block ends."""
    try:
        yield procs
    finally:
        for proc in reversed(procs):
            proc.stop()
