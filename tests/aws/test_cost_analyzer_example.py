"""examples/aws/cost_analyzer.py, written for AWS, run unchanged against a real llmtrail with
only ``--endpoint-url``, over the shared server's traffic from the OpenAI, Anthropic and
Bedrock wire formats: every row of its table, its totals by service and by usage type, and its
total equal what llmtrail's own API says of the same records (``/api/records`` for each
record's cost and tokens, ``/api/cost`` for the total)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from tests.aws.conftest import ACCOUNT, REGION, AwsServer, run_example
from tests.aws.test_ce_expected import ZERO, Groups, grouped, items, records
from tests.harness import call

DAYS = 30
Table = dict[tuple[str, ...], tuple[Decimal, int]]


def analyzer(url: str) -> str:
    return run_example("cost_analyzer.py", url)


def section(text: str, header: str) -> Table:
    """The rows of the table whose header line starts with ``header``: the leading text
    cells as the key, then cost and quantity."""
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith(header))
    out: Table = {}
    for line in lines[at + 2 :]:
        if not line.strip():
            break
        cells = re.split(r"\s{2,}", line.strip())
        if header.startswith("Day"):
            cells = cells[:-1]  # the unit
        out[tuple(cells[:-2])] = (Decimal(cells[-2]), int(cells[-1]))
    return out


def sums(expected: Groups, position: int) -> Table:
    """The expected figures summed by one group key (0: service, 1: usage type)."""
    out: Table = {}
    for (_, keys), (cost, quantity) in expected.items():
        before = out.get((keys[position],), (ZERO, 0))
        out[(keys[position],)] = (before[0] + cost, before[1] + quantity)
    return out


def test_the_cost_analyzer_runs_unchanged_and_its_figures_are_llmtrails(
    aws_server: AwsServer,
) -> None:
    url = aws_server.url
    for _ in range(3):  # compare on a day and a set of records that did not change meanwhile
        today = datetime.now(UTC).date()
        start, end = str(today - timedelta(days=DAYS - 1)), str(today + timedelta(days=1))
        before = records(url, start, end)
        text = analyzer(url)
        after = records(url, start, end)
        same_day = datetime.now(UTC).date() == today
        if same_day and [r["requestId"] for r in before] == [r["requestId"] for r in after]:
            break
    else:
        raise AssertionError("the records kept changing while the analyzer ran")
    assert f"from {start} to {end}" in text
    # traffic from all three wire formats is in what it read
    assert {"ChatCompletions", "Messages", "Converse"} <= {r["operation"] for r in after}
    expected = grouped(
        items(after, account=ACCOUNT, region=REGION),
        lambda at: at.date().isoformat(),
        "SERVICE",
        "USAGE_TYPE",
    )
    daily = section(text, "Day ")
    assert daily == {(d, *keys): figures for (d, keys), figures in expected.items()}
    assert len(daily) >= 6  # three models, input and output tokens
    assert section(text, "Service ") == sums(expected, 0)
    assert section(text, "Usage type ") == sums(expected, 1)
    status, ours = call(url, "GET", f"/api/cost?granularity=MONTHLY&start={start}&end={end}")
    assert status == 200, ours
    total = sum(Decimal(r["total"]["costUsd"]) for r in ours["resultsByTime"])
    assert total > 0
    shown = re.search(r"^Total cost: (\S+) USD$", text, re.MULTILINE)
    assert shown is not None and Decimal(shown.group(1)) == total
    assert f"Estimated (not final yet): {today}" in text
