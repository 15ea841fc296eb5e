"""Compiled queries run on a real DuckDB store; every result is computed again in Python
from the records themselves."""

from __future__ import annotations

import json
import re
import statistics
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from llmtrail.query import QueryError
from tests.query.conftest import Loaded
from tests.query.corpus import (
    END,
    START,
    WIDE_END,
    WIDE_START,
    get,
    in_range,
    interpolated_percentile,
    newest_first,
)


def selected(loaded: Loaded, start: datetime = START, end: datetime = END) -> list[Any]:
    return [r for r in loaded.records if in_range(r, start, end)]


def test_workspace_and_half_open_time_range(loaded: Loaded) -> None:
    ids = loaded.column("fields @requestId")
    expected = [r.request_id for r in newest_first(selected(loaded))]
    assert ids == expected
    assert "gen-0001" in ids  # exactly at start: included
    assert "gen-0002" not in ids  # exactly at end: excluded
    assert "gen-0003" in ids
    other = loaded.column("fields @requestId", workspace="other")
    assert other and set(other).isdisjoint(ids)


def test_default_output_is_timestamp_and_message(loaded: Loaded) -> None:
    compiled = loaded.compile('filter @requestId = "gen-0010"')
    assert compiled.fields == ("@timestamp", "@message")
    ((stamp, message),) = loaded.rows('filter @requestId = "gen-0010"')
    record = next(r for r in loaded.records if r.request_id == "gen-0010")
    assert stamp == record.timestamp
    assert json.loads(message) == record.data


def test_tokens_by_application(loaded: Loaded) -> None:
    rows = loaded.rows(
        "stats sum(input.inputTokenCount + output.outputTokenCount) as tokens "
        "by requestMetadata.application_name"
    )
    totals: dict[str, int] = defaultdict(int)
    for r in selected(loaded):
        totals[get(r, "requestMetadata.application_name")] += get(r, "input.inputTokenCount") + get(
            r, "output.outputTokenCount"
        )
    assert rows == sorted(totals.items())


def test_errors_per_five_minutes(loaded: Loaded) -> None:
    compiled = loaded.compile('filter status = "ERROR" | stats count(*) by bin(5m)')
    assert compiled.fields == ("bin(5m)", "count(*)")
    assert compiled.kinds == ("timestamp", "int")
    rows = loaded.rows('filter status = "ERROR" | stats count(*) by bin(5m)')
    counts: Counter[datetime] = Counter()
    for r in selected(loaded):
        if r.data["status"] == "ERROR":
            ts = r.timestamp
            counts[
                ts
                - timedelta(minutes=ts.minute % 5, seconds=ts.second, microseconds=ts.microsecond)
            ] += 1
    assert rows == sorted(counts.items())


def test_latency_statistics_by_model(loaded: Loaded) -> None:
    rows = loaded.rows(
        "stats pct(latencyMs, 95) as p95, avg(latencyMs), stddev(latencyMs), min(latencyMs), "
        "max(latencyMs), count(latencyMs), count(*), count_distinct(requestMetadata.user_id) "
        "by modelId"
    )
    groups: dict[str, list[Any]] = defaultdict(list)
    for r in selected(loaded):
        groups[r.data["modelId"]].append(r)
    assert [row[0] for row in rows] == sorted(groups)
    for model, p95, avg, stddev, low, high, counted, total, users in rows:
        latencies = [r.data["latencyMs"] for r in groups[model] if "latencyMs" in r.data]
        assert p95 == pytest.approx(interpolated_percentile(latencies, 95))
        assert avg == pytest.approx(statistics.mean(latencies))
        assert stddev == pytest.approx(statistics.stdev(latencies))
        assert (low, high, counted, total) == (
            min(latencies),
            max(latencies),
            len(latencies),
            len(groups[model]),
        )
        assert users == len({get(r, "requestMetadata.user_id") for r in groups[model]} - {None})


def test_money_sums_exactly_as_decimal(loaded: Loaded) -> None:
    ((total,),) = loaded.rows("stats sum(cost.totalUsd)")
    expected = sum(Decimal(str(get(r, "cost.totalUsd"))) for r in selected(loaded))
    assert isinstance(total, Decimal)
    assert total == expected


def test_sort_and_limit_have_a_total_order(loaded: Loaded) -> None:
    rows = loaded.rows("fields @requestId, latencyMs | sort latencyMs desc | limit 40")
    present = [r for r in selected(loaded) if "latencyMs" in r.data]
    ties = sorted(present, key=lambda r: (r.data["latencyMs"], r.timestamp, r.record_id))
    expected = [(r.request_id, r.data["latencyMs"]) for r in reversed(ties)][:40]
    assert rows == expected
    ascending = loaded.rows("fields @requestId, latencyMs | sort latencyMs asc")
    assert ascending[-1][1] is None  # missing values sort last, both ways
    assert [row[1] for row in ascending if row[1] is not None] == sorted(
        r.data["latencyMs"] for r in present
    )


