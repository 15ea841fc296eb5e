"""Notifiers: where an alarm's message goes — e-mail through the configured SMTP server, a
webhook (generic JSON or Slack-compatible text, HMAC-SHA256 signed), or a plugin's kind.

A `Notifier` does one thing, `send`, and raises `DeliveryFailed` when the message did not
arrive; retrying is the delivery queue's job (`deliveries`), not the notifier's. Built-in
kinds register in `NOTIFIER_KINDS` the way a plugin's do through the ``llmtrail.notifiers``
entry point group: a `NotifierKind` validates a notifier's stored configuration and builds
the notifier from it and the settings. `MemoryNotifier` keeps what it was sent, for tests
and for a dry run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from llmtrail.alerts.message import AlarmMessage
from llmtrail.config import Settings
from llmtrail.errors import LlmtrailError, ValidationError


class DeliveryFailed(LlmtrailError):
    """A notification did not arrive; the message says where it stopped."""


class Notifier(Protocol):
    def send(self, message: AlarmMessage) -> str:
        """Deliver ``message``; returns a short account of the delivery (the SMTP answer,
        the HTTP status) or raises `DeliveryFailed`."""
        ...


@dataclass(frozen=True)
class NotifierKind:
    """A kind of notifier: ``validate`` checks a stored configuration (without secrets)
    and returns it normalised; ``build`` makes the notifier."""

    validate: Callable[[Mapping[str, Any], Settings], dict[str, Any]]
    build: Callable[[Mapping[str, Any], Settings], Notifier]


class MemoryNotifier:
    """Keeps every message it is sent; fails while ``failing`` is set."""

    def __init__(self) -> None:
        self.sent: list[AlarmMessage] = []
        self.failing: str | None = None

    def send(self, message: AlarmMessage) -> str:
        if self.failing:
            raise DeliveryFailed(self.failing)
        self.sent.append(message)
        return "kept in memory"


def notifier_kinds() -> dict[str, NotifierKind]:
    """The built-in kinds and those plugins register (``llmtrail.notifiers`` entry points,
    each a `NotifierKind`)."""
    from importlib.metadata import entry_points

    from llmtrail.alerts.notifiers import smtp, webhook

    kinds = {
        "email": NotifierKind(smtp.validate, smtp.build),
        "webhook": NotifierKind(webhook.validate, webhook.build),
    }
    for entry in entry_points(group="llmtrail.notifiers"):
        kinds.setdefault(entry.name, entry.load())
    return kinds


def validate_notifier(doc: Any, settings: Settings) -> dict[str, Any]:
    """A notifier configuration checked by its kind (``type``)."""
    if not isinstance(doc, Mapping):
        raise ValidationError("body", 'must be a JSON object with "type"')
    kinds = notifier_kinds()
    kind = doc.get("type")
    if kind not in kinds:
        raise ValidationError("type", f"must be one of {', '.join(sorted(kinds))}, got {kind!r}")
    return {"type": kind, **kinds[kind].validate(doc, settings)}


def build_notifier(doc: Mapping[str, Any], settings: Settings) -> Notifier:
    kinds = notifier_kinds()
    kind = kinds.get(str(doc.get("type")))
    if kind is None:
        raise DeliveryFailed(f"notifier type {doc.get('type')!r} is not installed")
    return kind.build(doc, settings)


__all__ = [
    "DeliveryFailed",
    "MemoryNotifier",
    "Notifier",
    "NotifierKind",
    "build_notifier",
    "notifier_kinds",
    "validate_notifier",
]
