"""The cost surfaces of the HTTP API: prices, cost on history, attribution, per-profile
metrics, reports and budgets.

==============================================  ===============================================
``GET /api/prices``                             every price version (``?provider=``,
                                                ``?source=override|llmtrail|genai-prices``)
``GET /api/prices/{provider}/{model}``          one model's versions and the price in force
                                                (provider ``-``: as the model id says)
``PUT /api/prices``                             add or replace a price override
``DELETE /api/prices/{id}``                     remove an override
``GET /api/prices/missing``                     models seen in records without a price
``GET /api/cost``                               GetCostAndUsage: ``by`` (≤ 2), ``granularity``
``POST /api/cost/recompute``                    re-price ``{start, end}`` with the current table
``GET /api/profiles/{id}/metrics``              per-profile invocations, time, tokens, chars
``GET /api/reports/{name}``                     performance | cost | chargeback, rendered
``GET /api/budgets``                            budgets with spent, forecast, percent used
``PUT /api/budgets``                            add or replace a budget
``DELETE /api/budgets/{name}``                  remove a budget
==============================================  ===============================================

Time ranges are ``start`` (inclusive) and ``end`` (exclusive), each an RFC 3339 timestamp or
a ``YYYY-MM-DD`` date (midnight in ``tz``, UTC by default); ``end`` defaults to now and
``start`` to 30 days before it. Money is a decimal string, never a float.

Every read is of the caller's workspace (`principal_of`): cost, missing prices, profile
metrics, reports and budgets; a recompute re-prices only that workspace's records. Prices are
the server's one table: any key with ``read`` reads them; changing them needs ``manage`` in
the default workspace (the operator's), since an override prices every workspace's calls and
so moves their costs and budgets. A budget belongs to the workspace that set it; another
workspace's is 404.

Every handler only decodes HTTP and calls the library (`attribution`, `cost.recompute`,
`PriceTable`, `build_report`, `BudgetService`) off the event loop, because the stores block;
errors are problem JSON naming the field (`from_error`). The CLI's commands are these
endpoints, called over HTTP or in process.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from llmtrail.analytics.attribution import (
    CostQuery,
    cost_and_usage,
    models_seen,
    profile_usage,
    zone,
)
from llmtrail.analytics.budget_spend import month_spend
from llmtrail.analytics.budgets import Budget, budget_status
from llmtrail.errors import LlmtrailError, NotFound, ValidationError
from llmtrail.pricing.cost import CostChange, RecomputeReport, recompute
from llmtrail.pricing.price import Price
from llmtrail.pricing.price_overrides import validate_override
from llmtrail.record import format_timestamp
from llmtrail.reports import MEDIA_TYPES, ReportScope, build_report, render
from llmtrail.security.principal import Permission, principal_of
from llmtrail.server.access import guarded_route, operator_only
from llmtrail.server.api import answer, json_response
from llmtrail.server.params import json_object
from llmtrail.server.problems import from_error
from llmtrail.server.runtime import PRICES_NAMESPACE, Runtime
from llmtrail.store.interfaces import RecordQuery
from llmtrail.timerange import parse_instant, parse_range

MAX_BODY_BYTES = 64 * 1024
DEFAULT_DAYS = 30
RECOMPUTE_PAGE = 500
RECOMPUTE_SAMPLE = 20  # changed records listed in the answer
PRICE_SOURCES = ("override", "llmtrail", "genai-prices")
_BUDGET_FIELDS = frozenset({"name", "dimension", "value", "limitUsd", "action", "timezone"})
_RECOMPUTE_FIELDS = frozenset({"start", "end", "dryRun"})


def _utc_now() -> datetime:
    return datetime.now(UTC)


def time_range(
    params: Mapping[str, Any], now: datetime, tz: str = "UTC"
) -> tuple[datetime, datetime]:
    """``start`` and ``end`` of ``params`` (`parse_range`), defaulting to the last 30 days;
    dates are midnight in ``tz``."""
    found = parse_range(
        params.get("start"),
        params.get("end"),
        now=now,
        default=timedelta(days=DEFAULT_DAYS),
        tz=zone(tz),
    )
    return found.start, found.end


def _period(start: datetime, end: datetime) -> dict[str, str]:
    return {"start": format_timestamp(start), "end": format_timestamp(end)}


def _known_fields(body: Mapping[str, Any], allowed: frozenset[str]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ValidationError(unknown[0], f"unknown field; allowed: {', '.join(sorted(allowed))}")


def _price(price: Price) -> dict[str, Any]:
    out = price.to_dict()
    if price.source == "override":
        out["id"] = price.version.removeprefix("override:")
    return out


def _change(change: CostChange) -> tuple[str, dict[str, Any]] | None:
    if change.record_id is None:
        return None
    return change.record_id, change.new.to_dict(money_as_text=True)


class CostAPI:
    """The cost endpoints over one `Runtime` (its DuckDB database, record and state stores,
    the enricher's price table, the profile and budget services). ``clock`` gives "now" for
    default ranges and forecasts."""

    def __init__(self, runtime: Runtime, clock: Callable[[], datetime] = _utc_now) -> None:
        self.runtime = runtime
        self.clock = clock

    def routes(self) -> list[Route]:
        """The routes to mount, before `ProfilesAPI`'s (whose ``{identifier:path}`` would
        otherwise take ``…/metrics``)."""
        read, manage, route = Permission.READ, Permission.MANAGE, guarded_route
        return [
            route("/api/prices", self.list_prices, read, ["GET"]),
            route("/api/prices", self.put_price, manage, ["PUT"]),
            route("/api/prices/missing", self.missing_prices, read, ["GET"]),
            route("/api/prices/{provider}/{model:path}", self.show_price, read, ["GET"]),
            route("/api/prices/{override_id:path}", self.delete_price, manage, ["DELETE"]),
            route("/api/cost", self.cost, read, ["GET"]),
            route("/api/cost/recompute", self.recompute, manage, ["POST"]),
            route("/api/profiles/{identifier:path}/metrics", self.profile_metrics, read, ["GET"]),
            route("/api/reports/{name}", self.report, read, ["GET"]),
            route("/api/budgets", self.list_budgets, read, ["GET"]),
            route("/api/budgets", self.put_budget, manage, ["PUT"]),
            route("/api/budgets/{name:path}", self.delete_budget, manage, ["DELETE"]),
        ]

    async def _answer(self, work: Callable[[], Any], status: int = 200) -> Response:
        return await answer(work, status)

    # -- prices ---------------------------------------------------------------------------
    async def list_prices(self, request: Request) -> Response:
        """``{"prices": [...]}``: overrides, then llmtrail's files, then genai-prices."""
        provider = request.query_params.get("provider") or None
        source = request.query_params.get("source") or None

        def work() -> dict[str, Any]:
            if source is not None and source not in PRICE_SOURCES:
                raise ValidationError("source", f"must be one of {', '.join(PRICE_SOURCES)}")
            entries = self.runtime.enricher.table.entries(provider)
            return {"prices": [_price(p) for p in entries if source in (None, p.source)]}

        return await self._answer(work)

    async def show_price(self, request: Request) -> Response:
        """One model's versions, and the price in force now (or at ``?at=``)."""
        raw_provider = request.path_params["provider"]
        provider = None if raw_provider in ("-", "*", "any") else raw_provider
        model = request.path_params["model"]
        at = request.query_params.get("at")

        def work() -> dict[str, Any]:
            table = self.runtime.enricher.table
            when = parse_instant(at, "at") if at else self.clock()
            versions = table.versions(provider, model)
            if not versions:
                raise NotFound(f"no price for model {model!r} (provider {raw_provider!r})")
            query = table.query(provider, model)
            current = table.lookup(provider, model, when)
            return {
                "provider": query.provider,
                "model": model,
                "names": list(query.names),
                "at": format_timestamp(when),
                "current": _price(current) if current is not None else None,
                "versions": [_price(p) for p in versions],
            }

        return await self._answer(work)

    async def put_price(self, request: Request) -> Response:
        """Add or replace an override (201 when new): ``{"override", "price", "created"}``."""
        refused = operator_only(request, "prices")
        if refused is not None:
            return refused
        try:
            body = await json_object(request, MAX_BODY_BYTES)
        except LlmtrailError as exc:
            return from_error(exc)
        state = self.runtime.state

        def work() -> Response:
            raw = dict(body)
            raw.setdefault("created_at", format_timestamp(self.clock()))
            override = validate_override(raw)
            created = state.get(PRICES_NAMESPACE, override.id) is None
            state.put(PRICES_NAMESPACE, override.id, override.to_dict())
            self.runtime.enricher.reload()
            answer = {
                "override": override.to_dict(),
                "price": _price(override.price(override.provider)),
                "created": created,
            }
            return json_response(answer, 201 if created else 200)

        return await self._answer(work)

    async def delete_price(self, request: Request) -> Response:
        """Remove override ``{id}`` → ``{"deleted": id}``; 404 when there is none."""
        refused = operator_only(request, "prices")
        if refused is not None:
            return refused
        override_id = request.path_params["override_id"]

        def work() -> dict[str, Any]:
            if not self.runtime.state.delete(PRICES_NAMESPACE, override_id):
                raise NotFound(f"no price override {override_id!r}")
            self.runtime.enricher.reload()
            return {"deleted": override_id}

        return await self._answer(work)

    async def missing_prices(self, request: Request) -> Response:
        """Models the caller's records of the range name that the table has no price for."""
        params = dict(request.query_params)
        workspace = principal_of(request.scope).workspace

        def work() -> dict[str, Any]:
            start, end = time_range(params, self.clock())
            seen = models_seen(self.runtime.query_engine, start, end, workspace)
            missing = self.runtime.enricher.table.missing(seen)
            return {
                "timePeriod": _period(start, end),
                "modelsSeen": len(seen),
                "missing": [
                    {
                        "provider": m.provider,
                        "modelId": m.model,
                        "resolvedModelId": m.resolved_model,
                        "count": m.count,
                        "lastSeen": format_timestamp(m.last_seen) if m.last_seen else None,
                    }
                    for m in missing
                ],
            }

        return await self._answer(work)

    # -- cost -----------------------------------------------------------------------------
    async def cost(self, request: Request) -> Response:
        """GetCostAndUsage over the records: ``?by=DIM`` (repeatable, at most two),
        ``granularity=DAILY|MONTHLY`` (default MONTHLY), ``start``, ``end``, ``tz``."""
        params = dict(request.query_params)
        by = tuple(request.query_params.getlist("by"))
        workspace = principal_of(request.scope).workspace

        def work() -> dict[str, Any]:
            tz = params.get("tz") or "UTC"
            zone(tz)
            start, end = time_range(params, self.clock(), tz)
            granularity = (params.get("granularity") or "MONTHLY").upper()
            query = CostQuery(start, end, by, granularity, tz, workspace)
            return cost_and_usage(self.runtime.query_engine, query).to_dict()

        return await self._answer(work)

    async def recompute(self, request: Request) -> Response:
        """Re-price the records of ``{start, end}`` with the current price table and store
        the changed costs (``dryRun: true`` stores nothing): the `RecomputeReport`, with a
        sample of the changes, and ``updated``, how many records were rewritten. Only the
        caller's workspace's records are re-priced."""
        workspace = principal_of(request.scope).workspace
        try:
            body = await json_object(request, MAX_BODY_BYTES)
            _known_fields(body, _RECOMPUTE_FIELDS)
            if not isinstance(body.get("start"), str):
                raise ValidationError("start", "is required: an RFC 3339 timestamp or a date")
            if "end" in body and not isinstance(body["end"], str):
                raise ValidationError("end", "must be an RFC 3339 timestamp or a date")
            dry_run = body.get("dryRun", False)
            if not isinstance(dry_run, bool):
                raise ValidationError("dryRun", "must be true or false")
        except LlmtrailError as exc:
            return from_error(exc)
        return await self._answer(lambda: self._recompute(body, dry_run, workspace))

    def _recompute(self, body: Mapping[str, Any], dry_run: bool, workspace: str) -> dict[str, Any]:
        start, end = time_range(body, self.clock())
        table = self.runtime.enricher.table
        records = self.runtime.records
        seen = unchanged = updated = 0
        old_total = new_total = Decimal(0)
        changes: list[CostChange] = []
        cursor = None
        while True:
            page = records.find(
                RecordQuery(
                    workspace=workspace,
                    start=start,
                    end=end,
                    limit=RECOMPUTE_PAGE,
                    cursor=cursor,
                    with_bodies=False,
                )
            )
            part = recompute([r.data for r in page.records], None, table)
            seen, unchanged = seen + part.records, unchanged + part.unchanged
            old_total, new_total = old_total + part.old_total_usd, new_total + part.new_total_usd
            changes += part.changes
            if part.changes and not dry_run:
                costs = dict(filter(None, map(_change, part.changes)))
                updated += records.set_costs(costs, workspace)
            cursor = page.next_cursor
            if cursor is None:
                break
        if updated:
            self.runtime.metric_store.rebuild(start)  # CostUsd follows the re-priced records
            budgets = self.runtime.budgets.all()  # every workspace's: the guard holds them all
            if budgets:  # the guard's totals follow the re-priced history
                self.runtime.budget_guard.resum(budgets, self.runtime.month_spend)
        report = RecomputeReport(seen, unchanged, old_total, new_total, tuple(changes))
        return {
            "timePeriod": _period(start, end),
            "dryRun": dry_run,
            "updated": updated,
            **report.to_dict(max_changes=RECOMPUTE_SAMPLE),
        }

    # -- profiles -------------------------------------------------------------------------
    async def profile_metrics(self, request: Request) -> Response:
        """Bedrock's per-profile metrics of one application inference profile over the
        range: ``{"profile", "tags", "timePeriod", "metrics"}``."""
        identifier = request.path_params["identifier"]
        params = dict(request.query_params)
        workspace = principal_of(request.scope).workspace

        def work() -> dict[str, Any]:
            profile = self.runtime.profiles.get(identifier, workspace=workspace)
            start, end = time_range(params, self.clock())
            usage = profile_usage(self.runtime.query_engine, profile.arn, start, end, workspace)
            return {
                "profile": profile.summary(),
                "tags": [{"key": k, "value": v} for k, v in profile.tags],
                "timePeriod": _period(start, end),
                "metrics": usage.to_dict(),
            }

        return await self._answer(work)

    # -- reports --------------------------------------------------------------------------
    async def report(self, request: Request) -> Response:
        """The report rendered as ``format`` (json | csv | html | pdf) with its media type;
        ``dimension`` (chargeback only) and ``table`` (CSV only) pass through."""
        name = request.path_params["name"]
        params = dict(request.query_params)
        workspace = principal_of(request.scope).workspace

        def work() -> Response:
            tz = params.get("tz") or "UTC"
            zone(tz)
            fmt = params.get("format") or "json"
            start, end = time_range(params, self.clock(), tz)
            scope = ReportScope(start, end, workspace=workspace, tz=tz)
            built = build_report(
                self.runtime.query_engine, name, scope, dimension=params.get("dimension")
            )
            body = render(built, fmt, table=params.get("table"))
            filename = f"{name}-report.{fmt}"
            headers = {"content-disposition": f'inline; filename="{filename}"'}
            return Response(body, 200, headers, MEDIA_TYPES[fmt])

        return await self._answer(work)

    # -- budgets --------------------------------------------------------------------------
    def _statuses(self, budgets: list[Budget]) -> list[dict[str, Any]]:
        now = self.clock()
        spent = month_spend(self.runtime.query_engine, budgets, now)
        out = []
        for budget in budgets:
            status = budget_status(budget, spent.get(budget.key, Decimal(0)), now)
            out.append(
                {**status.to_dict(), "refusing": status.exceeded and budget.action == "refuse"}
            )
        return out

    async def list_budgets(self, request: Request) -> Response:
        """``{"budgets": [...]}``: each budget with its month's spend (summed in the store),
        forecast to month end and percent used: the caller's workspace's budgets."""
        workspace = principal_of(request.scope).workspace
        return await self._answer(
            lambda: {"budgets": self._statuses(self.runtime.budgets.all(workspace))}
        )

    async def put_budget(self, request: Request) -> Response:
        """Add or replace a budget (``dimension``, ``value``, ``limitUsd``, ``action``
        notify|refuse, ``timezone``, ``name``) of the caller's workspace → its status."""
        workspace = principal_of(request.scope).workspace
        try:
            body = await json_object(request, MAX_BODY_BYTES)
            _known_fields(body, _BUDGET_FIELDS)
        except LlmtrailError as exc:
            return from_error(exc)

        def work() -> dict[str, Any]:
            budget = self.runtime.budgets.put(Budget.from_dict(body, workspace))
            return self._statuses([budget])[0]

        return await self._answer(work)

    async def delete_budget(self, request: Request) -> Response:
        """Remove the caller's workspace's budget ``{name}`` → ``{"deleted": name}``; 404
        when it has none of that name."""
        name = request.path_params["name"]
        workspace = principal_of(request.scope).workspace

        def work() -> dict[str, Any]:
            self.runtime.budgets.delete(name, workspace)
            return {"deleted": name}

        return await self._answer(work)