def test_paging_with_offset_concatenates_to_the_whole(loaded: Loaded) -> None:
    query = "fields @requestId | sort modelId"
    whole = loaded.column(query)
    pages = [loaded.column(query, limit=50, offset=o) for o in range(0, len(whole), 50)]
    assert [x for page in pages for x in page] == whole


def test_query_limit_and_caller_limit(loaded: Loaded) -> None:
    assert len(loaded.rows("fields @requestId | limit 7")) == 7
    assert len(loaded.rows("fields @requestId | limit 7", limit=3)) == 3


def test_filters_like_regex_in(loaded: Loaded) -> None:
    def ids(query: str) -> list[str]:
        return sorted(loaded.column(f"fields @requestId | {query}"))

    def expect(pred: Any) -> list[str]:
        return sorted(r.request_id for r in selected(loaded) if pred(r))

    model = lambda r: r.data["modelId"]  # noqa: E731
    assert ids('filter modelId like "nova"') == expect(lambda r: "nova" in model(r))
    assert ids("filter modelId like /^(gpt|llama)/") == expect(
        lambda r: re.match("^(gpt|llama)", model(r))
    )
    assert ids("filter modelId =~ /(?i)CLAUDE/") == expect(lambda r: "claude" in model(r))
    assert ids('filter modelId not like "nova"') == expect(lambda r: "nova" not in model(r))
    assert ids('filter modelId in ["llama3", "gpt-4o-mini"]') == expect(
        lambda r: model(r) in ("llama3", "gpt-4o-mini")
    )
    assert ids('filter modelId not in ["llama3"] and latencyMs >= 1500') == expect(
        lambda r: model(r) != "llama3" and r.data.get("latencyMs", 0) >= 1500
    )
    assert ids("filter not ispresent(latencyMs) or errorCode = 'ThrottlingException'") == expect(
        lambda r: "latencyMs" not in r.data or r.data.get("errorCode") == "ThrottlingException"
    )


def test_json_values_compare_as_numbers_with_numbers(loaded: Loaded) -> None:
    got = sorted(loaded.column("fields @requestId | filter custom.score > 6"))
    assert got == sorted(r.request_id for r in selected(loaded) if get(r, "custom.score") > 6)
    got = sorted(loaded.column('fields @requestId | filter custom.score = "7"'))
    assert got == sorted(r.request_id for r in selected(loaded) if get(r, "custom.score") == 7)


def test_metadata_promoted_or_not_reads_the_same(loaded: Loaded) -> None:
    rows = loaded.rows("stats count(*) by requestMetadata.tenant_id, requestMetadata.project")
    counts = Counter(
        (get(r, "requestMetadata.tenant_id"), get(r, "requestMetadata.project"))
        for r in selected(loaded)
    )
    assert rows == [(t, p, n) for (t, p), n in sorted(counts.items())]


def test_body_fields(loaded: Loaded) -> None:
    rows = loaded.rows("stats count(*) by output.outputBodyJson.stopReason")
    counts = Counter(get(r, "output.outputBodyJson.stopReason") for r in selected(loaded))
    assert rows == sorted(counts.items())
    got = loaded.column(
        "fields @requestId | filter input.inputBodyJson.messages.1.role = 'assistant'"
    )
    assert sorted(got) == sorted(
        r.request_id for r in selected(loaded) if len(get(r, "input.inputBodyJson.messages")) > 1
    )


def test_parse_glob_and_regex(loaded: Loaded) -> None:
    rows = loaded.rows(
        'parse custom.label "user=*, method:*" as user, method | stats count(*) by user, method'
    )
    counts = Counter(
        tuple(re.match(r"user=(.*?), method:(.*)", get(r, "custom.label")).groups())  # type: ignore[union-attr]
        for r in selected(loaded)
    )
    assert rows == [(u, m, n) for (u, m), n in sorted(counts.items())]
    rows = loaded.rows(
        r"parse modelId /^(?<vendor>[a-z]+)[.-](?<rest>.+)$/ | stats count(*) by vendor"
    )
    vendors = Counter(
        (m.group(1) if (m := re.match(r"^([a-z]+)[.-](.+)$", r.data["modelId"])) else None)
        for r in selected(loaded)
    )
    assert rows == sorted(vendors.items(), key=lambda kv: (kv[0] is None, kv[0] or ""))


def test_unnest_a_list_from_a_body(loaded: Loaded) -> None:
    rows = loaded.rows(
        "unnest input.inputBodyJson.messages into message | stats count(*) by message.role"
    )
    counts = Counter(
        m["role"] for r in selected(loaded) for m in get(r, "input.inputBodyJson.messages")
    )
    assert rows == sorted(counts.items())


