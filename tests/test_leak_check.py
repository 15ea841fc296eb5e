"""The session's leak check (conftest) under pytest-xdist: a process a test leaves behind in a
worker fails the whole session and is named and stopped, while the workers themselves and
their multiprocessing resource trackers, gone once the workers are, do not count."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.processes import alive, command_line, stop_processes

ROOT = Path(__file__).resolve().parents[1]

LEAKY_TESTS = """
import multiprocessing.resource_tracker
import subprocess
import sys

kept = []  # the leaked processes stay referenced: no ResourceWarning, only the leak
SLEEP = [sys.executable, "-c", "import time; time.sleep(120)"]


def test_starts_a_resource_tracker_in_its_worker():
    multiprocessing.resource_tracker.ensure_running()


def test_leaks_one_process():
    kept.append(subprocess.Popen([*SLEEP, "{token}-a"]))


def test_leaks_another_process():
    kept.append(subprocess.Popen([*SLEEP, "{token}-b"]))
"""


def processes_naming(token: str) -> list[int]:
    return [
        int(entry.name)
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit()
        and token in command_line(int(entry.name))
        and alive(int(entry.name))
    ]


def test_a_process_leaked_by_an_xdist_worker_fails_the_session_and_is_stopped(
    tmp_path: Path,
) -> None:
    token = f"leaked-{uuid.uuid4().hex}"
    (tmp_path / "test_leaky.py").write_text(LEAKY_TESTS.replace("{token}", token))
    try:
        done = run_session(tmp_path / "test_leaky.py")
    finally:
        left = processes_naming(token)
        stop_processes(dict.fromkeys(left, ""))
    output = done.stdout + done.stderr
    assert done.returncode == pytest.ExitCode.TESTS_FAILED, output
    assert "3 passed" in output and "processes started by the tests outlived the session" in output
    reported = [line for line in output.splitlines() if line.startswith("  pid ")]
    assert len(reported) == 2, output  # neither a worker nor a worker's resource tracker
    assert {line.rsplit(token, 1)[1] for line in reported} == {"-a", "-b"}, output
    assert left == []  # the session stopped them


def run_session(path: Path) -> subprocess.CompletedProcess[str]:
    """``pytest -n 2`` on ``path`` with this suite's session hooks, a short grace period."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-n",
            "2",
            "-p",
            "tests.conftest",
            "-p",
            "no:cacheprovider",
            str(path),
        ],
        cwd=path.parent,
        env={**os.environ, "PYTHONPATH": str(ROOT), "LLMTRAIL_TEST_LEAK_GRACE_S": "2"},
        capture_output=True,
        text=True,
        timeout=90,
    )
