"""Finding the processes a test started, by the mark in their environment (see conftest)."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path


def marked_processes(
    mark: str, wait_s: float = 0.0, ignore: Callable[[int], bool] = lambda pid: False
) -> dict[int, str]:
    """Live processes other than this one whose environment holds ``mark`` (pid → command
    line), after waiting up to ``wait_s`` seconds for them to go; ``ignore`` leaves some out."""
    deadline = time.monotonic() + wait_s
    while True:
        found = {pid: line for pid, line in _scan(mark).items() if not ignore(pid)}
        if not found or time.monotonic() >= deadline:
            return found
        time.sleep(0.2)


def stop_processes(pids: dict[int, str]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def own_resource_tracker(pid: int) -> bool:
    """This process's own multiprocessing resource tracker (started by the tests that run
    worker pools in-process): it reads a pipe from this process and ends when this one does."""
    stat = _stat(pid)
    return (
        stat is not None
        and int(stat[1]) == os.getpid()
        and "multiprocessing.resource_tracker" in command_line(pid)
    )


def children(pid: int) -> list[int]:
    """The live processes whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None and stat[0] != "Z" and int(stat[1]) == pid:
                found.append(int(entry.name))
    return found


def maps(pid: int) -> str:
    """What process ``pid`` has mapped (its shared libraries, among others)."""
    return Path(f"/proc/{pid}/maps").read_text()


def command_line(pid: int) -> str:
    try:
        return (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except (FileNotFoundError, ProcessLookupError):
        return ""


def alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    stat = _stat(pid)
    return stat is not None and stat[0] != "Z"


def _stat(pid: int) -> list[str] | None:
    """``/proc/PID/stat`` after the command name: state, ppid, …"""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


def _scan(mark: str) -> dict[int, str]:
    needle = mark.encode()
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            if needle not in environ or not alive(int(entry.name)):
                continue
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        found[int(entry.name)] = command_line(int(entry.name)).strip()
    return found
