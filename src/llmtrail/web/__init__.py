"""The web UI at ``/`` of ``llmtrail serve``: server-rendered pages (Jinja2, autoescaped),
charts drawn by plotly.js from the installed ``plotly`` package, and as little JavaScript
of our own as the pages need (`static/app.js` draws the embedded figures).

Why it is built this way: every page reads through the same library functions as the JSON
API (the query runner on its bounded pool, the span and record stores, cost attribution,
the metrics and alarm services), taking the workspace explicitly, so the UI never shows a
number the API would not give; each page's URL carries its whole state (the time range,
filters, the query), so a URL is shareable; bad input is a message on the page, never an
error page with a traceback. `WebUI.routes` is what the server mounts.
"""

from llmtrail.web.ui import WebUI

__all__ = ["WebUI"]