def test_dedup_keeps_the_first_in_sort_order(loaded: Loaded) -> None:
    rows = loaded.rows("fields @requestId, modelId | sort latencyMs desc | dedup modelId")
    by_model: dict[str, list[Any]] = defaultdict(list)
    for r in selected(loaded):
        by_model[r.data["modelId"]].append(r)
    expected = []
    for model, records in by_model.items():
        # the highest latency; among equal ones the newest, then the highest record id
        first = max(
            (r for r in records if "latencyMs" in r.data),
            key=lambda r: (r.data["latencyMs"], r.timestamp, r.record_id),
        )
        expected.append((first.request_id, model))
    key = lambda row: (-by_model_latency(loaded, row[0]), row[0])  # noqa: E731
    assert sorted(rows, key=key) == sorted(expected, key=key)
    assert len(rows) == len(by_model)


def by_model_latency(loaded: Loaded, request_id: str) -> int:
    return next(r.data["latencyMs"] for r in loaded.records if r.request_id == request_id)


def test_dedup_keeps_records_missing_the_field(loaded: Loaded) -> None:
    rows = loaded.column("fields @requestId | dedup requestMetadata.user_id")
    users = {get(r, "requestMetadata.user_id") for r in selected(loaded)} - {None}
    missing = [r for r in selected(loaded) if get(r, "requestMetadata.user_id") is None]
    assert len(rows) == len(users) + len(missing)


def test_two_stats(loaded: Loaded) -> None:
    rows = loaded.rows(
        "stats count(*) as calls by requestMetadata.user_id, modelId "
        "| filter calls > 2 | stats count(*) as busy, sum(calls) as total by modelId"
    )
    pairs = Counter(
        (get(r, "requestMetadata.user_id"), r.data["modelId"]) for r in selected(loaded)
    )
    busy: dict[str, list[int]] = defaultdict(list)
    for (_, model), n in pairs.items():
        if n > 2:
            busy[model].append(n)
    assert rows == [(m, len(ns), sum(ns)) for m, ns in sorted(busy.items())]


def test_earliest_and_latest(loaded: Loaded) -> None:
    rows = loaded.rows("stats earliest(@requestId), latest(latencyMs) by modelId")
    by_model: dict[str, list[Any]] = defaultdict(list)
    for r in selected(loaded):
        by_model[r.data["modelId"]].append(r)
    expected = []
    for model, records in sorted(by_model.items()):
        first = min(records, key=lambda r: (r.timestamp, r.record_id))
        with_latency = [r for r in records if "latencyMs" in r.data]
        last = max(with_latency, key=lambda r: (r.timestamp, r.record_id))
        expected.append((model, first.request_id, last.data["latencyMs"]))
    assert rows == expected


def test_time_functions(loaded: Loaded) -> None:
    rows = loaded.rows("stats count(*) by bin(1mo)", start=WIDE_START, end=WIDE_END)
    months = Counter(
        r.timestamp.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        for r in loaded.records
        if r.workspace == "default"
    )
    assert rows == sorted(months.items())
    ((floor, ceil, millis, back),) = loaded.rows(
        'filter @requestId = "gen-0005" | fields datefloor(@timestamp, 1h), '
        "dateceil(@timestamp, 1h), toMillis(@timestamp), fromMillis(toMillis(@timestamp))"
    )
    record = next(r for r in loaded.records if r.request_id == "gen-0005")
    ts = record.timestamp
    assert floor == ts.replace(minute=0, second=0, microsecond=0)
    assert ceil == floor + timedelta(hours=1)
    assert millis == int(ts.timestamp() * 1000)
    assert back == ts
    ((week,),) = loaded.rows('filter @requestId = "gen-0005" | fields datefloor(@timestamp, 1w)')
    assert week.weekday() == 0 and week <= ts < week + timedelta(days=7)


