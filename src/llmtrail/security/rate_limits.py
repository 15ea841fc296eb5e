"""Per-key request and token limits for gateway keys (``--rpm``, ``--tpm``), over a sliding
minute, kept by each server for the calls it relays.

Requests are counted when admitted; tokens when the call's record is made (input and output
tokens), so a key over its tokens per minute is refused from its next call until the minute
has slid past them. Several servers each count their own calls: a key's limit is per server.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from llmtrail.security.principal import Principal

WINDOW_S = 60.0


class _Window:
    __slots__ = ("events", "total")

    def __init__(self) -> None:
        self.events: deque[tuple[float, int]] = deque()
        self.total = 0

    def slide(self, now: float) -> None:
        while self.events and self.events[0][0] <= now - WINDOW_S:
            self.total -= self.events.popleft()[1]

    def add(self, now: float, amount: int) -> None:
        self.events.append((now, amount))
        self.total += amount


class RateLimits:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._requests: dict[str, _Window] = {}
        self._tokens: dict[str, _Window] = {}
        self._lock = threading.Lock()

    def admit(self, principal: Principal) -> str | None:
        """None when the call may go (and it is counted), else why not."""
        if principal.key_id is None or (principal.rpm is None and principal.tpm is None):
            return None
        now = self.clock()
        with self._lock:
            tokens = self._tokens.get(principal.key_id)
            if principal.tpm is not None and tokens is not None:
                tokens.slide(now)
                if tokens.total >= principal.tpm:
                    return (
                        f"this key's limit of {principal.tpm} tokens per minute is used up; "
                        "retry later"
                    )
            if principal.rpm is not None:
                window = self._requests.setdefault(principal.key_id, _Window())
                window.slide(now)
                if window.total >= principal.rpm:
                    return (
                        f"this key's limit of {principal.rpm} requests per minute is reached;"
                        " retry later"
                    )
                window.add(now, 1)
        return None

    def spent(self, principal: Principal, tokens: int) -> None:
        """Count a finished call's tokens against the key's tokens per minute."""
        if principal.key_id is None or principal.tpm is None or tokens <= 0:
            return
        with self._lock:
            self._tokens.setdefault(principal.key_id, _Window()).add(self.clock(), tokens)
