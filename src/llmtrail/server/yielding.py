"""The recorder yields the CPU to the relay: while the record path keeps up, the recorder
process's threads run under Linux's ``SCHED_IDLE`` policy, so the kernel gives them a core
only when no ordinary thread wants it, and a model call's relay never waits behind a record
being built. When the record path comes under pressure (calls handed over pile up, its
reports stop coming, or a request waits on it: an ingest or an OTLP export waiting for its
fsync), they go back to ordinary scheduling at ``recorder_nice`` at once, and to
``SCHED_IDLE`` again a second after the pressure is gone. So a busy machine delays records;
it never starves them.

Only the recorder process yields this way, not the serving process's DuckDB writer thread:
that one shares the GIL with the event loop, and a thread that can wait indefinitely for a
core while holding the GIL would hold the relay up with it.

Linux lets a thread leave ``SCHED_IDLE`` only within its ``RLIMIT_NICE`` (or with
``CAP_SYS_NICE``): `idle_is_reversible` checks that first, and where the way back is closed
the recorder keeps its niceness alone, as before.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable

from llmtrail.threads import thread_ids

log = logging.getLogger("llmtrail.server")

TICK_S = 0.1  # how often the pressure is read
CALM_S = 1.0  # back to SCHED_IDLE this long after the pressure is gone
REFRESH_S = 2.0  # and the policy set again on every thread (those started since)


def idle_is_reversible(nice: int) -> bool:
    """Whether a thread at niceness ``nice`` may go under ``SCHED_IDLE`` and come back:
    tried on a thread of its own, which ends after."""
    if sys.platform != "linux" or not hasattr(os, "SCHED_IDLE"):
        return False
    answers: list[bool] = []

    def probe() -> None:
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
            answers.append(True)
        except OSError:
            answers.append(False)

    thread = threading.Thread(target=probe, name="llmtrail-sched-probe", daemon=True)
    thread.start()
    thread.join()
    return answers == [True]


def set_policy(pid: int, idle: bool) -> int:
    """Put every thread of process ``pid`` under ``SCHED_IDLE`` (``idle``) or back under
    ``SCHED_OTHER`` (their niceness is kept); how many threads changed."""
    policy = os.SCHED_IDLE if idle else os.SCHED_OTHER
    changed = 0
    for tid in thread_ids(pid):  # none when the process is gone
        try:
            if os.sched_getscheduler(tid) != policy:
                os.sched_setscheduler(tid, policy, os.sched_param(0))
                changed += 1
        except OSError:  # the thread ended meanwhile
            continue
    return changed


class Yielding:
    """Keeps the threads of process ``pid()`` under ``SCHED_IDLE`` unless ``pressed()``,
    read every `TICK_S` on a thread of its own."""

    def __init__(self, pid: Callable[[], int | None], pressed: Callable[[], bool]) -> None:
        self._pid = pid
        self._pressed = pressed
        self.idle = False
        self.boosts = 0  # times the pressure took it out of SCHED_IDLE
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="llmtrail-recorder-yield", daemon=True
        )

    @property
    def started(self) -> bool:
        return self._thread.ident is not None

    def start(self) -> Yielding:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        calm_since = time.monotonic()
        set_at = 0.0
        pid_set: int | None = None
        while not self._stop.wait(TICK_S):
            try:
                pid = self._pid()
                if pid is None:
                    continue
                now = time.monotonic()
                if self._pressed():
                    calm_since = now
                idle = now - calm_since >= CALM_S
                if idle != self.idle or pid != pid_set or now - set_at >= REFRESH_S:
                    if self.idle and not idle:
                        self.boosts += 1
                    set_policy(pid, idle)
                    self.idle, pid_set, set_at = idle, pid, now
            except Exception:  # never let the record path stay idle over a bug here
                log.exception("the recorder's scheduling policy could not be set")
                pid = self._pid()
                if pid is not None:
                    set_policy(pid, False)
                self.idle = False
                return
