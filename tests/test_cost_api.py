"""The cost endpoints (`llmtrail.server.cost_api`) of the real app over a real runtime (DuckDB
file, spool, pipeline, price table), through Starlette's TestClient: answers checked against
figures computed here by hand, and bad input answered with problem JSON naming the field.

Every test ingests its own records (``POST /api/records``) in a time window of its own, so the
tests share one runtime without seeing each other's records.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Iterator
from datetime import timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any
from urllib.parse import quote

import pytest
from starlette.testclient import TestClient

from llmtrail.config import load_settings
from llmtrail.server.app import create_app
from llmtrail.server.runtime import Runtime
from tests.wall_clock import wait_out_month_end

# The runtime warms the tokenizer up, whose package uses a deprecated importlib.resources call.
pytestmark = pytest.mark.filterwarnings("ignore:open_binary is deprecated:DeprecationWarning")

NANO = Decimal("0.000000001")
MILLION = Decimal(1_000_000)
SIM_RATES = (Decimal("0.25"), Decimal("1.25"), Decimal("0.025"), Decimal("0.3125"))
SIM_VERSION = "llmtrail:sim:default@2024-01-01"


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    data = tmp_path_factory.mktemp("cost-api") / "data"
    rt = Runtime(load_settings(None, env={}, overrides={"data_dir": data}))
    rt.start()
    yield rt
    rt.close()


@pytest.fixture(scope="module")
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime, lifespan=False)) as c:
        yield c


def money(value: Decimal) -> str:
    return format(value.quantize(NANO, rounding=ROUND_HALF_EVEN), "f")


def cost_block(
    tokens: tuple[int, int, int, int], rates: tuple[Decimal, ...], version: str
) -> dict[str, str]:
    """The cost the price table must give: each part rounded, the total their sum."""
    parts = [
        (Decimal(n) * r / MILLION).quantize(NANO, ROUND_HALF_EVEN)
        for n, r in zip(tokens, rates, strict=True)
    ]
    keys = ("inputUsd", "outputUsd", "cacheReadUsd", "cacheWriteUsd")
    return {
        **{k: money(p) for k, p in zip(keys, parts, strict=True)},
        "otherUsd": "0.000000000",
        "totalUsd": money(sum(parts, Decimal(0))),
        "priceVersion": version,
    }


def record(
    request_id: str,
    ts: str,
    *,
    tokens: tuple[int, int, int, int] = (100, 50, 0, 0),
    model: str = "sim/api",
    provider: str = "sim",
    metadata: dict[str, str] | None = None,
    profile: dict[str, Any] | None = None,
    cost: dict[str, Any] | str | None = "sim",
    **extra: Any,
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schemaType": "ModelInvocationLog",
        "schemaVersion": "1.0",
        "timestamp": ts,
        "requestId": request_id,
        "operation": "Converse",
        "modelId": model,
        "resolvedModelId": model.removeprefix("sim/"),
        "provider": provider,
        "requestMetadata": metadata or {"application_name": "cost-api-test"},
        "input": {
            "inputTokenCount": tokens[0],
            "cacheReadInputTokenCount": tokens[2],
            "cacheWriteInputTokenCount": tokens[3],
        },
        "output": {"outputTokenCount": tokens[1]},
        "latencyMs": 100,
        "status": "OK",
        **extra,
    }
    if profile is not None:
        doc["inferenceProfile"] = profile
    if cost == "sim":
        doc["cost"] = cost_block(tokens, SIM_RATES, SIM_VERSION)
    elif cost is not None:
        doc["cost"] = cost
    return doc


def ingest(client: TestClient, runtime: Runtime, docs: list[dict[str, Any]]) -> None:
    body = "\n".join(json.dumps(d) for d in docs)
    answer = client.post(
        "/api/records", content=body, headers={"content-type": "application/x-ndjson"}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["stored"] == len(docs), answer.json()
    deadline = time.monotonic() + 30
    while True:  # acknowledged after the spool's fsync: wait until the store has them
        s = runtime.pipeline.stats()
        if s["queue_depth"] == 0 and s["stored"] >= s["spooled"] >= s["accepted"]:
            return
        assert time.monotonic() < deadline, s
        time.sleep(0.02)


def problem(answer: Any, status: int, field: str) -> str:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    body = answer.json()
    assert body.get("field", "") == field, body
    return str(body["detail"])


def stored_cost(client: TestClient, request_id: str) -> dict[str, Any]:
    answer = client.get(f"/api/records/{request_id}")
    assert answer.status_code == 200
    return dict(answer.json()["cost"])


# -- prices -----------------------------------------------------------------------------------
def test_prices_list_and_show(client: TestClient) -> None:
    listed = client.get("/api/prices", params={"provider": "sim"}).json()["prices"]
    assert {p["version"] for p in listed} == {SIM_VERSION, "llmtrail:sim:embed@2024-01-01"}
    shown = client.get("/api/prices/sim/sim/anything").json()
    assert shown["current"]["version"] == SIM_VERSION
    assert shown["current"]["prices"]["output_mtok"] == "1.25"
    assert client.get("/api/prices/-/sim/anything").json()["provider"] == "sim"
    detail = problem(client.get("/api/prices/acme/no-such-model"), 404, "")
    assert "no-such-model" in detail


def test_prices_missing_lists_unpriced_models(client: TestClient, runtime: Runtime) -> None:
    docs = [
        record(
            "missing-1",
            "2025-06-01T10:00:00Z",
            model="mystery-llm-7",
            provider="acme-ai",
            cost=None,
        ),
        record(
            "missing-2",
            "2025-06-02T11:30:00.250Z",
            model="mystery-llm-7",
            provider="acme-ai",
            cost=None,
        ),
        record("missing-3", "2025-06-02T12:00:00Z"),
    ]
    refused = record(
        "missing-4", "2025-06-02T13:00:00Z", model="never-ran", provider="x", cost=None
    )
    refused["input"], refused["output"] = {}, {}  # no usage: nothing a price could be missing for
    ingest(client, runtime, [*docs, refused])
    window = {"start": "2025-06-01", "end": "2025-06-03"}
    answer = client.get("/api/prices/missing", params=window).json()
    assert answer["modelsSeen"] == 2
    assert answer["missing"] == [
        {
            "provider": "acme-ai",
            "modelId": "mystery-llm-7",
            "resolvedModelId": "mystery-llm-7",
            "count": 2,
            "lastSeen": "2025-06-02T11:30:00.250Z",
        }
    ]
    outside = client.get("/api/prices/missing", params={"start": "2025-06-03", "end": "2025-06-04"})
    assert outside.json()["missing"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {
                "provider": "sim",
                "model": "x",
                "prices": {"input_mtok": "-1"},
                "effective_from": "2026-01-01",
            },
            "prices.input_mtok",
        ),
        (
            {
                "provider": "sim",
                "model": "x",
                "prices": {"input_mtok": "1"},
                "effective_from": "soon",
            },
            "effective_from",
        ),
        (
            {
                "provider": "sim",
                "model": "x",
                "prices": {"gold_mtok": "1"},
                "effective_from": "2026-01-01",
            },
            "prices.gold_mtok",
        ),
        (
            {
                "provider": "Sim Corp",
                "model": "x",
                "prices": {"input_mtok": "1"},
                "effective_from": "2026-01-01",
            },
            "provider",
        ),
        ({"provider": "sim", "model": "x", "effective_from": "2026-01-01"}, "prices"),
        (
            {
                "provider": "sim",
                "model": "x",
                "prices": {"input_mtok": "2000000"},
                "effective_from": "2026-01-01",
            },
            "prices.input_mtok",
        ),
        (
            {
                "provider": "sim",
                "model": "x",
                "prices": {"input_mtok": "1"},
                "effective_from": "2026-01-01",
                "colour": 1,
            },
            "colour",
        ),
    ],
)
def test_bad_overrides_name_the_field(client: TestClient, body: dict[str, Any], field: str) -> None:
    problem(client.put("/api/prices", json=body), 400, field)
    assert client.get("/api/prices", params={"source": "override"}).json()["prices"] == []


def test_bad_price_requests(client: TestClient) -> None:
    problem(client.put("/api/prices", content=b"{not json"), 400, "body")
    problem(client.put("/api/prices", content=b"x" * (65 * 1024)), 413, "body")
    problem(client.get("/api/prices", params={"source": "guess"}), 400, "source")
    problem(client.delete("/api/prices/sim/never@2026-01-01"), 404, "")


# -- recompute --------------------------------------------------------------------------------
def test_override_then_recompute_changes_exactly_the_later_records(
    client: TestClient, runtime: Runtime
) -> None:
    tokens = {"rc-1": (1000, 500, 0, 0), "rc-2": (2000, 300, 400, 100), "rc-3": (7, 3, 0, 0)}
    times = {
        "rc-1": "2025-03-10T12:00:00Z",
        "rc-2": "2025-03-15T00:00:00Z",
        "rc-3": "2025-04-02T08:00:00Z",
    }
    docs = [record(r, times[r], tokens=tokens[r], model="sim/recompute") for r in tokens]
    docs.append(record("rc-other", "2025-03-20T00:00:00Z", model="sim/unrelated"))
    ingest(client, runtime, docs)
    window = {"start": "2025-03-01", "end": "2025-05-01"}

    first = client.post("/api/cost/recompute", json=window).json()
    assert (first["records"], first["changed"], first["updated"]) == (4, 0, 0)  # hand = table

    override = {
        "provider": "sim",
        "model": "recompute",
        "prices": {"input_mtok": "2", "output_mtok": "4", "cache_read_mtok": "0.5"},
        "effective_from": "2025-03-15",
        "note": "negotiated",
    }
    made = client.put("/api/prices", json=override)
    assert made.status_code == 201 and made.json()["created"] is True
    override_id = made.json()["override"]["id"]
    assert override_id == "sim/recompute@2025-03-15"
    again = client.put("/api/prices", json=override)
    assert again.status_code == 200 and again.json()["created"] is False

    dry = client.post("/api/cost/recompute", json={**window, "dryRun": True}).json()
    assert (dry["changed"], dry["updated"]) == (2, 0)
    assert stored_cost(client, "rc-2") == cost_block(tokens["rc-2"], SIM_RATES, SIM_VERSION)

    done = client.post("/api/cost/recompute", json=window).json()
    assert (done["records"], done["changed"], done["updated"], done["counts"]) == (
        4,
        2,
        2,
        {"repriced": 2},
    )
    assert {c["requestId"] for c in done["changes"]} == {"rc-2", "rc-3"}
    version = f"override:{override_id}"
    # no cache-write price in the override: billed at its input price
    new_rates = (Decimal(2), Decimal(4), Decimal("0.5"), Decimal(2))
    for rid in ("rc-2", "rc-3"):
        assert stored_cost(client, rid) == cost_block(tokens[rid], new_rates, version)
    assert stored_cost(client, "rc-1") == cost_block(tokens["rc-1"], SIM_RATES, SIM_VERSION)
    old = sum(Decimal(cost_block(tokens[r], SIM_RATES, "")["totalUsd"]) for r in ("rc-2", "rc-3"))
    new = sum(Decimal(cost_block(tokens[r], new_rates, "")["totalUsd"]) for r in ("rc-2", "rc-3"))
    assert Decimal(done["deltaUsd"]) == new - old
    assert done["byModel"]["recompute"]["records"] == 2

    attributed = client.get("/api/cost", params={**window, "by": "modelId"}).json()
    model_total = sum(
        Decimal(g["metrics"]["costUsd"])
        for r in attributed["resultsByTime"]
        for g in r["groups"]
        if g["keys"] == ["sim/recompute"]
    )
    assert model_total == Decimal(cost_block(tokens["rc-1"], SIM_RATES, "")["totalUsd"]) + new

    assert client.delete(f"/api/prices/{override_id}").json() == {"deleted": override_id}
    back = client.post("/api/cost/recompute", json=window).json()
    assert (back["changed"], back["updated"]) == (2, 2)
    assert stored_cost(client, "rc-3") == cost_block(tokens["rc-3"], SIM_RATES, SIM_VERSION)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "start"),
        ({"start": "last week"}, "start"),
        ({"start": "2025-01-01", "end": "2024-01-01"}, "end"),
        ({"start": "2025-01-01", "dryRun": "yes"}, "dryRun"),
        ({"start": "2025-01-01", "model": "x"}, "model"),
    ],
)
def test_bad_recompute_requests(client: TestClient, body: dict[str, Any], field: str) -> None:
    problem(client.post("/api/cost/recompute", json=body), 400, field)


# -- attribution ------------------------------------------------------------------------------
ATTRIBUTION = [
    # (request id, time, tenant, project, dept, tokens)
    ("at-1", "2025-01-05T10:00:00Z", "acme", "alpha", "claims", (1000, 100, 0, 0)),
    ("at-2", "2025-01-20T10:00:00Z", "acme", "beta", "sales", (3000, 700, 50, 0)),
    ("at-3", "2025-01-31T23:30:00Z", "globex", "alpha", "claims", (10, 10, 0, 0)),
    ("at-4", "2025-02-01T03:00:00Z", "globex", None, None, (500, 500, 0, 20)),  # Jan 31 in NY
    ("at-5", "2025-02-14T10:00:00Z", "acme", "alpha", "claims", (2, 1, 0, 0)),
    ("at-6", "2025-02-27T10:00:00Z", None, "beta", "sales", (40, 40, 0, 0)),
]


@pytest.fixture(scope="module")
def attribution(client: TestClient, runtime: Runtime) -> dict[str, Decimal]:
    docs = []
    for rid, ts, tenant, project, dept, tokens in ATTRIBUTION:
        meta = {k: v for k, v in (("tenant_id", tenant), ("project", project)) if v}
        profile = {"arn": "arn:p", "name": "p", "tags": {"dept": dept}} if dept else None
        docs.append(record(rid, ts, tokens=tokens, metadata=meta, profile=profile))
    docs.append(
        record(
            "at-unpriced",
            "2025-02-10T00:00:00Z",
            model="m",
            provider="nobody",
            cost={"reason": "no_price"},
            metadata={"tenant_id": "acme"},
        )
    )
    ingest(client, runtime, docs)
    return {
        rid: Decimal(cost_block(tokens, SIM_RATES, "")["totalUsd"])
        for rid, *_, tokens in ATTRIBUTION
    }


def groups(answer: dict[str, Any]) -> dict[tuple[str, ...], dict[str, Any]]:
    return {
        (r["timePeriod"]["start"], *map(str, g["keys"])): g["metrics"]
        for r in answer["resultsByTime"]
        for g in r["groups"]
    }


def test_cost_by_tenant_per_month(client: TestClient, attribution: dict[str, Decimal]) -> None:
    params = {"by": "requestMetadata.tenant_id", "start": "2025-01-01", "end": "2025-03-01"}
    answer = client.get("/api/cost", params=params).json()
    assert answer["groupDefinitions"] == [{"type": "DIMENSION", "key": "requestMetadata.tenant_id"}]
    assert [r["timePeriod"] for r in answer["resultsByTime"]] == [
        {"start": "2025-01-01", "end": "2025-02-01"},
        {"start": "2025-02-01", "end": "2025-03-01"},
    ]
    got = groups(answer)
    c = attribution
    assert Decimal(got[("2025-01-01", "acme")]["costUsd"]) == c["at-1"] + c["at-2"]
    assert Decimal(got[("2025-01-01", "globex")]["costUsd"]) == c["at-3"]
    assert Decimal(got[("2025-02-01", "globex")]["costUsd"]) == c["at-4"]
    feb_acme = got[("2025-02-01", "acme")]
    assert (Decimal(feb_acme["costUsd"]), feb_acme["calls"], feb_acme["unpriced"]) == (
        c["at-5"],
        2,
        1,
    )
    assert got[("2025-02-01", "None")]["calls"] == 1
    assert got[("2025-01-01", "acme")]["inputTokens"] == 4000
    assert got[("2025-01-01", "acme")]["cacheReadTokens"] == 50
    assert Decimal(answer["total"]["costUsd"]) == sum(c.values())
    assert answer["total"]["calls"] == 7
    for result in answer["resultsByTime"]:  # each period's total is its groups' sum
        assert Decimal(result["total"]["costUsd"]) == sum(
            Decimal(g["metrics"]["costUsd"]) for g in result["groups"]
        )


def test_cost_by_tag_and_metadata_daily_in_a_time_zone(
    client: TestClient, attribution: dict[str, Decimal]
) -> None:
    params = {
        "by": ["inferenceProfile.tags.dept", "requestMetadata.project"],
        "granularity": "DAILY",
        "tz": "America/New_York",
        "start": "2025-01-31",
        "end": "2025-02-02",
    }
    answer = client.get("/api/cost", params=params).json()
    assert [r["timePeriod"]["start"] for r in answer["resultsByTime"]] == [
        "2025-01-31",
        "2025-02-01",
    ]
    got = groups(answer)
    # at-3 (23:30Z) and at-4 (03:00Z on Feb 1) both fall on January 31 in New York
    assert set(got) == {("2025-01-31", "claims", "alpha"), ("2025-01-31", "None", "None")}
    assert Decimal(got[("2025-01-31", "claims", "alpha")]["costUsd"]) == attribution["at-3"]
    assert Decimal(got[("2025-01-31", "None", "None")]["costUsd"]) == attribution["at-4"]
    assert answer["resultsByTime"][1]["groups"] == []
    assert answer["timePeriod"] == {
        "start": "2025-01-31T05:00:00.000Z",
        "end": "2025-02-02T05:00:00.000Z",
    }


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"by": "nonsense.path"}, "by"),
        ({"by": ["modelId", "provider", "operation"]}, "by"),
        ({"by": ["modelId", "modelId"]}, "by"),
        ({"granularity": "HOURLY"}, "granularity"),
        ({"tz": "Mars/Olympus_Mons"}, "tz"),
        ({"start": "2025-02-01", "end": "2025-01-01"}, "end"),
        ({"start": "yesterday"}, "start"),
        ({"start": "1990-01-01", "end": "2025-01-01", "granularity": "DAILY"}, "start"),
    ],
)
def test_bad_cost_queries_name_the_field(
    client: TestClient, params: dict[str, Any], field: str
) -> None:
    detail = problem(client.get("/api/cost", params=params), 400, field)
    if field == "by" and isinstance(params["by"], list) and len(params["by"]) == 3:
        assert "at most 2" in detail


# -- profiles ---------------------------------------------------------------------------------
def test_profile_metrics_from_the_records(client: TestClient, runtime: Runtime) -> None:
    created = client.post(
        "/api/profiles",
        json={
            "inferenceProfileName": "metrics-app",
            "modelSource": {"copyFrom": "sim/metrics"},
            "tags": [{"key": "dept", "value": "claims"}],
        },
    ).json()
    arn = created["inferenceProfileArn"]
    profile_id = arn.rsplit("/", 1)[1]
    stamp = {"arn": arn, "name": "metrics-app", "tags": {"dept": "claims"}}
    docs = [
        record(
            "pm-1",
            "2025-08-01T10:00:00Z",
            tokens=(10, 20, 5, 0),
            profile=stamp,
            textCharacters={"input": 40, "output": 90},
        ),
        record(
            "pm-2",
            "2025-08-02T10:00:00Z",
            tokens=(30, 0, 0, 0),
            profile=stamp,
            textCharacters={"input": 100},
            latencyMs=300,
            status="ERROR",
            cost={"reason": "no_price"},  # an import that says it has no price keeps that
        ),
        record("pm-3", "2025-08-03T10:00:00Z", tokens=(1, 1, 0, 0), profile=stamp),  # no text
        record("pm-4", "2025-08-03T11:00:00Z", tokens=(99, 99, 0, 0)),  # another profile: none
    ]
    ingest(client, runtime, docs)
    window = {"start": "2025-08-01", "end": "2025-09-01"}
    by_id = client.get(f"/api/profiles/{profile_id}/metrics", params=window).json()
    by_arn = client.get(f"/api/profiles/{quote(arn, safe='')}/metrics", params=window).json()
    assert by_id == by_arn
    assert by_id["profile"]["inferenceProfileName"] == "metrics-app"
    assert by_id["tags"] == [{"key": "dept", "value": "claims"}]
    m = by_id["metrics"]
    assert (m["invocationCount"], m["errorCount"]) == (3, 1)
    assert (m["processingTimeMs"], m["averageProcessingTimeMs"]) == (500, 500 / 3)
    assert (m["inputTokenCount"], m["outputTokenCount"], m["tokenCount"]) == (41, 21, 62)
    assert m["cacheReadInputTokenCount"] == 5
    assert (m["inputCharacterCount"], m["outputCharacterCount"], m["characterCount"]) == (
        140,
        90,
        230,
    )
    assert m["recordsWithoutText"] == 1  # pm-3; pm-2 failed, so it has no output to count
    expected = sum(
        Decimal(cost_block(t, SIM_RATES, "")["totalUsd"]) for t in ((10, 20, 5, 0), (1, 1, 0, 0))
    )
    assert (Decimal(m["costUsd"]), m["unpriced"]) == (expected, 1)
    # the /tags and plain routes of the profiles API still answer under the same prefix
    assert client.get(f"/api/profiles/{profile_id}/tags").json()["tags"] == by_id["tags"]
    assert client.get(f"/api/profiles/{profile_id}").json()["inferenceProfileArn"] == arn
    problem(client.get("/api/profiles/nosuchprofile/metrics"), 404, "")


# -- reports ----------------------------------------------------------------------------------
def test_reports_are_rendered_with_their_media_type(
    client: TestClient, attribution: dict[str, Decimal]
) -> None:
    window = {"start": "2025-01-01", "end": "2025-03-01"}
    as_csv = client.get("/api/reports/cost", params={**window, "format": "csv"})
    assert as_csv.headers["content-type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    by_model = {r["model"]: r for r in rows}
    assert Decimal(by_model["sim/api"]["totalUsd"]) == sum(attribution.values())
    assert by_model["m"]["unpriced"] == "1"
    statement = client.get(
        "/api/reports/chargeback",
        params={**window, "format": "json", "dimension": "requestMetadata.tenant_id"},
    )
    assert statement.headers["content-type"] == "application/json"
    lines = statement.json()["tables"]["statement"]["rows"]
    jan_acme = next(r for r in lines if r["month"] == "2025-01" and r["tenant"] == "acme")
    assert Decimal(jan_acme["costUsd"]) == attribution["at-1"] + attribution["at-2"]
    html = client.get("/api/reports/performance", params={**window, "format": "html"})
    assert html.headers["content-type"] == "text/html; charset=utf-8"
    assert (
        "<html" in html.text.lower()
        and 'filename="performance-report.html"' in html.headers["content-disposition"]
    )


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/api/reports/cost", {"format": "xml"}, "format"),
        ("/api/reports/weekly", {}, "report"),
        ("/api/reports/cost", {"dimension": "requestMetadata.tenant_id"}, "dimension"),
        ("/api/reports/cost", {"format": "json", "table": "models"}, "table"),
        ("/api/reports/cost", {"tz": "Nowhere/Special"}, "tz"),
        ("/api/reports/cost", {"start": "2025-13-01"}, "start"),
    ],
)
def test_bad_report_requests(
    client: TestClient, path: str, params: dict[str, str], field: str
) -> None:
    problem(client.get(path, params=params), 400, field)


# -- budgets ----------------------------------------------------------------------------------
def test_budgets_put_list_delete(client: TestClient, runtime: Runtime) -> None:
    wait_out_month_end(timedelta(seconds=30))  # this month's spend, read in this month
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    paid = cost_block((1, 1, 0, 0), SIM_RATES, "v")
    docs = [
        record("bu-1", now, metadata={"tenant_id": "budgeted"}, cost={**paid, "totalUsd": "1.5"}),
        record("bu-2", now, metadata={"tenant_id": "other"}, cost={**paid, "totalUsd": "9"}),
    ]
    ingest(client, runtime, docs)
    body = {"dimension": "requestMetadata.tenant_id", "value": "budgeted", "limitUsd": "3"}
    made = client.put("/api/budgets", json=body).json()
    assert (made["name"], made["action"], made["spentUsd"]) == (
        "requestMetadata.tenant_id=budgeted",
        "notify",
        "1.500000000",
    )
    assert (made["percentUsed"], made["exceeded"], made["refusing"]) == (50.0, False, False)
    assert Decimal(made["forecastUsd"]) >= Decimal("1.5")
    client.put("/api/budgets", json={**body, "limitUsd": "1", "action": "refuse", "name": "tight"})
    listed = {b["name"]: b for b in client.get("/api/budgets").json()["budgets"]}
    assert set(listed) == {"requestMetadata.tenant_id=budgeted", "tight"}
    assert (listed["tight"]["exceeded"], listed["tight"]["refusing"]) == (True, True)
    refusal = runtime.budget_guard.check({"requestMetadata": {"tenant_id": "budgeted"}})
    assert refusal is not None and refusal.budget == "tight"  # the guard was reseeded
    assert client.delete("/api/budgets/tight").json() == {"deleted": "tight"}
    assert runtime.budget_guard.check({"requestMetadata": {"tenant_id": "budgeted"}}) is None
    assert client.delete("/api/budgets/requestMetadata.tenant_id=budgeted").status_code == 200
    assert client.get("/api/budgets").json() == {"budgets": []}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"dimension": "requestMetadata.tenant_id", "value": "a", "limitUsd": "-5"}, "limitUsd"),
        (
            {"dimension": "requestMetadata.tenant_id", "value": "a", "limitUsd": "1.0000001"},
            "limitUsd",
        ),
        ({"dimension": "colour", "value": "a", "limitUsd": "1"}, "dimension"),
        ({"dimension": "modelId", "value": "", "limitUsd": "1"}, "value"),
        ({"dimension": "modelId", "value": "a", "limitUsd": "1", "action": "panic"}, "action"),
        (
            {"dimension": "modelId", "value": "a", "limitUsd": "1", "timezone": "Moon/Base"},
            "timezone",
        ),
        ({"dimension": "modelId", "value": "a", "limitUsd": "1", "owner": "me"}, "owner"),
    ],
)
def test_bad_budgets_name_the_field(client: TestClient, body: dict[str, Any], field: str) -> None:
    problem(client.put("/api/budgets", json=body), 400, field)
    problem(client.delete("/api/budgets/nobody"), 404, "")
