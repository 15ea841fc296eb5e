"""Cost attribution end to end: a real ``llmtrail serve`` with the ``sim`` provider, the
official boto3 / openai / anthropic clients calling its gateway, and the ``llmtrail`` command
run as a user runs it (a subprocess talking to the server over HTTP).

Covers the issue's "how it is shown": application inference profiles with tags called through
the Bedrock and OpenAI routes and their cost grouped by tag; costs equal to hand-computed ones;
``prices set`` then ``cost recompute`` changing exactly the records after the override's date;
``prices missing``; reports from a few thousand records (JSON and CSV figures checked, the PDF
turned into PNG pages); a budget refusing gateway calls in each route's own error shape.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import random
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import anthropic
import boto3
import numpy as np
import openai
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from PIL import Image, ImageStat

from llmtrail.reports.pdf_output import ROWS_PER_PAGE
from tests.harness import ServerProcess

NANO = Decimal("0.000000001")
MILLION = Decimal(1_000_000)
SIM = {"input": Decimal("0.25"), "output": Decimal("1.25")}  # sim's default, USD per 1M
SIM_VERSION = "llmtrail:sim:default@2024-01-01"

CONFIG = """
region = "us-east-1"
account_id = "123456789012"

[providers.corp]
type = "openai"
base_url = "http://127.0.0.1:9/v1"   # never reached: calls to it are refused before forwarding

[[routes]]
match = "corp-*"
provider = "corp"

[[routes]]
match = "sim/*"
provider = "sim"
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, engine: str) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("cost-e2e")
    with ServerProcess(root / "data", config=CONFIG, engine=engine) as proc:
        yield proc


def llmtrail(
    server: ServerProcess, *args: str, ok: bool = True
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "llmtrail", *args, "--url", server.url],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "250"},
    )
    if ok:
        assert done.returncode == 0, done.stderr
    return done


def llmtrail_json(server: ServerProcess, *args: str) -> Any:
    return json.loads(llmtrail(server, *args, "--format", "json").stdout)


def bedrock(server: ServerProcess) -> Any:
    return boto3.client(
        "bedrock-runtime",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id="AKIAEXAMPLECALLER",
        aws_secret_access_key="not-checked",
        config=Config(retries={"max_attempts": 1}),
    )


def open_ai(server: ServerProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key="sk-test", max_retries=0)


