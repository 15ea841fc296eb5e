"""What a new user sees after ``llmtrail demo``: every page of the web UI loads in headless
Chromium with no console error and is full (no "no … in this range"), charts drawn; the default
dashboard's widgets all hold data; and the seed's token alarm (``Sum`` of input tokens per hour
over a threshold) reads the demo's traffic."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from tests.alerts.test_alarms_e2e import put
from tests.harness import ServerProcess, call
from tests.web.test_pages import CHARTED, CHROMIUM, PAGES, Watched

EMPTY = (
    "no calls in this range",
    "no errors in this range",
    "no sessions in this range",
    "no traces in this range",
)

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with ServerProcess(tmp_path_factory.mktemp("demo-look") / "data") as proc:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "llmtrail",
                "demo",
                "--url",
                proc.url,
                "--calls",
                "80",
                "--days",
                "2",
                "--seed",
                "5",
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        proc.settle()
        yield proc


def input_tokens(server: ServerProcess, since: timedelta) -> float:
    now = datetime.now(UTC)
    status, answer = call(
        server.url,
        "POST",
        "/api/query",
        {
            "queryString": "stats sum(input.inputTokenCount) as t",
            "startTime": (now - since).isoformat(),
            "endTime": (now + timedelta(minutes=1)).isoformat(),
        },
    )
    assert status == 200, answer
    return float(answer["results"][0][0]["value"] or 0)


def test_every_page_is_full_and_draws_its_charts(server: ServerProcess, tmp_path: Path) -> None:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            watched = Watched(context.new_page())
            for path in (*PAGES, "/dashboards/llmtrail-overview"):
                sep = "&" if "?" in path else "?"
                watched.page.goto(f"{server.url}{path}{sep}range=7d", wait_until="load")
                if path in CHARTED or path.startswith("/dashboards/"):
                    watched.page.wait_for_selector(".js-plotly-plot .main-svg", timeout=20_000)
                text = watched.page.inner_text("body")
                assert not [e for e in EMPTY if e in text], path
                name = path.strip("/").split("?")[0].replace("/", "-") or "overview"
                watched.page.screenshot(path=str(tmp_path / f"demo-{name}.png"), full_page=True)
            assert watched.problems == []
        finally:
            browser.close()


def test_the_default_dashboard_has_data_in_every_widget(server: ServerProcess) -> None:
    status, answer = call(server.url, "GET", "/api/dashboards/llmtrail-overview/view?since=7d")
    assert status == 200, answer
    widgets = answer["widgets"]
    assert len(widgets) >= 5
    for widget in widgets:
        assert widget["kind"] not in ("error", "placeholder"), widget
        filled = (
            widget["values"]
            or widget["rows"]
            or any(
                trace.get("values") or trace.get("y")
                for trace in (widget["figure"] or {}).get("data", [])
            )
        )
        assert filled, widget["title"]


def test_the_seed_token_alarm_over_demo_traffic(server: ServerProcess) -> None:
    recent, wider = (
        input_tokens(server, timedelta(minutes=50)),
        input_tokens(server, timedelta(minutes=70)),
    )
    assert recent > 0
    seed = {
        "MetricName": "InputTokenCount",
        "Namespace": "AWS/Bedrock",
        "Statistic": "Sum",
        "Period": 3600,
        "EvaluationPeriods": 1,
        "ComparisonOperator": "GreaterThanThreshold",
    }
    put(server, "/api/alarms/demo-tokens-high", {**seed, "Threshold": recent / 2})
    put(server, "/api/alarms/demo-tokens-low", {**seed, "Threshold": wider * 2})
    for name, state in (("demo-tokens-high", "ALARM"), ("demo-tokens-low", "OK")):
        status, answer = call(server.url, "POST", f"/api/alarms/{name}/evaluate")
        assert status == 200, answer
        alarm = call(server.url, "GET", f"/api/alarms/{name}")[1]
        assert alarm["StateValue"] == state, alarm
        assert recent <= alarm["Value"] <= wider  # the last hour's input tokens
