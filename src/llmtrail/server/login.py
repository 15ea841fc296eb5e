"""The login page: a key pasted once becomes a session cookie (``HttpOnly``,
``SameSite=Strict``), so the UI's pages and its own requests need no key header. Only keys
that may read (reader, admin) sign in; the form carries the CSRF token like every other
form, so a foreign page cannot sign a browser in with the attacker's key."""

from __future__ import annotations

import asyncio
import functools
import urllib.parse
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from llmtrail.security.keys import KeyRing
from llmtrail.security.principal import Permission
from llmtrail.security.sessions import COOKIE, Sessions
from llmtrail.server.access import guarded_route
from llmtrail.server.gatekeeper import CSRF_SCOPE_KEY

if TYPE_CHECKING:
    import jinja2

_FORM_LIMIT = 8192


@functools.cache
def _templates() -> jinja2.Environment:
    """The login page's templates; jinja2 loads when the page is first asked for."""
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("llmtrail.web", "templates"), autoescape=True
    )


async def _form(request: Request) -> dict[str, str]:
    """The login form's fields (URL-encoded; the standard library parses it)."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > _FORM_LIMIT:
            return {}
    try:
        fields = urllib.parse.parse_qs(body.decode("utf-8", "replace"), max_num_fields=10)
    except ValueError:
        return {}
    return {name: values[0] for name, values in fields.items()}


def _local(target: str | None) -> str:
    """Where to go after signing in: a path on this server, never another site."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


class LoginPages:
    def __init__(self, keys: KeyRing, sessions: Sessions, audit: object = None) -> None:
        self.keys = keys
        self.sessions = sessions
        self.audit = audit

    def routes(self) -> list:
        return [
            guarded_route("/login", self.form, Permission.PUBLIC, ["GET"]),
            guarded_route("/login", self.sign_in, Permission.PUBLIC, ["POST"]),
            guarded_route("/logout", self.sign_out, Permission.PUBLIC, ["GET", "POST"]),
        ]

    def _page(
        self, request: Request, error: str = "", status: int = 200, next_: str = "/"
    ) -> Response:
        html = (
            _templates()
            .get_template("login.j2")
            .render(csrf=request.scope.get(CSRF_SCOPE_KEY, ""), next=_local(next_), error=error)
        )
        return HTMLResponse(html, status, headers={"cache-control": "no-store"})

    async def form(self, request: Request) -> Response:
        return self._page(request, next_=request.query_params.get("next", "/"))

    async def sign_in(self, request: Request) -> Response:
        form = await _form(request)
        key = form.get("key", "").strip()
        next_ = _local(form.get("next", "/"))
        principal = self.keys.authenticate(key, "session") if key else None
        if principal is None or not principal.can(Permission.READ):
            why = "that key is not valid" if principal is None else "that key may not read data"
            return self._page(request, why, 401, next_)
        session = self.sessions.issue(principal.key_id or "")
        response = RedirectResponse(next_, 303)
        response.set_cookie(
            COOKIE,
            session.cookie,
            max_age=int(self.sessions.seconds),
            path="/",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        if self.audit is not None:
            source = request.client.host if request.client else None
            await asyncio.to_thread(
                self.audit.record,  # type: ignore[attr-defined]
                principal,
                "login",
                surface="ui",
                source=source,
                target={},
            )
        return response

    async def sign_out(self, request: Request) -> Response:
        response = RedirectResponse("/login", 303)
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
        return response
