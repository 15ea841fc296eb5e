"""What the tenant-isolation matrix asks of each route, for each caller.

`TEMPLATES` names, for every (method, route path) the app mounts, the requests to make with
``{placeholders}`` (`isolation_probes.values_of`): path ids, query strings that try to widen
the scope, bodies. `cases_for` turns them into `Case`s for one caller; a route the app mounts
that has no entry here fails the matrix, so a new route cannot go untested. Writes that
would destroy the caller's own objects (DELETE) are asked with foreign and unknown ids only
by an admin; writes that would create an object under a foreign name (PUT with a foreign
name, ingest of a foreign requestId) are `test_isolation_matrix`'s cross-writes, checked
apart.
"""

from __future__ import annotations

import json
import re
import time
import urllib.parse
from typing import Any

from llmtrail.security.principal import Permission
from tests.security.isolation_probes import Case


def q(text: str) -> str:
    """``text`` URL-quoted, its ``{placeholders}`` kept to be filled (quoted) later."""
    parts = re.split(r"(\{[a-z_0-9]+\})", text)
    return "".join(
        p if re.fullmatch(r"\{[a-z_0-9]+\}", p) else urllib.parse.quote(p) for p in parts
    )


def fp(pattern: str) -> str:
    return "filterPattern=" + q(pattern)


# the query language, aimed at the target workspace ({ws}, {tag}, its ids and log group)
QUERIES = [
    'fields @requestId, workspace, modelId | filter workspace = "{ws}"',
    'fields @requestId, workspace | filter workspace != "zz-none" and modelId = "{model}"',
    "fields @requestId, @message | filter @message like /{tag}/",
    "fields @requestId, modelId | filter modelId like /(?i){tag}-MODEL/",
    'filter modelId = "{model}" | stats count(*) as n',
    'filter modelId like "{tag}" | stats count(*) as n by modelId',
    "SOURCE '{group}' | fields @requestId, @message",
    "SOURCE logGroups(namePrefix: ['{group}']) | fields @requestId, modelId",
    'fields @requestId | filter requestId = "{request}"',
    'fields @requestId, modelId | filter requestId in ["{request}", "{request2}"]',
    'fields @requestId | filter trace.traceId = "{trace}"',
    'fields @requestId, requestMetadata.tenant_id | filter requestMetadata.tenant_id = "{tenant}"',
    'parse modelId "*{tag}*" as before, after | fields before, after, @requestId',
    "fields @requestId, modelId | filter modelId like /{tag}/ | dedup modelId",
    'stats count(*) as n by workspace | filter workspace = "{ws}"',
    "stats count(*) as n, sum(input.inputTokenCount) as t by modelId, bin(1h) "
    '| filter modelId = "{otel_model}"',
    'fields @requestId | filter workspace = "{ws}" or workspace != "{ws}"',
    "fields @requestId | filter modelId = \"x' OR workspace = '{ws}\"",
    'fields @requestId | filter modelId = "x\\" or workspace = \\"{ws}"',
    'fields @requestId, requestMetadata.application_name as app | filter app = "{app}"',
    "fields @requestId, error.message | filter error.message like /{tag}/",
    'display @requestId, trace.sessionId | filter trace.sessionId = "{session}"',
]
# no target: whatever they return must be the caller's own
OPEN_QUERIES = [
    "stats count(*) as n by workspace",
    "stats count(*) as n by workspace, modelId, requestMetadata.tenant_id",
    "fields @timestamp, @requestId, workspace, @message | sort @timestamp desc | limit 10000",
    "fields workspace, modelId | dedup workspace",
    'filter workspace != "w1" and workspace != "w2" and workspace != "w3" | stats count(*)',
]

METRIC_GET = [
    "",
    "?metric=Invocations&dimension=ModelId={model}&period=3600&since=1d",
    "?metric=Invocations&by=ModelId&since=1d",
    "?metric=InputTokenCount&dimension=ApplicationName={app}&since=1d",
    "?metric=Invocations&dimension=Workspace={ws}&since=1d",
    "?metric=Invocations&by=workspace&since=1d",
    "?metric=Invocations&workspace={ws}&since=1d",
]
_SEARCH = (
    'SEARCH(\'{AWS/Bedrock,ModelId} MetricName=\\"Invocations\\" ModelId=\\"{model}\\"\','
    " 'Sum', 3600)"
)


