"""Text widgets: markdown rendered with markdown-it-py, raw HTML off, so a body's markdown
can never put a script or a form on the page (links keep markdown-it's URL check, which
refuses ``javascript:`` and friends)."""

from __future__ import annotations

import threading
from typing import Any

from markdown_it import MarkdownIt

from llmtrail.dashboards.view import DashboardContext, WidgetRange, WidgetView

_MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable("table")
# markdown-it compiles its rule chains on first use, unguarded: two dashboards rendered at once
# on a fresh server could see a half-built chain ("none of the block rules matched")
_LOCK = threading.Lock()


def render_markdown(text: str) -> str:
    """``text`` as safe HTML."""
    with _LOCK:
        return _MARKDOWN.render(text)


def markdown_view(
    props: dict[str, Any], view: WidgetView, span: WidgetRange, context: DashboardContext
) -> WidgetView:
    markdown = props.get("markdown")
    view.kind = "text"
    view.html = render_markdown(markdown if isinstance(markdown, str) else "")
    return view
