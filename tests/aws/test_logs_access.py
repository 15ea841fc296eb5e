"""The ``logs`` operations on a server with keys: boto3 signs with key pairs llmtrail issued,
and each key's workspace and role apply. A reader without ``bodies`` may list groups and run
queries that read no body, with the answers ``POST /api/query`` gives that key, and is refused
events, body queries and the results of another key's body query; every read is of the
caller's workspace; body reads are in the audit log; the log group is the one the
workspace's logging configuration names."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import openai
import pytest
from botocore.exceptions import ClientError

from tests.aws.conftest import aws_client
from tests.aws.test_logs_support import GROUP, STREAM, code, finished, rows_of
from tests.harness import ServerProcess
from tests.security.test_front_door import auth, call, create_key

CONFIG = 'account_id = "123456789012"\n[[routes]]\nmatch = "sim/*"\nprovider = "sim"\n'
KEYS = {
    "acme-admin": {"role": "admin", "workspace": "acme"},
    "acme-reader": {"role": "reader", "workspace": "acme"},
    "acme-bodies": {"role": "reader", "workspace": "acme", "bodies": True},
    "acme-gateway": {"role": "gateway", "workspace": "acme"},
    "default-bodies": {"role": "reader", "bodies": True},
}


class Keyed:
    """A server with an operator key, the keys above, and traffic in both workspaces."""

    def __init__(self, server: ServerProcess) -> None:
        self.url = server.url
        self.admin = str(create_key(self.url, None, role="admin")["key"])
        self.keys = {n: create_key(self.url, self.admin, aws=True, **s) for n, s in KEYS.items()}
        self.keys["admin"] = {"key": self.admin}
        self.ids = {
            "acme": self._traffic(str(self.keys["acme-gateway"]["key"]), "acme-admin", 4),
            "default": self._traffic(self.admin, "admin", 3),
        }

    def _traffic(self, gateway: str, reader: str, count: int) -> list[str]:
        with openai.OpenAI(base_url=self.url + "/v1", api_key=gateway, max_retries=0) as client:
            ids = [
                client.chat.completions.with_raw_response.create(
                    model="sim/fast", messages=[{"role": "user", "content": f"call {i}"}]
                ).headers["x-llmtrail-request-id"]
                for i in range(count)
            ]
        for request_id in ids:  # stored before the tests read
            deadline = time.monotonic() + 20
            while self.get(reader, f"/api/records/{request_id}")[0] != 200:
                assert time.monotonic() < deadline, request_id
                time.sleep(0.05)
        return ids

    def get(self, key: str, path: str) -> tuple[int, Any]:
        status, _, body = call(self.url + path, headers=auth(str(self.keys[key]["key"])))
        return status, json.loads(body or b"null")

    def send(self, key: str, method: str, path: str, body: Any) -> tuple[int, Any]:
        data = json.dumps(body).encode()
        status, _, answer = call(self.url + path, method, data, auth(str(self.keys[key]["key"])))
        return status, json.loads(answer or b"null")

    def logs(self, key: str) -> Any:
        pair = self.keys[key]
        return aws_client(
            self.url,
            "logs",
            aws_access_key_id=pair["awsAccessKeyId"],
            aws_secret_access_key=pair["awsSecretAccessKey"],
        )


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keyed]:
    data = tmp_path_factory.mktemp("logs-access") / "data"
    with ServerProcess(data, config=CONFIG) as server:
        yield Keyed(server)


@pytest.fixture
def clients(keyed: Keyed) -> Iterator[dict[str, Any]]:
    made = {name: keyed.logs(name) for name in KEYS if name != "acme-gateway"}
    yield made
    for client in made.values():
        client.close()


def window() -> dict[str, int]:
    now = int(time.time())
    return {"startTime": now - 3600, "endTime": now + 60}


def denied(call_it: Any) -> str:
    with pytest.raises(ClientError) as caught:
        call_it()
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    return code(caught)


def test_a_reader_without_bodies(keyed: Keyed, clients: dict[str, Any]) -> None:
    logs = clients["acme-reader"]
    assert [g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]] == [GROUP]
    assert denied(lambda: logs.filter_log_events(logGroupName=GROUP)) == "AccessDeniedException"
    assert (
        denied(lambda: logs.get_log_events(logGroupName=GROUP, logStreamName=STREAM))
        == "AccessDeniedException"
    )
    for text in ("fields @timestamp, @message", "filter modelId = 'x'", "fields input"):
        refused = lambda t=text: logs.start_query(logGroupName=GROUP, queryString=t, **window())  # noqa: E731
        assert denied(refused) == "AccessDeniedException", text
    # a query of metadata runs, and answers what llmtrail's query API answers this key
    text = "stats count(*) as calls, sum(input.inputTokenCount) as tokens by modelId"
    started = logs.start_query(logGroupName=GROUP, queryString=text, **window())
    answer = finished(logs, started["queryId"])
    body = {"queryString": text, **window()}
    body["endTime"] += 1
    status, expected = keyed.send("acme-reader", "POST", "/api/query", body)
    assert status == 200, expected
    assert rows_of(answer) == rows_of(expected)
    assert rows_of(answer)[0]["calls"] == str(len(keyed.ids["acme"]))


def test_results_that_show_bodies_are_refused_to_a_reader_without_them(
    keyed: Keyed, clients: dict[str, Any]
) -> None:
    text = "fields @requestId, @message | sort @timestamp asc"
    started = clients["acme-bodies"].start_query(logGroupName=GROUP, queryString=text, **window())
    answer = finished(clients["acme-bodies"], started["queryId"])
    assert [r["@requestId"] for r in rows_of(answer)] == keyed.ids["acme"]
    reader = clients["acme-reader"]
    assert (
        denied(lambda: reader.get_query_results(queryId=started["queryId"]))
        == "AccessDeniedException"
    )
    # another workspace does not have the query at all
    with pytest.raises(ClientError) as caught:
        clients["default-bodies"].get_query_results(queryId=started["queryId"])
    assert code(caught) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as caught:
        clients["default-bodies"].stop_query(queryId=started["queryId"])
    assert code(caught) == "ResourceNotFoundException"
    others = clients["default-bodies"].describe_queries()["queries"]
    assert started["queryId"] not in {q["queryId"] for q in others}


@pytest.mark.parametrize(
    ("key", "workspace"), [("acme-bodies", "acme"), ("default-bodies", "default")]
)
def test_events_are_the_callers_workspace_records(
    keyed: Keyed, clients: dict[str, Any], key: str, workspace: str
) -> None:
    events = clients[key].filter_log_events(logGroupName=GROUP)["events"]
    status, page = keyed.get(key, "/api/records?" + urlencode({"limit": 1000}))
    assert status == 200, page
    assert [json.loads(e["message"]) for e in events] == page["records"][::-1]
    assert {json.loads(e["message"])["requestId"] for e in events} == set(keyed.ids[workspace])
    tail = clients[key].get_log_events(logGroupName=GROUP, logStreamName=STREAM)["events"]
    assert [e["message"] for e in tail] == [e["message"] for e in events]


def test_body_reads_are_in_the_audit_log(keyed: Keyed, clients: dict[str, Any]) -> None:
    reader = clients["acme-bodies"]
    events = reader.get_log_events(logGroupName=GROUP, logStreamName=STREAM, limit=2)["events"]
    shown = [json.loads(e["message"])["requestId"] for e in events]
    actor = f"key/{keyed.keys['acme-bodies']['id']}"
    deadline = time.monotonic() + 10
    while True:
        status, page = keyed.get("acme-admin", "/api/audit?" + urlencode({"actor": actor}))
        assert status == 200, page
        reads = [
            e
            for e in page["entries"]
            if e["action"] == "read-bodies" and e["target"]["requestIds"] == shown
        ]
        if reads or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert len(reads) == 1 and reads[0]["surface"] == "aws"


def test_definitions_need_manage_and_stay_in_their_workspace(
    keyed: Keyed, clients: dict[str, Any], unique: str
) -> None:
    assert (
        denied(
            lambda: clients["acme-reader"].put_query_definition(
                name=unique, queryString="stats count(*)"
            )
        )
        == "AccessDeniedException"
    )
    admin = keyed.logs("acme-admin")
    try:
        made = admin.put_query_definition(name=unique, queryString="stats count(*)")
    finally:
        admin.close()
    listed = clients["acme-reader"].describe_query_definitions(queryDefinitionNamePrefix=unique)
    assert [d["queryDefinitionId"] for d in listed["queryDefinitions"]] == [
        made["queryDefinitionId"]
    ]
    status, saved = keyed.get("acme-reader", "/api/saved-queries")
    assert status == 200 and unique in {q["name"] for q in saved["queries"]}
    other = clients["default-bodies"].describe_query_definitions(queryDefinitionNamePrefix=unique)
    assert other["queryDefinitions"] == []


def test_the_group_is_named_by_the_logging_configuration(
    keyed: Keyed, clients: dict[str, Any]
) -> None:
    name = "/acme/model-invocations"
    config = {
        "loggingConfig": {
            "cloudWatchConfig": {
                "logGroupName": name,
                "roleArn": "arn:aws:iam::123456789012:role/bedrock-logging",
            },
            "textDataDeliveryEnabled": True,
        }
    }
    status, answer = keyed.send("acme-admin", "PUT", "/api/logging-configuration", config)
    assert status == 200, answer
    status, shown = keyed.get("acme-reader", "/api/logging-configuration")
    assert shown["llmtrail"]["logGroupName"] == name
    acme, other = clients["acme-bodies"], clients["default-bodies"]
    assert [g["logGroupName"] for g in acme.describe_log_groups()["logGroups"]] == [name]
    assert [g["logGroupName"] for g in other.describe_log_groups()["logGroups"]] == [GROUP]
    events = acme.filter_log_events(logGroupName=name)["events"]
    assert {json.loads(e["message"])["requestId"] for e in events} == set(keyed.ids["acme"])
    with pytest.raises(ClientError) as caught:
        acme.filter_log_events(logGroupName=GROUP)
    assert code(caught) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as caught:
        other.filter_log_events(logGroupName=name)
    assert code(caught) == "ResourceNotFoundException"
    started = acme.start_query(queryString=f"SOURCE '{name}' | stats count(*) as n", **window())
    assert rows_of(finished(acme, started["queryId"])) == [{"n": str(len(keyed.ids["acme"]))}]
    listed = acme.describe_queries(logGroupName=name)["queries"]
    assert started["queryId"] in {q["queryId"] for q in listed}
