"""`Yielding` on a real process: its threads go under SCHED_IDLE while nothing presses,
back to ordinary scheduling (their niceness kept) as soon as something does, and under
SCHED_IDLE again a second after."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from llmtrail.server import yielding
from llmtrail.server.yielding import Yielding, idle_is_reversible, set_policy

pytestmark = pytest.mark.skipif(
    not idle_is_reversible(5), reason="this user may not take a thread out of SCHED_IDLE"
)

_THREADS = """
import threading, time
for _ in range(3):
    threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
time.sleep(60)
"""


def _policies(pid: int) -> set[int]:
    return {os.sched_getscheduler(int(t)) for t in os.listdir(f"/proc/{pid}/task")}


def _until(check: Callable[[], bool], timeout: float = 10.0) -> float:
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < timeout
        time.sleep(0.02)
    return time.monotonic() - started


def test_a_process_yields_until_pressed_and_again_a_second_after() -> None:
    child = subprocess.Popen([sys.executable, "-c", _THREADS])
    pressed = [False]
    watch = Yielding(lambda: child.pid, lambda: pressed[0])
    try:
        os.setpriority(os.PRIO_PROCESS, child.pid, 5)
        _until(lambda: len(os.listdir(f"/proc/{child.pid}/task")) == 4)
        watch.start()
        _until(lambda: _policies(child.pid) == {os.SCHED_IDLE})
        assert watch.idle and watch.boosts == 0
        pressed[0] = True
        _until(lambda: _policies(child.pid) == {os.SCHED_OTHER})
        assert not watch.idle and watch.boosts == 1
        assert os.getpriority(os.PRIO_PROCESS, child.pid) == 5  # its niceness kept
        pressed[0] = False
        calm = _until(lambda: _policies(child.pid) == {os.SCHED_IDLE})
        assert calm >= yielding.CALM_S - yielding.TICK_S
        assert watch.boosts == 1
    finally:
        watch.stop()
        child.kill()
        child.wait()


def test_set_policy_changes_each_thread_once_and_skips_a_process_gone() -> None:
    child = subprocess.Popen([sys.executable, "-c", _THREADS])
    try:
        _until(lambda: len(os.listdir(f"/proc/{child.pid}/task")) == 4)
        assert set_policy(child.pid, True) == 4
        assert set_policy(child.pid, True) == 0
        assert set_policy(child.pid, False) == 4
    finally:
        child.kill()
        child.wait()
    assert set_policy(child.pid, True) == 0
