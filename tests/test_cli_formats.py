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
import re
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from llmtrail.cli import build_parser, main
from tests.conftest import LOCAL_FIXTURES
from tests.harness import ServerProcess
from tests.test_cli_help import every_parser

FIXTURE = LOCAL_FIXTURES / "bedrock-invocation-logs.jsonl"  # 4 records, one failed
TRACE = "5b8efff798038103d269b633813fc60c"
EVER = ("--since", "3650d")

# Without a server the CLI's runtime warms the tokenizer up, and the tokenizer package uses a
# deprecated importlib.resources call (as in test_traces_e2e).
no_server_warnings = pytest.mark.filterwarnings(
    "ignore:open_binary is deprecated:DeprecationWarning"
)


def data_commands() -> dict[tuple[str, ...], tuple[str, ...]]:
    """Every command path that takes --format, with the formats it takes."""
    out = {}
    for path, parser in every_parser(build_parser()):
        for action in parser._actions:
            if "--format" in action.option_strings:
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

    def run(self, *args: str) -> str:
        code = main([*args, "--data-dir", str(self.data)])
        out, err = self.capsys.readouterr()
        assert code == 0, err
        return out

    def path(self, args: tuple[str, ...]) -> tuple[str, ...]:
        path: tuple[str, ...] = ()
        for word in args:
            if (*path, word) not in self.paths:
                break
            path = (*path, word)
        return path

    def json(self, *args: str) -> Any:
        """The whole output is one JSON document."""
        document = json.loads(self.run(*args, "--format", "json"))
        self.checked["json"].add(self.path(args))
        return document

    def ndjson(self, *args: str) -> list[Any]:
        """Each line is one JSON object."""
        out = self.run(*args, "--format", "ndjson")
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

    def change(self, fmt: str, *args: str) -> dict[str, Any]:
        """A command that changes something, run once, in ``fmt``: one object either way."""
        if fmt == "json":
            document = self.json(*args)
        else:
            [document] = self.ndjson(*args)
        assert isinstance(document, dict)
        return document

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


def check_every_data_command(cli: Cli) -> None:
    # what the listing commands will list; each change once as json and once as ndjson
    assert cli.change("json", "ingest", str(FIXTURE))["stored"] == 4
    assert cli.change("ndjson", "ingest", str(FIXTURE))["duplicate"] == 4
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

    commands = cli.commands
    assert cli.checked["json"] == set(commands)
    assert cli.checked["ndjson"] == {path for path, fmts in commands.items() if "ndjson" in fmts}


@no_server_warnings
@pytest.mark.parametrize("with_server", [True, False], ids=["server", "no-server"])
def test_every_data_command_prints_one_json_document_or_one_object_a_line(
    with_server: bool,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("LLMTRAIL_URL", raising=False)
    monkeypatch.chdir(tmp_path)  # timeline's table format draws ./timeline.png
    cli = Cli(capsys, tmp_path / "data")
    server = ServerProcess(cli.data).start()
    try:
        post_trace(server)
        if with_server:
            check_every_data_command(cli)
            assert len(server.get("/api/records")["records"]) == 4  # ingested through it
    finally:
        server.stop()
    if not with_server:
        check_every_data_command(cli)
    assert (tmp_path / "timeline.png").stat().st_size > 0


def test_a_growing_list_streams_json_one_object_a_line_and_csv_under_one_header() -> None:
    from llmtrail.cli.output import Table, stream_list

    pages = [[{"id": 1}], [{"id": 2}, {"id": 3}]]

    def table_of(page: list[dict[str, int]]) -> Table:
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
