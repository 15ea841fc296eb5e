"""Time zone names every API parameter and CLI option accepts: the IANA zones that Python's
``zoneinfo`` and the engines (DuckDB's ICU, ClickHouse's tz database) all know.

``zoneinfo`` reads the host's tz database, where some files are not zones but the host's own
settings (``localtime``, ``posixrules``) or other trees (``posix/…``, ``right/…``); the engines
refuse those (DuckDB: ``Unknown TimeZone``). Checking once here, at the door, keeps a name
that zoneinfo accepts from failing later inside a query as a 500.
"""

from __future__ import annotations

import functools
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from llmtrail.errors import ValidationError

_HOST_FILES = frozenset({"localtime", "posixrules"})
_OTHER_TREES = ("posix/", "right/")
MAX_NAME = 64


@functools.cache
def known_zones() -> frozenset[str]:
    """The IANA zone names of the host's tz database that the engines know too."""
    return frozenset(
        name
        for name in available_timezones()
        if name not in _HOST_FILES and not name.startswith(_OTHER_TREES)
    )


def time_zone(name: Any, field: str = "tz") -> ZoneInfo:
    """The zone ``name``; a `ValidationError` on ``field`` when it is not one of
    `known_zones`."""
    if isinstance(name, str) and len(name) <= MAX_NAME and name in known_zones():
        return ZoneInfo(name)
    shown = repr(name) if len(repr(name)) <= 80 else repr(name)[:77] + "..."
    raise ValidationError(
        field, f"must be an IANA time zone such as UTC or Europe/Paris, got {shown}"
    )


def time_zone_name(name: Any, field: str = "tz") -> str:
    """``name`` when it is a zone `time_zone` accepts."""
    time_zone(name, field)
    return str(name)
