"""``--format json`` prints one JSON document and ``--format ndjson`` one object a line, for
every command that prints data, against a running server and with none.

The commands run as the console script runs them (`llmtrail.cli.main`), in this process so the
forty-odd invocations stay quick; with a server they find it through the data directory's
``server.json`` and talk HTTP, without one they open the data directory. A walk of the parser
checks that no command that takes ``--format`` was left out.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import time
import urllib.request
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from llmtrail.cli import build_parser, main
from tests.alerts.receivers import WebhookReceiver
from tests.conftest import LOCAL_FIXTURES
from tests.harness import ServerProcess, free_port
from tests.test_cli_help import every_parser
from tests.wall_clock import wait_out_month_end

FIXTURE = LOCAL_FIXTURES / "bedrock-invocation-logs.jsonl"  # 4 records, one failed
TRACE = "5b8efff798038103d269b633813fc60c"
EVER = ("--since", "3650d")

# Without a server the CLI's runtime warms the tokenizer up, and the tokenizer package uses a
# deprecated importlib.resources call (as in test_traces_e2e).
no_server_warnings = pytest.mark.filterwarnings(
    "ignore:open_binary is deprecated:DeprecationWarning"
)


def data_commands() -> dict[tuple[str, ...], tuple[str, ...]]:
    """Every command path whose --format is an output format, with the formats it takes
    (``export --format bedrock|parquet`` names what it writes, not how it prints)."""
    out = {}
    for path, parser in every_parser(build_parser()):
        for action in parser._actions:
            if "--format" in action.option_strings and "json" in (action.choices or ()):
                out[path] = tuple(action.choices or ())
    return out


class Cli:
    """`main` with ``--data-dir``; records which command paths it checked in which format."""

    def __init__(self, capsys: pytest.CaptureFixture[str], data: Path) -> None:
        self.capsys = capsys
        self.data = data
        self.checked: dict[str, set[tuple[str, ...]]] = {"json": set(), "ndjson": set()}
        self.commands = data_commands()
        self.paths = {path for path, _ in every_parser(build_parser())}

    def run(self, *args: str, code: int = 0) -> str:
        """The command's standard output; it exits with ``code`` (1: it ran and reports a
        failure, such as a notification that did not arrive)."""
        exited = main([*args, "--data-dir", str(self.data)])
        out, err = self.capsys.readouterr()
        assert exited == code, err
        return out

    def path(self, args: tuple[str, ...]) -> tuple[str, ...]:
        path: tuple[str, ...] = ()
        for word in args:
            if (*path, word) not in self.paths:
                break
            path = (*path, word)
        return path

    def json(self, *args: str, code: int = 0) -> Any:
        """The whole output is one JSON document."""
        document = json.loads(self.run(*args, "--format", "json", code=code))
        self.checked["json"].add(self.path(args))
        return document

    def ndjson(self, *args: str, code: int = 0) -> list[Any]:
        """Each line is one JSON object."""
        out = self.run(*args, "--format", "ndjson", code=code)
        assert out == "" or out.endswith("\n")
        lines = [json.loads(line) for line in out.splitlines()]
        assert all(isinstance(line, dict) for line in lines), out
        self.checked["ndjson"].add(self.path(args))
        return lines

    def listing(self, *args: str) -> list[Any]:
        """A command that lists things: a JSON array, and the same things one a line."""
        array = self.json(*args)
        assert isinstance(array, list) and all(isinstance(item, dict) for item in array)
        assert self.ndjson(*args) == array
        self.people(*args)
        return array

    def one(self, *args: str, same: bool = True) -> dict[str, Any]:
        """A command about one thing: a JSON object, and that object on one line (``same``:
        the same object; a command whose answer names the time it ran keeps its keys)."""
        document = self.json(*args)
        assert isinstance(document, dict)
        [line] = self.ndjson(*args)
        assert line == document if same else line.keys() == document.keys()
        self.people(*args)
        return document

    def change(self, fmt: str, *args: str, code: int = 0) -> dict[str, Any]:
        """A command that changes something, run once, in ``fmt``: one object either way."""
        if fmt == "json":
            document = self.json(*args, code=code)
        else:
            [document] = self.ndjson(*args, code=code)
        assert isinstance(document, dict)
        return document

    def changes(self, fmt: str, *args: str, code: int = 0) -> list[dict[str, Any]]:
        """A command that does something to several things, run once, in ``fmt``: a JSON
        array of objects, or one object a line."""
        items = self.json(*args, code=code) if fmt == "json" else self.ndjson(*args, code=code)
        assert isinstance(items, list) and all(isinstance(item, dict) for item in items)
        return items

    def people(self, *args: str) -> None:
        """table and csv still print: something, and CSV under a header."""
        assert self.run(*args, "--format", "table").strip()
        rows = list(csv.reader(io.StringIO(self.run(*args, "--format", "csv"))))
        assert rows and rows[0]


def post_trace(server: ServerProcess) -> None:
    """A two-span trace whose tool span failed, over OTLP/HTTP JSON."""
    now = time.time_ns()

    def span(span_id: str, name: str, kind: str, **more: Any) -> dict[str, Any]:
        return {
            "traceId": TRACE,
            "spanId": span_id,
            "name": name,
            "startTimeUnixNano": str(now),
            "endTimeUnixNano": str(now + 5_000_000),
            "attributes": [{"key": "llmtrail.span.kind", "value": {"stringValue": kind}}],
            **more,
        }

    failed = span(
        "00f067aa0ba902b8",
        "track",
        "tool",
        parentSpanId="00f067aa0ba902b7",
        status={"code": 2, "message": "no such parcel"},
        events=[
            {
                "name": "exception",
                "timeUnixNano": str(now),
                "attributes": [
                    {"key": "exception.type", "value": {"stringValue": "ParcelNotFound"}},
                    {"key": "exception.message", "value": {"stringValue": "no such parcel"}},
                ],
            }
        ],
    )
    spans = [span("00f067aa0ba902b7", "handle", "workflow"), failed]
    body = {"resourceSpans": [{"scopeSpans": [{"scope": {"name": "t"}, "spans": spans}]}]}
    request = urllib.request.Request(
        server.url + "/v1/traces",
        json.dumps(body).encode(),
        {"content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.status == 200


def check_dashboards(cli: Cli) -> None:
    """put from a body file, get to standard output and to a file, list, delete."""
    body = {
        "widgets": [
            {"type": "text", "x": 0, "y": 0, "width": 6, "height": 3,
             "properties": {"markdown": "# Calls"}},
            {"type": "metric", "x": 6, "y": 0, "width": 12, "height": 6,
             "properties": {"metrics": [["AWS/Bedrock", "Invocations"]], "stat": "Sum",
                            "period": 300, "title": "calls"}},
        ]
    }  # fmt: skip
    source = cli.data.parent / "dashboard.json"
    source.write_text(json.dumps(body))
    for fmt in ("json", "ndjson"):
        put = cli.change(fmt, "dashboards", "put", f"board-{fmt}", str(source))
        assert put.get("DashboardValidationMessages", []) == [], put
    assert cli.one("dashboards", "get", "board-json") == body
    exported = cli.data.parent / "exported.json"
    written = cli.one("dashboards", "get", "board-ndjson", "--output", str(exported))
    assert json.loads(exported.read_text()) == body
    size, widgets = exported.stat().st_size, len(body["widgets"])
    assert written == {"file": str(exported), "DashboardName": "board-ndjson", "Size": size,
                       "widgets": widgets}  # fmt: skip
    listed = {d["DashboardName"]: d for d in cli.listing("dashboards", "list")}
    assert {"board-json", "board-ndjson"} <= set(listed)
    for fmt in ("json", "ndjson"):
        deleted = cli.change(fmt, "dashboards", "delete", f"board-{fmt}")
        assert deleted == {"deleted": f"board-{fmt}"}
    left = {d["DashboardName"] for d in cli.listing("dashboards", "list")}
    assert left == set(listed) - {"board-json", "board-ndjson"}


def check_alarms(cli: Cli, hook: WebhookReceiver) -> None:
    """Notifiers (a webhook that answers, one to a closed port), an alarm from a
    PutMetricAlarm file and one from flags; evaluated, shown, listed, test-fired, deleted.
    No record is newer than the fixture's, so the last minute has no Invocations (missing
    data or a 0): ">= 1, missing not breaching" is OK, "< 1, missing breaching" ALARM."""
    closed = f"http://127.0.0.1:{free_port()}/hook"
    url = {"json": hook.url, "ndjson": closed}
    for fmt in ("json", "ndjson"):
        made = cli.change(fmt, "notifiers", "put", f"hook-{fmt}", "--webhook", url[fmt])
        assert (made["type"], made["url"]) == ("webhook", url[fmt])
    notifiers = {n["name"]: n for n in cli.listing("notifiers", "list")}
    assert {name: n["url"] for name, n in notifiers.items()} == {
        f"hook-{fmt}": url[fmt] for fmt in url
    }
    assert cli.one("notifiers", "show", "hook-ndjson") == notifiers["hook-ndjson"]

    source = cli.data.parent / "alarm.json"
    source.write_text(json.dumps({
        "AlarmName": "calls-json", "Namespace": "AWS/Bedrock", "MetricName": "Invocations",
        "Statistic": "Sum", "Period": 60, "EvaluationPeriods": 1, "Threshold": 1,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "TreatMissingData": "notBreaching", "AlarmActions": ["hook-json"],
    }))  # fmt: skip
    made = cli.change("json", "alarms", "put", "calls-json", str(source))
    assert (made["AlarmName"], made["Statistic"], made["Period"]) == ("calls-json", "Sum", 60)
    topic = "arn:aws:sns:us-east-1:000000000000:hook-json"  # names notifier hook-json
    made = cli.change("ndjson", "alarms", "put", "calls-ndjson", "--metric-name", "Invocations",
                      "--statistic", "Sum", "--period", "60", "--threshold", "1",
                      "--comparison-operator", "LessThanThreshold",
                      "--treat-missing-data", "breaching",
                      "--alarm-actions", "hook-ndjson", topic)  # fmt: skip
    assert made["AlarmActions"] == ["hook-ndjson", topic]
    assert made["StateValue"] == "INSUFFICIENT_DATA"
    recent = cli.json("metrics", "get", "Invocations", "--since", "5m", "--period", "60")
    assert sum(sum(r["Values"]) for r in recent) == 0  # missing or 0: the same states
    expected = {"json": "OK", "ndjson": "ALARM"}  # notBreaching, breaching
    for fmt in ("json", "ndjson"):
        evaluated = cli.change(fmt, "alarms", "evaluate", f"calls-{fmt}")
        assert evaluated["StateValue"] == expected[fmt], evaluated
        assert cli.one("alarms", "show", f"calls-{fmt}") == evaluated
    listed = cli.listing("alarms", "list")
    assert {a["AlarmName"]: a["StateValue"] for a in listed} == {
        f"calls-{fmt}": state for fmt, state in expected.items()
    }
    assert [a["AlarmName"] for a in cli.listing("alarms", "list", "--state", "ALARM")] == [
        "calls-ndjson"
    ]
    history = cli.listing("alarms", "history", "calls-ndjson")
    assert {i["HistoryItemType"] for i in history} >= {"ConfigurationUpdate", "StateUpdate"}
    changes = cli.listing("alarms", "history", "calls-ndjson", "--type", "StateUpdate")
    assert [(i["OldState"], i["NewState"]) for i in changes] == [("INSUFFICIENT_DATA", "ALARM")]

    # test fires: to the receiver, and to the closed port (the command exits 1)
    posts = len(hook.posts)
    [sent] = cli.changes("json", "alarms", "test", "calls-json")
    assert (sent["action"], sent["status"]) == ("hook-json", "delivered")
    sent_both = cli.changes("ndjson", "alarms", "test", "calls-ndjson", code=1)
    assert [(d["action"], d["status"]) for d in sent_both] == [
        ("hook-ndjson", "failed"),
        (topic, "delivered"),
    ]
    assert sent_both[0]["lastError"]
    one = cli.change("json", "notifiers", "test", "hook-json")
    assert one["status"] == "delivered"
    failed = cli.change("ndjson", "notifiers", "test", "hook-ndjson", code=1)
    assert failed["status"] == "failed" and failed["lastError"]
    assert len(hook.posts) == posts + 3
    deliveries = cli.listing("notifiers", "deliveries")
    tests = [d for d in deliveries if d["attempts"]]  # the test fires
    assert sorted(d["status"] for d in tests) == ["delivered"] * 3 + ["failed"] * 2
    queued = [d for d in deliveries if not d["attempts"]]  # calls-ndjson's ALARM: next tick
    assert sorted((d["alarm"], d["action"], d["status"]) for d in queued) == [
        ("calls-ndjson", action, "pending") for action in sorted(["hook-ndjson", topic])
    ]
    failures = cli.listing("notifiers", "deliveries", "--status", "failed")
    assert failures == [d for d in deliveries if d["status"] == "failed"]

    for fmt in ("json", "ndjson"):
        assert cli.change(fmt, "alarms", "delete", f"calls-{fmt}") == {"deleted": f"calls-{fmt}"}
        deleted = cli.change(fmt, "notifiers", "delete", f"hook-{fmt}")
        assert deleted == {"deleted": f"hook-{fmt}"}
    assert cli.listing("alarms", "list") == [] and cli.listing("notifiers", "list") == []


def check_metrics(cli: Cli, logs: list[dict[str, Any]]) -> None:
    """By model, the rollups count the records of a range the hour width still keeps (the
    older fixture records may have been dropped by retention), list those series, and say
    the same after a rebuild from the newest record on."""
    kept_days = cli.one("config", "show")["metrics"]["retention_1h_days"]
    start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start -= timedelta(days=int(kept_days) - 1)
    expected = Counter(
        r["modelId"] for r in logs if datetime.fromisoformat(r["timestamp"]) >= start
    )
    kept = ("--start", start.isoformat(), "--period", "86400")
    get = ("metrics", "get", "Invocations", "--by", "ModelId", *kept)
    results = cli.listing(*get)
    assert {r["Label"]: sum(r["Values"]) for r in results} == expected
    series = cli.listing("metrics", "list", "--metric", "Invocations", "--dimensions", "ModelId",
                         "--start", start.isoformat())  # fmt: skip
    assert {s["MetricName"] for s in series} == {"Invocations"}
    assert {s["Dimensions"][0]["Value"] for s in series} == set(expected)
    # a rebuild walks every day from --since on: the newest record's keeps it quick
    newest = max(datetime.fromisoformat(r["timestamp"]) for r in logs)
    for fmt, since in (("json", newest), ("ndjson", newest.replace(minute=0, second=0))):
        rebuilt = cli.change(fmt, "metrics", "rebuild", "--since", since.isoformat())
        assert rebuilt == {"rebuilt": True, "since": since.isoformat()}
    assert cli.json(*get) == results


def check_demo(cli: Cli) -> None:
    """The smallest demo (no calls, no history) still sets up budgets, which exist."""
    for fmt in ("json", "ndjson"):
        tally = cli.change(fmt, "demo", "--calls", "0", "--days", "0")
        assert tally["warnings"] == [] and tally["live"] == {} and tally["historyStored"] == 0
        wait_out_month_end(timedelta(seconds=30))  # a listing's runs name one month
        budgets = {b["name"] for b in cli.listing("budgets")}
        assert budgets == {b["name"] for b in tally["budgets"]} and budgets


def check_every_data_command(cli: Cli, hook: WebhookReceiver, with_server: bool) -> str:
    """Every data command in json and ndjson; the admin key the last checks created."""
    # what the listing commands will list; each change once as json and once as ndjson
    assert cli.change("json", "ingest", str(FIXTURE))["stored"] == 4
    assert cli.change("ndjson", "ingest", str(FIXTURE))["duplicate"] == 4
    deadline = time.monotonic() + 30  # acknowledged once spooled; queryable once stored
    while len(cli.json("logs")) < 4:
        assert time.monotonic() < deadline, "the ingested records were never stored"
        time.sleep(0.05)
    for fmt in ("json", "ndjson"):
        cli.change(fmt, "prices", "set", "--provider", "sim", "--model", f"cli-{fmt}",
                   "--input", "1", "--output", "2", "--id", f"cli-{fmt}")  # fmt: skip
    profile = {}
    for fmt in ("json", "ndjson"):
        made = cli.change(fmt, "profiles", "create", "--name", f"app-{fmt}",
                          "--copy-from", "sim/cli", "--tag", "dept=claims")  # fmt: skip
        profile[fmt] = made["inferenceProfileArn"].rsplit("/", 1)[1]
    for fmt, profile_id in profile.items():
        tags = cli.change(fmt, "profiles", "tag", profile_id, "owner=ops")["tags"]
        assert sorted(t["key"] for t in tags) == ["dept", "owner"]
        cli.change(fmt, "profiles", "untag", profile_id, "owner")
        cli.change(fmt, "budgets", "set", "--dimension", "requestMetadata.tenant_id",
                   "--value", f"acme-{fmt}", "--limit", "100", "--name", f"b-{fmt}")  # fmt: skip
    text = "fields requestId, modelId | sort requestId asc"
    since_2000 = ("--start", "2000-01-01T00:00:00Z")
    saved = {"json": "mine", "ndjson": "other"}
    assert len(cli.json("query", text, *since_2000, "--save", "mine")) == 4
    assert len(cli.ndjson("query", text, *since_2000, "--save", "other")) == 4

    # listing commands: one JSON array, the same items one a line
    logs = cli.listing("logs")
    assert len(logs) == 4 and "abc123-def456" in {r["requestId"] for r in logs}
    assert [r["status"] for r in cli.listing("logs", "--status", "ERROR")] == ["ERROR"]
    rows = cli.listing("query", text, *since_2000)
    assert [r["requestId"] for r in rows] == sorted(r["requestId"] for r in logs)
    assert {q["name"] for q in cli.listing("queries")} == {"mine", "other"}
    assert cli.listing("queries", "list") == cli.listing("queries")
    assert [t["traceId"] for t in cli.listing("traces", "--since", "1d")] == [TRACE]
    assert "ParcelNotFound" in {e["type"] for e in cli.listing("errors", *EVER)}
    prices = cli.listing("prices", "list", "--source", "override")
    assert {p["model"] for p in prices} == {"cli-json", "cli-ndjson"}
    assert cli.listing("prices", "missing", *EVER) == []
    assert {p["inferenceProfileName"] for p in cli.listing("profiles", "list")} >= {
        "app-json",
        "app-ndjson",
    }
    wait_out_month_end(timedelta(seconds=30))  # each run names the month it ran in
    assert {b["name"] for b in cli.listing("budgets")} == {"b-json", "b-ndjson"}
    assert cli.listing("budgets", "list") == cli.listing("budgets")

    # commands about one thing: one JSON object, that object on one line
    assert cli.one("show", "abc123-def456")["requestId"] == "abc123-def456"
    assert cli.one("queries", "show", "mine")["queryString"] == text
    assert {s["name"] for s in cli.one("trace", TRACE)["spans"]} == {"handle", "track"}
    assert "rows" in cli.one("timeline", "--since", "1d")
    assert cli.one("prices", "show", "sim/cli-json", same=False)["current"]["version"]
    assert cli.one("cost", "--by", "modelId", *EVER, same=False)["resultsByTime"]
    assert cli.one("cost", "recompute", *EVER, "--dry-run", same=False)["records"] >= 4
    shown = cli.one("profiles", "show", profile["json"], same=False)
    assert shown["tags"] == [{"key": "dept", "value": "claims"}]
    assert "providers" in cli.one("config", "show")
    report = cli.json("report", "cost", *EVER)  # report's formats are its file's: no ndjson
    assert isinstance(report, dict)

    for fmt in ("json", "ndjson"):
        assert cli.change(fmt, "queries", "delete", saved[fmt]) == {"deleted": saved[fmt]}
        cli.change(fmt, "prices", "delete", f"cli-{fmt}")
        cli.change(fmt, "profiles", "delete", profile[fmt])
        assert cli.change(fmt, "budgets", "delete", f"b-{fmt}") == {"deleted": f"b-{fmt}"}
    assert cli.listing("budgets") == [] and cli.listing("queries") == []

    check_dashboards(cli)
    check_alarms(cli, hook)
    check_metrics(cli, logs)
    check_demo(cli)  # it adds budgets, prices, profiles and saved queries
    compacted, key = check_governance(cli, with_server)  # last: its keys close a server

    commands = dict(cli.commands)
    if not compacted:  # a running server owns the file: compact refuses, and says so
        del commands[("retention", "compact")]
    assert cli.checked["json"] == set(commands)
    assert cli.checked["ndjson"] == {path for path, fmts in commands.items() if "ndjson" in fmts}
    return key


def check_governance(cli: Cli, with_server: bool) -> tuple[bool, str]:
    """The logging configuration, redaction, retention, erasure, the audit log and keys:
    whether ``retention compact`` ran (only without a server), and the admin key made."""
    policy = cli.data.parent / "policy.json"
    policy.write_text(json.dumps({"detectors": ["email"], "actions": {"bodies": "mask"}}))
    config = cli.data.parent / "logging.json"
    config.write_text(json.dumps({"loggingConfig": {"textDataDeliveryEnabled": False}}))
    assert cli.one("logging", "get")["llmtrail"]["isDefault"] is True
    assert cli.one("redaction", "get")["policy"]["keyDetectors"] is True
    assert cli.one("retention", "get")["recordsDays"] is None
    assert cli.one("retention") == cli.one("retention", "get")
    for fmt in ("json", "ndjson"):
        put = cli.change(fmt, "logging", "put", str(config))
        assert put["loggingConfig"]["textDataDeliveryEnabled"] is False
        cli.change(fmt, "logging", "delete")
        assert cli.change(fmt, "redaction", "put", str(policy))["policy"]["detectors"] == ["email"]
        tried = cli.change(fmt, "redaction", "test", "write to a@example.com")
        assert "a@example.com" not in json.dumps(tried)
        cli.change(fmt, "redaction", "delete")
        assert cli.change(fmt, "retention", "put", "--records-days", "3650")["recordsDays"] == 3650
        [run] = cli.change(fmt, "retention", "run", "--dry-run")["workspaces"]
        assert run["workspace"] == "default" and run["records"] >= 0
        cli.change(fmt, "retention", "delete")
        erased = cli.change(fmt, "erase", "--request-id", f"no-such-{fmt}")
        assert erased["requestIds"] == [f"no-such-{fmt}"] and erased["removed"]["records"] == 0
    assert any(e["action"].startswith("PUT /api/logging") for e in cli.listing("audit", "list"))
    assert cli.one("audit", "verify")["ok"] is True
    compacted = not with_server
    if compacted:
        for fmt in ("json", "ndjson"):
            cli.change(fmt, "retention", "compact")
    admin = cli.change("json", "keys", "create", "--role", "admin", "--name", "cli")
    if with_server:  # the server needs keys now: the CLI sends this one
        os.environ["LLMTRAIL_KEY"] = admin["key"]
    try:
        reader = cli.change("ndjson", "keys", "create", "--role", "reader")
        assert {k["id"] for k in cli.listing("keys", "list")} == {admin["id"], reader["id"]}
        assert cli.change("json", "keys", "revoke", reader["id"])["revoked"]
        assert cli.change("ndjson", "keys", "revoke", reader["id"])["revoked"]
    finally:
        os.environ.pop("LLMTRAIL_KEY", None)
    return compacted, str(admin["key"])


@no_server_warnings
@pytest.mark.slow  # every data command a process of its own: ~50 s without a server
@pytest.mark.parametrize("with_server", [True, False], ids=["server", "no-server"])
def test_every_data_command_prints_one_json_document_or_one_object_a_line(
    with_server: bool,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("LLMTRAIL_URL", raising=False)
    monkeypatch.chdir(tmp_path)  # timeline's table format draws ./timeline.png
    # webhooks to this machine's receiver; no scheduled evaluation while the test runs
    monkeypatch.setenv("LLMTRAIL_ALERTS__ALLOW_PRIVATE_WEBHOOKS", "true")
    monkeypatch.setenv("LLMTRAIL_ALERTS__EVALUATION_INTERVAL_S", "86400")
    cli = Cli(capsys, tmp_path / "data")
    with WebhookReceiver() as hook:
        server = ServerProcess(cli.data).start()
        try:
            post_trace(server)
            if with_server:
                key = check_every_data_command(cli, hook, with_server)
                request = urllib.request.Request(
                    server.url + "/api/records", headers={"authorization": f"Bearer {key}"}
                )
                with urllib.request.urlopen(request, timeout=30) as answer:
                    assert len(json.loads(answer.read())["records"]) == 4  # ingested through it
        finally:
            server.stop()
        if not with_server:
            check_every_data_command(cli, hook, with_server)
    assert (tmp_path / "timeline.png").stat().st_size > 0


def test_a_growing_list_streams_json_one_object_a_line_and_csv_under_one_header() -> None:
    from llmtrail.cli.output import Table, stream_list

    pages = [[{"id": 1}], [{"id": 2}, {"id": 3}]]

    def table_of(page: Sequence[dict[str, int]]) -> Table:
        return Table(["id"], [[item["id"]] for item in page])

    for fmt in ("json", "ndjson"):
        out = io.StringIO()
        stream_list(pages, table_of, fmt, out)
        assert [json.loads(line) for line in out.getvalue().splitlines()] == [
            {"id": 1},
            {"id": 2},
            {"id": 3},
        ]
    out = io.StringIO()
    stream_list(pages, table_of, "csv", out)
    assert out.getvalue().splitlines() == ["id", "1", "2", "3"]


def test_only_the_output_module_prints_formats() -> None:
    """Commands hand their answer to llmtrail.cli.output; none encodes JSON or CSV itself."""
    import llmtrail.cli

    package = Path(llmtrail.cli.__file__).parent
    found = []
    for module in sorted(package.glob("*.py")):
        if module.name in ("output.py", "client.py"):  # client.py encodes request bodies
            continue
        text = module.read_text()
        found += [
            f"{module.name}: {marker}"
            for marker in (
                r"\bjson\.dumps",
                r"\bimport csv",
                r"\bcsv\.(Dict)?[Ww]riter",
                '== "json"',
                '"ndjson"',
            )
            if re.search(marker, text)
        ]
    assert found == []
