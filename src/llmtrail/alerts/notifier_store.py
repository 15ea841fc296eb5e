"""Named notifiers in the `StateStore` (namespace ``notifiers``): what alarm actions name.

An action is a notifier's name, or an SNS-style topic ARN whose last segment is the name
(``arn:aws:sns:us-east-1:123456789012:ops`` → ``ops``), so alarms copied from AWS keep
working once a notifier of that name exists.
"""

from __future__ import annotations

import re
from typing import Any

from llmtrail.alerts.alarm import notifier_of
from llmtrail.alerts.notifiers import Notifier, build_notifier, validate_notifier
from llmtrail.config import Settings
from llmtrail.errors import NotFound, ValidationError
from llmtrail.store.interfaces import StateStore

NAMESPACE = "notifiers"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,255}$")  # an SNS topic name


class NotifierStore:
    def __init__(self, state: StateStore, settings: Settings) -> None:
        self.state = state
        self.settings = settings

    def put(self, name: str, doc: Any) -> dict[str, Any]:
        if not isinstance(name, str) or not NAME.match(name):
            raise ValidationError(
                "name", "must be 1 to 256 characters: letters, digits, _ . -, as an SNS topic"
            )
        value = {"name": name, **validate_notifier(doc, self.settings)}
        self.state.put(NAMESPACE, name, value)
        return value

    def get(self, name: str) -> dict[str, Any]:
        value = self.state.get(NAMESPACE, name)
        if value is None:
            raise NotFound(f"no notifier named {name!r}")
        return dict(value)

    def list(self) -> list[dict[str, Any]]:
        return list(self.state.list(NAMESPACE).values())

    def delete(self, name: str) -> None:
        if not self.state.delete(NAMESPACE, name):
            raise NotFound(f"no notifier named {name!r}")

    def for_action(self, action: str) -> tuple[str, Notifier]:
        """The notifier an alarm action names, built; `NotFound` when there is none."""
        name = notifier_of(action)
        return name, build_notifier(self.get(name), self.settings)
