"""Static files: our own CSS and JavaScript from the package, and plotly.js from the installed
``plotly`` package (never a CDN, never a copy in this repository), with long cache headers."""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
from importlib import resources
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response

from llmtrail.errors import NotFound

_OWN = {"app.css": "text/css", "app.js": "text/javascript"}
_PLOTLY_CACHE = "public, max-age=31536000, immutable"  # its URL changes with the release
_OWN_CACHE = "public, max-age=3600"


@functools.cache
def plotly_path() -> Path:
    """``plotly.min.js`` inside the installed ``plotly`` package (found, not imported:
    importing plotly itself takes a while and is not needed)."""
    spec = importlib.util.find_spec("plotly")
    roots = list(spec.submodule_search_locations or []) if spec is not None else []
    for root in roots:
        path = Path(root) / "package_data" / "plotly.min.js"
        if path.is_file():
            return path
    raise NotFound("plotly.min.js is not in an installed plotly package")


def plotly_version() -> str:
    """The installed plotly's version: part of the script's URL, so a new release is a new
    URL and the long cache never serves a stale file."""
    try:
        return importlib.metadata.version("plotly")
    except importlib.metadata.PackageNotFoundError:
        return "missing"


async def plotly_js(request: Request) -> Response:
    return FileResponse(
        plotly_path(),
        media_type="text/javascript",
        headers={"cache-control": _PLOTLY_CACHE},
    )


async def static_file(request: Request) -> Response:
    """``/static/{path}``: plotly.js or one of our own files (the one public route of the UI
    besides the login page: the login page needs the stylesheet before any key)."""
    if request.path_params["path"] == "plotly.min.js":
        return await plotly_js(request)
    return await own_file(request)


async def own_file(request: Request) -> Response:
    name = request.path_params.get("name") or request.path_params["path"]
    if name not in _OWN:
        return Response("not found", 404, media_type="text/plain")
    path = Path(str(resources.files("llmtrail.web") / "static" / name))
    return FileResponse(path, media_type=_OWN[name], headers={"cache-control": _OWN_CACHE})
