"""The simulated prompt cache of ``sim`` and the test upstreams.

Providers cache a prompt's prefix up to a marker (Anthropic's ``cache_control``, Bedrock's
``cachePoint``): the first request with a prefix pays for writing it, later ones read it at a
lower price. The simulation keeps only which prefixes were written — their digests, the oldest
forgotten past ``capacity`` — so memory stays bounded however many distinct prompts pass. The
planner (`plan`) asks it once per request, from the threads ``sim`` plans in, hence the lock.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence

import orjson


class PromptCache:
    """Prefixes already written to the (simulated) prompt cache."""

    def __init__(self, capacity: int = 10_000) -> None:
        self.capacity = capacity
        self._seen: dict[bytes, None] = {}  # insertion-ordered: the oldest is forgotten first
        self._lock = threading.Lock()

    def use(self, prefix: Sequence[str], tokens: int) -> tuple[int, int]:
        """``(read, write)`` tokens of a request whose cacheable prefix is ``prefix`` (its
        texts, scope first) and counts ``tokens``: a read if it was written before, else a
        write."""
        key = hashlib.sha256(orjson.dumps(list(prefix))).digest()
        with self._lock:
            if key in self._seen:
                return tokens, 0
            if len(self._seen) >= self.capacity:
                self._seen.pop(next(iter(self._seen)))
            self._seen[key] = None
        return 0, tokens