def _metric_post(expression: str | None, dims: str) -> str:
    now = int(time.time())
    window = f'"StartTime": {now - 2 * 86400}, "EndTime": {now + 3600}'
    if expression:
        query = f'{{"Id": "e1", "Expression": "{expression}"}}'
    else:
        query = (
            '{"Id": "m1", "MetricStat": {"Metric": {"Namespace": "AWS/Bedrock", '
            f'"MetricName": "Invocations", "Dimensions": [{dims}]}}, '
            '"Period": 86400, "Stat": "Sum"}}'
        )
    return f'{{"MetricDataQueries": [{query}], {window}}}'


METRIC_POST = [
    _metric_post(None, '{"Name": "ModelId", "Value": "{model}"}'),
    _metric_post(None, '{"Name": "ApplicationName", "Value": "{app}"}'),
    _metric_post(None, ""),
    _metric_post(_SEARCH, ""),
]

RANGE = '"startTime": 946684800, "endTime": 4102444800'
ALARM = (
    '{"AlarmDescription": "re-put", "Query": "stats count(*)", "Threshold": 1, '
    '"ComparisonOperator": "GreaterThanOrEqualToThreshold", "Period": 86400, '
    '"EvaluationPeriods": 1}'
)
BOARD = '{"widgets": [{"type": "text", "properties": {"markdown": "re-put"}}]}'
PRICE = (
    '{"provider": "sim", "model": "echo", "effective_from": "2020-01-01", '
    '"prices": {"input_mtok": "1000", "output_mtok": "1000"}}'
)
HOOK = '{"type": "webhook", "url": "http://127.0.0.1:9/re-put"}'

