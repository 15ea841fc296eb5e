"""How busy the shared machine is apart from the benchmark's own processes.

The development machine has 2 cores and other people's test runs share them. A phase that ran
while something else took a core measures that, not llmtrail; so parts B, C and D wait (a
while) for a quiet machine before each run and report how much CPU other processes used during
it (part C also its peak over half-second samples).
Both come from ``/proc/stat`` (all CPUs' busy time) minus the benchmark's processes' own CPU
time (``procs.cpu_seconds``). Linux only; elsewhere the numbers are NaN and nothing waits.
"""

from __future__ import annotations

import math
import os
import resource
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import procs

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def machine_busy_s() -> float:
    """CPU seconds all CPUs have spent busy since boot (user, nice, system, irq, softirq,
    steal), or NaN when ``/proc/stat`` cannot be read."""
    try:
        first = Path("/proc/stat").read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return float("nan")
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in first[1:9])
    return (user + nice + system + irq + softirq + steal) / _TICK


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def self_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def own_cpu_s() -> float:
    """This process's CPU seconds and its waited-for children's (the load generator)."""
    return self_cpu_s() + children_cpu_s()


class OtherLoad:
    """CPU seconds used by processes other than ``pids`` (and this process) since `start`;
    ``pids`` may be a function, asked each time (a server whose children come and go)."""

    def __init__(
        self, pids: Iterable[int] | Callable[[], Iterable[int]], own: Callable[[], float]
    ) -> None:
        self.pids = pids if callable(pids) else list(pids)
        self.own = own  # this process's and its waited-for children's CPU seconds
        self.start()

    def _ours(self) -> float:
        pids = self.pids() if callable(self.pids) else self.pids
        return sum(procs.cpu_seconds(pid) for pid in pids) + self.own()

    def start(self) -> None:
        self._busy, self._ours0 = machine_busy_s(), self._ours()

    def seconds(self) -> float:
        """Other processes' CPU seconds since `start` (never below 0)."""
        return max(0.0, (machine_busy_s() - self._busy) - (self._ours() - self._ours0))


def server_tree(pid: int) -> Callable[[], list[int]]:
    """A function giving the server ``pid`` and its children as they are when it is asked
    (the recorder, and the decoding workers it starts on first use)."""
    return lambda: [pid, *procs.children(pid)]


def other_load_text(other_cpu_s: float, seconds: float, quiet_cores: float) -> str:
    """A run's other load for a table: their CPU seconds, in cores over the run's
    ``seconds``, and their load just before it (after waiting for quiet)."""
    if not seconds:
        return ""
    return f"{other_cpu_s:.1f} s ({other_cpu_s / seconds:.2f} cores; {quiet_cores:.2f} before)"


def wait_quiet(
    pids: Iterable[int] | Callable[[], Iterable[int]],
    own: Callable[[], float],
    max_cores: float = 0.25,
    window_s: float = 1.0,
    timeout_s: float = 60.0,
) -> float:
    """Wait until other processes used under ``max_cores`` cores over ``window_s``, at most
    ``timeout_s``; returns the last window's load in cores (NaN where it cannot be known)."""
    load = OtherLoad(pids, own)
    deadline = time.monotonic() + timeout_s
    while True:
        load.start()
        time.sleep(window_s)
        cores = load.seconds() / window_s
        if not cores >= max_cores or time.monotonic() > deadline:  # NaN: give up waiting
            return cores


class LoadSampler:
    """Samples other processes' load (cores) every ``interval_s`` on a background thread,
    between `start` and `stop`; ``samples`` holds ``(seconds since start, cores)``."""

    def __init__(
        self, pids: Iterable[int], own: Callable[[], float], interval_s: float = 0.5
    ) -> None:
        self.pids, self.own, self.interval_s = list(pids), own, interval_s
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="load-sampler", daemon=True)

    def start(self) -> LoadSampler:
        self._thread.start()
        return self

    def stop(self) -> list[tuple[float, float]]:
        """Stop sampling; the samples."""
        self._stop.set()
        self._thread.join()
        return self.samples

    def peak_cores(self) -> float:
        """The highest load of one sample (NaN without samples)."""
        known = [cores for _, cores in self.samples if not math.isnan(cores)]
        return max(known, default=float("nan"))

    def _run(self) -> None:
        began = time.monotonic()
        load = OtherLoad(self.pids, self.own)
        while not self._stop.wait(self.interval_s):
            self.samples.append((time.monotonic() - began, load.seconds() / self.interval_s))
            load.start()
