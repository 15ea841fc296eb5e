"""Writes under another workspace's names, after the matrix (they leave the writer's own
workspace holding the other's names, which the matrix's scan would rightly flag).

Each must change nothing of the other workspace's: a dashboard of ``w1`` under ``w2``'s
board's name whose log and metric widgets aim at ``w2`` every way, an alarm under ``w2``'s
alarm's name, a record ingested by ``w1`` with ``w2``'s requestId, model calls to ``w2``'s
inference profile (answered like calls to an unknown profile), and an erasure by ``w1``'s
admin of ``w2``'s ids and tenant (answered like one of unknown ids). The caller compares
every workspace's objects and records before and after.
"""

from __future__ import annotations

import functools
import json
import time
import urllib.parse
from datetime import timedelta
from typing import Any

from llmtrail.security.principal import Permission
from tests.security.isolation_probes import Asked, Case, check, run_case
from tests.security.isolation_world import World, bearer, ok
from tests.wall_clock import wait_out_month_end

CHAT = '{"model": "{arn}", "messages": [{"role": "user", "content": "probe"}]}'
CONVERSE = '{"messages": [{"role": "user", "content": [{"text": "probe"}]}]}'


# what every evaluation of an alarm writes (``alarm-states``): the evaluator runs on its own
# schedule, so these may change between two reads without anyone's write
EVALUATED = {
    "StateValue",
    "StateReason",
    "StateReasonData",
    "StateUpdatedTimestamp",
    "Value",
    "EvaluatedAt",
    "EvaluationError",
}


def _definition(alarm: dict[str, Any]) -> dict[str, Any]:
    """The alarm as its writers left it: its definition, without its evaluation."""
    return {k: v for k, v in alarm.items() if k not in EVALUATED}


def _board_aimed_at(world: World) -> None:
    c = world.client
    w1, w2 = world.spaces["w1"], world.spaces["w2"]
    a1, a2 = bearer(w1.keys["admin"]), bearer(w2.keys["admin"])
    path = f"/api/dashboards/{w2.id('board')}"
    theirs = ok(c.request("GET", path, headers=a2))
    aims = [
        'fields @requestId, @message | filter workspace = "w2"',
        f"SOURCE '{w2.id('group')}' | fields @requestId, @message",
        f"fields @requestId, @message | filter @message like /{w2.tag}/",
        "stats count(*) as n by workspace, modelId",
    ]
    widgets: list[dict[str, Any]] = [
        {"type": "log", "properties": {"query": a, "view": "table"}} for a in aims
    ]
    metric = ["AWS/Bedrock", "Invocations", "ModelId", w2.id("model")]
    widgets.append(
        {"type": "metric", "properties": {"view": "table", "stat": "Sum", "metrics": [metric]}}
    )
    widgets.append({"type": "alarm", "properties": {"alarms": [w2.id("alarm")]}})
    ok(c.request("PUT", path, json.dumps({"widgets": widgets}).encode(), a1))
    view = c.request("GET", path + "/view?since=1d", headers=a1)
    assert view.status == 200, view.body[:500]
    assert w2.secret not in view.text and world.spaces["w3"].secret not in view.text
    for other in (w2, world.spaces["w3"]):
        for rid in other.ids["request"]:
            assert rid not in view.text, rid
    assert ok(c.request("GET", path, headers=a2)) == theirs
    ok(c.request("DELETE", path, headers=a1))
    assert ok(c.request("GET", path, headers=a2)) == theirs


def _alarm_under_their_name(world: World) -> None:
    c = world.client
    w1, w2 = world.spaces["w1"], world.spaces["w2"]
    a1, a2 = bearer(w1.keys["admin"]), bearer(w2.keys["admin"])
    path = f"/api/alarms/{w2.id('alarm')}"
    theirs = ok(c.request("GET", path, headers=a2))
    alarm = {
        "Query": "stats count(*)",
        "Threshold": 0,
        "Period": 60,
        "EvaluationPeriods": 1,
        "ComparisonOperator": "GreaterThanThreshold",
    }
    ok(c.request("PUT", path, json.dumps(alarm).encode(), a1))
    ok(c.request("POST", path + "/evaluate", headers=a1))
    ok(c.request("DELETE", path, headers=a1))
    assert _definition(ok(c.request("GET", path, headers=a2))) == _definition(theirs)