def post_records(server: ServerProcess, docs: list[dict[str, Any]]) -> None:
    body = "\n".join(json.dumps(d) for d in docs).encode()
    request = urllib.request.Request(
        server.url + "/api/records",
        data=body,
        method="POST",
        headers={"content-type": "application/x-ndjson"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        assert json.loads(response.read())["stored"] == len(docs)
    server.settle()


def sim_cost(input_tokens: int, output_tokens: int) -> Decimal:
    """sim's price applied by hand: each part rounded half-even to a nanodollar."""
    parts = (
        (Decimal(input_tokens) * SIM["input"] / MILLION).quantize(NANO, ROUND_HALF_EVEN),
        (Decimal(output_tokens) * SIM["output"] / MILLION).quantize(NANO, ROUND_HALF_EVEN),
    )
    return sum(parts, Decimal(0))


def iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


# -- profiles, the gateway and attribution by tag ---------------------------------------------
def test_profile_flow_end_to_end(server: ServerProcess) -> None:
    claims = llmtrail_json(server, "profiles", "create", "--name", "claims-app", "--copy-from",
                           "sim/claims", "--tag", "dept=claims", "--tag", "team=intake",
                           "--description", "Claims intake")["inferenceProfileArn"]  # fmt: skip
    sales = llmtrail_json(server, "profiles", "create", "--name", "sales-app", "--copy-from",
                          "sim/sales", "--tag", "dept=sales")["inferenceProfileArn"]  # fmt: skip
    assert claims.startswith(
        "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/"
    )
    listed = llmtrail_json(server, "profiles", "list", "--type", "APPLICATION")
    assert {p["inferenceProfileName"] for p in listed} >= {
        "claims-app",
        "sales-app",
    }

    ids: dict[str, list[str]] = {"claims": [], "sales": []}
    with closing(bedrock(server)) as runtime:
        for text in ("first claim", "a second, longer claim about a broken window"):
            reply = runtime.converse(
                modelId=claims, messages=[{"role": "user", "content": [{"text": text}]}]
            )
            assert reply["stopReason"] == "end_turn"
            ids["claims"].append(reply["ResponseMetadata"]["RequestId"])
    with open_ai(server) as client:
        for model, dept in ((sales, "sales"), (sales, "sales"), (claims, "claims")):
            raw = client.chat.completions.with_raw_response.create(
                model=model, messages=[{"role": "user", "content": f"hello from {dept}"}]
            )
            assert raw.parse().choices[0].message.content
            ids[dept].append(raw.headers["x-llmtrail-request-id"])
    server.settle()

    records = {dept: [server.wait_for_record(i) for i in rids] for dept, rids in ids.items()}
    for dept, docs in records.items():
        for doc in docs:
            assert doc["inferenceProfile"]["tags"]["dept"] == dept
            assert doc["modelId"] in (claims, sales)
            tokens = (doc["input"]["inputTokenCount"], doc["output"]["outputTokenCount"])
            assert doc["cost"]["totalUsd"] == format(sim_cost(*tokens), "f")  # by hand
            assert doc["cost"]["priceVersion"] == SIM_VERSION

    by_tag = llmtrail_json(server, "cost", "--by", "inferenceProfile.tags.dept", "--since", "1d")
    totals: dict[str | None, Decimal] = {}
    calls: dict[str | None, int] = {}
    for result in by_tag["resultsByTime"]:
        for group in result["groups"]:
            key = group["keys"][0]
            totals[key] = totals.get(key, Decimal(0)) + Decimal(group["metrics"]["costUsd"])
            calls[key] = calls.get(key, 0) + group["metrics"]["calls"]
    for dept, docs in records.items():
        assert totals[dept] == sum(Decimal(d["cost"]["totalUsd"]) for d in docs)
        assert calls[dept] == len(docs)
    table = llmtrail(server, "cost", "--by", "inferenceProfile.tags.dept", "--since", "1d",
                     "--format", "csv").stdout  # fmt: skip
    rows = list(csv.DictReader(io.StringIO(table)))
    assert {r["inferenceProfile.tags.dept"] for r in rows} >= {"claims", "sales"}

    claims_id = claims.rsplit("/", 1)[1]
    shown = llmtrail_json(server, "profiles", "show", claims_id)
    metrics = shown["metrics"]
    docs = records["claims"]
    assert metrics["invocationCount"] == 3
    assert metrics["inputTokenCount"] == sum(d["input"]["inputTokenCount"] for d in docs)
    assert metrics["outputTokenCount"] == sum(d["output"]["outputTokenCount"] for d in docs)
    chars = sum(d["textCharacters"]["input"] + d["textCharacters"]["output"] for d in docs)
    assert metrics["characterCount"] == chars > 0
    assert Decimal(metrics["costUsd"]) == totals["claims"]
    assert {t["key"]: t["value"] for t in shown["tags"]} == {"dept": "claims", "team": "intake"}
    assert "claims-app" in llmtrail(server, "profiles", "show", claims_id).stdout  # the table

    tags = llmtrail_json(server, "profiles", "tag", claims_id, "owner=ops", "team=triage")
    assert tags["tags"] == [{"key": "dept", "value": "claims"}, {"key": "team", "value": "triage"},
                            {"key": "owner", "value": "ops"}]  # fmt: skip
    untagged = llmtrail_json(server, "profiles", "untag", claims_id, "owner", "team")
    assert untagged["tags"] == [{"key": "dept", "value": "claims"}]


def test_profile_of_a_model_whose_provider_speaks_another_format(server: ServerProcess) -> None:
    corp = llmtrail_json(server, "profiles", "create", "--name", "corp-app", "--copy-from",
                         "corp-model", "--tag", "dept=corp")["inferenceProfileArn"]  # fmt: skip
    with (
        anthropic.Anthropic(base_url=server.url, api_key="sk-test", max_retries=0) as client,
        pytest.raises(anthropic.BadRequestError) as refused,
    ):
        client.messages.create(
            model=corp, max_tokens=50, messages=[{"role": "user", "content": "hi"}]
        )
    body = refused.value.body
    assert isinstance(body, dict) and body["type"] == "error"
    assert body["error"]["type"] == "invalid_request_error"
    assert (
        "corp" in body["error"]["message"] and "anthropic wire format" in body["error"]["message"]
    )
    corp_id = corp.rsplit("/", 1)[1]
    llmtrail(server, "profiles", "delete", corp_id)
    gone = llmtrail(server, "profiles", "show", corp_id, ok=False)
    assert gone.returncode == 1 and "no inference profile" in gone.stderr


# -- prices and recompute ---------------------------------------------------------------------
def test_prices_set_then_recompute_changes_exactly_the_later_records(server: ServerProcess) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    tokens = {"e2e-rc-old": (4000, 1000), "e2e-rc-mid": (2500, 700), "e2e-rc-new": (9, 91)}
    when = {"e2e-rc-old": now - timedelta(days=20), "e2e-rc-mid": now - timedelta(days=8),
            "e2e-rc-new": now - timedelta(days=4)}  # fmt: skip
    docs: list[dict[str, Any]] = []
    for rid, (inp, out) in tokens.items():
        cost = sim_cost(inp, out)
        parts = [format((Decimal(inp) * SIM["input"] / MILLION).quantize(NANO), "f"),
                 format((Decimal(out) * SIM["output"] / MILLION).quantize(NANO), "f")]  # fmt: skip
        docs.append(
            {
                "timestamp": iso(when[rid]),
                "requestId": rid,
                "operation": "Converse",
                "modelId": "sim/e2e-recompute",
                "resolvedModelId": "e2e-recompute",
                "provider": "sim",
                "input": {"inputTokenCount": inp},
                "output": {"outputTokenCount": out},
                "cost": {
                    "inputUsd": parts[0],
                    "outputUsd": parts[1],
                    "cacheReadUsd": "0",
                    "cacheWriteUsd": "0",
                    "otherUsd": "0",
                    "totalUsd": format(cost, "f"),
                    "priceVersion": SIM_VERSION,
                },
            }
        )
    for i in range(2):
        docs.append(
            {
                "timestamp": iso(now - timedelta(days=6, hours=i)),
                "requestId": f"e2e-mystery-{i}",
                "modelId": "mystery-llm-7",
                "provider": "acme-ai",
                "input": {"inputTokenCount": 10},
                "output": {"outputTokenCount": 10},
            }
        )
    post_records(server, docs)
    window = ("--start", iso(now - timedelta(days=21)), "--end", iso(now - timedelta(days=1)))

    missing = llmtrail_json(server, "prices", "missing", "--since", "30d")
    assert [(m["provider"], m["modelId"], m["count"]) for m in missing] == [
        ("acme-ai", "mystery-llm-7", 2)
    ]
    assert "mystery-llm-7" in llmtrail(server, "prices", "missing", "--since", "30d").stdout

    first = llmtrail_json(server, "cost", "recompute", *window)
    # the stored costs are what the table gives; the unpriced records got their reason at
    # ingest, so nothing changes
    assert (first["records"], first["changed"], first["counts"]) == (5, 0, {})
    assert server.get("/api/records/e2e-mystery-0")["cost"] == {"reason": "no_price"}

    effective = (now - timedelta(days=10)).date().isoformat()
    made = llmtrail_json(server, "prices", "set", "--provider", "sim", "--model", "e2e-recompute",
                         "--input", "3", "--output", "15", "--cache-read", "0.3",
                         "--effective-from", effective)  # fmt: skip
    override_id = made["override"]["id"]
    shown = llmtrail_json(server, "prices", "show", "sim/e2e-recompute")
    assert shown["current"]["version"] == f"override:{override_id}"
    assert (
        f"override:{override_id}"
        in llmtrail(server, "prices", "list", "--source", "override").stdout
    )

    done = llmtrail_json(server, "cost", "recompute", *window)
    assert (done["changed"], done["updated"], done["counts"]) == (2, 2, {"repriced": 2})
    assert {c["requestId"] for c in done["changes"]} == {"e2e-rc-mid", "e2e-rc-new"}
    for rid in ("e2e-rc-mid", "e2e-rc-new"):
        inp, out = tokens[rid]
        expected = Decimal(inp) * 3 / MILLION + Decimal(out) * 15 / MILLION
        cost = server.get(f"/api/records/{rid}")["cost"]
        assert (Decimal(cost["totalUsd"]), cost["priceVersion"]) == (
            expected,
            f"override:{override_id}",
        )
    old = server.get("/api/records/e2e-rc-old")["cost"]
    assert (Decimal(old["totalUsd"]), old["priceVersion"]) == (
        sim_cost(*tokens["e2e-rc-old"]),
        SIM_VERSION,
    )
    summary = llmtrail(server, "cost", "recompute", *window).stdout  # the table: nothing left
    assert summary.splitlines()[1].split()[:4] == ["5", "0", "5", "0"]

    llmtrail(server, "prices", "delete", override_id)
    back = llmtrail_json(server, "cost", "recompute", *window)
    assert (back["changed"], back["updated"]) == (2, 2)
    assert Decimal(server.get("/api/records/e2e-rc-new")["cost"]["totalUsd"]) == sim_cost(
        *tokens["e2e-rc-new"]
    )
    bad = llmtrail(
        server, "prices", "set", "--provider", "sim", "--model", "x", "--input", "-1", ok=False
    )
    assert bad.returncode == 1 and "prices.input_mtok" in bad.stderr


# -- reports ----------------------------------------------------------------------------------
REPORT_START, REPORT_END = "2025-05-01", "2025-07-01"


def report_records(count: int = 2400) -> list[dict[str, Any]]:
    """Deterministic sim records over May and June 2025, costs filled by hand."""
    rng = random.Random(11)
    first = datetime(2025, 5, 1, tzinfo=UTC)
    docs = []
    for n in range(count):
        ts = first + timedelta(seconds=rng.randrange(61 * 86400))
        ok = rng.random() > 0.08
        inp, out = rng.randint(5, 3000), (rng.randint(1, 1200) if ok else 0)
        tenant = rng.choice(("acme", "globex", "initech", None))
        doc: dict[str, Any] = {
            "timestamp": iso(ts),
            "requestId": f"e2e-report-{n:05d}",
            "operation": "ChatCompletions",
            "modelId": rng.choice(("sim/fast", "sim/smart", "sim/tiny")),
            "provider": "sim",
            "requestMetadata": {"tenant_id": tenant} if tenant else {"application_name": "r"},
            "input": {"inputTokenCount": inp},
            "output": {"outputTokenCount": out},
            "latencyMs": rng.randint(50, 4000),
            "status": "OK" if ok else "ERROR",
            "cost": {"totalUsd": format(sim_cost(inp, out), "f"), "priceVersion": SIM_VERSION},
        }
        if not ok:
            doc["errorCode"] = "ThrottlingException"
            doc["error"] = {"type": "ThrottlingException", "httpStatus": 429}
        docs.append(doc)
    return docs


@pytest.fixture(scope="module")
def reported(server: ServerProcess) -> list[dict[str, Any]]:
    docs = report_records()
    post_records(server, docs)
    return docs


def _colored_share(image: Image.Image) -> float:
    rgb = np.asarray(image.convert("RGB"), dtype=np.int16)
    return float(((rgb.max(axis=2) - rgb.min(axis=2)) > 60).mean())


def test_cost_and_chargeback_reports_add_up(
    server: ServerProcess, reported: list[dict[str, Any]], tmp_path: Path
) -> None:
    window = ("--start", REPORT_START, "--end", REPORT_END)
    out = tmp_path / "cost.json"
    llmtrail(server, "report", "cost", *window, "--format", "json", "--output", str(out))
    document = json.loads(out.read_text())
    total = sum(Decimal(d["cost"]["totalUsd"]) for d in reported)
    assert (Decimal(document["summary"]["totalUsd"]), document["summary"]["invocations"]) == (
        total,
        len(reported),
    )
    by_model = {r["model"]: Decimal(r["totalUsd"]) for r in document["tables"]["models"]["rows"]}
    for model in ("sim/fast", "sim/smart", "sim/tiny"):
        assert by_model[model] == sum(
            Decimal(d["cost"]["totalUsd"]) for d in reported if d["modelId"] == model
        )

    statement = llmtrail(server, "report", "chargeback", *window, "--format", "csv").stdout
    lines = list(csv.DictReader(io.StringIO(statement)))
    expected: dict[tuple[str, str], list[Any]] = {}
    for d in reported:
        key = (d["timestamp"][:7], d["requestMetadata"].get("tenant_id", ""))
        sums = expected.setdefault(key, [0, Decimal(0)])
        sums[0] += 1
        sums[1] += Decimal(d["cost"]["totalUsd"])
    got = {(r["month"], r["tenant"]): [int(r["requests"]), Decimal(r["costUsd"])] for r in lines}
    assert got == expected

    performance = json.loads(llmtrail(server, "report", "performance", *window).stdout)
    errors = sum(1 for d in reported if d["status"] == "ERROR")
    assert (performance["summary"]["invocations"], performance["summary"]["errors"]) == (
        len(reported),
        errors,
    )
    assert performance["summary"]["errorRate"] == pytest.approx(errors / len(reported), abs=1e-3)

    to_stdout = subprocess.run(
        [
            sys.executable,
            "-m",
            "llmtrail",
            "report",
            "cost",
            *window,
            "--format",
            "pdf",
            "--url",
            server.url,
        ],
        capture_output=True,
        timeout=120,
    )
    assert to_stdout.returncode == 0 and to_stdout.stdout.startswith(b"%PDF-")


def test_performance_pdf_has_pages_and_charts(
    server: ServerProcess, reported: list[dict[str, Any]], tmp_path: Path
) -> None:
    pdftoppm = shutil.which("pdftoppm")
    if pdftoppm is None:
        pytest.fail("pdftoppm is missing: install Debian's poppler-utils")
    window = ("--start", REPORT_START, "--end", REPORT_END)
    pdf = tmp_path / "performance.pdf"
    written = llmtrail(server, "report", "performance", *window, "--format", "pdf", "-o", str(pdf))
    assert str(pdf) in written.stdout and pdf.read_bytes().startswith(b"%PDF-")
    subprocess.run([pdftoppm, "-r", "30", "-png", str(pdf), str(tmp_path / "page")], check=True)
    pages = sorted(tmp_path.glob("page-*.png"))
    document = json.loads(llmtrail(server, "report", "performance", *window).stdout)
    table_pages = sum(
        max(1, math.ceil(len(t["rows"]) / ROWS_PER_PAGE)) for t in document["tables"].values()
    )
    charts = len(pages) - 1 - table_pages
    assert charts >= 2, (len(pages), table_pages)
    for page in pages:
        with Image.open(page) as image:
            assert ImageStat.Stat(image.convert("L")).stddev[0] > 5, page.name  # not blank
    for page in pages[-charts:]:
        with Image.open(page) as image:
            assert _colored_share(image) > 0.005, page.name  # bars and lines drawn


# -- budgets ----------------------------------------------------------------------------------
def test_budget_refuses_calls_once_spent(server: ServerProcess) -> None:
    made = llmtrail_json(server, "budgets", "set", "--dimension", "requestMetadata.tenant_id",
                         "--value", "e2e-broke", "--limit", "0.000001", "--refuse")  # fmt: skip
    name = made["name"]
    assert (name, made["action"], made["exceeded"]) == (
        "requestMetadata.tenant_id=e2e-broke",
        "refuse",
        False,
    )
    broke = {"tenant_id": "e2e-broke"}
    with open_ai(server) as client:
        first = client.chat.completions.with_raw_response.create(
            model="sim/budget", messages=[{"role": "user", "content": "hi"}], metadata=broke
        )
        paid_id = first.headers["x-llmtrail-request-id"]
        # the recorder process prices the call and tells the serving process, a moment later
        deadline = time.monotonic() + 10
        while not {b["name"]: b for b in llmtrail_json(server, "budgets")}[name]["refusing"]:
            assert time.monotonic() < deadline, "the budget never learned the call's cost"
            time.sleep(0.05)
        with pytest.raises(openai.RateLimitError) as refused:
            client.chat.completions.create(
                model="sim/budget", messages=[{"role": "user", "content": "again"}], metadata=broke
            )
    error = refused.value.body
    assert isinstance(error, dict) and error["code"] == "budget_exceeded"
    assert name in error["message"]
    with closing(bedrock(server)) as runtime, pytest.raises(ClientError) as throttled:
        runtime.converse(
            modelId="sim/budget",
            messages=[{"role": "user", "content": [{"text": "hi"}]}],
            requestMetadata=broke,
        )
    assert throttled.value.response["Error"]["Code"] == "ThrottlingException"
    assert throttled.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert name in throttled.value.response["Error"]["Message"]

    server.settle()
    paid = server.wait_for_record(paid_id)["cost"]["totalUsd"]
    state = {b["name"]: b for b in llmtrail_json(server, "budgets")}[name]
    assert (Decimal(state["spentUsd"]), state["exceeded"], state["refusing"]) == (
        Decimal(paid),
        True,
        True,
    )
    assert state["percentUsed"] == float(Decimal(paid) * 100 / Decimal("0.000001"))
    assert name in llmtrail(server, "budgets", "list").stdout

    llmtrail(server, "budgets", "delete", name)
    with open_ai(server) as client:
        again = client.chat.completions.create(
            model="sim/budget", messages=[{"role": "user", "content": "back"}], metadata=broke
        )
    assert again.choices[0].message.content
    assert llmtrail_json(server, "budgets") == []
