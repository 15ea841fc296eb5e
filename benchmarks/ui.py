"""Web UI page loads over 1 million records, against the JSON API answering the same question.

    .venv/bin/python benchmarks/ui.py              # 1M records, 3 measured rounds
    .venv/bin/python benchmarks/ui.py --rows 200000 --rounds 2

The records are synthetic (`query_data`: 30 days, a dozen applications, 2 % errors, trace
ids on half), written straight into a DuckDB file with llmtrail's migrations (cached under
``benchmarks/.cache/``), and a real ``llmtrail serve`` rebuilds the metric rollups once
(``POST /api/metrics/rebuild``); each run serves a copy of that file. Each page is loaded in
headless Chromium (Debian's, driven by Playwright) over two ranges — the whole 30 days and
the last day of the data — and timed with the Navigation Timing API: ``server`` is the time
to the last byte of the HTML (the server's work), ``load`` the time to the load event (HTML,
plotly.js from the browser's cache, our script, the charts drawn). The baseline, measured in
the same rounds, is the JSON API call that answers the same question (urllib, no browser).
Goal: every page loads in under 1 s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from rich import box
from rich.console import Console
from rich.table import Table

import query_data

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))
from tests.harness import ServerProcess  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
GOAL_S = 1.0
QUERY = (
    "fields @timestamp, requestId, modelId, status, latencyMs | sort @timestamp desc | limit 100"
)
APPS = (
    "stats count(*) as calls, sum(input.inputTokenCount) as inputTokens, "
    "sum(output.outputTokenCount) as outputTokens, sum(cost.totalUsd) as cost, "
    "pct(latencyMs, 95) as p95 by requestMetadata.application_name"
)
METRICS = {
    "MetricDataQueries": [
        {
            "Id": f"m{i}",
            "MetricStat": {
                "Metric": {"Namespace": "AWS/Bedrock", "MetricName": m},
                "Period": 3600,
                "Stat": s,
            },
        }
        for i, (m, s) in enumerate(
            [
                ("Invocations", "Sum"),
                ("InputTokenCount", "Sum"),
                ("OutputTokenCount", "Sum"),
                ("InvocationClientErrors", "Sum"),
                ("InvocationServerErrors", "Sum"),
                ("CostUsd", "Sum"),
                ("InvocationLatency", "p95"),
            ]
        )
    ]
}


@dataclass
class Timing:
    server: list[float] = field(default_factory=list)
    load: list[float] = field(default_factory=list)
    api: list[float] = field(default_factory=list)


def page_list() -> list[tuple[str, str, str, dict | None]]:
    """(page, its path, the baseline API path, the baseline's POST body or None)."""
    return [
        ("overview", "/", "/api/metrics", METRICS),
        ("logs", "/logs", "/api/query", {"queryString": QUERY}),
        ("traces", "/traces", "/api/traces?limit=50", None),
        ("sessions", "/sessions", "/api/timeline?by=session", None),
        ("applications", "/applications", "/api/query", {"queryString": APPS}),
        ("errors", "/errors", "/api/errors", None),
        (
            "cost",
            "/cost?by=requestMetadata.cost_center",
            "/api/cost?by=requestMetadata.cost_center&granularity=DAILY",
            None,
        ),
        ("profiles", "/profiles", "/api/profiles", None),
        ("alarms", "/alarms", "/api/alarms", None),
        ("dashboards", "/dashboards", "/api/dashboards", None),
        (
            "dashboard",
            "/dashboards/llmtrail-overview",
            "/api/dashboards/llmtrail-overview/view",
            None,
        ),
        ("settings", "/settings", "/healthz", None),
    ]


def build(rows: int) -> Path:
    """A data directory with ``rows`` records (cached)."""
    data = ROOT / ".cache" / f"ui-{rows}"
    done = data / "built"
    if not done.exists():
        data.mkdir(parents=True, exist_ok=True)
        db = data / "llmtrail.duckdb"
        db.unlink(missing_ok=True)
        spent = query_data.write(rows, duckdb_path=db)
        print(f"wrote {rows:,} records in {spent['total']:.1f} s", flush=True)
        with ServerProcess(data) as server:
            started = time.perf_counter()
            request = urllib.request.Request(
                server.url + "/api/metrics/rebuild", b"", method="POST"
            )
            with urllib.request.urlopen(request, timeout=1200) as answer:
                answer.read()
            print(f"metric rollups rebuilt in {time.perf_counter() - started:.1f} s", flush=True)
        done.write_text("ok")
    return data


def api_call(url: str, path: str, body: dict | None, params: dict[str, str]) -> float:
    sep = "&" if "?" in path else "?"
    if body is None:
        request = urllib.request.Request(f"{url}{path}{sep}{urllib.parse.urlencode(params)}")
    else:
        payload = dict(body)
        if path == "/api/metrics":
            payload.update(StartTime=params["start"], EndTime=params["end"])
        else:
            payload.update(startTime=params["start"], endTime=params["end"])
        request = urllib.request.Request(
            url + path, json.dumps(payload).encode(), {"content-type": "application/json"}
        )
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=120) as answer:
        answer.read()
        assert answer.status == 200, path
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    source = build(args.rows)
    work = Path(tempfile.mkdtemp(prefix="llmtrail-ui-bench-"))
    data = work / "data"
    data.mkdir()
    (data / "llmtrail.duckdb").write_bytes((source / "llmtrail.duckdb").read_bytes())
    end = query_data.END
    ranges = {
        "30 days": {
            "start": (end - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "end": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
        "1 day": {
            "start": (end - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "end": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
    }
    results: dict[tuple[str, str], Timing] = {}
    with ServerProcess(data) as server, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        page.goto(server.url + "/settings")  # plotly.js into the browser's cache
        for round_ in range(args.rounds + 1):  # round 0 warms up, unmeasured
            for label, params in ranges.items():
                for name, path, api_path, body in page_list():
                    sep = "&" if "?" in path else "?"
                    page.goto(f"{server.url}{path}{sep}{urllib.parse.urlencode(params)}")
                    if page.locator(".chart").count():
                        page.wait_for_selector(".js-plotly-plot .main-svg", timeout=60_000)
                    nav = page.evaluate(
                        "() => { const n = performance.getEntriesByType('navigation')[0];"
                        " return [n.responseEnd - n.startTime, n.loadEventEnd - n.startTime,"
                        " n.responseStatus]; }"
                    )
                    assert nav[2] == 200, (path, nav)
                    api = api_call(server.url, api_path, body, params)
                    if round_:
                        timing = results.setdefault((label, name), Timing())
                        timing.server.append(nav[0] / 1000)
                        timing.load.append(nav[1] / 1000)
                        timing.api.append(api)
        context.close()
        browser.close()
    table = Table(
        title=f"Web UI page loads over {args.rows:,} records (median of {args.rounds} rounds)",
        box=box.SIMPLE_HEAVY,
    )
    for column in ("range", "page", "server (HTML)", "load (charts drawn)", "JSON API", "< 1 s"):
        table.add_column(column, justify="left" if column in ("range", "page") else "right")
    for (label, name), t in results.items():
        load = statistics.median(t.load)
        table.add_row(
            label,
            name,
            f"{statistics.median(t.server) * 1000:.0f} ms",
            f"{load * 1000:.0f} ms",
            f"{statistics.median(t.api) * 1000:.0f} ms",
            "yes" if load < GOAL_S else "NO",
        )
    Console().print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
