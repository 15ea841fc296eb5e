"""Hostile and malformed input against issue 11's surfaces (metrics, metric math,
dashboards, alarms and notifiers, their web pages), one test per problem found by probing a
running server: each answered a 500, accepted what later broke rendering or delivery, or
never reached the page that shows it."""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from llmtrail.dashboards import DashboardContext, view_dashboard
from llmtrail.errors import ValidationError
from llmtrail.metrics.math import evaluate_expression
from llmtrail.metrics.model import MetricDataResult
from tests.harness import ServerProcess, call

SCRIPT = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with ServerProcess(tmp_path_factory.mktemp("probe") / "data") as proc:
        yield proc


def _query(period: int = 300, **extra: Any) -> dict[str, Any]:
    end = datetime.now(UTC)
    return {
        "MetricDataQueries": [
            {
                "Id": "m1",
                "MetricStat": {
                    "Metric": {"Namespace": "AWS/Bedrock", "MetricName": "Invocations"},
                    "Period": period,
                    "Stat": "Sum",
                },
            }
        ],
        "StartTime": (end - timedelta(hours=6)).isoformat(),
        "EndTime": end.isoformat(),
        **extra,
    }


def _page(server: ServerProcess, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(server.url + path, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read().decode()


def _series(*values: float) -> MetricDataResult:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    stamps = [start + timedelta(minutes=i) for i in range(len(values))]
    return MetricDataResult("m1", "Invocations", stamps, list(values))


def test_epoch_start_time_beyond_a_datetime_is_a_problem(server: ServerProcess) -> None:
    """``"StartTime": 1e20`` (epoch seconds) was a 500 (``datetime.fromtimestamp``)."""
    for value in (1e20, -1e20, 10**30):
        status, answer = call(server.url, "POST", "/api/metrics", _query(StartTime=value))
        assert status == 400, answer
        assert answer["field"] == "StartTime"


def test_period_past_the_years_a_timestamp_holds_is_a_problem(server: ServerProcess) -> None:
    """A period that is a multiple of 60 but reaches past year 9999 was a 500 when the range
    was aligned to it."""
    status, answer = call(server.url, "POST", "/api/metrics", _query(period=60 * 10**15))
    assert status == 400, answer
    assert answer["field"] == "MetricDataQueries[0].Period"


def test_expression_period_is_checked(server: ServerProcess) -> None:
    """An expression's own ``Period`` was used unchecked: 1 s drew FILL's grid second by
    second (seconds of CPU per request)."""
    for period in (1, -5, 7):
        body = _query()
        body["MetricDataQueries"].append(
            {"Id": "e1", "Expression": "FILL(m1, REPEAT)", "Period": period}
        )
        status, answer = call(server.url, "POST", "/api/metrics", body)
        assert status == 400, (period, answer)
        assert answer["field"] == "MetricDataQueries[1].Period"


def test_ceil_and_floor_of_infinity_are_a_gap() -> None:
    """``CEIL(1e400)`` / ``FLOOR(0/0)`` raised OverflowError / ValueError: a 500 on
    ``POST /api/metrics``. Like every other non-finite point, they are a gap."""
    inputs = {"m1": _series(1.0, 2.0)}
    for expression in ("CEIL(1e400)", "FLOOR(0/0)", "CEIL(-1e400)", "FLOOR(m1 / 0)"):
        (result,) = evaluate_expression(expression, inputs, period=60)
        assert result.values == []


def test_search_period_must_be_finite() -> None:
    """``SEARCH(…, 'Sum', 1e400)`` raised OverflowError (``int(inf)``) instead of naming
    the argument."""
    with pytest.raises(ValidationError, match="period of SEARCH"):
        evaluate_expression(
            "SEARCH('{AWS/Bedrock} MetricName=\"Invocations\"', 'Sum', 1e400)",
            {},
            period=60,
            search=lambda expression, stat, period: [],
        )


def test_dashboard_relative_start_is_bounded(server: ServerProcess) -> None:
    """``"start": "-P99999999999W"`` was stored, then every view of the dashboard (API and
    page) was a 500 (timedelta overflow). It is refused on PUT, and a body that holds one
    anyway renders."""
    body = {"widgets": [{"type": "text", "properties": {"markdown": "hi"}}]}
    status, answer = call(
        server.url, "PUT", "/api/dashboards/far", {**body, "start": "-P99999999999W"}
    )
    assert status == 400, answer
    assert answer["field"] == "start"
    status, answer = call(server.url, "GET", "/api/dashboards/far/view")
    assert status == 404, answer  # never stored

    context = DashboardContext(
        None, None, datetime.now(UTC) - timedelta(hours=1), datetime.now(UTC)
    )
    (view,) = view_dashboard({**body, "start": "-P99999999999W"}, context)
    assert view.kind == "text"


def test_alarms_reach_the_web_ui_escaped(server: ServerProcess) -> None:
    """The server never gave the web UI its alarms (``runtime.alarms`` was unset): the
    Alarms page said there were none, ``/alarms/{name}`` was a 404 for every alarm and
    dashboards' alarm widgets said alarms were unavailable. Shown now, the name escaped."""
    alarm = {
        "MetricName": "Invocations",
        "Namespace": "AWS/Bedrock",
        "Statistic": "Sum",
        "Period": 60,
        "EvaluationPeriods": 1,
        "Threshold": 5,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "AlarmDescription": SCRIPT,
    }
    quoted = urllib.parse.quote(SCRIPT, safe="")
    status, answer = call(server.url, "PUT", f"/api/alarms/{quoted}", alarm)
    assert status == 200, answer

    status, html = _page(server, "/alarms")
    assert status == 200
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert SCRIPT not in html
    status, html = _page(server, f"/alarms/{quoted}")
    assert status == 200, html
    assert SCRIPT not in html

    widget = {"type": "alarm", "properties": {"alarms": [SCRIPT]}}
    status, answer = call(server.url, "PUT", "/api/dashboards/alarmed", {"widgets": [widget]})
    assert status == 200, answer
    status, answer = call(server.url, "GET", "/api/dashboards/alarmed/view")
    assert status == 200, answer
    (view,) = answer["widgets"]
    assert view["kind"] == "alarm"
    assert [a["AlarmName"] for a in view["alarms"]] == [SCRIPT]


def test_webhook_to_ipv4_inside_ipv6_is_refused(server: ServerProcess) -> None:
    """A 6to4 (``2002:7f00:1::`` = 127.0.0.1) or Teredo address carrying a loopback or
    private IPv4 address was accepted as public."""
    for host in ("[2002:7f00:1::]", "[2002:a9fe:a9fe::]", "[2001:0:4136:e378:8000:63bf:80ff:fffe]"):
        doc = {"type": "webhook", "url": f"http://{host}/hook"}
        status, answer = call(server.url, "PUT", "/api/notifiers/sixtofour", doc)
        assert status == 400, (host, answer)
        assert answer["field"] == "url"


def test_webhook_url_with_control_characters_is_refused(server: ServerProcess) -> None:
    """A URL with a space, CR/LF or NUL was stored, and every delivery then failed inside
    http.client; it is refused when the notifier is saved."""
    for url in ("http://8.8.8.8/a b", "http://8.8.8.8/a\r\nX-Injected: 1", "http://8.8.8.8/\x00"):
        doc = {"type": "webhook", "url": url}
        status, answer = call(server.url, "PUT", "/api/notifiers/controls", doc)
        assert status == 400, (url, answer)
        assert answer["field"] == "url"


def test_dashboard_metric_rows_are_bounded(server: ServerProcess) -> None:
    """20 widgets of 500 ``[".", "."]`` rows (10,000 reads, 200 KB of body) were stored, and
    each view then took minutes on a thread of the server's pool; 500 widgets of 500 would
    take hours. A dashboard holds at most `MAX_METRICS` metric rows in all."""
    from llmtrail.dashboards.body import MAX_METRICS

    rows: list[list[Any]] = [["AWS/Bedrock", "Invocations"], *[[".", "."]] * 499]
    widgets = [{"type": "metric", "properties": {"metrics": rows}}] * (MAX_METRICS // 500 + 1)
    status, answer = call(server.url, "PUT", "/api/dashboards/heavy", {"widgets": widgets})
    assert status == 400, answer
    assert answer["field"] == f"widgets[{MAX_METRICS // 500}].properties.metrics"
    assert str(MAX_METRICS) in answer["detail"]
    status, answer = call(
        server.url, "PUT", "/api/dashboards/heavy", {"widgets": widgets[: MAX_METRICS // 500]}
    )
    assert status == 200, answer
