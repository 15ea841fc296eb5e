"""``llmtrail prices``, ``cost``, ``profiles``, ``report`` and ``budgets``: thin commands over
the cost API (`llmtrail.server.cost_api`) and the profiles API (``/api/profiles``).

Each command builds one request, sends it through the backend (the running server over HTTP,
or the app in process when none runs) and prints the answer: a table by default, the API's
JSON document with ``--format json``, rows with ``--format csv``. So a command does exactly
what its endpoint does and no number is computed twice. ``report`` writes the rendered file
(``--output FILE``, or standard output; a PDF goes to ``stdout.buffer``).
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.parse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from llmtrail.cli.output import print_record, print_table
from llmtrail.errors import ValidationError

_PATH_SAFE = "/:@=+,;$!*'()~"
_USAGE_COLUMNS = (
    ("calls", "calls"),
    ("inputTokens", "inputTokens"),
    ("outputTokens", "outputTokens"),
    ("cacheReadTokens", "cacheReadTokens"),
    ("cacheWriteTokens", "cacheWriteTokens"),
    ("costUsd", "costUsd"),
    ("unpriced", "unpriced"),
)
_RATES = (
    ("input", "input_mtok"),
    ("output", "output_mtok"),
    ("cacheRead", "cache_read_mtok"),
    ("cacheWrite", "cache_write_mtok"),
)


def _segment(value: str) -> str:
    """A path segment: only what would break a URL is percent-encoded."""
    return urllib.parse.quote(value, safe=_PATH_SAFE)


def _range_options(p: argparse.ArgumentParser, since: Any, default: str | None = "30d") -> None:
    p.add_argument(
        "--since",
        type=since,
        default=since(default) if default else None,
        help=f"how far back, e.g. 7d, 90d (default {default})" if default else "e.g. 7d",
    )
    p.add_argument("--start", help="range start: YYYY-MM-DD or RFC 3339 (instead of --since)")
    p.add_argument("--end", help="range end, exclusive: YYYY-MM-DD or RFC 3339 (default now)")


def _range(args: argparse.Namespace) -> dict[str, Any]:
    start = args.start or (args.since.isoformat() if args.since else None)
    return {"start": start, "end": args.end}


def _print_json(answer: Any) -> None:
    print(json.dumps(answer, indent=2))


def register(sub: Any, common: Any, since: Any) -> None:
    """Add ``prices``, ``cost``, ``profiles``, ``report`` and ``budgets`` to the parser."""
    _register_prices(sub, common, since)
    _register_cost(sub, common, since)
    _register_profiles(sub, common, since)
    _register_report(sub, common, since)
    _register_budgets(sub, common)


# -- prices -----------------------------------------------------------------------------------
def _register_prices(sub: Any, common: Any, since: Any) -> None:
    prices = sub.add_parser("prices", help="the price table: list, show, set, delete, missing")
    commands = prices.add_subparsers(dest="prices_command", required=True)

    listing = commands.add_parser("list", help="every price version")
    common(listing)
    listing.add_argument("--provider")
    listing.add_argument("--source", choices=("override", "llmtrail", "genai-prices"))
    listing.set_defaults(handler=_prices_list)

    show = commands.add_parser("show", help="one model's price versions")
    common(show)
    show.add_argument("model")
    show.add_argument("--provider", help="as records name it (default: as the model id says)")
    show.add_argument("--at", help="the price in force at this date or time (default now)")
    show.set_defaults(handler=_prices_show)

    put = commands.add_parser("set", help="add or replace a price override (USD per 1M tokens)")
    common(put)
    put.add_argument("--provider", required=True, help="a provider name, or * for any")
    put.add_argument("--model", required=True, help="a model id or glob pattern")
    for flag, key in _RATES:
        dashed = "--" + "".join("-" + c.lower() if c.isupper() else c for c in flag)
        put.add_argument(dashed, dest=key, metavar="USD", help=f"{key} price per 1M tokens")
    put.add_argument("--effective-from", metavar="DATE", help="YYYY-MM-DD (default today)")
    put.add_argument("--id", help="the override's id (default PROVIDER/MODEL@DATE)")
    put.add_argument("--note")
    put.set_defaults(handler=_prices_set)

    delete = commands.add_parser("delete", help="remove a price override")
    common(delete)
    delete.add_argument("override_id")
    delete.set_defaults(handler=_prices_delete)

    missing = commands.add_parser("missing", help="models seen in records with no price")
    common(missing)
    _range_options(missing, since)
    missing.set_defaults(handler=_prices_missing)


def _price_row(price: dict[str, Any]) -> list[Any]:
    rates = price.get("prices", {})
    return [
        price["provider"],
        price["model"],
        price["source"],
        price.get("effectiveFrom"),
        *(rates.get(key) for _, key in _RATES),
        price["version"],
    ]


_PRICE_HEADERS = ["provider", "model", "source", "effectiveFrom", "input", "output",
                  "cacheRead", "cacheWrite", "version"]  # fmt: skip


def _prices_list(backend: Any, args: argparse.Namespace) -> int:
    answer = backend.request(
        "GET", "/api/prices", {"provider": args.provider, "source": args.source}
    )
    if args.format == "json":
        _print_json(answer)
    else:
        print_table(_PRICE_HEADERS, [_price_row(p) for p in answer["prices"]], args.format)
    return 0


def _prices_show(backend: Any, args: argparse.Namespace) -> int:
    path = f"/api/prices/{_segment(args.provider or '-')}/{_segment(args.model)}"
    answer = backend.request("GET", path, {"at": args.at})
    if args.format == "json":
        _print_json(answer)
        return 0
    current = (answer.get("current") or {}).get("version")
    rows = [[*_price_row(p), "*" if p["version"] == current else ""] for p in answer["versions"]]
    print_table([*_PRICE_HEADERS, "inForce"], rows, args.format)
    return 0


def _prices_set(backend: Any, args: argparse.Namespace) -> int:
    rates = {key: getattr(args, key) for _, key in _RATES if getattr(args, key) is not None}
    if not rates:
        raise ValidationError(
            "prices", "give at least one of --input, --output, --cache-read, --cache-write"
        )
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
    if args.format == "json":
        _print_json(answer)
    else:
        print_table(_PRICE_HEADERS, [_price_row(answer["price"])], args.format)
    return 0


def _prices_delete(backend: Any, args: argparse.Namespace) -> int:
    answer = backend.request("DELETE", f"/api/prices/{_segment(args.override_id)}")
    if args.format == "json":
        _print_json(answer)
    else:
        print(f"deleted price override {answer['deleted']}")
    return 0


def _prices_missing(backend: Any, args: argparse.Namespace) -> int:
    answer = backend.request("GET", "/api/prices/missing", _range(args))
    if args.format == "json":
        _print_json(answer)
        return 0
    headers = ["provider", "modelId", "resolvedModelId", "count", "lastSeen"]
    print_table(headers, [[m.get(h) for h in headers] for m in answer["missing"]], args.format)
    return 0


# -- cost -------------------------------------------------------------------------------------
def _register_cost(sub: Any, common: Any, since: Any) -> None:
    cost = sub.add_parser(
        "cost", help="cost, tokens and calls by dimension and period; `cost recompute`"
    )
    common(cost)
    cost.add_argument(
        "--by",
        action="append",
        default=[],
        metavar="DIMENSION",
        help="modelId, provider, operation, inferenceProfile.name, inferenceProfile.tags.KEY, "
        "requestMetadata.KEY, identity.arn, status, … (at most two)",
    )
    cost.add_argument("--granularity", choices=("DAILY", "MONTHLY"), default="MONTHLY")
    cost.add_argument("--tz", default="UTC", help="time zone of the periods (default UTC)")
    _range_options(cost, since)
    cost.set_defaults(handler=_cost)
    commands = cost.add_subparsers(dest="cost_command")
    again = commands.add_parser("recompute", help="re-price history with the current prices")
    common(again)
    _range_options(again, since)
    again.add_argument("--dry-run", action="store_true", help="report, but store nothing")
    again.set_defaults(handler=_recompute)


def _cost(backend: Any, args: argparse.Namespace) -> int:
    query = {**_range(args), "by": args.by, "granularity": args.granularity, "tz": args.tz}
    answer = backend.request("GET", "/api/cost", query)
    if args.format == "json":
        _print_json(answer)
        return 0
    dimensions = [d["key"] for d in answer["groupDefinitions"]]
    rows = []
    for result in answer["resultsByTime"]:
        for group in result["groups"]:
            metrics = group["metrics"]
            rows.append(
                [result["timePeriod"]["start"], *group["keys"]]
                + [metrics[key] for key, _ in _USAGE_COLUMNS]
            )
    if args.format == "table":
        total = answer["total"]
        rows.append(["total", *([""] * len(dimensions)), *(total[k] for k, _ in _USAGE_COLUMNS)])
    print_table(["period", *dimensions, *(h for _, h in _USAGE_COLUMNS)], rows, args.format)
    return 0


def _recompute(backend: Any, args: argparse.Namespace) -> int:
    body: dict[str, Any] = {k: v for k, v in _range(args).items() if v is not None}
    body["dryRun"] = bool(args.dry_run)
    answer = backend.request("POST", "/api/cost/recompute", body=body)
    if args.format == "json":
        _print_json(answer)
        return 0
    headers = ["records", "changed", "unchanged", "updated", "oldTotalUsd", "newTotalUsd",
               "deltaUsd"]  # fmt: skip
    print_table(headers, [[answer[h] for h in headers]], args.format)
    if args.format == "table" and answer["byModel"]:
        print()
        rows = [[m, r["records"], r["oldUsd"], r["newUsd"]] for m, r in answer["byModel"].items()]
        print_table(["model", "changed", "oldUsd", "newUsd"], rows, "table")
    return 0


# -- profiles ---------------------------------------------------------------------------------
def _register_profiles(sub: Any, common: Any, since: Any) -> None:
    profiles = sub.add_parser("profiles", help="application inference profiles")
    commands = profiles.add_subparsers(dest="profiles_command", required=True)

    create = commands.add_parser("create", help="create a profile that copies a model")
    common(create)
    create.add_argument("--name", required=True)
    create.add_argument("--copy-from", required=True, metavar="MODEL", help="a model id or ARN")
    create.add_argument("--description")
    create.add_argument("--tag", action="append", default=[], metavar="KEY=VALUE")
    create.set_defaults(handler=_profiles_create)

    listing = commands.add_parser("list", help="list profiles")
    common(listing)
    listing.add_argument("--type", choices=("APPLICATION", "SYSTEM_DEFINED"))
    listing.set_defaults(handler=_profiles_list)

    show = commands.add_parser("show", help="a profile, its tags and its metrics")
    common(show)
    show.add_argument("identifier", metavar="ID", help="profile id or ARN")
    _range_options(show, since)
    show.set_defaults(handler=_profiles_show)

    delete = commands.add_parser("delete", help="delete a profile")
    common(delete)
    delete.add_argument("identifier", metavar="ID")
    delete.set_defaults(handler=_profiles_delete)

    tag = commands.add_parser("tag", help="add or overwrite tags")
    common(tag)
    tag.add_argument("identifier", metavar="ID")
    tag.add_argument("tags", nargs="+", metavar="KEY=VALUE")
    tag.set_defaults(handler=_profiles_tag)

    untag = commands.add_parser("untag", help="remove tags")
    common(untag)
    untag.add_argument("identifier", metavar="ID")
    untag.add_argument("keys", nargs="+", metavar="KEY")
    untag.set_defaults(handler=_profiles_untag)


def _tags(pairs: list[str], field: str = "tag") -> list[dict[str, str]]:
    out = []
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValidationError(field, f"expected KEY=VALUE, got {pair!r}")
        out.append({"key": key, "value": value})
    return out


def _profile_path(identifier: str, suffix: str = "") -> str:
    return f"/api/profiles/{_segment(identifier)}{suffix}"


def _profiles_create(backend: Any, args: argparse.Namespace) -> int:
    body: dict[str, Any] = {
        "inferenceProfileName": args.name,
        "modelSource": {"copyFrom": args.copy_from},
    }
    if args.description is not None:
        body["description"] = args.description
    if args.tag:
        body["tags"] = _tags(args.tag)
    answer = backend.request("POST", "/api/profiles", body=body)
    if args.format == "json":
        _print_json(answer)
    else:
        row = [answer["inferenceProfileArn"], answer["status"]]
        print_table(["inferenceProfileArn", "status"], [row], args.format)
    return 0


def _profiles_list(backend: Any, args: argparse.Namespace) -> int:
    summaries: list[dict[str, Any]] = []
    token = None
    while True:
        page = backend.request(
            "GET", "/api/profiles", {"typeEquals": args.type, "nextToken": token}
        )
        summaries += page["inferenceProfileSummaries"]
        token = page.get("nextToken")
        if not token:
            break
    if args.format == "json":
        _print_json({"inferenceProfileSummaries": summaries})
        return 0
    headers = ["inferenceProfileId", "inferenceProfileName", "type", "status", "models",
               "inferenceProfileArn"]  # fmt: skip
    rows = [
        [
            p["inferenceProfileId"],
            p["inferenceProfileName"],
            p["type"],
            p["status"],
            len(p.get("models", [])),
            p["inferenceProfileArn"],
        ]
        for p in summaries
    ]
    print_table(headers, rows, args.format)
    return 0


def _profiles_show(backend: Any, args: argparse.Namespace) -> int:
    answer = backend.request("GET", _profile_path(args.identifier, "/metrics"), _range(args))
    if args.format == "json":
        _print_json(answer)
        return 0
    shown = {
        **answer["profile"],
        "tags": {t["key"]: t["value"] for t in answer["tags"]},
        "timePeriod": answer["timePeriod"],
        "metrics": answer["metrics"],
    }
    print_record(shown, args.format)
    return 0


def _profiles_delete(backend: Any, args: argparse.Namespace) -> int:
    backend.request("DELETE", _profile_path(args.identifier))
    if args.format == "json":
        _print_json({"deleted": args.identifier})
    else:
        print(f"deleted inference profile {args.identifier}")
    return 0


def _print_tags(answer: dict[str, Any], fmt: str) -> None:
    if fmt == "json":
        _print_json(answer)
    else:
        print_table(["key", "value"], [[t["key"], t["value"]] for t in answer["tags"]], fmt)


def _profiles_tag(backend: Any, args: argparse.Namespace) -> int:
    body = {"tags": _tags(args.tags, "tags")}
    _print_tags(backend.request("POST", _profile_path(args.identifier, "/tags"), body=body),
                args.format)  # fmt: skip
    return 0


def _profiles_untag(backend: Any, args: argparse.Namespace) -> int:
    path = _profile_path(args.identifier, "/tags")
    _print_tags(backend.request("DELETE", path, {"tagKeys": args.keys}), args.format)
    return 0


# -- reports ----------------------------------------------------------------------------------
def _register_report(sub: Any, common: Any, since: Any) -> None:
    report = sub.add_parser("report", help="performance, cost or chargeback report")
    common(report, data=False)
    report.add_argument("name", choices=("performance", "cost", "chargeback"))
    report.add_argument("--url", help="server URL (default: the server that owns the data dir)")
    report.add_argument("--format", choices=("json", "csv", "html", "pdf"), default="json")
    report.add_argument("--output", "-o", type=Path, metavar="FILE", help="write to FILE")
    report.add_argument("--tz", default="UTC", help="time zone of days and months")
    report.add_argument("--dimension", help="chargeback: the field to split by")
    report.add_argument("--table", help="CSV: which table (default the report's main one)")
    _range_options(report, since)
    report.set_defaults(handler=_report)


def _report(backend: Any, args: argparse.Namespace) -> int:
    query = {**_range(args), "tz": args.tz, "format": args.format,
             "dimension": args.dimension, "table": args.table}  # fmt: skip
    data: bytes = backend.request("GET", f"/api/reports/{args.name}", query, raw=True)
    if args.output is not None:
        args.output.write_bytes(data)
        print(f"{args.output}: {args.name} report, {args.format}, {len(data)} bytes")
    elif args.format == "pdf":
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        sys.stdout.write(data.decode("utf-8"))
    return 0


# -- budgets ----------------------------------------------------------------------------------
def _register_budgets(sub: Any, common: Any) -> None:
    budgets = sub.add_parser("budgets", help="monthly budgets: list (default), set, delete")
    common(budgets)
    budgets.set_defaults(handler=_budgets_list)
    commands = budgets.add_subparsers(dest="budgets_command")

    listing = commands.add_parser("list", help="budgets with spent, forecast and percent used")
    common(listing)
    listing.set_defaults(handler=_budgets_list)

    put = commands.add_parser("set", help="add or replace a budget")
    common(put)
    put.add_argument("--dimension", required=True, help="requestMetadata.KEY, modelId, …")
    put.add_argument("--value", required=True, help="the dimension's value it watches")
    put.add_argument("--limit", required=True, metavar="USD", help="monthly limit in USD")
    put.add_argument("--refuse", action="store_true", help="refuse calls once it is spent")
    put.add_argument("--name", help="default DIMENSION=VALUE")
    put.add_argument("--timezone", default="UTC", help="whose months (default UTC)")
    put.set_defaults(handler=_budgets_set)

    delete = commands.add_parser("delete", help="remove a budget")
    common(delete)
    delete.add_argument("name")
    delete.set_defaults(handler=_budgets_delete)


_BUDGET_HEADERS = ["name", "dimension", "value", "limitUsd", "action", "month", "spentUsd",
                   "forecastUsd", "percentUsed", "exceeded"]  # fmt: skip


def _budgets_list(backend: Any, args: argparse.Namespace) -> int:
    answer = backend.request("GET", "/api/budgets")
    if args.format == "json":
        _print_json(answer)
    else:
        rows = [[b.get(h) for h in _BUDGET_HEADERS] for b in answer["budgets"]]
        print_table(_BUDGET_HEADERS, rows, args.format)
    return 0


def _budgets_set(backend: Any, args: argparse.Namespace) -> int:
    body: dict[str, Any] = {
        "dimension": args.dimension,
        "value": args.value,
        "limitUsd": args.limit,
        "action": "refuse" if args.refuse else "notify",
        "timezone": args.timezone,
    }
    if args.name:
        body["name"] = args.name
    answer = backend.request("PUT", "/api/budgets", body=body)
    if args.format == "json":
        _print_json(answer)
    else:
        print_table(_BUDGET_HEADERS, [[answer.get(h) for h in _BUDGET_HEADERS]], args.format)
    return 0


def _budgets_delete(backend: Any, args: argparse.Namespace) -> int:
    answer = backend.request("DELETE", f"/api/budgets/{_segment(args.name)}")
    if args.format == "json":
        _print_json(answer)
    else:
        print(f"deleted budget {answer['deleted']}")
    return 0
