"""An idle server holds none of the heavy modules; each loads when first needed.

A fresh interpreter builds the server as ``llmtrail serve`` does (its command line parsed,
``llmtrail.server.serve`` imported, the runtime opened on a DuckDB data directory, the app
built and served over HTTP) but starts the runtime with ``warm=False``, so that the tokenizer
and the price table are not loaded on purpose. At rest, none of `HEAVY` may be loaded; then
each step asks for what one of them is for (a page with a chart, a protobuf OTLP request, an
AWS-shaped request in JSON and in CBOR, a price, a PDF and an HTML report, a stored record,
an AWS-style key, a token count) and the module must be loaded after it, so the test fails
both when a module loads too early and when a step no longer needs it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# What an idle server must not hold, and the step that loads each (`STEPS` below).
HEAVY = {
    "jinja2": "page",
    "opentelemetry.proto": "otlp",
    "google.protobuf": "otlp",
    "botocore": "aws_json",
    "cbor2": "aws_cbor",
    "genai_prices": "price",
    "matplotlib": "pdf_report",
    "plotly": "html_report",
    "pyarrow": "store",
    "pyarrow.parquet": None,  # the archive's; no step here writes one
    "numpy": "store",
    "pandas": None,  # nothing llmtrail does needs it; pyarrow imports it on a list conversion
    "cryptography": "aws_key",
    "bpe_openai": "count_tokens",
    "chdb": None,  # the ClickHouse engines: only when the store URL names one
    "clickhouse_connect": None,
    "rich": None,  # the CLI's tables and progress bars
}

SCRIPT = r"""
import json, sys, time, urllib.error, urllib.request
from pathlib import Path

data_dir, heavy = sys.argv[1], json.loads(sys.argv[2])

from llmtrail.cli import build_parser

build_parser().parse_args(["serve", "--data-dir", data_dir, "--port", "0"])
import llmtrail.server.serve  # what `llmtrail serve` runs: uvicorn, the app, the runtime
from llmtrail.config import load_settings
from llmtrail.server.app import create_app
from llmtrail.server.runtime import Runtime
from tests.served import Served


def loaded():
    return sorted(m for m in heavy if m in sys.modules)


def call(method, path, body=None, headers=None):
    request = urllib.request.Request(
        served.url + path, data=body, method=method, headers=headers or {}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


settings = load_settings(None, overrides={"data_dir": Path(data_dir), "port": 0})
runtime = Runtime(settings, recorder=settings.server.recorder_process)  # as `serve` does
app = create_app(runtime, lifespan=False, access=True)
runtime.start(warm=False)
out = {}
try:
    with Served(app) as served:
        assert call("GET", "/readyz")[0] == 200
        out["rest"] = loaded()
        steps = {}

        def step(name, status, body=b""):
            head = body[:300].decode("latin-1")
            steps[name] = {"status": status, "head": head, "loaded": loaded()}

        status, body = call("GET", "/")
        step("page", status, b"plotly.min.js" if b"plotly.min.js" in body else body)
        step("otlp", *call("POST", "/v1/traces", b"", {"content-type": "application/x-protobuf"}))
        step("aws_json", *call("POST", "/", b"{}", {
            "x-amz-target": "Logs_20140328.DescribeLogGroups",
            "content-type": "application/x-amz-json-1.1",
        }))
        step("aws_cbor", *call(
            "POST", "/service/GraniteServiceVersion20100801/operation/ListMetrics", b"\xa0",
            {"content-type": "application/cbor", "smithy-protocol": "rpc-v2-cbor"},
        ))
        step("price", *call("GET", "/api/prices/openai/gpt-4o"))
        step("pdf_report", *call("GET", "/api/reports/cost?format=pdf&since=1d"))
        step("html_report", *call("GET", "/api/reports/cost?format=html&since=1d"))
        record = {"timestamp": "2026-11-23T10:00:00.000Z", "requestId": "rest-1", "modelId": "m"}
        body = json.dumps([record]).encode()
        status, _ = call("POST", "/api/records", body, {"content-type": "application/json"})
        deadline = time.monotonic() + 60
        while b"rest-1" not in call("GET", "/api/records?limit=10")[1]:
            assert time.monotonic() < deadline, "the record was never stored"
            time.sleep(0.05)
        step("store", status)
        body = json.dumps({"role": "admin", "aws": True}).encode()
        step("aws_key", *call("POST", "/api/keys", body, {"content-type": "application/json"}))
    from llmtrail.capture.tokens import count_tokens

    assert count_tokens("hello there") > 0
    step("count_tokens", 200)
    out["steps"] = steps
finally:
    runtime.close()
print(json.dumps(out))
"""


def test_idle_server_holds_no_heavy_module_and_each_loads_when_needed(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "data"), json.dumps(sorted(HEAVY))],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["rest"] == [], f"loaded by an idle server: {out['rest']}"
    steps = out["steps"]
    for name, step in steps.items():
        assert step["status"] in (200, 201), (name, step)
    assert steps["page"]["head"] == "plotly.min.js"  # the page's chart script is there
    assert steps["pdf_report"]["head"].startswith("%PDF")
    assert steps["html_report"]["head"].lower().startswith("<!doctype")
    for module, name in HEAVY.items():
        if name is None:
            assert all(module not in s["loaded"] for s in steps.values()), module
        else:
            assert module in steps[name]["loaded"], f"{name} did not load {module}"


def test_our_rest_json_roots_are_the_models_own() -> None:
    """`REST_ROOTS` tells the AWS router's rest-json paths apart before botocore's models
    are loaded; it must be what the models say of our operations."""
    from llmtrail.server.aws.router import REST_ROOTS, REST_SERVICE, AwsRouter, load_operations

    ours = [
        key
        for key, op in load_operations().items()
        if key[0] == REST_SERVICE and op.handler.__module__.startswith("llmtrail.")
    ]
    assert ours
    assert AwsRouter.model_roots(ours) == REST_ROOTS
