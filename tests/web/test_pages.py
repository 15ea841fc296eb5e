"""The web UI in headless Chromium (Debian's, driven by Playwright) against a running server
filled with real traffic: every page loads with no console error and no failed request, its
charts are drawn, screenshots are kept; a query typed in the Logs editor returns the rows the
query API returns; a trace's waterfall opens to its spans' inputs and outputs; the overview's
numbers are the query API's."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.harness import ServerProcess, call
from tests.web.traffic import APPS, Traffic, fill

CHROMIUM = "/usr/bin/chromium"
PAGES = (
    "/",
    "/logs",
    "/traces",
    "/sessions",
    "/applications",
    "/errors",
    "/cost?by=requestMetadata.cost_center",
    "/profiles",
    "/alarms",
    "/dashboards",
    "/dashboards/llmtrail-overview",
    "/settings",
)
CHARTED = {"/", "/logs", "/traces", "/sessions", "/applications", "/errors", "/cost"}
CHARTED.add("/dashboards/llmtrail-overview")

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, engine: str) -> Iterator[ServerProcess]:
    with ServerProcess(tmp_path_factory.mktemp("web") / "data", engine=engine) as running:
        yield running


@pytest.fixture(scope="module")
def traffic(server: ServerProcess) -> Traffic:
    return fill(server)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


class Watched:
    """A page whose console errors, failed requests and error answers are collected."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.problems: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.problems.append(f"page error: {exc}"))
        page.on("requestfailed", lambda r: self.problems.append(f"failed: {r.url} {r.failure}"))
        page.on("response", self._response)

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.problems.append(f"console: {message.text}")

    def _response(self, response: Any) -> None:
        if response.status >= 400:
            self.problems.append(f"{response.status}: {response.url}")


@pytest.fixture
def watched(browser: Browser) -> Iterator[Watched]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        yield Watched(context.new_page())
    finally:
        context.close()


