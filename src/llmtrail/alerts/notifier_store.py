"""Named notifiers in the `StateStore` (namespace ``notifiers``): what alarm actions name.

An action is a notifier's name, or an SNS-style topic ARN whose last segment is the name
(``arn:aws:sns:us-east-1:123456789012:ops`` → ``ops``), so alarms copied from AWS keep
working once a notifier of that name exists.

Notifiers belong to a workspace, like the alarms that name them: the key is the name in the
default workspace (as kept before workspaces) and ``WORKSPACE/NAME`` elsewhere (a name holds
no ``/``), so an alarm's action finds only its own workspace's notifier.
"""

from __future__ import annotations

import re
from typing import Any

from llmtrail.alerts.alarm import notifier_of
from llmtrail.alerts.notifiers import Notifier, build_notifier, validate_notifier
from llmtrail.config import Settings
from llmtrail.errors import NotFound, ValidationError
from llmtrail.record import DEFAULT_WORKSPACE
from llmtrail.store.interfaces import StateStore

NAMESPACE = "notifiers"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,255}$")  # an SNS topic name


def _key(workspace: str, name: str) -> str:
    return name if workspace == DEFAULT_WORKSPACE else f"{workspace}/{name}"


class NotifierStore:
    def __init__(self, state: StateStore, settings: Settings) -> None:
        self.state = state
        self.settings = settings

    def put(self, name: str, doc: Any, *, workspace: str = DEFAULT_WORKSPACE) -> dict[str, Any]:
        if not isinstance(name, str) or not NAME.match(name):
            raise ValidationError(
                "name", "must be 1 to 256 characters: letters, digits, _ . -, as an SNS topic"
            )
        value = {"name": name, **validate_notifier(doc, self.settings)}
        self.state.put(NAMESPACE, _key(workspace, name), value)
        return value

    def get(self, name: str, *, workspace: str = DEFAULT_WORKSPACE) -> dict[str, Any]:
        value = self.state.get(NAMESPACE, _key(workspace, name)) if NAME.match(name) else None
        if value is None:
            raise NotFound(f"no notifier named {name!r}")
        return dict(value)

    def list(self, *, workspace: str = DEFAULT_WORKSPACE) -> list[dict[str, Any]]:
        prefix = f"{workspace}/"
        return [
            value
            for key, value in self.state.list(NAMESPACE).items()
            if (key.startswith(prefix) if workspace != DEFAULT_WORKSPACE else "/" not in key)
        ]

    def delete(self, name: str, *, workspace: str = DEFAULT_WORKSPACE) -> None:
        if not NAME.match(name) or not self.state.delete(NAMESPACE, _key(workspace, name)):
            raise NotFound(f"no notifier named {name!r}")

    def for_action(self, action: str, workspace: str = DEFAULT_WORKSPACE) -> tuple[str, Notifier]:
        """The notifier of ``workspace`` an alarm action names, built; `NotFound` when there
        is none."""
        name = notifier_of(action)
        return name, build_notifier(self.get(name, workspace=workspace), self.settings)
