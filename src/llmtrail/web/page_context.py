"""What every page handler is given, and what it gives back."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from llmtrail.server.runtime import Runtime
from llmtrail.web.pooled_queries import PooledQueries
from llmtrail.web.time_range import TimeRange


@dataclass
class PageContext:
    """One page request: the runtime, the query path, the range the URL names and the
    workspace the page reads (explicit everywhere; ``default`` until keys carry one)."""

    request: Request
    runtime: Runtime
    queries: PooledQueries
    range: TimeRange
    workspace: str = "default"

    def param(self, name: str, limit: int = 10_000) -> str | None:
        """A query parameter (None when absent or empty), cut at ``limit`` characters."""
        value = self.request.query_params.get(name)
        return value[:limit] if value else None


@dataclass
class View:
    """A page to draw: its template and values, the URL state the range picker must keep,
    and the status (a page that shows a bad-input message answers 400)."""

    template: str
    context: dict[str, Any]
    keep: dict[str, str | list[str] | None] = field(default_factory=dict)
    status: int = 200
