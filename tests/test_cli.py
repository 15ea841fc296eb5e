"""The `llmtrail` command, as a user runs it: against a running server and with none."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import openai
import pytest

from tests.conftest import bedrock_fixture_lines
from tests.harness import ServerProcess


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [sys.executable, "-m", "llmtrail", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def test_ingest_logs_and_show_without_a_server(tmp_path: Path) -> None:
    data = tmp_path / "data"
    source = tmp_path / "logs.json.gz"
    source.write_bytes(gzip.compress("\n".join(bedrock_fixture_lines()).encode()))
    done = run("ingest", str(source), "--data-dir", str(data))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["stored"] == 4
    listed = run("logs", "--data-dir", str(data), "--json")
    ids = [record["requestId"] for record in json.loads(listed.stdout)]  # one JSON array
    assert len(ids) == 4 and "abc123-def456" in ids
    lines = run("logs", "--data-dir", str(data), "--format", "ndjson").stdout.splitlines()
    assert [json.loads(line)["requestId"] for line in lines] == ids
    table = run("logs", "--data-dir", str(data), "--status", "ERROR")
    assert "0b7e9f1a-2c3d-4e5f-8a9b-1c2d3e4f5a6b" in table.stdout and "abc123" not in table.stdout
    csv_out = run("logs", "--data-dir", str(data), "--format", "csv", "--metadata", "team=search")
    assert csv_out.stdout.splitlines()[0].startswith("timestamp,requestId")
    assert len(csv_out.stdout.splitlines()) == 2
    shown = run("show", "abc123-def456", "--data-dir", str(data))
    assert json.loads(shown.stdout)["requestMetadata"]["cost_center"] == "CS-123"
    again = run("ingest", str(source), "--data-dir", str(data))
    assert json.loads(again.stdout)["duplicate"] == 4


def test_cli_talks_to_the_running_server(tmp_path: Path) -> None:
    with ServerProcess(tmp_path / "data") as server:
        with openai.OpenAI(base_url=server.url + "/v1", api_key="sk-x", max_retries=0) as c:
            raw = c.chat.completions.with_raw_response.create(
                model="sim/cli", messages=[{"role": "user", "content": "hi"}]
            )
        request_id = raw.headers["x-llmtrail-request-id"]
        server.settle()
        # found through DATA_DIR/server.json: DuckDB is owned by the server process
        listed = run("logs", "--data-dir", str(server.data_dir), "--json", "--model", "sim/cli")
        assert listed.returncode == 0, listed.stderr
        assert [r["requestId"] for r in json.loads(listed.stdout)] == [request_id]
        shown = run("show", request_id, "--url", server.url)
        assert json.loads(shown.stdout)["provider"] == "sim"
        bad = tmp_path / "bad.ndjson"
        bad.write_text('{"requestId": "r1"}\n')
        rejected = run("ingest", str(bad), "--url", server.url)
        assert rejected.returncode == 1
        assert json.loads(rejected.stdout)["rejected_records"][0]["field"] == "timestamp"
        missing = run("show", "nope", "--url", server.url)
        assert missing.returncode == 1 and "nope" in missing.stderr


def test_config_show_masks_secrets(tmp_path: Path) -> None:
    config = tmp_path / "llmtrail.toml"
    config.write_text(
        '[providers.corp]\ntype = "openai"\nbase_url = "http://x/v1"\n'
        'api_key_env = "CORP_KEY"\n[[routes]]\nmatch = "corp/*"\nprovider = "corp"\n'
    )
    shown = run("config", "show", "--config", str(config), env={"CORP_KEY": "sk-very-secret"})
    assert shown.returncode == 0, shown.stderr
    assert "sk-very-secret" not in shown.stdout
    settings = json.loads(shown.stdout)
    assert settings["providers"]["corp"]["api_key"] == "****** (from $CORP_KEY)"
    assert settings["routes"][0]["match"] == "corp/*"


def test_usage_and_config_errors_exit_2(tmp_path: Path) -> None:
    assert run("logs", "--since", "yesterday").returncode == 2
    assert run("logs", "--format", "yaml").returncode == 2
    where = ("--data-dir", str(tmp_path / "d"))
    both = run("logs", "--follow", "--filter-pattern", "{ $.x = 1 }", *where)
    assert both.returncode == 2
    assert "llmtrail logs: error: --follow and --filter-pattern cannot be combined" in both.stderr
    nothing = run("query", *where)
    assert nothing.returncode == 2 and "give the query text or --name" in nothing.stderr
    no_rate = run("prices", "set", "--provider", "sim", "--model", "m", *where)
    assert no_rate.returncode == 2 and "--input" in no_rate.stderr
    bad_tag = run("profiles", "tag", "abc", "no-equals-sign", *where)
    assert bad_tag.returncode == 2 and "expected KEY=VALUE" in bad_tag.stderr
    assert run("queries", "show", *where).returncode == 2  # NAME is required
    far = run("logs", "--since", "99999999999d", "--data-dir", str(tmp_path / "d"))
    assert far.returncode == 2 and "too far back" in far.stderr
    missing = run("ingest", str(tmp_path / "nope.json"), "--data-dir", str(tmp_path / "d"))
    assert missing.returncode == 1 and "cannot read" in missing.stderr
    assert "Traceback" not in missing.stderr
    assert not (tmp_path / "d").exists()  # arguments are checked before anything is opened
    config = tmp_path / "bad.toml"
    config.write_text('[providers.x]\ntype = "openai"\nbase_url = "http://x"\napi_key = "sk-1"\n')
    failed = run("config", "show", "--config", str(config))
    assert failed.returncode == 2 and "api_key_env" in failed.stderr


@pytest.mark.parametrize("fmt", [["--json"], ["--format", "ndjson"]], ids=["json", "ndjson"])
def test_logs_follow_streams_one_record_a_line(tmp_path: Path, fmt: list[str]) -> None:
    """--follow never ends, so JSON streams as one object a line with --json as with ndjson."""
    import os
    import selectors
    import time

    def call(server: ServerProcess, model: str) -> str:
        with openai.OpenAI(base_url=server.url + "/v1", api_key="sk-x", max_retries=0) as c:
            raw = c.chat.completions.with_raw_response.create(
                model=model, messages=[{"role": "user", "content": "hi"}]
            )
        return raw.headers["x-llmtrail-request-id"]

    with ServerProcess(tmp_path / "data") as server:
        before = call(server, "sim/before")
        server.settle()
        follower = subprocess.Popen(
            [sys.executable, "-m", "llmtrail", "logs", "--follow", *fmt, "--url", server.url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(os.environ),
        )
        try:
            stdout = follower.stdout
            assert stdout is not None
            selector = selectors.DefaultSelector()
            selector.register(stdout, selectors.EVENT_READ)
            seen: list[dict[str, object]] = []

            def read_until(request_id: str) -> None:
                deadline = time.monotonic() + 30
                while request_id not in [r["requestId"] for r in seen]:
                    assert time.monotonic() < deadline, seen
                    if selector.select(timeout=1):
                        line = stdout.readline()
                        if line:
                            seen.append(json.loads(line))  # each line a whole record

            read_until(before)  # the first page: what was there
            after = call(server, "sim/follow")
            read_until(after)  # then what arrives
            assert [(r["modelId"], r["requestId"]) for r in seen] == [
                ("sim/before", before),
                ("sim/follow", after),
            ]
        finally:
            follower.kill()
            follower.wait(10)
            for stream in (follower.stdout, follower.stderr):
                if stream is not None:
                    stream.close()


def test_ingest_splits_by_size_and_reports_unreadable_lines(tmp_path: Path) -> None:
    from llmtrail.cli.records import batches, read_records

    lines = [b"x" * 10] * 7
    assert [(s, len(c)) for s, c in batches(lines, 3, 10_000)] == [(0, 3), (3, 3), (6, 1)]
    assert [(s, len(c)) for s, c in batches(lines, 100, 25)] == [(0, 2), (2, 2), (4, 2), (6, 1)]
    pretty = json.dumps({"requestId": "p", "timestamp": "2026-01-01T00:00:00Z"}, indent=2)
    assert len(read_records(pretty.encode())) == 1
    source = tmp_path / "mixed.ndjson"
    source.write_text(
        '{"requestId": "ok-1", "timestamp": "2026-01-01T00:00:00Z"}\nnot json at all\n'
    )
    done = run("ingest", str(source), "--data-dir", str(tmp_path / "data"))
    result = json.loads(done.stdout)
    assert done.returncode == 1 and result["rejected"] == 1
    broken = tmp_path / "broken.json"
    broken.write_text("[1, 2")
    failed = run("ingest", str(broken), "--data-dir", str(tmp_path / "data"))
    assert failed.returncode == 1 and "JSON array" in failed.stderr
    shown = run("show", "ok-1", "--data-dir", str(tmp_path / "data"), "--format", "csv")
    assert "requestId,ok-1" in shown.stdout.splitlines()


def test_a_second_server_on_the_same_data_dir_says_why_it_cannot_start(tmp_path: Path) -> None:
    from tests.harness import free_port

    with ServerProcess(tmp_path / "data") as server:
        second = run("serve", "--data-dir", str(server.data_dir), "--port", str(free_port()))
        assert second.returncode == 1
        assert "another llmtrail" in second.stderr and "Traceback" not in second.stderr
        assert server.get("/readyz") == {"status": "ready"}


def test_a_busy_port_or_bad_host_is_a_clear_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        busy = run("serve", "--data-dir", str(tmp_path / "a"), "--port", port)
    assert busy.returncode == 1 and "cannot listen" in busy.stderr
    assert "Traceback" not in busy.stderr
    far = run("serve", "--data-dir", str(tmp_path / "c"), "--port", "70000")
    assert far.returncode == 2 and "port must be a number in range" in far.stderr
    bad = run("serve", "--data-dir", str(tmp_path / "b"), "--host", "999.1.1.1")
    assert bad.returncode == 1 and "cannot listen on 999.1.1.1" in bad.stderr
