"""``llmtrail prices``: thin commands over the price table API (``/api/prices``)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from llmtrail.cli.arguments import add_common_options, add_time_range, path_segment, time_range
from llmtrail.cli.output import Table, print_list, print_object
from llmtrail.cli.usage import UsageError, add_command

RATES = (
    ("input", "input_mtok"),
    ("output", "output_mtok"),
    ("cacheRead", "cache_read_mtok"),
    ("cacheWrite", "cache_write_mtok"),
)
_PRICE_HEADERS = ["provider", "model", "source", "effectiveFrom", "input", "output",
                  "cacheRead", "cacheWrite", "version"]  # fmt: skip
_MISSING_HEADERS = ["provider", "modelId", "resolvedModelId", "count", "lastSeen"]


def register(sub: Any) -> None:
    prices = add_command(
        sub,
        "prices",
        "the price table: list, show, set, delete, missing",
        """Inspect and override the prices llmtrail uses to cost each call, in USD per
        million tokens. Built-in prices come from the genai-prices data and llmtrail's
        own table; an override wins over both from its effective date.""",
        ["llmtrail prices list --provider openai", "llmtrail prices missing --since 7d"],
    )
    commands = prices.add_subparsers(dest="prices_command", required=True, metavar="COMMAND")

    listing = add_command(
        commands,
        "list",
        "every price version",
        """List every price version: provider, model or pattern, source, effective date
        and the rates. --format json prints one JSON array of them.""",
        ["llmtrail prices list", "llmtrail prices list --source override --format json"],
    )
    add_common_options(listing)
    listing.add_argument("--provider", help="only this provider's prices")
    listing.add_argument(
        "--source",
        choices=("override", "llmtrail", "genai-prices"),
        help="only prices from this source",
    )
    listing.set_defaults(handler=_list)

    show = add_command(
        commands,
        "show",
        "one model's price versions",
        """Show a model's price versions and mark the one in force now, or at --at.""",
        ["llmtrail prices show gpt-4o", "llmtrail prices show claude-sonnet-4 --at 2025-06-01"],
    )
    add_common_options(show)
    show.add_argument("model", metavar="MODEL", help="a model id, as records name it")
    show.add_argument("--provider", help="the provider (default: as the model id says)")
    show.add_argument("--at", help="the price in force at this date or time (default now)")
    show.set_defaults(handler=_show)

    put = add_command(
        commands,
        "set",
        "add or replace a price override (USD per 1M tokens)",
        """Add or replace a price override, in USD per million tokens, effective from a
        date (today by default). Calls already recorded keep their cost until llmtrail
        cost recompute re-prices them.""",
        [
            "llmtrail prices set --provider openai --model gpt-4o --input 2.5 --output 10",
            "llmtrail prices set --provider '*' --model 'corp/*' --input 1 --effective-from "
            "2026-01-01",
        ],
    )
    add_common_options(put)
    put.add_argument("--provider", required=True, help="a provider name, or * for any")
    put.add_argument("--model", required=True, help="a model id or glob pattern")
    for flag, key in RATES:
        dashed = "--" + "".join("-" + c.lower() if c.isupper() else c for c in flag)
        put.add_argument(dashed, dest=key, metavar="USD", help=f"{flag} price per 1M tokens")
    put.add_argument("--effective-from", metavar="DATE", help="YYYY-MM-DD (default today)")
    put.add_argument("--id", help="the override's id (default PROVIDER/MODEL@DATE)")
    put.add_argument("--note", help="a note kept with the override")
    put.set_defaults(handler=_set)

    delete = add_command(
        commands,
        "delete",
        "remove a price override",
        """Remove a price override by its id (llmtrail prices list --source override shows
        the ids in the version column).""",
        ["llmtrail prices delete openai/gpt-4o@2026-01-01"],
    )
    add_common_options(delete)
    delete.add_argument("override_id", metavar="ID", help="the override's id")
    delete.set_defaults(handler=_delete)

    missing = add_command(
        commands,
        "missing",
        "models seen in records with no price",
        """List the models that recorded calls used but that have no price, so their cost
        is unknown: how many calls and when last seen.""",
        ["llmtrail prices missing --since 7d"],
    )
    add_common_options(missing)
    add_time_range(missing)
    missing.set_defaults(handler=_missing)


def price_row(price: dict[str, Any]) -> list[Any]:
    rates = price.get("prices", {})
    return [
        price["provider"],
        price["model"],
        price["source"],
        price.get("effectiveFrom"),
        *(rates.get(key) for _, key in RATES),
        price["version"],
    ]


def _list(backend: Any, args: argparse.Namespace) -> int:
    query = {"provider": args.provider, "source": args.source}
    items = backend.request("GET", "/api/prices", query)["prices"]
    print_list(items, Table(_PRICE_HEADERS, [price_row(p) for p in items]), args.format)
    return 0


def _show(backend: Any, args: argparse.Namespace) -> int:
    path = f"/api/prices/{path_segment(args.provider or '-')}/{path_segment(args.model)}"
    answer = backend.request("GET", path, {"at": args.at})
    current = (answer.get("current") or {}).get("version")
    rows = [[*price_row(p), "*" if p["version"] == current else ""] for p in answer["versions"]]
    print_object(answer, args.format, Table([*_PRICE_HEADERS, "inForce"], rows))
    return 0


def _set(backend: Any, args: argparse.Namespace) -> int:
    rates = {key: getattr(args, key) for _, key in RATES if getattr(args, key) is not None}
    if not rates:
        raise UsageError("give at least one of --input, --output, --cache-read, --cache-write")
    body: dict[str, Any] = {
        "provider": args.provider,
        "model": args.model,
        "prices": rates,
        "effective_from": args.effective_from or datetime.now(UTC).date().isoformat(),
    }
    if args.id:
        body["id"] = args.id
    if args.note:
        body["note"] = args.note
    answer = backend.request("PUT", "/api/prices", body=body)
    print_object(answer, args.format, Table(_PRICE_HEADERS, [price_row(answer["price"])]))
    return 0


def _delete(backend: Any, args: argparse.Namespace) -> int:
    answer = backend.request("DELETE", f"/api/prices/{path_segment(args.override_id)}")
    print_object(answer, args.format, text=f"deleted price override {answer['deleted']}")
    return 0


def _missing(backend: Any, args: argparse.Namespace) -> int:
    items = backend.request("GET", "/api/prices/missing", time_range(args))["missing"]
    rows = [[m.get(h) for h in _MISSING_HEADERS] for m in items]
    print_list(items, Table(_MISSING_HEADERS, rows), args.format)
    return 0
