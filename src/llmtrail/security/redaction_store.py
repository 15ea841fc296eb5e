"""Where redaction policies live and how capture gets them: `RedactionPolicyStore` keeps each
workspace's policy in the StateStore (namespace ``redaction``, key = the workspace), shared by
every server on the store; `RedactionPolicies` hands capture a ready `Redactor` per workspace,
reading the store again at most once a second, so a change applies within a second on every
server without a restart.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from llmtrail.errors import ValidationError
from llmtrail.security.detectors_custom import presidio_problem
from llmtrail.security.redaction import Redactor
from llmtrail.security.redaction_policy import (
    DEFAULT_POLICY,
    OPT_IN,
    RedactionPolicy,
    parse_policy,
)
from llmtrail.store.interfaces import StateStore

NAMESPACE = "redaction"
REFRESH_S = 1.0
log = logging.getLogger("llmtrail.redaction")


class RedactionPolicyStore:
    """Each workspace's policy, validated on the way in; the default policy (key detectors,
    mask everywhere) where none was put."""

    def __init__(self, state: StateStore) -> None:
        self.state = state

    def get(self, workspace: str) -> RedactionPolicy:
        """The workspace's policy as capture applies it (see `load_policy`)."""
        return load_policy(self.state.get(NAMESPACE, workspace))

    def put(self, workspace: str, value: Any) -> RedactionPolicy:
        """Validate ``value`` (`ValidationError` names the field) and store it."""
        policy = parse_policy(value)
        self.state.put(NAMESPACE, workspace, policy.to_json())
        return policy

    def delete(self, workspace: str) -> bool:
        """Back to the default policy; True if the workspace had its own."""
        return self.state.delete(NAMESPACE, workspace)

    def is_default(self, workspace: str) -> bool:
        return self.state.get(NAMESPACE, workspace) is None


def load_policy(stored: Any) -> RedactionPolicy:
    """A stored policy, never failing: without Presidio on this server a policy asking for
    ``names_addresses`` runs without it (logged); a policy that no longer validates (edited
    by hand, or from a newer version) runs as every built-in detector masking everywhere —
    redacting too much rather than too little."""
    if stored is None:
        return DEFAULT_POLICY
    try:
        policy = parse_policy(stored, check_presidio=False)
    except ValidationError as exc:
        log.error("redaction policy cannot be used (%s); masking with every detector", exc)
        return RedactionPolicy(detectors=tuple(n for n in OPT_IN if n != "names_addresses"))
    if "names_addresses" in policy.detectors:
        problem = presidio_problem()
        if problem:
            log.error("redaction: names_addresses %s; running without it", problem)
            kept = tuple(n for n in policy.detectors if n != "names_addresses")
            policy = RedactionPolicy(policy.key_detectors, kept, policy.actions, policy.patterns)
    return policy


class RedactionPolicies:
    """A `Redactor` per workspace for capture, each refreshed from the store at most every
    ``refresh_s`` seconds; rebuilt only when the stored policy changed. Thread-safe."""

    def __init__(
        self,
        state: StateStore,
        hash_key: bytes,
        *,
        refresh_s: float = REFRESH_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = RedactionPolicyStore(state)
        self.hash_key = hash_key
        self.refresh_s = refresh_s
        self.clock = clock
        self._lock = threading.Lock()
        # workspace -> (read at, the stored value, its redactor)
        self._cache: dict[str, tuple[float, Any, Redactor]] = {}
        # told of every change made here (the recorder process re-reads it too)
        self.listeners: list[Callable[[], None]] = []

    def for_workspace(self, workspace: str) -> Redactor:
        """The workspace's redactor; never raises (a store that cannot be read keeps the
        last policy read, or the default one)."""
        now = self.clock()
        with self._lock:
            cached = self._cache.get(workspace)
        if cached is not None and now - cached[0] < self.refresh_s:
            return cached[2]
        try:
            stored = self.store.state.get(NAMESPACE, workspace)
        except Exception:  # capture must go on with what it had
            log.exception("redaction: cannot read the policy of workspace %r", workspace)
            stored = cached[1] if cached is not None else None
        if cached is not None and stored == cached[1]:
            redactor = cached[2]
        else:
            redactor = Redactor(load_policy(stored), self.hash_key)
        with self._lock:
            self._cache[workspace] = (now, stored, redactor)
        return redactor

    def invalidate(self, workspace: str | None = None) -> None:
        """Read the store again at the next call (this server's own change applies at once)."""
        with self._lock:
            if workspace is None:
                self._cache.clear()
            else:
                self._cache.pop(workspace, None)
        for listener in self.listeners:
            listener()
