"""What a workspace allows a record to keep, applied once before the record reaches any
file (the spool first): the logging configuration (which bodies are delivered) and then
redaction (what is masked, hashed or dropped in what is kept).

`RecordPolicy.prepare` never raises: a record that cannot be prepared loses its bodies and
error texts instead of reaching the disk as it came, and is counted.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Collection
from typing import Any

from llmtrail.record import InvocationRecord
from llmtrail.security.delivery import apply_delivery, media_off, withhold_media
from llmtrail.security.logging_config import LoggingConfig
from llmtrail.security.redaction import ERROR_ATTRIBUTES
from llmtrail.span import Span

log = logging.getLogger("llmtrail.security")


class RecordPolicy:
    def __init__(self, logging_configs: Any, redaction: Any = None) -> None:
        self.logging_configs = logging_configs  # `LoggingConfigs`
        self.redaction = redaction  # `RedactionPolicies`, or None
        self.failures = 0
        self.redactions = 0
        # changes of a logging configuration or redaction policy seen (`changed`): records
        # checked against the policies elsewhere are prepared again when it moved since
        self.generation = 0

    def changed(self) -> None:
        """A logging configuration or redaction policy changed: read them again at their
        next use."""
        self.generation += 1
        self.logging_configs.invalidate()
        if self.redaction is not None:
            self.redaction.invalidate()

    def rules_of(self, workspace: str) -> tuple[LoggingConfig | None, Any, bytes]:
        """What a worker process needs to prepare records of ``workspace`` as `prepare` does:
        the workspace's logging configuration, its redaction policy (`RedactionPolicy`, or
        None without redaction) and the key of the policy's ``hash`` action. Never raises: a
        workspace whose policies cannot be read gets no configuration (its records are then
        prepared here, which copes)."""
        try:
            config = self.logging_configs.for_workspace(workspace)
            if self.redaction is None:
                return config, None, b""
            return config, self.redaction.for_workspace(workspace).policy, self.redaction.hash_key
        except Exception:
            log.exception("reading the policies of workspace %r failed", workspace)
            return None, None, b""

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

    def prepare_span(self, span: Span) -> None:
        """The same for an OTLP span stored as a span: its input and output are bodies, and
        so is every attribute that holds text but names no error and no step of the trace
        (`_is_content`): all go while the workspace does not deliver text, and media the
        workspace does not deliver leave the input and output. Then its attributes, labels
        and error are redacted."""
        try:
            config = self.logging_configs.for_workspace(span.workspace)
            if not (config.delivers_bodies and config.text_data_delivery_enabled):
                span.input = span.output = None
                attributes = span.attributes
                span.attributes = {k: v for k, v in attributes.items() if not _is_content(k, v)}
            elif off := media_off(config):
                span.input = withhold_media(span.input, off)
                span.output = withhold_media(span.output, off)
            if self.redaction is not None:
                redactor = self.redaction.for_workspace(span.workspace)
                if not redactor.may_find(_span_texts(span)):
                    return  # nothing any detector could find: the common case, one search
                span.input, found_in = redactor.redact_value(span.input, "bodies")
                span.output, found_out = redactor.redact_value(span.output, "bodies")
                self.redactions += found_in + found_out
                self.redactions += redactor.redact_span_attributes(span.attributes)
                self.redactions += _redact_labels(span, redactor)
                _redact_error(span, redactor)
        except Exception:
            self.failures += 1
            log.exception("preparing a span failed; its input, output and attributes are dropped")
            span.input = span.output = None
            span.attributes = {}
            span.error = None

    def prepare_all(self, records: list[InvocationRecord]) -> None:
        """`prepare` each of ``records`` that it could change, found by one search over a
        workspace's records (`to_prepare`) instead of one search a record: what the spool
        thread runs on each batch."""
        by_workspace: dict[str, list[InvocationRecord]] = {}
        for record in records:
            by_workspace.setdefault(record.workspace, []).append(record)
        for workspace, theirs in by_workspace.items():
            for i in self.to_prepare(workspace, theirs):
                self.prepare(theirs[i])

    def to_prepare(self, workspace: str, records: list[InvocationRecord]) -> Collection[int]:
        """Which of ``records``, all of ``workspace``, `prepare` could change (their
        positions): none when the workspace delivers all that a record holds and no detector
        of its redaction can find anything in what it reads of them, one search over them
        all; else those holding a candidate, or all of them when the workspace withholds
        anything."""
        every = range(len(records))
        try:
            config = self.logging_configs.for_workspace(workspace)
            if not (_delivers_all(config) and config.embedding_data_delivery_enabled):
                return every
            if self.redaction is None:
                return ()
            return self.redaction.for_workspace(workspace).to_redact([r.data for r in records])
        except Exception:  # every record prepared, which copes
            log.exception("checking a batch's records against the workspace's policies failed")
            return every

    def leaves_spans(self, workspace: str, frames: list[bytes]) -> bool:
        """True only when `prepare_span` would leave every span of ``workspace`` whose spool
        frames are ``frames`` as it is: the workspace delivers bodies, their text and every
        medium, and no detector of its redaction could find anything in the frames (one
        search over them all: a frame holds every value `prepare_span` redacts, as orjson
        writes it)."""
        try:
            if not _delivers_all(self.logging_configs.for_workspace(workspace)):
                return False
            if self.redaction is None:
                return True
            documents = b"\n".join(frames)
            return not self.redaction.for_workspace(workspace).may_find_json(documents)
        except Exception:  # the spans are prepared one by one, which copes
            log.exception("checking an export's spans against the workspace's policies failed")
            return False

    def prepare_link(self, span: Span) -> None:
        """The same for the link a model-call span merged into a gateway call leaves: of
        what the exporter sent, it holds the error, the session and the app (its attributes
        name the gateway call, which must stay readable for the trace to find it)."""
        try:
            if self.redaction is not None:
                redactor = self.redaction.for_workspace(span.workspace)
                self.redactions += _redact_labels(span, redactor)
                _redact_error(span, redactor)
        except Exception:
            self.failures += 1
            log.exception("preparing a merged span's link failed; its error is dropped")
            span.error = None
            span.session_id = span.app = None


# attributes that name what a step is, not what it read or wrote: kept with the text
_STEP_ATTRIBUTES = frozenset(
    (
        "gen_ai.operation.name",
        "gen_ai.provider.name",
        "gen_ai.system",
        "gen_ai.request.model",
        "gen_ai.response.model",
        "gen_ai.response.id",
        "llmtrail.span.kind",
        "openinference.span.kind",
    )
)


def _delivers_all(config: LoggingConfig) -> bool:
    """Whether a workspace's logging configuration delivers bodies, their text and every
    medium: then `apply_delivery` leaves a record's bodies (but an embedding's) and
    `prepare_span` a span's input and output as they are."""
    return bool(
        config.delivers_bodies and config.text_data_delivery_enabled and not media_off(config)
    )


