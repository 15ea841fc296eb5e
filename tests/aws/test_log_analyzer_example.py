"""examples/aws/log_analyzer.py, written for AWS, run unchanged against a real llmtrail with
only ``--endpoint-url``, over traffic from all three wire formats (the shared server's, plus
calls of a model of this test's own, some of them failing): its figures equal llmtrail's own
answers for the same window — counts, error rate, average latency and tokens summed from
``GET /api/records``, and every figure of the performance report's model table
(``GET /api/reports/performance``), p95 latency included."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import anthropic
import openai
import pytest

from llmtrail.reports.values import FLOAT_PLACES, RATIO_PLACES
from tests.aws.conftest import EXAMPLES, REGION, AwsServer, run_example
from tests.aws.test_logs_support import api_records
from tests.harness import call

EXAMPLE = EXAMPLES / "log_analyzer.py"


def send(url: str, model: str) -> None:
    """Calls of ``model`` in the OpenAI, Anthropic and Bedrock wire formats, three failing
    (the sim provider answers the status its header asks for)."""
    oai = openai.OpenAI(base_url=url + "/v1", api_key="sk-test", max_retries=0)
    ant = anthropic.Anthropic(base_url=url, api_key="sk-test", max_retries=0)
    try:
        for i in range(5):
            oai.chat.completions.create(
                model=model, messages=[{"role": "user", "content": f"question {i}"}]
            )
        for i in range(3):
            ant.messages.create(
                model=model, max_tokens=64, messages=[{"role": "user", "content": f"ask {i}"}]
            )
        for status in ("429", "500"):
            with pytest.raises(openai.APIStatusError):
                oai.chat.completions.create(
                    model=model,
                    messages=[{"role": "user", "content": "fail"}],
                    extra_headers={"x-llmtrail-sim": f"error={status}"},
                )
        with pytest.raises(anthropic.APIStatusError):
            ant.messages.create(
                model=model,
                max_tokens=64,
                messages=[{"role": "user", "content": "fail"}],
                extra_headers={"x-llmtrail-sim": "error=503"},
            )
    finally:
        oai.close()
        ant.close()


def analyzer(url: str, *args: str) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(
        run_example("log_analyzer.py", url, "--region", REGION, *args)
    )
    return report


def iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def test_the_analyzers_figures_are_llmtrails(aws_server: AwsServer, unique: str) -> None:
    model = f"sim/{unique}"
    send(aws_server.url, model)
    aws_server.proc.settle()
    report = analyzer(aws_server.url, "--model-id", model)
    window = report["window"]
    assert window["hours"] == 24 and window["endTime"] - window["startTime"] == 86_400
    start, end = iso(window["startTime"]), iso(window["endTime"] + 1)  # AWS's end is inclusive

    # from the records themselves
    records = api_records(aws_server.url, start=start, end=end)
    mine = [r for r in records if r["modelId"] == model]
    errors = [r for r in mine if r["status"] == "ERROR"]
    assert (len(mine), len(errors)) == (11, 3)
    figures = report["model"]
    assert figures["invocations"] == len(mine)
    assert figures["errors"] == len(errors)
    assert figures["errorRate"] == len(errors) / len(mine)
    assert close(figures["avgLatencyMs"], sum(r["latencyMs"] for r in mine) / len(mine))
    assert figures["inputTokens"] == sum(r["input"].get("inputTokenCount", 0) for r in mine)
    assert figures["outputTokens"] == sum(r["output"].get("outputTokenCount", 0) for r in mine)
    usage = {u["modelId"]: u for u in report["usageByModel"]}
    counts = {
        r["modelId"]: sum(1 for x in records if x["modelId"] == r["modelId"]) for r in records
    }
    assert {m: u["invocations"] for m, u in usage.items()} == counts
    assert {m: u["share"] for m, u in usage.items()} == {
        m: n / len(records) for m, n in counts.items()
    }
    invocations = [u["invocations"] for u in report["usageByModel"]]
    assert invocations == sorted(invocations, reverse=True)

    # from the performance report (its own SQL over the same records), p95 included
    query = urlencode({"format": "json", "start": start, "end": end})
    status, performance = call(aws_server.url, "GET", "/api/reports/performance?" + query)
    assert status == 200, performance
    rows = {row["model"]: row for row in table(performance, "models")}
    expected = rows[model]
    for name in ("invocations", "errors", "inputTokens", "outputTokens"):
        assert figures[name] == expected[name], name
    # the report rounds measurements and ratios (reports.values): so are ours, to compare
    for name, places in (("errorRate", RATIO_PLACES), ("avgLatencyMs", FLOAT_PLACES)):
        assert round(figures[name], places) == expected[name], name
    assert round(figures["p95LatencyMs"], FLOAT_PLACES) == expected["p95LatencyMs"]
    assert {
        m: (u["invocations"], u["inputTokens"], u["outputTokens"]) for m, u in usage.items()
    } == {m: (r["invocations"], r["inputTokens"], r["outputTokens"]) for m, r in rows.items()}


def table(report: dict[str, Any], name: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = report["tables"][name]["rows"]
    return rows


def test_an_unsafe_model_id_is_refused_before_any_call(aws_server: AwsServer) -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), "--endpoint-url", aws_server.url, "--model-id", 'x" or 1'],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2 and "--model-id" in done.stderr
