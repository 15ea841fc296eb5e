"""``llmtrail metrics`` on a data directory with no server: get, list and rebuild agree with
``llmtrail query`` over the same records."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.metrics.test_metrics_api import records


def run(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "llmtrail", *args, "--data-dir", str(data)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_get_list_and_rebuild_agree_with_the_query(tmp_path: Path) -> None:
    data = tmp_path / "data"
    source = tmp_path / "records.ndjson"
    source.write_text("\n".join(json.dumps(r) for r in records(40)))
    assert run(data, "ingest", str(source)).returncode == 0
    done = run(
        data,
        "query",
        "stats count(*) as n by requestMetadata.application_name as app",
        "--since",
        "2d",
        "--format",
        "json",
    )
    assert done.returncode == 0, done.stderr
    expected = {row["app"]: float(row["n"]) for row in json.loads(done.stdout)}
    for step in ("before", "rebuild"):
        if step == "rebuild":
            rebuilt = run(data, "metrics", "rebuild")
            assert rebuilt.returncode == 0 and "rebuilt" in rebuilt.stdout
        done = run(
            data,
            "metrics",
            "get",
            "Invocations",
            "--by",
            "ApplicationName",
            "--period",
            "86400",
            "--since",
            "2d",
            "--format",
            "json",
        )
        assert done.returncode == 0, done.stderr
        got = {r["Label"]: sum(r["Values"]) for r in json.loads(done.stdout)}
        assert got == expected, step
    done = run(
        data,
        "metrics",
        "list",
        "--dimensions",
        "ApplicationName",
        "--metric",
        "Invocations",
        "--since",
        "2d",
        "--format",
        "json",
    )
    names = {m["Dimensions"][0]["Value"] for m in json.loads(done.stdout)}
    assert names == set(expected)
    bad = run(data, "metrics", "get", "Invocations", "--period", "45")
    assert bad.returncode == 1 and "Period" in bad.stderr