QUERY_CASES: list[tuple[str, str | None, dict[str, Any]]] = [
    (
        "/api/query",
        '{"queryString": ' + json.dumps(t) + ", " + RANGE + "}",
        {"heavy": "@message" in t, "shows": "@message like" in t},
    )
    for t in QUERIES + OPEN_QUERIES
]
QUERY_CASES.append(("/api/query", '{"name": "{saved}", ' + RANGE + "}", {"object_route": True}))
ROUNDS = 3  # ids of each kind an object route is asked with
# (method, route path) -> [(path, body, options)]
T = dict[str, Any]
TEMPLATES: dict[tuple[str, str], list[tuple[str, str | None, T]]] = {
    ("GET", "/healthz"): [("/healthz", None, {})],
    ("GET", "/readyz"): [("/readyz", None, {})],
    ("GET", "/metrics"): [  # the pipeline's counters are the server's: they move meanwhile
        ("/metrics", None, {}),
        ("/metrics?workspace={ws}", None, {"compare": "status"}),
    ],
    ("GET", "/api/records"): [
        (p, None, {"shows": "bodies=1&" in p})
        for p in (
            "/api/records?limit=1000",
            "/api/records?workspace={ws}",
            "/api/records?metadata=workspace%3D{ws}",
            "/api/records?metadata=tenant_id%3D{tenant}",
            "/api/records?model={model}&bodies=1",
            "/api/records?" + fp('{ $.workspace = "{ws}" }'),
            "/api/records?" + fp('"{tag}"'),
            "/api/records?bodies=1&" + fp('{ $.modelId = "{model}" }'),
            "/api/records?" + fp('{ $.requestMetadata.tenant_id = "{tenant}" }') + "&bodies=1",
            "/api/records?" + fp('{ $.requestId = "{request}" || $.workspace = "{ws}" }'),
        )
    ],
    ("GET", "/api/records/{request_id:path}"): [
        ("/api/records/{request}", None, {"object_route": True}),
        ("/api/records/{request2}?bodies=1", None, {"object_route": True}),
        ("/api/records/{request}?workspace={ws}", None, {"object_route": True}),
    ],
    ("GET", "/api/traces"): [
        ("/api/traces?limit=1000", None, {}),
        ("/api/traces?app={app}", None, {}),
        ("/api/traces?sessionId={session}", None, {}),
        ("/api/traces?workspace={ws}", None, {}),
    ],
    ("GET", "/api/traces/{trace_id}"): [
        ("/api/traces/{trace}", None, {"object_route": True}),
        ("/api/traces/{trace2}", None, {"object_route": True}),
    ],
    ("GET", "/api/errors"): [("/api/errors", None, {}), ("/api/errors?workspace={ws}", None, {})],
    ("GET", "/api/timeline"): [
        ("/api/timeline", None, {}),
        ("/api/timeline?by=session&workspace={ws}", None, {}),
    ],
    ("GET", "/api/prices"): [("/api/prices", None, {}), ("/api/prices?provider=sim", None, {})],
    ("PUT", "/api/prices"): [  # the server's table: the operator's alone (default workspace)
        ("/api/prices", PRICE, {"refused": True}),
    ],
    ("GET", "/api/prices/missing"): [
        ("/api/prices/missing", None, {}),
        ("/api/prices/missing?workspace={ws}", None, {}),
    ],
    ("GET", "/api/prices/{provider}/{model:path}"): [
        ("/api/prices/sim/echo", None, {}),
        ("/api/prices/sim/{model}", None, {}),
    ],
    ("DELETE", "/api/prices/{override_id:path}"): [
        ("/api/prices/sim%2Fecho%402020-01-01", None, {"refused": True}),
    ],
    ("GET", "/api/cost"): [
        ("/api/cost", None, {}),
        ("/api/cost?by=requestMetadata.tenant_id&by=modelId", None, {}),
        ("/api/cost?by=workspace", None, {}),
        ("/api/cost?by=modelId&workspace={ws}", None, {}),
    ],
    ("POST", "/api/cost/recompute"): [
        ("/api/cost/recompute", '{"start": "2000-01-01", "dryRun": true}', {}),
    ],
    ("GET", "/api/profiles/{identifier:path}/metrics"): [
        ("/api/profiles/{arn}/metrics", None, {"object_route": True}),
    ],
    ("GET", "/api/reports/{name}"): [
        (f"/api/reports/{n}{s}", None, {})
        for n in ("performance", "cost", "chargeback")
        for s in ("", "?format=csv", "?workspace={ws}")
    ],
    ("GET", "/api/budgets"): [("/api/budgets", None, {})],
    ("PUT", "/api/budgets"): [
        (
            "/api/budgets",
            '{"name": "{budget}", "dimension": "requestMetadata.tenant_id", '
            '"value": "{tenant}", "limitUsd": "100"}',
            {"foreign": False},
        ),
    ],
    ("DELETE", "/api/budgets/{name:path}"): [
        ("/api/budgets/{budget}", None, {"object_route": True, "destroys": True}),
    ],
    ("POST", "/api/profiles/{identifier:path}/tags"): [
        (
            "/api/profiles/{arn}/tags",
            '{"tags": [{"key": "probe", "value": "x"}]}',
            {"object_route": True},
        ),
    ],
    ("DELETE", "/api/profiles/{identifier:path}/tags"): [
        ("/api/profiles/{profile_id}/tags?tagKeys=probe", None, {"object_route": True}),
    ],
    ("GET", "/api/profiles/{identifier:path}/tags"): [
        ("/api/profiles/{arn}/tags", None, {"object_route": True}),
    ],
    ("POST", "/api/profiles"): [
        (
            "/api/profiles",
            '{"inferenceProfileName": "never", "modelSource": {"copyFrom": "{arn}"}}',
            {"own": False},
        ),
    ],
    ("GET", "/api/profiles"): [
        ("/api/profiles", None, {}),
        ("/api/profiles?workspace={ws}", None, {}),
    ],
    ("GET", "/api/profiles/{identifier:path}"): [
        ("/api/profiles/{arn}", None, {"object_route": True}),
        ("/api/profiles/{profile_id}", None, {"object_route": True}),
    ],
    ("DELETE", "/api/profiles/{identifier:path}"): [
        ("/api/profiles/{arn}", None, {"object_route": True, "destroys": True}),
    ],
    ("POST", "/api/query"): QUERY_CASES,
    ("GET", "/api/query/{query_id}"): [("/api/query/{query}", None, {})],
    ("DELETE", "/api/query/{query_id}"): [("/api/query/{query}", None, {"own": False})],
    ("GET", "/api/saved-queries"): [("/api/saved-queries", None, {})],
    ("GET", "/api/saved-queries/{name:path}"): [
        ("/api/saved-queries/{saved}", None, {"object_route": True}),
    ],
    ("PUT", "/api/saved-queries/{name:path}"): [
        ("/api/saved-queries/{saved}", '{"queryString": "fields @requestId"}', {"foreign": False}),
    ],
    ("DELETE", "/api/saved-queries/{name:path}"): [
        ("/api/saved-queries/{saved}", None, {"object_route": True, "destroys": True}),
    ],
    ("GET", "/api/metrics"): [("/api/metrics" + p, None, {}) for p in METRIC_GET],
    ("POST", "/api/metrics"): [("/api/metrics", b, {}) for b in METRIC_POST],
    ("GET", "/api/metrics/list"): [
        ("/api/metrics/list", None, {}),
        ("/api/metrics/list?dimensions=ModelId", None, {}),
        ("/api/metrics/list?metric=Invocations&workspace={ws}", None, {}),
    ],
    ("POST", "/api/metrics/rebuild"): [("/api/metrics/rebuild", None, {"admin": False})],
    ("GET", "/api/dashboards"): [("/api/dashboards", None, {})],
    ("GET", "/api/dashboards/{name}/view"): [
        ("/api/dashboards/{board}/view?since=1d", None, {"object_route": True, "shows": True}),
    ],
    ("GET", "/api/dashboards/{name}"): [("/api/dashboards/{board}", None, {"object_route": True})],
    ("PUT", "/api/dashboards/{name}"): [("/api/dashboards/{board}", BOARD, {"foreign": False})],
    ("DELETE", "/api/dashboards/{name}"): [
        ("/api/dashboards/{board}", None, {"object_route": True, "destroys": True}),
    ],
    ("GET", "/api/alarms"): [("/api/alarms", None, {}), ("/api/alarms?prefix={tag}", None, {})],
    ("GET", "/api/alarms/{name:path}/history"): [
        ("/api/alarms/{alarm}/history", None, {"object_route": True}),
    ],
    ("POST", "/api/alarms/{name:path}/evaluate"): [
        ("/api/alarms/{alarm}/evaluate", None, {"object_route": True}),
    ],
    ("POST", "/api/alarms/{name:path}/test"): [
        ("/api/alarms/{alarm}/test", None, {"object_route": True}),
    ],
    ("GET", "/api/alarms/{name:path}"): [("/api/alarms/{alarm}", None, {"object_route": True})],
    ("PUT", "/api/alarms/{name:path}"): [("/api/alarms/{alarm}", ALARM, {"foreign": False})],
    ("DELETE", "/api/alarms/{name:path}"): [
        ("/api/alarms/{alarm}", None, {"object_route": True, "destroys": True}),
    ],
    ("GET", "/api/notifiers"): [("/api/notifiers", None, {})],
    ("POST", "/api/notifiers/{name}/test"): [
        ("/api/notifiers/{notifier}/test", None, {"object_route": True}),
    ],
    ("GET", "/api/notifiers/{name}"): [
        ("/api/notifiers/{notifier}", None, {"object_route": True, "shows": True}),
    ],
    ("PUT", "/api/notifiers/{name}"): [("/api/notifiers/{notifier}", HOOK, {"foreign": False})],
    ("DELETE", "/api/notifiers/{name}"): [
        ("/api/notifiers/{notifier}", None, {"object_route": True, "destroys": True}),
    ],
    ("GET", "/api/deliveries"): [
        ("/api/deliveries", None, {}),
        ("/api/deliveries?notifier={notifier}", None, {}),
        ("/api/deliveries?alarm={alarm}", None, {}),
    ],
    ("POST", "/api/keys"): [
        ("/api/keys", '{"role": "reader", "workspace": "{ws}"}', {"own": False}),
    ],
    ("GET", "/api/keys"): [("/api/keys", None, {}), ("/api/keys?workspace={ws}", None, {})],
    ("GET", "/api/keys/{key_id}"): [("/api/keys/{key}", None, {"object_route": True})],
    ("DELETE", "/api/keys/{key_id}"): [
        ("/api/keys/{key}", None, {"object_route": True, "destroys": True}),
    ],
    ("GET", "/api/audit"): [
        ("/api/audit", None, {"compare": "status"}),
        ("/api/audit?workspace={ws}", None, {"compare": "status"}),
        ("/api/audit?requestId={request}", None, {"compare": "status"}),
        ("/api/audit?actor=key/{key}", None, {"compare": "status"}),
    ],
    ("GET", "/api/audit/verify"): [("/api/audit/verify", None, {})],
    ("GET", "/api/redaction"): [("/api/redaction", None, {})],
    ("PUT", "/api/redaction"): [("/api/redaction", '{"detectors": ["email"]}', {"admin": False})],
    ("DELETE", "/api/redaction"): [("/api/redaction", None, {"admin": False})],
    ("POST", "/api/redaction/test"): [
        ("/api/redaction/test", '{"text": "write to a@example.com"}', {}),
    ],
    ("GET", "/api/retention"): [("/api/retention", None, {})],
    ("PUT", "/api/retention"): [("/api/retention", '{"recordsDays": 400}', {})],
    ("DELETE", "/api/retention"): [("/api/retention", None, {"admin": False})],
    ("POST", "/api/retention/run"): [("/api/retention/run", '{"dryRun": true}', {})],
    ("POST", "/api/erase"): [  # an admin's: once, in the cross-writes (seconds each)
        ("/api/erase", '{"requestIds": ["{request}", "{request2}"]}', {"admin": False}),
        ("/api/erase", '{"tenant": "{tenant}"}', {"admin": False}),
    ],
    ("GET", "/api/logging-configuration"): [("/api/logging-configuration", None, {})],
    ("PUT", "/api/logging-configuration"): [
        (
            "/api/logging-configuration",
            '{"loggingConfig": {"textDataDeliveryEnabled": true}}',
            {"admin": False},
        ),
    ],
    ("DELETE", "/api/logging-configuration"): [
        ("/api/logging-configuration", None, {"admin": False}),
    ],
    ("GET", "/api/bedrock/records"): [
        (p, None, {})
        for p in (
            "/api/bedrock/records?limit=1000",
            "/api/bedrock/records?workspace={ws}&bodies=0",
            "/api/bedrock/records?metadata=tenant_id%3D{tenant}",
        )
    ],
    ("GET", "/api/bedrock/body"): [
        ("/api/bedrock/body?requestId={request}&part=input", None, {}),
    ],
    ("GET", "/api/imports"): [("/api/imports", None, {}), ("/api/imports?source={ws}", None, {})],
    ("PUT", "/api/imports"): [
        (
            "/api/imports",
            '{"uri": "s3://b/{ws}.json.gz", "etag": "e", "offset": 0}',
            {"foreign": False},
        ),
    ],
    ("POST", "/api/imports/known"): [
        (
            "/api/imports/known",
            '{"requestIds": ["{request}", "{request2}"], "start": "2000-01-01T00:00:00Z", '
            '"end": "2100-01-01T00:00:00Z"}',
            {},
        )
    ],
    ("POST", "/api/records"): [],  # ingestion: `test_isolation_matrix.write_cases`
    ("POST", "/v1/traces"): [],
    ("GET", "/login"): [("/login", None, {"compare": "status"})],
    ("POST", "/login"): [],  # every session of the matrix is made through it
    ("GET", "/logout"): [],
    ("POST", "/logout"): [],  # would end the session the UI cases use
    ("GET", "/static/{path:path}"): [("/static/no-such.css", None, {})],
    ("POST", "/logs"): [
        (
            "/logs",
            "name=probe&q=fields+%40requestId",
            {"admin": False, "content_type": "application/x-www-form-urlencoded"},
        ),
    ],
}
UI_PAGES = [
    "/",
    "/logs",
    "/logs?q=" + q('fields @requestId, modelId | filter workspace = "{ws}"'),
    "/logs?q=" + q("fields @requestId, modelId | filter modelId like /{tag}/"),
    "/logs?q=" + q("SOURCE '{group}' | fields @requestId, modelId"),
    "/traces",
    "/traces?app={app}",
    "/sessions",
    "/applications",
    "/applications?workspace={ws}",
    "/errors",
    "/cost",
    "/cost?by=workspace",
    "/cost?by=requestMetadata.tenant_id",
    "/profiles",
    "/alarms",
    "/dashboards",
    "/settings",
]
UI_OBJECTS = [
    "/logs/{request}",
    "/logs/{request2}",
    "/traces/{trace}",
    "/alarms/{alarm}",
    "/dashboards/{board}",
]
for _page in UI_PAGES:
    TEMPLATES.setdefault(("GET", _page.split("?")[0]), []).append(
        (_page, None, {"compare": "status", "heavy": "%40message" in _page})
    )
