"""Three workspaces of data on one real server, for the tenant-isolation matrix.

`build_world` makes, through the server's own API and keys only: an operator key (the admin
of ``default``), then for each of ``w1``, ``w2``, ``w3`` an admin, a reader with ``bodies``,
an ingester and a gateway key; records ingested as the ingester, model calls through the
gateway (OpenAI, Anthropic and Bedrock wire formats, an upstream error among them), OTLP
spans, and a dashboard, alarm, notifier, inference profile, budget, saved query, redaction
policy, logging configuration and retention policy made by the workspace's admin.

Each workspace has a ``tag`` (``MARK-w1-…``) in everything it owns — model ids, names,
metadata — and a ``secret`` (the tag and a random suffix) in what only its data carries:
bodies, metadata values, error messages, span inputs, dashboard text, alarm descriptions.
No request of another workspace ever contains a secret (queries aim at the tag), so a secret
in a foreign answer can only have come from the data. `World.ids` collects every id a
workspace's objects have (request, trace, key and query ids, names, ARNs), read back from
the API as that workspace, for the matrix to send as own and foreign ids.
"""

from __future__ import annotations

import http.client
import json
import re
import secrets
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from typing import Any

WORKSPACES = ("w1", "w2", "w3")
ROLES = ("admin", "reader", "ingester", "gateway")


@dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None

    @property
    def text(self) -> str:
        """Headers and body as one text: what the leak scan reads."""
        head = "\n".join(f"{k}: {v}" for k, v in self.headers)
        return head + "\n\n" + self.body.decode("utf-8", "replace")


class Client:
    """Keep-alive ``http.client`` connections to one server, one per thread; counts the
    requests it sent."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.local = threading.local()
        self.lock = threading.Lock()
        self.sent = 0
        self.opened: list[http.client.HTTPConnection] = []  # every thread's, closed at the end

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
            self.local.conn = conn
            with self.lock:
                self.opened.append(conn)
        return conn

    def close(self) -> None:
        """Close every thread's connection."""
        with self.lock:
            for conn in self.opened:
                conn.close()
            self.opened.clear()

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        with self.lock:
            self.sent += 1
        for attempt in (1, 2):
            conn = self._connection()
            try:
                conn.request(method, path, body=body, headers=headers or {})
                response = conn.getresponse()
                data = response.read()
                response.close()  # its file object holds the socket open otherwise
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                # the server closed an idle keep-alive connection: reconnect once
                conn.close()
                self.local.conn = None
                if attempt == 2:
                    raise
                continue
            if response.will_close:
                conn.close()
                self.local.conn = None
            return Reply(response.status, response.getheaders(), data)
        raise AssertionError("unreachable")


def bearer(key: str, content_type: str = "application/json") -> dict[str, str]:
    return {"authorization": f"Bearer {key}", "content-type": content_type}


@dataclass
class Workspace:
    name: str
    tag: str  # MARK-w1-…: in model ids, names and metadata
    secret: str  # the tag and a suffix no other workspace's request ever carries
    keys: dict[str, str] = field(default_factory=dict)  # role -> key
    key_ids: dict[str, str] = field(default_factory=dict)  # role -> key id
    ids: dict[str, list[str]] = field(default_factory=dict)  # kind -> ids
    cookies: dict[str, str] = field(default_factory=dict)  # role -> session cookie

    def id(self, kind: str) -> str:
        return self.ids[kind][0]

    def all_ids(self) -> list[str]:
        return sorted({i for ids in self.ids.values() for i in ids})


@dataclass
class World:
    client: Client
    url: str
    operator: str
    spaces: dict[str, Workspace]


def ok(reply: Reply, *statuses: int) -> Any:
    assert reply.status in (statuses or (200, 201)), (reply.status, reply.body[:2000])
    return reply.json() if reply.body else None


def create_key(client: Client, operator: str | None, **spec: Any) -> dict[str, Any]:
    headers = bearer(operator) if operator else {"content-type": "application/json"}
    reply = client.request("POST", "/api/keys", json.dumps(spec).encode(), headers)
    return ok(reply, 201)


def login(client: Client, key: str) -> str:
    """A session cookie from the login page, as a browser gets it."""
    page = client.request("GET", "/login")
    token = re.search(rb'name="csrf" value="([^"]+)"', page.body)
    assert page.status == 200 and token is not None
    form = urllib.parse.urlencode({"key": key, "csrf": token.group(1).decode(), "next": "/logs"})
    reply = client.request(
        "POST", "/login", form.encode(), {"content-type": "application/x-www-form-urlencoded"}
    )
    assert reply.status == 303, reply.body[:500]
    cookie = reply.header("set-cookie")
    assert cookie is not None
    return cookie.split(";", 1)[0]