def _is_content(key: str, value: Any) -> bool:
    """Whether a span attribute is content (text the step read or wrote): a string, list or
    object that is not an error's and names no step."""
    return (
        isinstance(value, str | list | dict)
        and key not in _STEP_ATTRIBUTES
        and not key.startswith(ERROR_ATTRIBUTES)  # error texts: kept, as a record keeps its error
    )


def _span_texts(span: Span) -> list[Any]:
    """Every value of a span that `prepare_span` redacts (with the attributes' keys, which
    can only make the search find more)."""
    error = span.error
    errors = () if error is None else (error.type, error.message, error.stack_trace)
    return [span.input, span.output, span.attributes, span.tags, span.session_id, span.app, errors]


def _redact_labels(span: Span, redactor: Any) -> int:
    """A span's tags, session id and app redacted as metadata (in place); one left empty
    (``drop``) goes. The number of findings."""
    count = 0
    tags = []
    for tag in span.tags:
        new, n = redactor.redact_value(tag, "metadata")
        count += n
        if new:
            tags.append(new)
    span.tags = tuple(tags)
    span.session_id, n = redactor.redact_value(span.session_id, "metadata")
    count += n
    span.app, n = redactor.redact_value(span.app, "metadata")
    count += n
    span.session_id, span.app = span.session_id or None, span.app or None
    return count


def _redact_error(span: Span, redactor: Any) -> None:
    """A span's error type, message and stack trace redacted as error texts (in place), as a
    record's are."""
    error = span.error
    if error is not None:
        span.error = dataclasses.replace(
            error,
            type=error.type and redactor.redact_text(error.type, "errors"),
            message=error.message and redactor.redact_text(error.message, "errors"),
            stack_trace=error.stack_trace and redactor.redact_text(error.stack_trace, "errors"),
        )


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