def _record_with_their_request_id(world: World) -> None:
    c = world.client
    w1, w2 = world.spaces["w1"], world.spaces["w2"]
    a1, a2 = bearer(w1.keys["admin"]), bearer(w2.keys["admin"])
    rid = w2.ids["request"][0]
    path = f"/api/records/{urllib.parse.quote(rid)}"
    theirs = ok(c.request("GET", path, headers=a2))
    doc = {"requestId": rid, "modelId": "collision-model", "timestamp": theirs["timestamp"]}
    ingester = bearer(w1.keys["ingester"], "application/x-ndjson")
    reply = c.request("POST", "/api/records", json.dumps(doc).encode(), ingester)
    assert ok(reply)["stored"] == 1, reply.body  # not a duplicate: (workspace, requestId)
    deadline = time.monotonic() + 20
    while (mine := c.request("GET", path, headers=a1)).status == 404:
        assert time.monotonic() < deadline, "w1's record was not stored"
        time.sleep(0.05)
    assert (mine.json()["modelId"], mine.json()["workspace"]) == ("collision-model", "w1")
    assert ok(c.request("GET", path, headers=a2)) == theirs
    # w2's reader reads its prompt (audited in w2); w1's page of its own record of that id,
    # which shows who viewed the prompt, and w1's audit of that id show nothing of w2's
    reader2 = bearer(w2.keys["reader"])
    assert w2.secret in c.request("GET", path + "?bodies=1", headers=reader2).text
    quoted = urllib.parse.quote(rid)
    viewers = c.request("GET", f"/logs/{quoted}", headers=a2).text  # w2's page names its reader
    assert w2.key_ids["reader"] in viewers
    for page in (f"/logs/{quoted}", f"/api/audit?requestId={quoted}"):
        for who in (a1, {"cookie": w1.cookies["admin"], "accept": "text/html"}):
            shown = c.request("GET", page, headers=who)
            assert shown.status == 200, (page, shown.body[:300])
            text = shown.text.replace(rid, "").replace(quoted, "")
            for needle in (w2.tag, w2.secret, *w2.ids["key"]):
                assert needle not in text, (page, needle)


def _prices_and_budgets_stay_home(world: World) -> None:
    """The price table is the server's: a workspace's admin cannot change it (it would
    re-price every other workspace's calls, and trip their budgets); only the operator (an
    admin of ``default``) can. A refusing budget refuses its own workspace's calls only."""
    c = world.client
    w1, w2 = world.spaces["w1"], world.spaces["w2"]
    a1 = bearer(w1.keys["admin"])
    price = {
        "provider": "sim",
        "model": "echo",
        "effective_from": "2020-01-01",
        "prices": {"input_mtok": "1000", "output_mtok": "1000"},
    }
    refused = c.request("PUT", "/api/prices", json.dumps(price).encode(), a1)
    assert refused.status == 403, refused.body[:500]
    assert ok(c.request("GET", "/api/prices?source=override", headers=a1))["prices"] == []
    operator = bearer(world.operator)
    made = ok(c.request("PUT", "/api/prices", json.dumps(price).encode(), operator))
    override = urllib.parse.quote(made["override"]["id"], safe="")
    assert c.request("DELETE", f"/api/prices/{override}", headers=a1).status == 403
    ok(c.request("DELETE", f"/api/prices/{override}", headers=operator))
    # w1's refusing budget on the model both call, spent by a call w1 makes now (the world's
    # calls were made minutes ago: maybe in a month that has ended), all in one month
    wait_out_month_end(timedelta(seconds=30))
    chat = b'{"model": "sim/echo", "messages": [{"role": "user", "content": "probe"}]}'
    spent = c.request("POST", "/v1/chat/completions", chat, bearer(w1.keys["gateway"]))
    assert spent.status == 200, spent.body[:500]
    path = "/api/records/" + urllib.parse.quote(str(spent.header("x-llmtrail-request-id")))
    deadline = time.monotonic() + 20
    while c.request("GET", path, headers=a1).status == 404:  # priced and stored
        assert time.monotonic() < deadline, "w1's call was not stored"
        time.sleep(0.05)
    budget = {
        "name": "cross-block",
        "dimension": "modelId",
        "value": "sim/echo",
        "limitUsd": "0.000001",
        "action": "refuse",
    }
    assert ok(c.request("PUT", "/api/budgets", json.dumps(budget).encode(), a1))["refusing"]
    assert c.request("POST", "/v1/chat/completions", chat, bearer(w1.keys["gateway"])).status == 429
    assert c.request("POST", "/v1/chat/completions", chat, bearer(w2.keys["gateway"])).status == 200
    ok(c.request("DELETE", "/api/budgets/cross-block", headers=a1))


def cross_cases() -> list[Case]:
    """Foreign-only cases (a foreign value answered like an unknown one) that write."""
    out = []
    for ws in ("w1", "w2", "w3"):
        for role in ("gateway", "admin"):
            who = (ws, role)
            for path, body in (
                ("/v1/chat/completions", CHAT),
                ("/model/{arn}/converse", CONVERSE),
                ("/model/{arn}/invoke", '{"prompt": "probe"}'),
            ):
                out.append(Case(who, "POST", path, body, Permission.GATEWAY, own=False))
    body = '{"requestIds": ["{request}", "{request2}"], "tenant": "{tenant}"}'
    out.append(Case(("w1", "admin"), "POST", "/api/erase", body, Permission.MANAGE, own=False))
    return out


def cross_writes(world: World) -> list[Asked]:
    _board_aimed_at(world)
    _alarm_under_their_name(world)
    _record_with_their_request_id(world)
    _prices_and_budgets_stay_home(world)
    asked = []
    for case in cross_cases():
        asked += check(world, run_case(world, case), functools.partial(run_case, world, case))
    return asked