for _page, _route in zip(
    UI_OBJECTS,
    ["/logs/{request_id:path}"] * 2
    + ["/traces/{trace_id}", "/alarms/{name:path}", "/dashboards/{name:path}"],
    strict=True,
):
    TEMPLATES.setdefault(("GET", _route), []).append(
        (_page, None, {"compare": "status", "object_route": True})
    )


def cases_for(
    who: tuple[str, str], method: str, route: str, permission: Permission, via: str = "key"
) -> list[Case]:
    """The cases of one route for one caller."""
    admin = who[1] == "admin"
    out = []
    for path, body, options in TEMPLATES[(method, route)]:
        opts = dict(options)
        if opts.pop("admin", True) is False and admin:
            continue  # a change the admin would make for real (global, or wiping a config)
        if opts.pop("heavy", False) and who[1] == "admin":
            continue  # reads of @message take ~0.5 s each here: the readers ask them
        destroys = opts.pop("destroys", False)
        if admin and (destroys or opts.get("own") is False):
            opts["own"] = False
        elif not admin:
            opts["own"] = True  # refused anyway: every variant must be 403
        if opts.get("foreign") is False and not admin:
            opts["foreign"] = True
        # an object is asked by several of its ids (the n-th of each kind)
        for n in range(ROUNDS if opts.get("object_route") and method == "GET" else 1):
            out.append(Case(who, method, path, body, permission, via=via, n=n, **opts))
    return out
