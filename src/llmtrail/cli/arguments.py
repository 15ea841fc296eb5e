"""Arguments many commands share: where the data is, how far back, and values that end up in
an API path or body (a path segment, KEY=VALUE tags)."""

from __future__ import annotations

import argparse
import json
import sys
import urllib.parse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from llmtrail.cli.output import add_format_options
from llmtrail.errors import ValidationError
from llmtrail.timerange import parse_instant

_PATH_SAFE = "/:@=+,;$!*'()~"


def parse_since(text: str) -> datetime:
    """``15m``, ``1h``, ``7d``, ``2w``: that long before now, or an instant
    (`llmtrail.timerange.parse_instant`); a usage error otherwise."""
    try:
        return parse_instant(text, "--since", now=datetime.now(UTC), relative="before")
    except ValidationError as exc:
        raise argparse.ArgumentTypeError(exc.message) from None


def time_zone_option(text: str) -> str:
    """``--tz`` and ``--timezone``: a zone every engine knows (`time_zone`), else a usage
    error."""
    from llmtrail.analytics.time_zones import time_zone_name
    from llmtrail.errors import ValidationError

    try:
        return time_zone_name(text)
    except ValidationError as exc:
        raise argparse.ArgumentTypeError(exc.message) from None


def add_common_options(
    parser: argparse.ArgumentParser, data: bool = True, default_format: str = "table"
) -> None:
    """``--config`` and ``--data-dir``; for a command that prints data also ``--url`` and
    the output format."""
    parser.add_argument("--config", type=Path, metavar="FILE", help="the TOML configuration file")
    parser.add_argument(
        "--data-dir", type=Path, metavar="DIR", help="the data directory (default ./llmtrail-data)"
    )
    if data:
        add_url_option(parser)
        add_format_options(parser, default_format)


def add_url_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url",
        help="the server to ask (default $LLMTRAIL_URL, else the server that owns the data "
        "directory; with neither, the data directory is opened directly)",
    )


def add_since(parser: argparse.ArgumentParser, default: str | None = None) -> None:
    parser.add_argument(
        "--since",
        type=parse_since,
        default=parse_since(default) if default else None,
        metavar="DURATION",
        help="how far back, e.g. 15m, 1h, 7d" + (f" (default {default})" if default else ""),
    )


def add_time_range(parser: argparse.ArgumentParser, default: str | None = "30d") -> None:
    """``--since`` or ``--start`` / ``--end``."""
    add_since(parser, default)
    parser.add_argument(
        "--start", help="the range's start: YYYY-MM-DD or RFC 3339 (instead of --since)"
    )
    parser.add_argument(
        "--end", help="the range's end, exclusive: YYYY-MM-DD or RFC 3339 (default now)"
    )


def time_range(args: argparse.Namespace) -> dict[str, Any]:
    """The ``start`` and ``end`` query parameters the range options name."""
    start = args.start or (args.since.isoformat() if args.since else None)
    return {"start": start, "end": args.end}


def path_segment(value: str) -> str:
    """A path segment: only what would break a URL is percent-encoded."""
    return urllib.parse.quote(value, safe=_PATH_SAFE)


def key_value(text: str) -> dict[str, str]:
    """A ``KEY=VALUE`` argument as ``{"key": KEY, "value": VALUE}`` (an argparse type)."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return {"key": key, "value": value}


def read_json_file(name: str, field: str = "FILE") -> Any:
    """The JSON document in file ``name`` (``-``: standard input); `ValidationError` naming
    ``field`` when it cannot be read or is not JSON."""
    try:
        text = sys.stdin.read() if name == "-" else Path(name).read_text()
    except OSError as exc:
        raise ValidationError(field, f"cannot be read: {exc}") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ValidationError(field, f"{name} is not valid JSON: {exc}") from None