def test_string_and_number_functions(loaded: Loaded) -> None:
    query = (
        'filter @requestId = "gen-0006" | fields strlen(modelId), toupper(modelId), '
        "tolower('AbC'), substr(modelId, 1, 3), substr(modelId, 2), concat(modelId, '/', "
        "missing), replace(modelId, 'a', 'A'), trim('  x  '), ltrim('xxyx', 'x'), "
        "rtrim('yxx', 'x'), isempty(missing), isblank('   '), strcontains(modelId, 'ma'), "
        "abs(-2.5), ceil(2.1), floor(latencyMs / 7), greatest(3, 9, 4), least(3, 9, 4), "
        "log(1), sqrt(-4), coalesce(missing, modelId), 10 / 0, 7 % 3, 2 ^ 3, -latencyMs"
    )
    (row,) = loaded.rows(query)
    record = next(r for r in loaded.records if r.request_id == "gen-0006")
    model, latency = record.data["modelId"], record.data["latencyMs"]
    assert row == (
        len(model),
        model.upper(),
        "abc",
        model[1:4],
        model[2:],
        model + "/",
        model.replace("a", "A"),
        "x",
        "yx",
        "y",
        1,
        1,
        int("ma" in model),
        2.5,
        3.0,
        float(latency // 7),
        9,
        3,
        0.0,
        None,
        model,
        None,
        1,
        8.0,
        -latency,
    )


def without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    return value


def test_message_is_the_record(loaded: Loaded) -> None:
    rows = loaded.rows("fields @requestId, @message | filter @message like 'Throttling'")
    expected = {
        r.request_id: without_nulls(r.data)  # DuckDB's merge-patch drops explicit nulls
        for r in selected(loaded)
        if r.data.get("errorCode") == "ThrottlingException"
    }
    assert len(expected) > 3
    assert {rid: json.loads(message) for rid, message in rows} == expected


def test_fields_after_stats_and_display(loaded: Loaded) -> None:
    compiled = loaded.compile(
        "stats sum(output.outputTokenCount) as out, count(*) as n by modelId "
        "| fields out / n as per_call | display modelId, per_call | sort per_call desc"
    )
    assert compiled.fields == ("modelId", "per_call")
    rows = loaded.rows(
        "stats sum(output.outputTokenCount) as out, count(*) as n by modelId "
        "| fields out / n as per_call | display modelId, per_call | sort per_call desc"
    )
    sums: dict[str, list[int]] = defaultdict(list)
    for r in selected(loaded):
        sums[r.data["modelId"]].append(get(r, "output.outputTokenCount"))
    expected = sorted(((m, sum(v) / len(v)) for m, v in sums.items()), key=lambda x: -x[1])
    assert [m for m, _ in rows] == [m for m, _ in expected]
    assert [v for _, v in rows] == pytest.approx([v for _, v in expected])


def test_sort_by_an_aggregate_by_its_text(loaded: Loaded) -> None:
    rows = loaded.rows("stats count(*) by modelId | sort count(*) desc | limit 1")
    counts = Counter(r.data["modelId"] for r in selected(loaded))
    top = max(counts.values())
    assert rows[0][1] == top


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("stats sum(modelId)", "sum() needs numbers, but modelId is a string"),
        ("fields modelId + 1", "modelId is a string, not a number"),
        ("filter sum(latencyMs) > 1", "sum() is an aggregate function: use it in stats"),
        ("stats latencyMs", "latencyMs must be inside an aggregate function"),
        ("stats count(*) by modelId | fields latencyMs", "latencyMs does not exist after stats"),
        ("stats count(*) as n | stats count(*) by bin(5m)", "bin() uses @timestamp"),
        ("fields @logStream", "unknown system field @logStream"),
        ("fields nosuch(x)", "unknown function nosuch()"),
        ("fields now()", "now() is not supported"),
        ("stats pct(latencyMs, 101)", "pct() needs a percentile from 0 to 100"),
        ("stats count(*) by bin(5parsecs)", "expected a time period"),
        ("fields a | dedup a | sort a", "only limit may follow dedup"),
        ("stats count(*) | stats count(*) | stats count(*)", "at most two stats"),
        ("filter modelId", "modelId is not a condition"),
        ("fields @timestamp + 1", "@timestamp is a timestamp, not a number"),
        ("unnest modelId into m", "unnest needs a list"),
    ],
)
def test_type_and_semantic_errors_point_at_the_node(
    loaded: Loaded, query: str, reason: str
) -> None:
    with pytest.raises(QueryError) as caught:
        loaded.compile(query)
    assert reason in caught.value.reason
    assert caught.value.field == "query"
    line = caught.value.message.splitlines()
    assert line[1] == "  " + query
    caret = line[2]
    assert set(caret.strip()) == {"^"}


def test_error_position_in_a_multiline_query(loaded: Loaded) -> None:
    query = "fields modelId\n| stats sum(modelId) by bin(1h)"
    with pytest.raises(QueryError) as caught:
        loaded.compile(query)
    error = caught.value
    assert (error.line, error.column) == (2, 13)
    assert error.message.splitlines()[1:] == [
        "  | stats sum(modelId) by bin(1h)",
        "              ^^^^^^^",
    ]


def test_naive_datetimes_are_utc(loaded: Loaded) -> None:
    naive = loaded.column(
        "fields @requestId", start=START.replace(tzinfo=None), end=END.replace(tzinfo=None)
    )
    assert naive == loaded.column("fields @requestId")
    shifted = START.astimezone(UTC)
    assert shifted == START