def _now_iso(offset_s: float = 0) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + offset_s))


def _records(ws: Workspace, trace_ids: list[str]) -> list[dict[str, Any]]:
    docs = []
    for i in range(6):
        failed = i == 5
        doc: dict[str, Any] = {
            "schemaType": "ModelInvocationLog",
            "schemaVersion": "1.0",
            "timestamp": _now_iso(-60 * (i + 1)),
            "requestId": f"{ws.tag}-rec-{i}",
            "operation": "Converse",
            "modelId": f"{ws.tag}-model",
            "workspace": "w2" if ws.name != "w2" else "w1",  # a claim: never believed
            "requestMetadata": {
                "application_name": f"{ws.tag}-app",
                "tenant_id": f"{ws.tag}-tenant",
                "user_id": f"{ws.secret}-user",
                "note": f"{ws.secret} metadata",
            },
            "input": {
                "inputContentType": "application/json",
                "inputBodyJson": {"messages": [{"role": "user", "content": f"{ws.secret} ask"}]},
                "inputTokenCount": 10 + i,
            },
            "output": {
                "outputContentType": "application/json",
                "outputBodyJson": {"text": f"{ws.secret} answer {i}"},
                "outputTokenCount": 5 + i,
            },
            "latencyMs": 100 + i,
            "trace": {
                "traceId": trace_ids[i % len(trace_ids)],
                "spanId": secrets.token_hex(8),
                "sessionId": f"{ws.tag}-session",
                "name": f"{ws.tag}-span",
            },
        }
        if failed:
            doc["errorCode"] = "ThrottlingException"
            doc["error"] = {"type": "Throttling", "message": f"{ws.secret} rate", "httpStatus": 429}
            doc.pop("output")
        docs.append(doc)
    return docs


def _otlp(ws: Workspace, trace_id: str) -> bytes:
    now = time.time_ns()

    def attrs(values: dict[str, Any]) -> list[dict[str, Any]]:
        out = []
        for k, v in values.items():
            value = {"intValue": str(v)} if isinstance(v, int) else {"stringValue": str(v)}
            out.append({"key": k, "value": value})
        return out

    chat = secrets.token_hex(8)
    spans = [
        {
            "traceId": trace_id,
            "spanId": chat,
            "name": f"chat {ws.tag}-otel-model",
            "kind": 3,
            "startTimeUnixNano": str(now - 90_000_000_000),
            "endTimeUnixNano": str(now - 89_000_000_000),
            "attributes": attrs(
                {
                    "gen_ai.system": "openai",
                    "gen_ai.operation.name": "chat",
                    "gen_ai.request.model": f"{ws.tag}-otel-model",
                    "gen_ai.usage.input_tokens": 12,
                    "gen_ai.usage.output_tokens": 3,
                    "gen_ai.input.messages": json.dumps(
                        [{"role": "user", "parts": [{"type": "text", "content": ws.secret}]}]
                    ),
                }
            ),
        },
        {
            "traceId": trace_id,
            "spanId": secrets.token_hex(8),
            "parentSpanId": chat,
            "name": f"{ws.tag}-tool",
            "startTimeUnixNano": str(now - 89_500_000_000),
            "endTimeUnixNano": str(now - 89_400_000_000),
            "attributes": attrs(
                {"llmtrail.span.kind": "tool", "llmtrail.input": f"{ws.secret} tool input"}
            ),
        },
    ]
    resource = {"attributes": attrs({"service.name": f"{ws.tag}-service"})}
    body = {"resourceSpans": [{"resource": resource, "scopeSpans": [{"spans": spans}]}]}
    return json.dumps(body).encode()


