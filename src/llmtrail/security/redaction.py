"""Redaction before anything reaches a file: `Redactor` applies a workspace's
`RedactionPolicy` to a record document (or a span's attributes, or one text) in place.

Cost is what decides the shape. Most bodies hold no candidate at all, so each group of fields
has one precompiled regular expression, the alternation of its detectors' triggers (literals
every match contains, see `detectors`), searched once over the JSON body serialised by orjson;
when it finds nothing the body is not walked. Only when it does are the strings walked
(iteratively: any depth, any size) and each detector whose own trigger occurs in a string
scanned, its candidates validated (Luhn, mod-97, …), and overlapping findings resolved.

Nothing here raises on a JSON value of any shape: what is not a string, a number, a list or
an object is left as it is.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence
from typing import Any

import orjson

from llmtrail.security.detectors import KEY_DETECTORS, Detector, Finding, resolve
from llmtrail.security.detectors_custom import NAMES_ADDRESSES, pattern_detector
from llmtrail.security.detectors_pii import CARD, PII_DETECTORS
from llmtrail.security.redaction_policy import GROUPS, RedactionPolicy

HASH_HEX = (
    12  # 48 bits of the HMAC: joinable, and no dictionary of guesses gets far without the key
)
_CARD_MIN = 10**12  # a JSON integer this large may be a card number (13+ digits)
_ERROR_PREFIXES = ("exception.", "error.")


class GroupPlan:
    """What one group of fields is scanned for and what a finding becomes."""

    __slots__ = (
        "action",
        "always",
        "numbers",
        "ranks",
        "serialised_trigger",
        "trigger",
        "triggered",
    )

    def __init__(self, detectors: Sequence[Detector], action: str) -> None:
        self.action = action
        self.triggered = [(re.compile(d.trigger, re.ASCII), d) for d in detectors if d.trigger]
        self.always = [d for d in detectors if d.trigger is None]
        sources = [d.trigger for d in detectors if d.trigger]
        self.trigger = re.compile("|".join(sources), re.ASCII) if sources else None
        self.serialised_trigger = re.compile("|".join(sources).encode()) if sources else None
        self.ranks = {d.name: d.rank for d in detectors}
        self.numbers = CARD in detectors

    def findings(self, text: str) -> list[Finding]:
        found: list[Finding] = []
        if self.trigger is not None and self.trigger.search(text):
            for trigger, detector in self.triggered:
                if trigger.search(text):
                    found += detector.find(text)
        for detector in self.always:
            found += detector.find(text)
        return resolve(found, self.ranks) if found else found

    def may_match(self, value: Any) -> bool:
        """False only when no string inside ``value`` can hold a finding: the fast path."""
        if self.always:
            return True
        if self.serialised_trigger is None:
            return False
        try:
            serialised = orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
        except (TypeError, ValueError):  # integers past 64 bits, nesting past 255, …
            return True
        return self.serialised_trigger.search(serialised) is not None


class Redactor:
    """A policy ready to run. ``hash_key`` keys the ``hash`` action's HMAC (the server derives
    it from its secret, so hashes join across servers and cannot be confirmed without it)."""

    def __init__(self, policy: RedactionPolicy, hash_key: bytes) -> None:
        self.policy = policy
        self._hash_key = hash_key
        opt_in: list[Detector] = []
        for name in policy.detectors:
            opt_in += (NAMES_ADDRESSES,) if name == "names_addresses" else PII_DETECTORS[name]
        for pattern in policy.patterns:
            opt_in.append(pattern_detector(pattern.name, re.compile(pattern.pattern)))
        keys = list(KEY_DETECTORS) if policy.key_detectors else []
        self.plans = {
            group: GroupPlan(
                # error texts pass the key detectors whatever the policy says
                (list(KEY_DETECTORS) if group == "errors" else keys) + opt_in,
                policy.actions[group],
            )
            for group in GROUPS
        }

    # -- texts ------------------------------------------------------------------------------
    def findings(self, text: str, group: str) -> list[Finding]:
        """What ``group``'s detectors find in ``text``, in order, not overlapping."""
        return self.plans[group].findings(text)

    def replacement(self, finding: Finding, action: str = "mask") -> str:
        """What a finding becomes under ``mask`` or ``hash``."""
        if action == "hash":
            message = f"{finding.kind}:{finding.value}".encode()
            digest = hmac.new(self._hash_key, message, hashlib.sha256).hexdigest()
            return f"[{finding.kind.upper()}:hmac:{digest[:HASH_HEX]}]"
        return f"[REDACTED:{finding.kind}]"

    def redact_text(self, text: str, group: str) -> str:
        """``text`` with ``group``'s findings replaced (empty under ``drop``)."""
        return self._text(text, self.plans[group])[0]

    def _text(self, text: str, plan: GroupPlan) -> tuple[str, int]:
        found = plan.findings(text)
        if not found:
            return text, 0
        if plan.action == "drop":
            return "", len(found)
        pieces: list[str] = []
        at = 0
        for finding in found:
            pieces += (text[at : finding.start], self.replacement(finding, plan.action))
            at = finding.end
        pieces.append(text[at:])
        return "".join(pieces), len(found)

    # -- JSON values ------------------------------------------------------------------------
    def redact_value(self, value: Any, group: str) -> tuple[Any, int]:
        """``value`` (any JSON value) redacted as ``group``: containers are changed in
        place and returned; a string comes back replaced. With the number of findings."""
        plan = self.plans[group]
        if isinstance(value, str):
            return self._text(value, plan)
        if isinstance(value, int) and not isinstance(value, bool):
            return self._number(value, plan)
        if not isinstance(value, dict | list) or not plan.may_match(value):
            return value, 0
        return value, self._walk(value, plan)

    def _number(self, value: int, plan: GroupPlan) -> tuple[Any, int]:
        """A JSON integer of a card number's length, redacted as a string if it is one."""
        if not plan.numbers or abs(value) < _CARD_MIN:
            return value, 0
        text = str(value)
        replaced, count = self._text(text, plan)
        return (replaced, count) if count else (value, 0)

    def _walk(self, root: dict[str, Any] | list[Any], plan: GroupPlan) -> int:
        count = 0
        stack: list[dict[str, Any] | list[Any]] = [root]
        seen: set[int] = set()
        while stack:
            node = stack.pop()
            if id(node) in seen:
                continue
            seen.add(id(node))
            items = node.items() if isinstance(node, dict) else enumerate(node)
            changes: list[tuple[Any, Any]] = []
            for key, item in items:
                if isinstance(item, str):
                    new, n = self._text(item, plan)
                elif isinstance(item, dict | list):
                    stack.append(item)
                    continue
                elif isinstance(item, int) and not isinstance(item, bool):
                    new, n = self._number(item, plan)
                else:
                    continue
                if n:
                    count += n
                    changes.append((key, new))
            for key, new in changes:
                node[key] = new
        return count

    # -- records and spans ------------------------------------------------------------------
    def redact_record(self, doc: dict[str, Any]) -> int:
        """Redact a record document in place (bodies, metadata, error texts and a failed
        call's upstream error body); the number of findings replaced."""
        if not isinstance(doc, dict):
            return 0
        count = 0
        failed = bool(doc.get("error") or doc.get("errorCode") or doc.get("status") == "ERROR")
        for part, key, group in (
            ("input", "inputBodyJson", "bodies"),
            ("output", "outputBodyJson", "errors" if failed else "bodies"),
        ):
            holder = doc.get(part)
            if isinstance(holder, dict) and key in holder:
                holder[key], n = self.redact_value(holder[key], group)
                count += n
        count += self._metadata(doc.get("requestMetadata"))
        error = doc.get("error")
        if isinstance(error, dict):
            for key in ("message", "stackTrace"):
                if key in error:
                    error[key], n = self.redact_value(error[key], "errors")
                    count += n
        return count

    def _metadata(self, metadata: Any) -> int:
        if not isinstance(metadata, dict):
            return 0
        plan = self.plans["metadata"]
        count = 0
        for key in list(metadata):
            new, n = self.redact_value(metadata[key], "metadata")
            if not n:
                continue
            count += n
            if plan.action == "drop":
                del metadata[key]
            else:
                metadata[key] = new
        return count

    def redact_span_attributes(self, attrs: dict[str, Any]) -> int:
        """Redact an OTLP span's attribute values in place: ``exception.*`` and ``error.*``
        as error texts, every other value (prompts, completions, tool arguments) as a body."""
        if not isinstance(attrs, dict):
            return 0
        count = 0
        for key in list(attrs):
            group = "errors" if str(key).startswith(_ERROR_PREFIXES) else "bodies"
            attrs[key], n = self.redact_value(attrs[key], group)
            count += n
        return count
