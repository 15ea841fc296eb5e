"""What a workspace allows a record to keep, applied once before the record reaches any
file (the spool first): the logging configuration (which bodies are delivered) and then
redaction (what is masked, hashed or dropped in what is kept).

`RecordPolicy.prepare` never raises: a record that cannot be prepared loses its bodies and
error texts instead of reaching the disk as it came, and is counted.
"""

from __future__ import annotations

import logging
from typing import Any

from llmtrail.record import InvocationRecord
from llmtrail.security.delivery import apply_delivery

log = logging.getLogger("llmtrail.security")


class RecordPolicy:
    def __init__(self, logging_configs: Any, redaction: Any = None) -> None:
        self.logging_configs = logging_configs  # `LoggingConfigs`
        self.redaction = redaction  # `RedactionPolicies`, or None
        self.failures = 0
        self.redactions = 0

    def prepare(self, record: InvocationRecord) -> None:
        doc = record.data
        try:
            workspace = record.workspace
            apply_delivery(doc, self.logging_configs.for_workspace(workspace))
            if self.redaction is not None:
                self.redactions += self.redaction.for_workspace(workspace).redact_record(doc)
        except Exception:
            self.failures += 1
            log.exception("preparing a record failed; its bodies and error texts are dropped")
            _strip(doc)


def _strip(doc: dict[str, Any]) -> None:
    for block, keys in (("input", ("inputBodyJson",)), ("output", ("outputBodyJson",))):
        part = doc.get(block)
        if isinstance(part, dict):
            for key in keys:
                part.pop(key, None)
    error = doc.get("error")
    if isinstance(error, dict):
        for key in ("message", "stackTrace"):
            if key in error:
                error[key] = "[dropped: could not be redacted]"
    doc["delivery"] = {"bodies": "withheld", "reason": "policy-failure"}
