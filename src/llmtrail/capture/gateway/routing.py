"""Model id → provider: aliases first, then the first route whose glob matches."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from llmtrail.config import RouteConfig, Settings


@dataclass(frozen=True)
class Resolved:
    provider: str
    upstream_model: str  # what the provider is asked for


class Router:
    def __init__(self, settings: Settings) -> None:
        self.routes: list[RouteConfig] = list(settings.routes)
        self.aliases = dict(settings.aliases)
        self._cache: dict[str, Resolved | None] = {}

    def resolve(self, model: str) -> Resolved | None:
        """The provider and upstream model for ``model``, or None when no route matches."""
        if model in self._cache:
            return self._cache[model]
        target = self.aliases.get(model, model)
        found = None
        for route in self.routes:
            if fnmatch.fnmatchcase(target, route.match):
                upstream = route.model or _strip_prefix(target, route.provider)
                found = Resolved(route.provider, upstream)
                break
        if len(self._cache) < 10_000:
            self._cache[model] = found
        return found

    def model_ids(self) -> list[str]:
        """What ``/v1/models`` lists: aliases and literal (glob-free) route patterns."""
        ids = list(self.aliases)
        ids += [r.match for r in self.routes if not any(ch in r.match for ch in "*?[")]
        ids += [r.match for r in self.routes if any(ch in r.match for ch in "*?[")]
        return ids


def _strip_prefix(model: str, provider: str) -> str:
    prefix = provider + "/"
    return model[len(prefix) :] if model.startswith(prefix) else model