def window() -> dict[str, str]:
    """An absolute range holding all the traffic, as the URL and the query API take it."""
    now = datetime.now(UTC)
    start = (now - timedelta(hours=1)).replace(second=0, microsecond=0)
    end = (now + timedelta(minutes=5)).replace(second=0, microsecond=0)
    return {
        "start": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "end": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def query_api(server: ServerProcess, text: str, span: dict[str, str]) -> dict[str, Any]:
    status, answer = call(
        server.url,
        "POST",
        "/api/query",
        {"queryString": text, "startTime": span["start"], "endTime": span["end"]},
    )
    assert status == 200, answer
    return dict(answer)


def rows_of(answer: dict[str, Any]) -> list[dict[str, str | None]]:
    return [{c["field"]: c["value"] for c in row} for row in answer["results"]]


def test_every_page_loads_with_its_charts(
    server: ServerProcess, traffic: Traffic, watched: Watched, tmp_path: Path
) -> None:
    page = watched.page
    for path in PAGES:
        sep = "&" if "?" in path else "?"
        page.goto(f"{server.url}{path}{sep}range=1h", wait_until="load")
        assert page.locator("main h1").count() == 1, path
        assert page.locator(".error").count() == 0, (path, page.locator(".error").all_inner_texts())
        if path.split("?")[0] in CHARTED:
            page.wait_for_selector(".js-plotly-plot .main-svg", timeout=15_000)
        page.wait_for_load_state("networkidle")
        name = path.strip("/").split("?")[0].replace("/", "-") or "overview"
        page.screenshot(path=str(tmp_path / f"{name}.png"), full_page=True)
    assert watched.problems == []
    assert (tmp_path / "overview.png").stat().st_size > 0


def test_the_range_picker_keeps_the_page_state(
    server: ServerProcess, traffic: Traffic, watched: Watched
) -> None:
    page = watched.page
    query = 'filter status = "ERROR" | fields requestId, modelId'
    page.goto(f"{server.url}/logs?range=1h&q={urllib.parse.quote(query)}")
    page.click("a.range-choice:text-is('3h')")
    page.wait_for_load_state("load")
    params = urllib.parse.parse_qs(urllib.parse.urlparse(page.url).query)
    assert params["range"] == ["3h"] and params["q"] == [query]
    assert page.locator("textarea#query").input_value() == query
    page.click("header nav a:text-is('Traces')")
    assert urllib.parse.parse_qs(urllib.parse.urlparse(page.url).query)["range"] == ["3h"]
    assert watched.problems == []


def test_a_query_typed_in_the_logs_editor_returns_rows(
    server: ServerProcess, traffic: Traffic, watched: Watched, tmp_path: Path
) -> None:
    span = window()
    text = (
        f'filter requestMetadata.application_name = "{APPS[1]}" '
        "| fields requestId, modelId, status | sort requestId asc | limit 50"
    )
    expected = rows_of(query_api(server, text, span))
    assert expected
    page = watched.page
    page.goto(f"{server.url}/logs?{urllib.parse.urlencode(span)}")
    page.fill("textarea#query", text)
    page.click("#run-query")
    page.wait_for_selector("#results tbody tr")
    shown = page.locator("#results tbody tr").all()
    assert [r.locator("td").first.inner_text() for r in shown] == [r["requestId"] for r in expected]
    page.wait_for_selector(".panel .js-plotly-plot .main-svg")  # the histogram
    # the record of an ingested Converse call, as a conversation with its tool round trip
    ingested = next(r["requestId"] for r in expected if str(r["requestId"]).startswith("web-"))
    page.click(f"#results a:text-is('{ingested}')")
    page.wait_for_selector(".conversation")
    roles = [r.lower() for r in page.locator(".conversation .message .role").all_inner_texts()]
    assert roles[0].startswith("system") and any("response" in r for r in roles)
    assert page.locator(".part.tool-call").inner_text().count("get_weather") == 1
    assert "celsius" in page.locator(".part.tool-result").inner_text()
    assert page.locator("#trace-link").inner_text() == traffic.ingested_trace
    page.screenshot(path=str(tmp_path / "record.png"), full_page=True)
    assert watched.problems == []


def test_a_query_saved_from_the_editor_is_listed_and_runs_again(
    server: ServerProcess, traffic: Traffic, watched: Watched
) -> None:
    page = watched.page
    text = 'filter status = "ERROR" | fields requestId, modelId, error.type'
    page.goto(f"{server.url}/logs?range=1h&q={urllib.parse.quote(text)}")
    page.fill("form.save input[name=name]", "web failures")
    page.click("form.save button")
    page.wait_for_selector(".saved a.current")
    assert page.locator(".saved a.current").inner_text() == "web failures"
    assert page.locator("textarea#query").input_value() == text
    status, saved = call(server.url, "GET", "/api/saved-queries/web%20failures")
    assert (status, saved["queryString"]) == (200, text)
    expected = rows_of(query_api(server, text, window()))
    assert page.locator("#results tbody tr").count() == len(expected) > 0
    assert watched.problems == []


def test_alarms_show_their_state_and_history(
    server: ServerProcess, traffic: Traffic, watched: Watched
) -> None:
    alarm = {
        "Query": 'filter status = "ERROR" | stats count(*)',
        "Period": 60,
        "EvaluationPeriods": 1,
        "Threshold": 5,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
    }
    status, answer = call(server.url, "PUT", "/api/alarms/web-errors", alarm)
    assert status in (200, 201), answer
    page = watched.page
    page.goto(f"{server.url}/alarms?range=1h")
    if page.locator(".notice").count():
        pytest.skip("this build's server has no alarm service (runtime.alarms) yet")
    row = page.locator("#alarms tr", has_text="web-errors")
    assert row.locator(".state").inner_text() in ("OK", "ALARM", "INSUFFICIENT_DATA")
    row.locator("a").click()
    page.wait_for_selector("#history tbody tr")
    history = call(server.url, "GET", "/api/alarms/web-errors/history")[1]
    items = history.get("AlarmHistoryItems", history) if isinstance(history, dict) else history
    assert page.locator("#history tbody tr").count() == max(1, len(items))
    assert watched.problems == []


def test_a_bad_query_is_a_message_above_the_editor(
    server: ServerProcess, traffic: Traffic, watched: Watched
) -> None:
    page = watched.page
    answer = page.goto(f"{server.url}/logs?q={urllib.parse.quote('stats nope(<b>x</b>)')}")
    assert answer is not None and answer.status == 400
    assert "queryString" in page.locator(".error").inner_text()
    assert page.locator(".error b").count() == 0  # escaped, not markup
    assert page.locator("textarea#query").input_value() == "stats nope(<b>x</b>)"


def test_a_trace_waterfall_opens_to_span_inputs_and_outputs(
    server: ServerProcess, traffic: Traffic, watched: Watched, tmp_path: Path
) -> None:
    expected = server.get(f"/api/traces/{traffic.trace_id}")["spans"]
    page = watched.page
    page.goto(f"{server.url}/traces?range=1h")
    page.click(f"a[href^='/traces/{traffic.trace_id}']")
    page.wait_for_selector("#waterfall details.span")
    assert page.locator("#waterfall details.span").count() == len(expected)
    tool = page.locator("details.span", has=page.locator(".span-name", has_text="get_weather"))
    tool.locator("> summary").click()
    shown_input = tool.locator(".span-input").inner_text()
    assert json.loads(shown_input) == json.loads(traffic.tool_input)
    assert json.loads(tool.locator(".span-output").inner_text()) == json.loads(traffic.tool_output)
    llm = page.locator("details.span", has=page.locator(".kind", has_text="llm"))
    llm.locator("> summary").click()
    assert llm.locator(".part.tool-call").count() == 1  # sim asked for the tool
    assert "Paris" in llm.locator(".message.role-user").first.inner_text()
    page.screenshot(path=str(tmp_path / "trace.png"), full_page=True)
    assert watched.problems == []


def test_session_only_traffic_shows_in_sessions(
    server: ServerProcess, traffic: Traffic, watched: Watched
) -> None:
    page = watched.page
    page.goto(f"{server.url}/sessions?range=1h")
    row = page.locator("#sessions tr", has_text=traffic.session_only)
    assert row.locator("td").nth(4).inner_text() == "2"
    row.locator("a:text-is('calls')").click()
    page.wait_for_selector("#results tbody tr")
    assert page.locator("#results tbody tr").count() == 2
    assert watched.problems == []


def _number(text: str) -> Decimal:
    return Decimal(re.sub(r"[^0-9.\-]", "", text))


def test_the_overview_numbers_are_the_query_apis(
    server: ServerProcess, traffic: Traffic, watched: Watched
) -> None:
    span = window()
    text = (
        "stats count(*) as calls, sum(input.inputTokenCount) as tin, "
        "sum(output.outputTokenCount) as tout, sum(cost.totalUsd) as usd"
    )
    (expected,) = rows_of(query_api(server, text, span))
    page = watched.page
    page.goto(f"{server.url}/?{urllib.parse.urlencode(span)}")
    tiles = {
        t.get_attribute("data-metric"): Decimal(t.get_attribute("data-value") or "nan")
        for t in page.locator("#totals .tile").all()
    }
    assert tiles["Invocations"] == Decimal(str(expected["calls"]))
    assert tiles["InputTokenCount"] == Decimal(str(expected["tin"]))
    assert tiles["OutputTokenCount"] == Decimal(str(expected["tout"]))
    assert abs(tiles["CostUsd"] - Decimal(str(expected["usd"] or 0))) < Decimal("1e-9")
    apps = rows_of(
        query_api(server, "stats count(*) as n by requestMetadata.application_name", span)
    )
    page.goto(f"{server.url}/applications?{urllib.parse.urlencode(span)}")
    for app in apps:
        name = app["requestMetadata.application_name"]
        if name is None:
            continue
        row = page.locator(f"#applications tr[data-app='{name}']")
        assert _number(row.locator("td").nth(1).inner_text()) == Decimal(str(app["n"]))
    assert watched.problems == []


def test_bad_parameters_are_messages_never_500(server: ServerProcess, traffic: Traffic) -> None:
    cases = {
        "/?range=2y": (400, "range"),
        "/logs?start=yesterday&end=today": (400, "start"),
        "/logs?limit=0": (400, "limit"),
        "/traces?minDurationMs=-1": (400, "minDurationMs"),
        "/traces?status=WEIRD": (400, "status"),
        "/traces/not-a-trace": (400, "traceId"),
        "/traces/" + "1" * 32: (404, "no trace"),
        "/logs/no-such-record": (404, "no record"),
        "/cost?by=nope": (400, "by"),
        "/cost?tz=Mars/Olympus": (400, "tz"),
        "/sessions?limit=x": (400, "limit"),
        "/dashboards/nope": (404, "no dashboard"),
        "/alarms/nope": (404, "alarm"),
    }
    for path, (status, words) in cases.items():
        try:
            with urllib.request.urlopen(server.url + path, timeout=30) as answer:
                code, body, kind = answer.status, answer.read().decode(), answer.headers
        except urllib.error.HTTPError as exc:
            with exc:
                code, body, kind = exc.code, exc.read().decode(), exc.headers
        assert (code, words in body) == (status, True), (path, code, body[-600:])
        assert kind["content-type"].startswith("text/html")


def test_a_form_of_another_site_cannot_save_queries(server: ServerProcess) -> None:
    form = urllib.parse.urlencode({"name": "planted", "q": "fields @message", "range": "1h"})
    request = urllib.request.Request(
        server.url + "/logs",
        form.encode(),
        {"origin": "http://evil.example", "content-type": "application/x-www-form-urlencoded"},
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    with refused.value as answer:
        assert answer.code == 403 and "Cross-site" in answer.read().decode()
    assert call(server.url, "GET", "/api/saved-queries/planted")[0] == 404
