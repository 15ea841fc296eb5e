"""The recent-``requestId`` index that catches client resends.

A key is ``(workspace, requestId)``. It is remembered for ``window_s`` seconds after it was
accepted (one hour by default) and at most ``max_entries`` keys are kept (two million, about
300 MB), the oldest forgotten first. The index is warmed at start from the records the store
ingested within the window and from the spool replay, so a resend after a crash is still caught.
A resend after the window, or after the index overflowed, is stored again.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable


class RecentRequestIds:
    def __init__(
        self,
        window_s: float = 3600.0,
        max_entries: int = 2_000_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.window_s = window_s
        self.max_entries = max_entries
        self._clock = clock
        self._seen: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._lock = threading.Lock()

    def claim(self, keys: Iterable[tuple[str, str]]) -> list[bool]:
        """For each key, True if it is new (and now remembered), False if a recent duplicate.
        A key repeated within ``keys`` counts as a duplicate after its first occurrence."""
        now = self._clock()
        out = []
        with self._lock:
            self._expire(now)
            for key in keys:
                if key in self._seen:
                    out.append(False)
                else:
                    self._seen[key] = now
                    out.append(True)
            while len(self._seen) > self.max_entries:
                self._seen.popitem(last=False)
        return out

    def release(self, keys: Iterable[tuple[str, str]]) -> None:
        """Forget keys whose records were not accepted after all (spool full)."""
        with self._lock:
            for key in keys:
                self._seen.pop(key, None)

    def __len__(self) -> int:
        return len(self._seen)

    def _expire(self, now: float) -> None:
        horizon = now - self.window_s
        while self._seen:
            key, at = next(iter(self._seen.items()))
            if at >= horizon:
                return
            del self._seen[key]
