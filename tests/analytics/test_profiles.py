"""Application inference profiles: the service on memory and DuckDB state stores, Bedrock's
input rules, idempotency, paging, resolving for the gateway, and per-profile metrics."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from llmtrail.analytics.profile_metrics import profile_metrics
from llmtrail.analytics.profiles import (
    NAMESPACE,
    ProfileConflict,
    ProfileService,
    ResolvedProfile,
    new_profile_id,
)
from llmtrail.analytics.system_profiles import SYSTEM_PROFILES
from llmtrail.errors import NotFound, ValidationError
from llmtrail.model_ids import parse_model_id
from llmtrail.pricing.body_text import input_text, output_text
from llmtrail.store.duckdb import Database, DuckDBStateStore
from llmtrail.store.interfaces import StateStore
from llmtrail.store.memory import MemoryStateStore

T0 = datetime(2026, 11, 23, 10, 30, 15, 123000, tzinfo=UTC)
ACCOUNT = "123456789012"
REGION = "us-east-1"
HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
HAIKU_ARN = f"arn:aws:bedrock:us-west-2::foundation-model/{HAIKU}"


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def ids() -> Iterator[str]:
    n = 0
    while True:
        n += 1
        yield f"prof{n:08d}"


@pytest.fixture(params=["memory", "duckdb"])
def state(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateStore]:
    store: StateStore
    if request.param == "memory":
        store = MemoryStateStore()
    else:
        store = DuckDBStateStore(Database(tmp_path / "llmtrail.duckdb"))
    yield store
    store.close()


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


def service(
    state: StateStore, clock: Clock, model_known: Callable[[str], bool] | None = None
) -> ProfileService:
    gen = ids()
    return ProfileService(
        state,
        region=REGION,
        account_id=ACCOUNT,
        clock=clock,
        new_id=lambda: next(gen),
        model_known=model_known,
    )


@pytest.fixture
def profiles(clock: Clock) -> ProfileService:
    """On the in-memory store: for rules that do not depend on the backend."""
    return service(MemoryStateStore(), clock)


@pytest.fixture
def stored(state: StateStore, clock: Clock) -> ProfileService:
    """On every state store backend."""
    return service(state, clock)


APP_ARN = f"arn:aws:bedrock:{REGION}:{ACCOUNT}:application-inference-profile/prof00000001"


def test_create_and_get_in_bedrock_shape(stored: ProfileService) -> None:
    created = stored.create(
        "claims-prod",
        HAIKU_ARN,
        description="Claims team, production",
        tags={"dept": "claims", "env": "prod"},
    )
    assert created.arn == APP_ARN
    expected = {
        "inferenceProfileName": "claims-prod",
        "description": "Claims team, production",
        "createdAt": "2026-11-23T10:30:15.123Z",
        "updatedAt": "2026-11-23T10:30:15.123Z",
        "inferenceProfileArn": APP_ARN,
        "models": [{"modelArn": HAIKU_ARN}],
        "inferenceProfileId": "prof00000001",
        "status": "ACTIVE",
        "type": "APPLICATION",
    }
    assert stored.get("prof00000001").summary() == expected
    assert stored.get(APP_ARN).summary() == expected
    assert stored.tags(APP_ARN) == {"dept": "claims", "env": "prod"}
    # stored under its id in the "profiles" namespace, with what Bedrock does not return
    value = stored.state.get(NAMESPACE, "prof00000001")
    assert value is not None and value["copyFrom"] == HAIKU_ARN
    assert value["tags"] == [{"key": "dept", "value": "claims"}, {"key": "env", "value": "prod"}]


def test_profile_ids_look_like_bedrocks() -> None:
    made = {new_profile_id() for _ in range(50)}
    assert len(made) == 50
    assert all(len(i) == 12 and i.isalnum() and i == i.lower() for i in made)


def test_resolve_gives_the_model_and_the_record_stamp(stored: ProfileService) -> None:
    assert stored.resolve(APP_ARN) is None
    stored.create("claims", HAIKU_ARN, tags={"dept": "claims"})
    stored.create("demo", "sim/claude")
    by_arn = stored.resolve(APP_ARN)
    assert by_arn == ResolvedProfile(
        model_id=HAIKU,
        profile_id="prof00000001",
        arn=APP_ARN,
        name="claims",
        tags=(("dept", "claims"),),
    )
    assert stored.resolve("prof00000001") == by_arn
    stamp = by_arn.stamp()
    assert stamp == {"arn": APP_ARN, "name": "claims", "tags": {"dept": "claims"}}
    stamp["tags"]["dept"] = "changed"  # a stamp is the record's own copy
    assert by_arn.stamp()["tags"] == {"dept": "claims"}
    demo = stored.resolve("prof00000002")
    assert demo is not None and demo.model_id == "sim/claude"
    # model ids that are not application profiles resolve to nothing
    for other in (HAIKU, "us.anthropic.claude-3-haiku-20240307-v1:0", "gpt-4o", "claims"):
        assert stored.resolve(other) is None


def test_writes_refresh_the_resolve_index(stored: ProfileService) -> None:
    stored.create("claims", "sim/claude", tags={"dept": "claims"})
    assert stored.resolve("prof00000001") is not None
    stored.tag("prof00000001", {"dept": "fraud", "team": "a"})
    resolved = stored.resolve("prof00000001")
    assert resolved is not None and resolved.stamp()["tags"] == {"dept": "fraud", "team": "a"}
    stored.untag(APP_ARN, ["team", "absent"])
    resolved = stored.resolve(APP_ARN)
    assert resolved is not None and resolved.stamp()["tags"] == {"dept": "fraud"}
    stored.delete(APP_ARN)
    assert stored.resolve("prof00000001") is None
    assert stored.resolve(APP_ARN) is None
    with pytest.raises(NotFound):
        stored.get("prof00000001")


def test_another_replica_sees_writes_after_refresh(state: StateStore, clock: Clock) -> None:
    reader = ProfileService(state, region=REGION, account_id=ACCOUNT)
    assert reader.resolve("prof00000001") is None  # builds its index now
    service(state, clock).create("claims", "sim/claude")
    assert reader.resolve("prof00000001") is None  # still its old index
    reader.refresh()
    resolved = reader.resolve("prof00000001")
    assert resolved is not None and resolved.model_id == "sim/claude"


def test_profiles_survive_reopening_the_database(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "llmtrail.duckdb"
    store = DuckDBStateStore(Database(path))
    service(store, clock).create("claims", HAIKU_ARN, tags={"dept": "claims"})
    store.close()
    store = DuckDBStateStore(Database(path))
    try:
        again = ProfileService(store, region=REGION, account_id=ACCOUNT)
        resolved = again.resolve(APP_ARN)
        assert resolved is not None
        assert resolved.stamp() == {"arn": APP_ARN, "name": "claims", "tags": {"dept": "claims"}}
        assert again.get(APP_ARN).created_at == T0
    finally:
        store.close()


@pytest.mark.parametrize(
    ("copy_from", "model_id", "model_arns"),
    [
        (HAIKU, HAIKU, [f"arn:aws:bedrock:{REGION}::foundation-model/{HAIKU}"]),
        (HAIKU_ARN, HAIKU, [HAIKU_ARN]),
        (
            "us.anthropic.claude-3-haiku-20240307-v1:0",
            "us.anthropic.claude-3-haiku-20240307-v1:0",
            [
                f"arn:aws:bedrock:{r}::foundation-model/{HAIKU}"
                for r in ("us-east-1", "us-east-2", "us-west-2")
            ],
        ),
        (
            f"arn:aws:bedrock:us-east-1:{ACCOUNT}:inference-profile/eu.amazon.nova-lite-v1:0",
            "eu.amazon.nova-lite-v1:0",
            [
                f"arn:aws:bedrock:{r}::foundation-model/amazon.nova-lite-v1:0"
                for r in ("eu-central-1", "eu-west-1", "eu-west-3")
            ],
        ),
        (  # a geography llmtrail does not list: the foundation model in the profile's region
            "ca.anthropic.claude-3-haiku-20240307-v1:0",
            "ca.anthropic.claude-3-haiku-20240307-v1:0",
            [f"arn:aws:bedrock:{REGION}::foundation-model/{HAIKU}"],
        ),
        ("sim/claude", "sim/claude", [f"arn:aws:bedrock:{REGION}::foundation-model/sim/claude"]),
    ],
)
def test_copy_from_models_and_ids(
    profiles: ProfileService, copy_from: str, model_id: str, model_arns: list[str]
) -> None:
    created = profiles.create("p1", copy_from)
    assert created.model_id == model_id
    assert [m["modelArn"] for m in created.summary()["models"]] == model_arns
    resolved = profiles.resolve(created.arn)
    assert resolved is not None and resolved.model_id == model_id


def test_model_known_refuses_what_no_route_serves(state: StateStore, clock: Clock) -> None:
    profiles = service(state, clock, model_known=lambda m: m.startswith("sim/"))
    with pytest.raises(ValidationError) as err:
        profiles.create("p1", "gpt-4o")
    assert err.value.field == "modelSource.copyFrom" and "gpt-4o" in err.value.message
    assert profiles.create("p1", "sim/claude").model_id == "sim/claude"


@pytest.mark.parametrize(
    ("kwargs", "field", "says"),
    [
        ({"name": ""}, "inferenceProfileName", "1–64"),
        ({"name": "x" * 65}, "inferenceProfileName", "1–64"),
        ({"name": "a__b"}, "inferenceProfileName", "([0-9a-zA-Z][ _-]?)+"),
        ({"name": "-a"}, "inferenceProfileName", "([0-9a-zA-Z][ _-]?)+"),
        ({"name": "claims/prod"}, "inferenceProfileName", "([0-9a-zA-Z][ _-]?)+"),
        ({"name": 7}, "inferenceProfileName", "string"),
        ({"description": "d" * 201}, "description", "1–200"),
        ({"description": ""}, "description", "1–200"),
        ({"description": "line\nbreak"}, "description", "control"),
        ({"copy_from": ""}, "modelSource.copyFrom", "1–2048"),
        ({"copy_from": "has space"}, "modelSource.copyFrom", "without spaces"),
        (
            {"copy_from": APP_ARN},
            "modelSource.copyFrom",
            "application inference profile cannot be copied",
        ),
        (
            {"copy_from": "arn:aws:s3:::bucket/key"},
            "modelSource.copyFrom",
            "foundation model",
        ),
        ({"tags": {"": "v"}}, "tags[0].key", "1–128"),
        ({"tags": {"k" * 129: "v"}}, "tags[0].key", "1–128"),
        ({"tags": {"ok": "v", "aws:cost": "v"}}, "tags[1].key", "reserved"),
        ({"tags": {"dept": "a,b"}}, "tags[0].value", "character outside"),
        ({"tags": {"dept": "v" * 257}}, "tags[0].value", "at most 256"),
        ({"tags": {f"k{i}": "v" for i in range(51)}}, "tags", "at most 50"),
        ({"client_request_token": "-bad"}, "clientRequestToken", "letters, digits"),
        ({"client_request_token": "a" * 257}, "clientRequestToken", "1–256"),
    ],
)
def test_bad_input_names_the_field_and_the_limit(
    profiles: ProfileService, kwargs: dict[str, object], field: str, says: str
) -> None:
    args: dict[str, object] = {"name": "claims", "copy_from": HAIKU, **kwargs}
    with pytest.raises(ValidationError) as err:
        profiles.create(**args)  # type: ignore[arg-type]
    assert err.value.field == field
    assert says in err.value.message
    assert profiles.state.list(NAMESPACE) == {}


def test_valid_names_and_tags_are_kept(profiles: ProfileService) -> None:
    made = profiles.create(
        "Claims prod-2_a", HAIKU, tags={"cost center": "cc:42/a=b+c@d.e-f_g", "empty": ""}
    )
    assert made.name == "Claims prod-2_a"
    assert made.tag_map() == {"cost center": "cc:42/a=b+c@d.e-f_g", "empty": ""}


def test_duplicate_name_is_a_conflict(stored: ProfileService) -> None:
    stored.create("claims", HAIKU)
    with pytest.raises(ProfileConflict) as err:
        stored.create("claims", "sim/claude")
    assert err.value.field == "inferenceProfileName" and err.value.status == 409
    assert isinstance(err.value, ValidationError)
    assert len(stored.state.list(NAMESPACE)) == 1


def test_client_request_token_makes_create_idempotent(stored: ProfileService, clock: Clock) -> None:
    first = stored.create("claims", HAIKU, tags={"dept": "claims"}, client_request_token="t-1")
    clock.now += timedelta(minutes=5)
    again = stored.create("claims", HAIKU, tags={"dept": "claims"}, client_request_token="t-1")
    assert again == first
    assert len(stored.state.list(NAMESPACE)) == 1
    with pytest.raises(ProfileConflict) as err:
        stored.create("claims", HAIKU, tags={"dept": "fraud"}, client_request_token="t-1")
    assert err.value.field == "clientRequestToken"
    other = stored.create("fraud", HAIKU, client_request_token="t-2")
    assert other.profile_id == "prof00000002"


def test_list_pages_application_profiles_oldest_first(stored: ProfileService, clock: Clock) -> None:
    for i in range(5):
        stored.create(f"p{i}", HAIKU)
        clock.now += timedelta(seconds=1)
    seen, token, pages = [], None, 0
    while True:
        page = stored.list("APPLICATION", 2, token)
        pages += 1
        seen += [p.name for p in page.profiles]
        token = page.next_token
        if token is None:
            break
    assert seen == ["p0", "p1", "p2", "p3", "p4"] and pages == 3
    body = stored.list("APPLICATION", 2).to_dict()
    assert [s["inferenceProfileName"] for s in body["inferenceProfileSummaries"]] == ["p0", "p1"]
    assert isinstance(body["nextToken"], str)
    assert "nextToken" not in stored.list("APPLICATION").to_dict()


def test_list_system_defined_and_both(profiles: ProfileService) -> None:
    profiles.create("claims", HAIKU)
    system = profiles.list("SYSTEM_DEFINED", 1000).profiles
    assert len(system) == len(SYSTEM_PROFILES) >= 24
    assert {p.type for p in system} == {"SYSTEM_DEFINED"}
    haiku = next(p for p in system if p.profile_id == "us.anthropic.claude-3-haiku-20240307-v1:0")
    assert haiku.summary() == {
        "inferenceProfileName": "US Anthropic Claude 3 Haiku",
        "description": "Routes requests to Anthropic Claude 3 Haiku in us-east-1, us-east-2, "
        "us-west-2.",
        "inferenceProfileArn": f"arn:aws:bedrock:{REGION}:{ACCOUNT}:inference-profile/"
        "us.anthropic.claude-3-haiku-20240307-v1:0",
        "models": [
            {"modelArn": f"arn:aws:bedrock:{r}::foundation-model/{HAIKU}"}
            for r in ("us-east-1", "us-east-2", "us-west-2")
        ],
        "inferenceProfileId": "us.anthropic.claude-3-haiku-20240307-v1:0",
        "status": "ACTIVE",
        "type": "SYSTEM_DEFINED",
    }
    both = profiles.list(max_results=1000).profiles
    assert both[0].name == "claims" and len(both) == len(system) + 1
    # paging across the two kinds loses and repeats nothing
    names, token = [], None
    while True:
        page = profiles.list(None, 7, token)
        names += [p.profile_id for p in page.profiles]
        if (token := page.next_token) is None:
            break
    assert names == [p.profile_id for p in both]


def test_system_defined_profiles_are_readable_not_writable(profiles: ProfileService) -> None:
    pid = "global.anthropic.claude-sonnet-4-20250514-v1:0"
    arn = f"arn:aws:bedrock:{REGION}:{ACCOUNT}:inference-profile/{pid}"
    assert profiles.get(pid).arn == arn
    assert profiles.get(arn).profile_id == pid
    assert profiles.tags(pid) == {}
    for write in (lambda: profiles.delete(pid), lambda: profiles.tag(arn, {"a": "b"})):
        with pytest.raises(ValidationError) as err:
            write()
        assert err.value.field == "inferenceProfileIdentifier"
        assert "system-defined" in err.value.message
    assert profiles.resolve(pid) is None  # the route table serves it, not a profile


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda p: p.list("BOTH"), "typeEquals"),
        (lambda p: p.list(max_results=0), "maxResults"),
        (lambda p: p.list(max_results=1001), "maxResults"),
        (lambda p: p.list(next_token="not-a-token"), "nextToken"),
        (lambda p: p.get(""), "inferenceProfileIdentifier"),
        (lambda p: p.get("has space"), "inferenceProfileIdentifier"),
        (
            lambda p: p.get("arn:aws:bedrock:us-east-1:1:foundation-model/x"),
            "inferenceProfileIdentifier",
        ),
        (lambda p: p.untag("prof00000001", ["aws:x"]), "tagKeys[0]"),
    ],
)
def test_bad_list_and_lookup_arguments(profiles: ProfileService, call: object, field: str) -> None:
    profiles.create("claims", HAIKU)
    with pytest.raises(ValidationError) as err:
        call(profiles)  # type: ignore[operator]
    assert err.value.field == field


def test_unknown_profiles_are_not_found(profiles: ProfileService) -> None:
    profiles.create("claims", HAIKU)
    elsewhere = APP_ARN.replace(ACCOUNT, "999999999999")  # same id, another account
    for identifier in ("nosuchprofil", elsewhere, "us.nosuch.model-v1:0"):
        with pytest.raises(NotFound):
            profiles.get(identifier)
    with pytest.raises(NotFound):
        profiles.delete("nosuchprofil")
    with pytest.raises(NotFound):
        profiles.tag("nosuchprofil", {"a": "b"})


def test_tagging_keeps_at_most_50(profiles: ProfileService) -> None:
    profiles.create("claims", HAIKU, tags={f"k{i}": "v" for i in range(49)})
    assert len(profiles.tag("prof00000001", {"k0": "new", "k49": "v"})) == 50
    with pytest.raises(ValidationError) as err:
        profiles.tag("prof00000001", {"k50": "v"})
    assert err.value.field == "tags" and "at most 50" in err.value.message
    assert profiles.tags("prof00000001")["k0"] == "new"


def test_system_profiles_name_real_foundation_models() -> None:
    for pid, system in SYSTEM_PROFILES.items():
        ref = parse_model_id(pid)
        assert ref.kind == "inference-profile", pid
        assert ref.base_model_id == system.model_id and ref.family != "unknown", pid
        assert 1 <= len(system.model_arns()) <= 5
        assert len(system.name) <= 64


# -- metrics --------------------------------------------------------------------------------
def _record(arn: str | None, **extra: object) -> dict[str, object]:
    doc: dict[str, object] = {"requestId": "r", "timestamp": "2026-11-23T10:00:00Z", **extra}
    if arn is not None:
        doc["inferenceProfile"] = {"arn": arn, "name": "n", "tags": {}}
    return doc


def test_profile_metrics_over_records() -> None:
    other = APP_ARN.replace("prof00000001", "prof00000002")
    records = [
        _record(
            APP_ARN,
            latencyMs=100,
            status="OK",
            input={
                "inputTokenCount": 10,
                "inputBodyJson": {
                    "system": [{"text": "Be brief."}],  # 9
                    "messages": [{"role": "user", "content": [{"text": "Hello"}]}],  # 5
                },
            },
            output={
                "outputTokenCount": 4,
                "outputBodyJson": {
                    "output": {"message": {"content": [{"text": "Hi there"}]}}  # 8
                },
            },
        ),
        _record(
            APP_ARN,
            latencyMs=300,
            status="OK",
            input={
                "inputTokenCount": 7,
                "inputBodyJson": {
                    "model": "gpt-4o",
                    "messages": [
                        {"role": "system", "content": "You help."},  # 9
                        {"role": "user", "content": [{"type": "text", "text": "Sum"}]},  # 3
                    ],
                },
            },
            output={
                "outputTokenCount": 2,
                "outputBodyJson": {"choices": [{"message": {"content": "42"}}]},  # 2
            },
        ),
        _record(  # failed, no output body, no latency
            APP_ARN,
            status="ERROR",
            input={"inputTokenCount": 3, "inputBodyJson": {"prompt": "abc"}},  # 3
        ),
        _record(  # body offloaded: tokens count, characters cannot
            APP_ARN,
            latencyMs=50,
            status="OK",
            input={"inputTokenCount": 1, "inputBodyS3Path": "objects/x.json.gz"},
            output={"outputTokenCount": 1, "outputBodyS3Path": "objects/y.json.gz"},
        ),
        _record(
            other,
            latencyMs=20,
            input={"inputBodyJson": {"inputText": "titan"}},
            output={"outputBodyJson": {"results": [{"outputText": "out"}]}},
        ),
        _record(None, latencyMs=999, input={"inputTokenCount": 1000}),
    ]
    metrics = profile_metrics(records)
    assert set(metrics) == {APP_ARN, other}
    m = metrics[APP_ARN]
    assert m.to_dict() == {
        "inferenceProfileArn": APP_ARN,
        "invocationCount": 4,
        "errorCount": 1,
        "processingTimeMs": 450,
        "averageProcessingTimeMs": 150.0,
        "inputTokenCount": 21,
        "outputTokenCount": 7,
        "tokenCount": 28,
        "inputCharacterCount": 9 + 5 + 9 + 3 + 3,
        "outputCharacterCount": 8 + 2,
        "characterCount": 39,
        "recordsWithoutText": 1,
    }
    assert metrics[other].input_characters == 5 and metrics[other].output_characters == 3
    assert profile_metrics([]) == {}


@pytest.mark.parametrize(
    ("body", "text"),
    [
        (  # Anthropic Messages with a system block list and a tool result
            {
                "system": "S",
                "messages": [
                    {"role": "user", "content": "ab"},
                    {"role": "assistant", "content": [{"type": "tool_use", "input": {"x": 1}}]},
                ],
            },
            "Sab",
        ),
        ({"input": ["one", "two"], "model": "text-embedding-3-small"}, "onetwo"),
        ({"texts": ["a", "b"], "input_type": "search_document"}, "ab"),
        ({"message": "cohere"}, "cohere"),
        ("not a body", ""),
        ({"messages": "odd", "system": 5}, ""),
    ],
)
def test_input_text_by_shape(body: object, text: str) -> None:
    assert input_text(body) == text


@pytest.mark.parametrize(
    ("body", "text"),
    [
        ({"content": [{"type": "text", "text": "A"}, {"type": "tool_use", "id": "t"}]}, "A"),
        ({"choices": [{"text": "legacy"}, {"message": {"content": None}}]}, "legacy"),
        ({"generation": "llama"}, "llama"),
        ({"outputs": [{"text": "mistral"}]}, "mistral"),
        ({"completion": "claude v2"}, "claude v2"),
        ({"generations": [{"text": "c1"}, {"text": "c2"}]}, "c1c2"),
        ({"choices": "odd", "content": 3, "output": {"message": 1}}, ""),
    ],
)
def test_output_text_by_shape(body: object, text: str) -> None:
    assert output_text(body) == text