def _gateway_calls(world: World, ws: Workspace) -> None:
    """Model calls through the gateway with the workspace's gateway key, in three wire
    formats, one of them an upstream error."""
    c, key = world.client, ws.keys["gateway"]
    meta = json.dumps({"application_name": f"{ws.tag}-gw-app", "tenant_id": f"{ws.tag}-tenant"})
    head = {**bearer(key), "x-llmtrail-metadata": meta}
    for model in ("sim/echo", "sim/error-429"):
        chat = {"model": model, "messages": [{"role": "user", "content": f"{ws.secret} gw"}]}
        reply = c.request("POST", "/v1/chat/completions", json.dumps(chat).encode(), head)
        assert reply.status in (200, 429), reply.body[:500]
    emb = {"model": "sim/embed", "input": f"{ws.secret} embed"}
    ok(c.request("POST", "/v1/embeddings", json.dumps(emb).encode(), head))
    msg = {
        "model": "sim/echo",
        "max_tokens": 20,
        "messages": [{"role": "user", "content": f"{ws.secret} anthropic"}],
    }
    anthropic_head = {
        "x-api-key": key,
        "content-type": "application/json",
        "anthropic-version": "2023-06-01",
        "x-llmtrail-metadata": meta,
    }
    ok(c.request("POST", "/v1/messages", json.dumps(msg).encode(), anthropic_head))
    converse = {"messages": [{"role": "user", "content": [{"text": f"{ws.secret} bedrock"}]}]}
    reply = c.request("POST", "/model/sim%2Fecho/converse", json.dumps(converse).encode(), head)
    ok(reply)


def _admin_objects(world: World, ws: Workspace) -> None:
    c, h = world.client, bearer(ws.keys["admin"])

    def put(method: str, path: str, body: Any) -> Any:
        return ok(c.request(method, path, json.dumps(body).encode(), h))

    board = {
        "widgets": [
            {"type": "text", "properties": {"markdown": f"# {ws.secret} board"}},
            {
                "type": "log",
                "properties": {"query": "fields @requestId, modelId | limit 20", "view": "table"},
            },
            {
                "type": "log",
                "properties": {
                    "query": 'filter workspace != "x" | stats count(*) by workspace, modelId',
                    "view": "table",
                },
            },
            {"type": "alarm", "properties": {"alarms": [f"{ws.tag}-alarm"]}},
        ]
    }
    put("PUT", f"/api/dashboards/{ws.tag}-board", board)
    alarm = {
        "AlarmDescription": f"{ws.secret} alarm",
        "Query": f'filter modelId = "{ws.tag}-model" | stats count(*)',
        "Threshold": 1,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "Period": 86400,
        "EvaluationPeriods": 1,
        "AlarmActions": [f"{ws.tag}-hook"],
    }
    put(
        "PUT",
        f"/api/notifiers/{ws.tag}-hook",
        {"type": "webhook", "url": f"http://127.0.0.1:9/{ws.secret}"},
    )
    put("PUT", f"/api/alarms/{ws.tag}-alarm", alarm)
    profile = put(
        "POST",
        "/api/profiles",
        {
            "inferenceProfileName": f"{ws.tag}-profile",
            "description": f"{ws.secret} profile",
            "modelSource": {"copyFrom": "sim/echo"},
            "tags": [{"key": "dept", "value": f"{ws.secret}-dept"}],
        },
    )
    ws.ids["profile"] = [profile["inferenceProfileArn"], f"{ws.tag}-profile"]
    if "inferenceProfileId" in profile:
        ws.ids["profile"].append(profile["inferenceProfileId"])
    budget = {
        "name": f"{ws.tag}-budget",
        "dimension": "requestMetadata.tenant_id",
        "value": f"{ws.tag}-tenant",
        "limitUsd": "100",
    }
    put("PUT", "/api/budgets", budget)
    saved = {"queryString": f"fields @requestId, modelId | filter modelId like /{ws.tag}/"}
    put("PUT", f"/api/saved-queries/{ws.tag}-saved", saved)
    put(
        "PUT",
        "/api/redaction",
        {
            "detectors": ["email"],
            "patterns": [{"name": f"pat_{ws.name}", "pattern": "ZZ-NEVER-[0-9]{9}"}],
        },
    )
    logging_config = {
        "textDataDeliveryEnabled": True,
        "cloudWatchConfig": {
            "logGroupName": f"/llmtrail/{ws.tag}-group",
            "roleArn": "arn:aws:iam::123456789012:role/logs",
        },
        "s3Config": {"bucketName": f"{ws.tag.lower()}-bucket", "keyPrefix": "logs"},
    }
    put("PUT", "/api/logging-configuration", {"loggingConfig": logging_config})
    put("PUT", "/api/retention", {"recordsDays": 400})
    ws.ids["board"] = [f"{ws.tag}-board"]
    ws.ids["alarm"] = [f"{ws.tag}-alarm"]
    ws.ids["notifier"] = [f"{ws.tag}-hook"]
    ws.ids["budget"] = [f"{ws.tag}-budget"]
    ws.ids["saved"] = [f"{ws.tag}-saved"]
    ws.ids["group"] = [f"/llmtrail/{ws.tag}-group", f"{ws.tag.lower()}-bucket"]
    ws.ids["model"] = [f"{ws.tag}-model", f"{ws.tag}-otel-model"]
    ws.ids["app"] = [f"{ws.tag}-app", f"{ws.tag}-gw-app"]


