"""CloudWatch dashboards (signing name ``monitoring``) on llmtrail's own dashboards.

A dashboard in llmtrail is a CloudWatch dashboard body already (`llmtrail.dashboards.body`),
so ``PutDashboard``, ``GetDashboard``, ``ListDashboards`` and ``DeleteDashboards`` are the
`DashboardStore` that ``/api/dashboards`` uses, in the caller's workspace only: a body put
with boto3 is the dashboard the web UI draws, and ``GetDashboard`` gives back the body that
was put (as compact JSON text). llmtrail's checks answer as CloudWatch's do: an invalid body
is ``InvalidParameterInput`` with every problem in ``dashboardValidationMessages`` (data
paths as JSON pointers, ``/widgets/0/properties``), and what llmtrail will not draw is a
warning in ``DashboardValidationMessages``. The default dashboard is listed and read like
the others until one is stored under its name, as llmtrail's API does.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from llmtrail.dashboards.body import check_name
from llmtrail.dashboards.store import DashboardStore
from llmtrail.errors import NotFound, ValidationError
from llmtrail.record import parse_timestamp
from llmtrail.security.principal import Permission
from llmtrail.server.aws.operations import AwsCall, AwsError, operation
from llmtrail.server.aws.tokens import page_token, read_page_token

SERVICE = "monitoring"
PAGE = 1000  # ListDashboards' page, as CloudWatch's
MAX_DELETE = 100
# error shapes; boto3 shows their codes: InvalidParameterInput, InvalidParameterValue and
# ResourceNotFound
INVALID_INPUT = "DashboardInvalidInputError"
INVALID_VALUE = "InvalidParameterValueException"
NOT_FOUND = "DashboardNotFoundError"
PREFIX = re.compile(r"^[A-Za-z0-9._\-]{0,255}$")
_STEP = re.compile(r"\.([^.\[\]]+)|\[(\d+)\]")


class DashboardInvalid(AwsError):
    """``DashboardInvalidInputError``: ``dashboardValidationMessages`` lists every problem."""

    def __init__(self, messages: list[dict[str, str]]) -> None:
        shown = [{"dataPath": m["DataPath"], "message": m["Message"]} for m in messages]
        super().__init__(
            INVALID_INPUT,
            f"The dashboard body is invalid, there are {len(messages)} validation errors:\n"
            + json.dumps(shown, indent=2),
        )
        self.fields = {"dashboardValidationMessages": messages}


def _store(call: AwsCall) -> DashboardStore:
    return DashboardStore(call.runtime.state)


def dashboard_arn(account: str, name: str) -> str:
    """Dashboards are global in CloudWatch: their ARN names no region."""
    return f"arn:aws:cloudwatch::{account}:dashboard/{name}"


def data_path(path: str) -> str:
    """llmtrail's ``widgets[2].properties.metrics[0]`` as CloudWatch's JSON pointer
    ``/widgets/2/properties/metrics/0``; a request field (``DashboardName``) stays as it is."""
    if path.startswith("Dashboard"):
        return path
    steps = [a or b for a, b in _STEP.findall("." + path)]
    return "/" + "/".join(steps)


def _messages(items: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{"DataPath": data_path(m["DataPath"]), "Message": m["Message"]} for m in items]


@operation(SERVICE, "PutDashboard", Permission.MANAGE)
async def put_dashboard(call: AwsCall) -> dict[str, Any]:
    """Tags are accepted and not kept (llmtrail's dashboards have none)."""
    name, body = call.params["DashboardName"], call.params["DashboardBody"]
    try:
        warnings = await asyncio.to_thread(_store(call).put, name, body, workspace=call.workspace)
    except ValidationError as exc:
        if exc.field == "DashboardName":
            raise AwsError(
                INVALID_INPUT,
                "The value for field DashboardName contains invalid characters. It can only "
                "contain alphanumerics, dash (-) and underscore (_).",
            ) from None
        listed = getattr(exc, "messages", [{"DataPath": exc.field, "Message": exc.message}])
        raise DashboardInvalid(_messages(listed)) from None
    return {"DashboardValidationMessages": _messages(warnings)}


@operation(SERVICE, "GetDashboard", Permission.READ)
async def get_dashboard(call: AwsCall) -> dict[str, Any]:
    name = _name(call.params["DashboardName"])
    try:
        body = await asyncio.to_thread(_store(call).get, name, workspace=call.workspace)
    except NotFound:
        raise AwsError(NOT_FOUND, f"Dashboard {name} does not exist") from None
    return {
        "DashboardArn": dashboard_arn(call.account, name),
        "DashboardBody": json.dumps(body, separators=(",", ":"), ensure_ascii=False),
        "DashboardName": name,
    }


@operation(SERVICE, "ListDashboards", Permission.READ)
async def list_dashboards(call: AwsCall) -> dict[str, Any]:
    prefix = call.params.get("DashboardNamePrefix", "")
    if not PREFIX.match(prefix):
        raise AwsError(
            INVALID_VALUE,
            "DashboardNamePrefix may be at most 255 characters: A-Z, a-z, 0-9, '.', '-', '_'",
        )
    after = None
    if "NextToken" in call.params:
        state = read_page_token(call, call.params["NextToken"], INVALID_VALUE)
        after = state.get("after") if isinstance(state, dict) else None
        if not isinstance(after, str):
            raise AwsError(INVALID_VALUE, "The specified nextToken is not valid")
    entries = await asyncio.to_thread(_store(call).list, workspace=call.workspace)
    chosen = [
        e
        for e in entries
        if e["DashboardName"].startswith(prefix) and (after is None or e["DashboardName"] > after)
    ]
    page = [
        {
            "DashboardName": e["DashboardName"],
            "DashboardArn": dashboard_arn(call.account, e["DashboardName"]),
            "LastModified": parse_timestamp(e["LastModified"]) if e.get("LastModified") else None,
            "Size": e.get("Size"),
        }
        for e in chosen[:PAGE]
    ]
    out: dict[str, Any] = {"DashboardEntries": page}
    if len(chosen) > PAGE:
        out["NextToken"] = page_token(call, {"after": page[-1]["DashboardName"]})
    return out


@operation(SERVICE, "DeleteDashboards", Permission.MANAGE)
async def delete_dashboards(call: AwsCall) -> dict[str, Any]:
    """Deletes every named dashboard that exists; then, if some did not, answers
    ``ResourceNotFound`` naming them (CloudWatch deletes as many as it can)."""
    names = call.params["DashboardNames"]
    if not names or len(names) > MAX_DELETE:
        raise AwsError(INVALID_VALUE, f"DashboardNames must name 1 to {MAX_DELETE} dashboards")
    for name in names:
        _name(name)
    store, ws = _store(call), call.workspace

    def work() -> list[str]:
        missing = []
        for name in names:
            try:
                store.delete(name, workspace=ws)
            except NotFound:
                missing.append(name)
        return missing

    missing = await asyncio.to_thread(work)
    if missing:
        raise AwsError(NOT_FOUND, f"Dashboard {', '.join(missing)} does not exist")
    return {}


def _name(name: str) -> str:
    try:
        return check_name(name)
    except ValidationError as exc:
        raise AwsError(INVALID_VALUE, f"DashboardName {exc.message}") from None
