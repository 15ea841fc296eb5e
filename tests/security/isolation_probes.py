"""The probes of the tenant-isolation matrix and what every answer must satisfy.

A `Case` is one request template (method, path, body, with ``{placeholders}``) asked by one
caller (a workspace's key of one role, or a browser session). A template with placeholders
is asked three ways: with the caller's own values, with each other workspace's values
(foreign), and with each foreign value scrambled into an unknown one of the same shape
(`unknown`). `check` then asserts, for every answer: no 5xx; no other workspace's tag,
secret or id in the headers or body once the strings the request itself sent are taken out
(an echo of the caller's own input is not a leak); 403 for every variant when the role
lacks the route's permission; and, with it, a foreign value answered exactly as its unknown
twin is (same status, same body once each sent value is replaced by one placeholder).
"""

from __future__ import annotations

import json
import re
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from llmtrail.security.principal import ROLES, Permission
from tests.security.isolation_world import Reply, Workspace, World

# keys of JSON answers that differ between two identical asks (ids and clocks)
VOLATILE = {"queryId", "statistics", "generatedAt", "now", "evaluatedAt", "asOf", "elapsedMs"}
PLACEHOLDER = "\x00SENT\x00"


def scramble(value: str) -> str:
    """An unknown value of ``value``'s shape: the random runs of letters and digits in it
    (eight or more, mixing both) moved on by one character within their class, so hex
    stays hex, a UUID stays a UUID and an ARN keeps its structure; a workspace name
    becomes one that does not exist."""
    if re.fullmatch(r"w[0-9]", value):
        return "w9"
    if value.startswith("arn:") and "/" in value:  # the resource id, whatever its letters
        head, _, resource = value.rpartition("/")
        return f"{head}/{rotate_chars(resource)}"

    rotate = rotate_chars

    def random_run(match: re.Match[str]) -> str:
        run = match.group(0)
        mixed = re.search(r"[0-9]", run) and re.search(r"[a-z]", run)
        return rotate(run) if mixed else run

    changed = re.sub(r"[0-9a-z]{8,}", random_run, value)
    return changed if changed != value else rotate(value)


def rotate_chars(run: str) -> str:
    """``run`` with each letter and digit moved on by one within its class (hex stays hex)."""
    out = []
    for ch in run:
        for alphabet in ("0123456789abcdef", "ghijklmnopqrstuvwxyz"):
            if ch in alphabet:
                ch = alphabet[(alphabet.index(ch) + 1) % len(alphabet)]
                break
        out.append(ch)
    return "".join(out)


def values_of(ws: Workspace, n: int = 0) -> dict[str, str]:
    """What a template's placeholders become for workspace ``ws`` (its ``n``-th ids)."""
    i = ws.ids

    def nth(kind: str, at: int) -> str:
        return i[kind][at % len(i[kind])]

    return {
        "ws": ws.name,
        "tag": ws.tag,
        "request": nth("request", n),
        "request2": nth("request", -1 - n),
        "trace": nth("trace", n),
        "trace2": nth("trace", -1 - n),
        "key": nth("key", n),
        "arn": i["profile"][0],
        "profile_id": i["profile"][0].rsplit("/", 1)[-1],
        "board": i["board"][0],
        "alarm": i["alarm"][0],
        "notifier": i["notifier"][0],
        "budget": i["budget"][0],
        "saved": i["saved"][0],
        "query": i["query"][0],
        "model": i["model"][0],
        "otel_model": i["model"][1],
        "app": i["app"][0],
        "tenant": f"{ws.tag}-tenant",
        "session": f"{ws.tag}-session",
        "group": i["group"][0],
    }