def settle(world: World, expected: dict[str, int], timeout: float = 60) -> None:
    """Wait until each workspace's query API counts its expected records."""
    deadline = time.monotonic() + timeout
    for ws in world.spaces.values():
        while True:
            n = count(world, ws, "stats count(*) as n")
            if n >= expected[ws.name]:
                break
            assert time.monotonic() < deadline, (ws.name, n, expected[ws.name])
            time.sleep(0.1)


def settle_pipeline(world: World, timeout: float = 30) -> None:
    """Wait until everything the pipeline accepted is stored (its counters, as the operator
    reads them on ``/metrics``)."""
    deadline = time.monotonic() + timeout
    while True:
        reply = world.client.request("GET", "/metrics", headers=bearer(world.operator))
        assert reply.status == 200, reply.body[:500]
        m = {
            line.split()[0].removeprefix("llmtrail_pipeline_"): float(line.split()[1])
            for line in reply.body.decode().splitlines()
            if line.startswith("llmtrail_pipeline_")
        }
        accepted = m["accepted"] - m["dropped_spool_full"]
        if m["queue_depth"] == 0 and m["stored"] >= m["spooled"] >= accepted:
            return
        assert time.monotonic() < deadline, m
        time.sleep(0.05)


def count(world: World, ws: Workspace, text: str) -> int:
    body = {
        "queryString": text,
        "startTime": int(time.time() - 86400),
        "endTime": int(time.time() + 60),
    }
    reply = world.client.request(
        "POST", "/api/query", json.dumps(body).encode(), bearer(ws.keys["reader"])
    )
    rows = ok(reply)["results"]
    return int(rows[0][0]["value"]) if rows else 0


def build_world(client: Client, url: str) -> World:
    # open mode on loopback: the first key, the operator's, must be an admin key
    operator = create_key(client, None, role="admin", name="operator")["key"]
    spaces = {}
    for name in WORKSPACES:
        tag = f"MARK-{name}-{uuid.uuid4().hex[:10]}"
        spaces[name] = Workspace(name, tag, f"{tag}-SECRET-{secrets.token_hex(8)}")
    world = World(client, url, operator, spaces)
    for ws in spaces.values():
        for role in ROLES:
            spec: dict[str, Any] = {"role": role, "workspace": ws.name, "name": f"{ws.tag}-{role}"}
            if role == "reader":
                spec["bodies"] = True
            made = create_key(client, operator, **spec)
            ws.keys[role], ws.key_ids[role] = made["key"], made["id"]
        ws.ids["key"] = sorted(ws.key_ids.values())
    for ws in spaces.values():
        traces = [secrets.token_hex(16) for _ in range(2)]
        body = "\n".join(json.dumps(d) for d in _records(ws, traces)).encode()
        reply = client.request(
            "POST", "/api/records", body, bearer(ws.keys["ingester"], "application/x-ndjson")
        )
        assert ok(reply)["stored"] == 6
        otel_trace = secrets.token_hex(16)
        reply = client.request(
            "POST", "/v1/traces", _otlp(ws, otel_trace), bearer(ws.keys["ingester"])
        )
        ok(reply)
        ws.ids["trace"] = [*traces, otel_trace]
        _gateway_calls(world, ws)
        _admin_objects(world, ws)
    # 6 ingested, 5 gateway calls, at least one OTLP model call
    settle(world, {name: 12 for name in WORKSPACES})
    for ws in spaces.values():
        _read_back_ids(world, ws)
        for role in ("admin", "reader"):
            ws.cookies[role] = login(client, ws.keys[role])
    return world


def _read_back_ids(world: World, ws: Workspace) -> None:
    """Every id the workspace's objects have, as its own admin reads them."""
    c, h = world.client, bearer(ws.keys["admin"])
    records = ok(c.request("GET", "/api/records?limit=1000", headers=h))["records"]
    ws.ids["request"] = sorted(r["requestId"] for r in records)
    traces = ok(c.request("GET", "/api/traces?limit=1000", headers=h))["traces"]
    ws.ids["trace"] = sorted({*ws.ids["trace"], *(t["traceId"] for t in traces)})
    qid = str(uuid.uuid4())
    body = {
        "queryString": "fields @requestId | limit 1",
        "queryId": qid,
        "startTime": int(time.time() - 86400),
        "endTime": int(time.time() + 60),
    }
    ok(c.request("POST", "/api/query", json.dumps(body).encode(), h))
    ws.ids["query"] = [qid]
