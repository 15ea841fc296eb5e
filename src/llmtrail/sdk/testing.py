"""Deterministic time and ids for tests of code that uses the SDK.

``sdk.configure(clock=StepClock(), id_generator=SequentialIds())`` makes every exported span
reproducible, so a test can compare whole spans rather than pick at a few fields.
"""

from __future__ import annotations

import threading


class SequentialIds:
    """Ids 1, 2, 3, … as hex: trace ids and span ids count separately."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._traces = 0
        self._spans = 0

    def trace_id(self) -> str:
        """The next trace id (``000…001``, ``000…002``, …)."""
        with self._lock:
            self._traces += 1
            return f"{self._traces:032x}"

    def span_id(self) -> str:
        """The next span id (``0000000000000001``, …)."""
        with self._lock:
            self._spans += 1
            return f"{self._spans:016x}"


class StepClock:
    """A clock that starts at ``start_ns`` and moves ``step_ns`` forward each time it is read."""

    def __init__(self, start_ns: int = 1_700_000_000_000_000_000, step_ns: int = 1_000_000) -> None:
        self._lock = threading.Lock()
        self._next = start_ns
        self._step = step_ns

    def __call__(self) -> int:
        """The current reading, then one step on."""
        with self._lock:
            now = self._next
            self._next += self._step
            return now