@dataclass
class Case:
    who: tuple[str, str]  # (workspace, role); role "reader"/"admin" with via "session" too
    method: str
    path: str  # may hold {placeholders}
    body: str | None = None  # may hold {placeholders}; JSON-escaped on filling
    permission: Permission = Permission.READ
    content_type: str = "application/json"
    via: str = "key"  # or "session": the login cookie
    own: bool = True  # ask with the caller's own values too (False for destructive ones)
    foreign: bool = True  # ask with foreign values (False for writes that would create)
    object_route: bool = False  # a foreign id must be 404
    compare: str = "json"  # how twins are compared: json, status
    extra_headers: dict[str, str] = field(default_factory=dict)
    n: int = 0  # which of the target's ids of each kind
    shows: bool = False  # the caller's own answer must show its own secret (the data)
    refused: bool = False  # 403 whatever the role: only the operator (default) may

    @property
    def templated(self) -> bool:
        return "{" in self.path or bool(self.body and re.search(r"\{[a-z_0-9]+\}", self.body))


@dataclass
class Asked:
    case: Case
    variant: str  # own, plain, foreign:w2, unknown:w2
    method: str
    path: str
    body: str | None
    sent: list[str]
    reply: Reply


def _fill(template: str, values: dict[str, str], in_json: bool) -> str:
    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            return match.group(0)
        value = values[name]
        return json.dumps(value)[1:-1] if in_json else urllib.parse.quote(value, safe=":@")

    return re.sub(r"\{([a-z_0-9]+)\}", one, template)


def _sent_forms(values: dict[str, str]) -> list[str]:
    """Every form a sent value can be echoed in: as is, URL-quoted, JSON- and HTML-escaped."""
    forms: set[str] = set()
    for v in values.values():
        forms |= {
            v,
            urllib.parse.quote(v, safe=""),
            urllib.parse.quote(v, safe="/:@"),
            json.dumps(v)[1:-1],
            v.replace("/", "\\/"),
            v.replace("&", "&amp;"),
        }
        forms |= {urllib.parse.quote_plus(v), v.replace("'", "&#39;").replace('"', "&#34;")}
        forms |= {f.lower() for f in forms}
    return sorted((f for f in forms if len(f) >= 2), key=len, reverse=True)


def ask(world: World, case: Case, variant: str, values: dict[str, str]) -> Asked:
    caller = world.spaces[case.who[0]]
    path = _fill(case.path, values, in_json=False)
    body = _fill(case.body, values, in_json=True) if case.body is not None else None
    headers = {"content-type": case.content_type, **case.extra_headers}
    if case.via == "session":
        headers["cookie"] = caller.cookies[case.who[1]]
        headers.setdefault("accept", "text/html")
    else:  # each of the headers the Gatekeeper takes a key from, by round
        key = caller.keys[case.who[1]]
        name, value = (
            ("authorization", f"Bearer {key}"),
            ("x-llmtrail-key", key),
            ("x-api-key", key),
        )[case.n % 3]
        headers[name] = value
    reply = world.client.request(case.method, path, body.encode() if body else None, headers)
    used = {k: v for k, v in values.items() if "{" + k + "}" in case.path + (case.body or "")}
    return Asked(case, variant, case.method, path, body, _sent_forms(used), reply)


def run_case(world: World, case: Case) -> list[Asked]:
    """The case asked every way it is asked."""
    me = world.spaces[case.who[0]]
    if not case.templated:
        return [ask(world, case, "plain", {})]
    asked = []
    if case.own:
        asked.append(ask(world, case, "own", values_of(me, case.n)))
    if case.foreign:
        for other in world.spaces.values():
            if other.name == me.name:
                continue
            theirs = values_of(other, case.n)
            unknown = {k: scramble(v) for k, v in theirs.items()}
            asked.append(ask(world, case, f"foreign:{other.name}", theirs))
            asked.append(ask(world, case, f"unknown:{other.name}", unknown))
    return asked


class Leak(AssertionError):
    pass


def scan(world: World, asked: Asked) -> None:
    """No other workspace's tag, secret or id in the answer (the request's own sent strings
    taken out first)."""
    text = asked.reply.text
    if asked.path.startswith("/api/audit?") or asked.path == "/api/audit":
        text = _own_audit_entries(asked)
    for form in asked.sent:
        text = text.replace(form, PLACEHOLDER)
    for other in world.spaces.values():
        if other.name == asked.case.who[0]:
            continue
        for needle in (other.secret, other.tag, *other.all_ids()):
            for form in {needle, urllib.parse.quote(needle, safe=""), needle.lower()}:
                if len(form) >= 8 and form in text:
                    at = text.index(form)
                    raise Leak(
                        f"{asked.case.who} {asked.method} {asked.path} [{asked.variant}] "
                        f"answered {asked.reply.status} with {other.name}'s {needle!r}: "
                        f"…{text[max(0, at - 300) : at + 200]!r}…"
                    )


TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?")


def _own_audit_entries(asked: Asked) -> str:
    """The audit entries' text without what the caller's own requests named: every entry
    must be of the caller's workspace, and its ``action`` and ``target`` are the path and
    ids the caller itself sent (foreign ids among them, by this matrix)."""
    if asked.reply.status != 200:
        return asked.reply.text
    page = asked.reply.json()
    for entry in page["entries"]:
        assert entry["workspace"] == asked.case.who[0], (asked.case.who, entry)
        entry.pop("action"), entry.pop("target", None)
    return json.dumps(page)


def _whole(form: str) -> re.Pattern[str]:
    """``form`` where it is not part of a longer run of letters and digits."""
    before = "(?<![A-Za-z0-9])" if form[:1].isalnum() else ""
    after = "(?![A-Za-z0-9])" if form[-1:].isalnum() else ""
    return re.compile(before + re.escape(form) + after)


def _normal(asked: Asked) -> Any:
    text = asked.reply.body.decode("utf-8", "replace")
    for form in asked.sent:  # an echo, not the same letters inside another id ("…cw9hh…")
        text = _whole(form).sub(PLACEHOLDER, text)
    text = TIMESTAMP.sub("T", text)
    try:
        value = json.loads(text)
    except ValueError:
        return text

    def strip(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: strip(x) for k, x in v.items() if k not in VOLATILE}
        if isinstance(v, list):
            return [strip(x) for x in v]
        return v

    return strip(value)


def may(who: tuple[str, str], permission: Permission) -> bool:
    role = who[1]
    granted = ROLES[role] | ({Permission.BODIES} if role == "reader" else frozenset())
    return permission is Permission.PUBLIC or permission in granted


def check(
    world: World, asked: list[Asked], again: Callable[[], list[Asked]] | None, tries: int = 3
) -> list[Asked]:
    """Every assertion of one case's answers; returns the answers checked (a twin compare
    that differs is asked again, up to ``tries`` times in all, in case the caller's own data
    moved between two asks)."""
    case = asked[0].case
    for a in asked:
        assert a.reply.status < 500, (case.who, a.method, a.path, a.variant, a.reply.body[:800])
        scan(world, a)
    if case.refused or not may(case.who, case.permission):
        for a in asked:
            assert (
                a.reply.status in (403, 401) if case.via == "session" else a.reply.status == 403
            ), (case.who, a.method, a.path, a.variant, a.reply.status, a.reply.body[:300])
        return asked
    by = {a.variant: a for a in asked}
    own = by.get("own")
    if own is not None and case.object_route and case.method == "GET":
        assert own.reply.status == 200, (case.who, own.path, own.reply.status, own.reply.body[:500])
    if own is not None and case.shows:  # the probe reaches data: aimed at the caller, it finds
        assert world.spaces[case.who[0]].secret in own.reply.text, (case.who, own.path, own.body)
    for variant, foreign in by.items():
        if not variant.startswith("foreign:"):
            continue
        twin = by["unknown:" + variant.split(":")[1]]
        if case.object_route:
            assert foreign.reply.status == 404, (
                case.who,
                foreign.method,
                foreign.path,
                foreign.reply.status,
                foreign.reply.body[:500],
            )
        same = foreign.reply.status == twin.reply.status and (
            case.compare == "status" or _normal(foreign) == _normal(twin)
        )
        if not same and again is not None and tries > 1:
            time.sleep(0.5)
            return check(world, again(), again, tries - 1)
        assert foreign.reply.status == twin.reply.status, (
            case.who,
            foreign.method,
            foreign.path,
            foreign.reply.status,
            twin.reply.status,
            foreign.reply.body[:500],
            twin.reply.body[:500],
        )
        assert same, (case.who, foreign.method, foreign.path, _normal(foreign), _normal(twin))
    return asked
