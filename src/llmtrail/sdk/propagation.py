"""``traceparent`` (and ``x-llmtrail-session-id``) on the calls an app makes inside a span,
so the gateway's records of those calls join the SDK's trace.

The official ``openai`` and ``anthropic`` clients both send through ``httpx`` (recent releases
through its fork ``httpx2``, same API), so `install_propagation` wraps ``Client.send`` and
``AsyncClient.send`` of whichever of the two is installed, once: every request sent while a
span is current gets the headers it does not already carry. (A client built with another
transport — e.g. anthropic's optional aiohttp client — is not covered.)
For ``boto3``, botocore's ``before-send`` event runs after SigV4 signing, so an added header
leaves the signature valid (the gateway re-signs anyway); `install_propagation` wraps
``botocore.session.Session.create_client`` so that every client created after
`configure` registers the handler, and `instrument_boto3` registers it on a client created
before. Both libraries are optional: when one is not installed nothing is patched. Patching is
idempotent and the patched functions only add headers; they never raise into the app.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
from collections.abc import MutableMapping
from typing import Any

from llmtrail.sdk.spans import current_span
from llmtrail.sdk.tracer import active_tracer

TRACEPARENT = "traceparent"
SESSION_HEADER = "x-llmtrail-session-id"
_MARK = "__llmtrail_propagation__"
_BOTO_HANDLER_ID = "llmtrail-sdk-traceparent"
HTTPX_MODULES = ("httpx", "httpx2")


def outgoing_headers() -> dict[str, str]:
    """The headers a call made now should carry: inside a span, ``traceparent`` naming it
    as the parent and the session header when it has a session; outside any span, none."""
    tracer = active_tracer()
    span = current_span()
    if tracer is None or not tracer.propagate or span is None or not span.recording:
        return {}
    out = {TRACEPARENT: span.traceparent}
    if span.session_id:
        out[SESSION_HEADER] = span.session_id
    return out


def add_headers(headers: MutableMapping[str, str]) -> None:
    """Add `outgoing_headers` to ``headers`` (case-insensitive mappings), keeping any
    header the caller already set."""
    try:
        for name, value in outgoing_headers().items():
            if name not in headers:
                headers[name] = value
    except Exception:
        return


def install_propagation() -> list[str]:
    """Patch the installed HTTP libraries once; returns which are patched (``httpx``,
    ``httpx2``, ``botocore``)."""
    patched = [name for name in HTTPX_MODULES if _installed(name) and _patch_httpx(name)]
    if _installed("botocore") and _patch_botocore():
        patched.append("botocore")
    return patched


def _installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _patch_httpx(module_name: str) -> bool:
    module: Any = importlib.import_module(module_name)
    sync_send = module.Client.send
    if not getattr(sync_send, _MARK, False):

        @functools.wraps(sync_send)
        def send(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
            add_headers(request.headers)
            return sync_send(self, request, *args, **kwargs)

        setattr(send, _MARK, True)
        module.Client.send = send

    async_send = module.AsyncClient.send
    if not getattr(async_send, _MARK, False):

        @functools.wraps(async_send)
        async def send_async(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
            add_headers(request.headers)
            return await async_send(self, request, *args, **kwargs)

        setattr(send_async, _MARK, True)
        module.AsyncClient.send = send_async
    return True


def _before_send(request: Any, **kwargs: Any) -> None:
    """botocore ``before-send`` handler; returns None so botocore sends the request itself."""
    add_headers(request.headers)


def instrument_boto3(client: Any) -> Any:
    """Make a boto3/botocore client (created before `configure`) carry ``traceparent``;
    returns the client. Clients created after `configure` need no call."""
    client.meta.events.register("before-send", _before_send, unique_id=_BOTO_HANDLER_ID)
    return client


def _patch_botocore() -> bool:
    import botocore.session

    create_client = botocore.session.Session.create_client
    if getattr(create_client, _MARK, False):
        return True

    @functools.wraps(create_client)
    def create(self: botocore.session.Session, *args: Any, **kwargs: Any) -> Any:
        client = create_client(self, *args, **kwargs)
        with contextlib.suppress(Exception):
            instrument_boto3(client)
        return client

    setattr(create, _MARK, True)
    botocore.session.Session.create_client = create
    return True
