"""Jinja2 for the pages: templates from the package, every value autoescaped, and the few
filters the templates share (numbers, money, times, figures as JSON a script tag can hold).

Every page gets the caller (``principal``: the header names the signed-in key, its role and
workspace, with a "Sign out" link, when it came with a session cookie; ``can_manage`` hides
controls the key may not use) and the session's CSRF token (``csrf_token``), which the
layout puts in ``<meta name="csrf-token">`` for our script's requests and which every
``<form method="post">`` sends as its hidden ``csrf`` field."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import orjson
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse

from llmtrail.security.principal import Permission, principal_of
from llmtrail.web.assets import plotly_version
from llmtrail.web.time_range import RELATIVE, TimeRange

if TYPE_CHECKING:
    import jinja2

NAVIGATION = (
    ("/", "Overview"),
    ("/logs", "Logs"),
    ("/traces", "Traces"),
    ("/sessions", "Sessions"),
    ("/applications", "Applications"),
    ("/errors", "Errors"),
    ("/cost", "Cost"),
    ("/profiles", "Profiles"),
    ("/alarms", "Alarms"),
    ("/dashboards", "Dashboards"),
    ("/settings", "Settings"),
)
CSRF_SCOPE_KEY = "llmtrail.csrf"  # where access control puts the session's CSRF token
_SCRIPT_ESCAPES = {ord("<"): "\\u003c", ord(">"): "\\u003e", ord("&"): "\\u0026"}


def script_json(value: Any) -> Markup:
    """``value`` as JSON that cannot end the ``<script>`` element holding it."""
    text = orjson.dumps(value, default=_plain, option=orjson.OPT_SERIALIZE_NUMPY).decode()
    return Markup(text.translate(_SCRIPT_ESCAPES))


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    return str(value)


def number(value: Any, digits: int = 0) -> str:
    """``12,345`` (or ``12,345.68`` with ``digits``); a dash for nothing."""
    if _missing(value):
        return "–"
    try:
        amount = float(value)
    except (TypeError, ValueError):
        return str(value)
    return f"{amount:,.{digits}f}"


def usd(value: Any) -> str:
    """Dollars with cents, or more decimals for amounts under a cent."""
    if _missing(value):
        return "–"
    try:
        amount = Decimal(str(value))
    except ArithmeticError:
        return str(value)
    if amount and abs(amount) < Decimal("0.01"):
        return f"${amount:.6f}"
    return f"${amount:,.2f}"


def when(value: Any) -> str:
    """A time as ``YYYY-MM-DD HH:MM:SS`` UTC (text passes through)."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, str) and "T" in value:
        return value.replace("T", " ").removesuffix("Z")[:19]
    return "–" if _missing(value) else str(value)


def _missing(value: Any) -> bool:
    import jinja2  # a filter runs inside a template, so jinja2 is loaded (`environment`)

    return value is None or value == "" or isinstance(value, jinja2.Undefined)


def pretty_json(value: Any) -> str:
    return orjson.dumps(value, default=_plain, option=orjson.OPT_INDENT_2).decode()


@functools.cache
def environment() -> jinja2.Environment:
    """The pages' templates, made with the first page rendered: jinja2 (~14 MB) is not
    loaded by a server nobody looks at."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("llmtrail.web", "templates"),
        autoescape=True,  # every template, whatever its extension
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        script_json=script_json, number=number, usd=usd, when=when, pretty_json=pretty_json
    )
    env.globals.update(
        navigation=NAVIGATION, relative_ranges=tuple(RELATIVE), plotly_version=plotly_version()
    )
    return env


def page(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    time_range: TimeRange,
    status: int = 200,
    keep: dict[str, str | list[str] | None] | None = None,
) -> HTMLResponse:
    """``template`` rendered with ``context`` plus what the layout needs: the range (and the
    page's other URL state ``keep``, so the range picker keeps it), the current path, the
    caller and the CSRF token."""
    principal = principal_of(request.scope)
    token = request.scope.get(CSRF_SCOPE_KEY)
    html = (
        environment()
        .get_template(template)
        .render(
            **context,
            tr=time_range,
            keep={k: v for k, v in (keep or {}).items() if v is not None},
            path=request.url.path,
            principal=principal,
            can_manage=principal.can(Permission.MANAGE),
            csrf_token=token if isinstance(token, str) and token else None,
        )
    )
    return HTMLResponse(html, status)
