"""How long a workspace keeps its data: the retention policy, its own resource.

A policy lives in the `StateStore` (namespace ``retention``, key = the workspace), apart from
the logging configuration, so that a ``PutModelInvocationLoggingConfiguration`` from an AWS
runbook never wipes it. Every period is optional; an unset one keeps that data forever, and a
workspace with no policy keeps everything (nothing is deleted unless someone asked):

* ``recordsDays``: records older than this go, with their bodies and body objects; their
  rollup rows go too (rollups older than the records they summarise);
* ``bodiesDays``: shorter — records older than this keep their metadata and counts but lose
  their bodies (rows and objects);
* ``spansDays``: spans (workflow, agent, tool … steps) older than this go;
* ``archive``: what is deleted is first written as Parquet under
  ``DATA_DIR/archive/<workspace>/YYYY/MM/DD/`` (`llmtrail.security.archive`).

The JSON uses the API's lowerCamelCase; `RetentionPolicy` is the validated value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from llmtrail.errors import ValidationError
from llmtrail.store.interfaces import StateStore

NAMESPACE = "retention"
MAX_DAYS = 36_500  # a hundred years: longer is "forever", which is leaving the period unset
_PERIODS = {"recordsDays": "records_days", "bodiesDays": "bodies_days", "spansDays": "spans_days"}


@dataclass(frozen=True)
class RetentionPolicy:
    """Days to keep each kind of data (None: forever) and whether to archive deletions."""

    records_days: int | None = None
    bodies_days: int | None = None
    spans_days: int | None = None
    archive: bool = False

    @classmethod
    def from_dict(cls, doc: Any) -> RetentionPolicy:
        """Validate a policy as the API takes it; raises `ValidationError` naming the field."""
        if not isinstance(doc, Mapping):
            raise ValidationError("retention", "must be a JSON object")
        unknown = sorted(set(doc) - {*_PERIODS, "archive"})
        if unknown:
            known = ", ".join([*_PERIODS, "archive"])
            raise ValidationError(unknown[0], f"is not a retention setting (known: {known})")
        values: dict[str, Any] = {}
        for key, attr in _PERIODS.items():
            value = doc.get(key)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValidationError(key, f"must be a whole number of days, got {value!r}")
            if not 1 <= value <= MAX_DAYS:
                raise ValidationError(
                    key, f"must be between 1 and {MAX_DAYS} days (omit it to keep forever)"
                )
            values[attr] = value
        archive = doc.get("archive", False)
        if not isinstance(archive, bool):
            raise ValidationError("archive", f"must be true or false, got {archive!r}")
        policy = cls(**values, archive=archive)
        records, bodies = policy.records_days, policy.bodies_days
        if records is not None and bodies is not None and bodies > records:
            raise ValidationError(
                "bodiesDays",
                f"must not exceed recordsDays ({records}): bodies go with their records",
            )
        return policy

    def to_dict(self) -> dict[str, Any]:
        return {
            "recordsDays": self.records_days,
            "bodiesDays": self.bodies_days,
            "spansDays": self.spans_days,
            "archive": self.archive,
        }

    @property
    def deletes(self) -> bool:
        """Whether the policy deletes anything at all."""
        return any(d is not None for d in (self.records_days, self.bodies_days, self.spans_days))

    def cutoff(self, days: int | None, now: datetime) -> datetime | None:
        """The moment before which data kept ``days`` days is deleted at ``now``."""
        return None if days is None else now - timedelta(days=days)


class RetentionPolicies:
    """The policies of every workspace, in the `StateStore`."""

    def __init__(self, state: StateStore) -> None:
        self.state = state

    def get(self, workspace: str) -> RetentionPolicy:
        """The workspace's policy; the keep-everything default when none is set."""
        value = self.state.get(NAMESPACE, workspace)
        return RetentionPolicy() if value is None else RetentionPolicy.from_dict(value)

    def put(self, workspace: str, doc: Any) -> RetentionPolicy:
        """Validate ``doc`` and make it the workspace's policy."""
        policy = RetentionPolicy.from_dict(doc)
        self.state.put(NAMESPACE, workspace, policy.to_dict())
        return policy

    def delete(self, workspace: str) -> bool:
        """Back to keeping everything; True if a policy was set."""
        return self.state.delete(NAMESPACE, workspace)

    def all(self) -> dict[str, RetentionPolicy]:
        """Every workspace with a policy set, by name."""
        return {ws: RetentionPolicy.from_dict(v) for ws, v in self.state.list(NAMESPACE).items()}
