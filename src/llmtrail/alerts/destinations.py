"""Where a webhook may post: never to this machine or the private network behind it unless
``[alerts] allow_private_webhooks = true``.

A webhook URL is chosen by whoever can configure notifiers, and the server posts to it: left
unchecked, it is a way to reach services that trust the server's network position (cloud
metadata at 169.254.169.254, an admin port on localhost). The host is resolved and every
address it resolves to must be public; the delivery then connects to one of those checked
addresses (never resolving again), so a name that changes its answer between the check and
the connection cannot slip through.
"""

from __future__ import annotations

import ipaddress
import socket
import urllib.parse
from dataclasses import dataclass

from llmtrail.errors import ValidationError


@dataclass(frozen=True)
class Destination:
    """A checked webhook URL: its parts and the addresses it may be reached at."""

    scheme: str
    host: str
    port: int
    target: str  # path and query
    addresses: tuple[str, ...]


def split_url(url: object, field: str = "url") -> urllib.parse.SplitResult:
    """An ``http(s)`` URL with a host and no credentials, or `ValidationError`."""
    if not isinstance(url, str) or not 0 < len(url) <= 2048:
        raise ValidationError(field, "must be an http(s) URL of at most 2048 characters")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError(field, f"must be an http(s) URL with a host, got {url!r}")
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise ValidationError(field, "must not contain spaces or control characters")
    if parts.username or parts.password:
        raise ValidationError(field, "must not carry user:password@ (sign with secretEnv)")
    try:
        parts.port  # noqa: B018 - raises on a port out of range
    except ValueError:
        raise ValidationError(field, "has a port out of range") from None
    return parts


def private_reason(address: str) -> str | None:
    """Why ``address`` is not public (loopback, private, link-local, …), or None."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        # an IPv4 address carried inside IPv6 (mapped, 6to4 2002::/16, Teredo) is judged as
        # itself: 2002:7f00:1:: is 127.0.0.1 to a host that routes 6to4
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        reason = private_reason(str(embedded)) if embedded is not None else None
        if reason is not None or ip.ipv4_mapped is not None:
            return reason
    for kind in ("loopback", "private", "link_local", "multicast", "reserved", "unspecified"):
        if getattr(ip, f"is_{kind}"):
            return kind.replace("_", "-")
    if not ip.is_global:  # 100.64.0.0/10 (shared address space) and similar
        return "non-global"
    return None


def resolve(
    url: str, allow_private: bool, field: str = "url", *, unresolved_ok: bool = False
) -> Destination:
    """Check ``url`` and resolve its host; `ValidationError` when it cannot be resolved
    (unless ``unresolved_ok``: saving a notifier while DNS is down) or an address it resolves
    to is not public (and private destinations are not allowed)."""
    parts = split_url(url, field)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        if unresolved_ok:
            infos = []
        else:
            raise ValidationError(field, f"host {host!r} does not resolve: {exc}") from None
    addresses = tuple(dict.fromkeys(str(info[4][0]) for info in infos))
    if not allow_private:
        for address in addresses:
            reason = private_reason(address)
            if reason is not None:
                raise ValidationError(
                    field,
                    f"host {host!r} resolves to {address}, a {reason} address; webhooks to "
                    "loopback, link-local or private ranges need [alerts] "
                    "allow_private_webhooks = true",
                )
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return Destination(parts.scheme, host, port, target, addresses)
