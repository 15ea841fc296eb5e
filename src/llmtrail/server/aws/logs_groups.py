"""The log groups and the log stream a workspace's records are, to the ``logs`` API.

A workspace's invocation records are one log group, named as its logging configuration says
(``cloudWatchConfig.logGroupName``, ``/aws/bedrock/modelinvocations`` by default:
`Runtime.log_groups`), holding one log stream, ``aws/bedrock/modelinvocations``, the stream
Bedrock writes. Each operation names the group by ``logGroupName`` or
``logGroupIdentifier`` (a name or an ARN of this region and account); a name the workspace
does not have is ``ResourceNotFoundException``, as a log group that does not exist is on
AWS. The group's figures (first and last event, last ingestion, stored bytes) come from one
Logs Insights ``stats`` query on llmtrail's own query path, so they are what the query API
answers for the same records.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from llmtrail.errors import LlmtrailError
from llmtrail.security.principal import Permission
from llmtrail.security.retention import RetentionPolicies
from llmtrail.server.aws.operations import AwsCall, AwsError, operation
from llmtrail.server.aws.tokens import page_token, read_page_token

STREAM = "aws/bedrock/modelinvocations"  # the log stream Bedrock's invocation logging writes
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
END_OF_TIME = datetime(9998, 12, 31, tzinfo=UTC)  # the last day llmtrail timestamps reach
MAX_PAGE = 50  # DescribeLogGroups / DescribeLogStreams: limit 1..50, 50 by default
INVALID = "InvalidParameterException"
NOT_FOUND = "ResourceNotFoundException"
_ARN = re.compile(
    r"arn:(?P<partition>[^:]+):logs:(?P<region>[^:]*):(?P<account>[^:]*):log-group:"
    r"(?P<name>[^:]+)(?::\*)?"
)
_STATS = (
    "stats min(@timestamp) as first, max(@timestamp) as last,"
    " min(@ingestionTime) as created, max(@ingestionTime) as ingested"
)


def millis(when: datetime) -> int:
    """Epoch milliseconds of ``when`` (floored, as CloudWatch's event timestamps are; a naive
    value is UTC)."""
    aware = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
    return (aware - EPOCH) // timedelta(milliseconds=1)


def from_millis(value: int) -> datetime:
    """The instant ``value`` epoch milliseconds name (the wire refuses negative ones), at
    most `END_OF_TIME`."""
    try:
        return min(EPOCH + timedelta(milliseconds=value), END_OF_TIME)
    except OverflowError:
        return END_OF_TIME


def group_arn(call: AwsCall, name: str) -> str:
    return f"arn:aws:logs:{call.region}:{call.account}:log-group:{name}"


def workspace_groups(call: AwsCall) -> tuple[str, ...]:
    """The caller's workspace's log group names, as its logging configuration says now."""
    return tuple(call.runtime.log_groups(call.workspace))


def group_name(call: AwsCall, identifier: str) -> str:
    """The workspace's log group ``identifier`` (a name or an ARN) names, else
    ResourceNotFoundException (an ARN of another region or account names none of ours)."""
    name = identifier
    match = _ARN.fullmatch(identifier)
    if match is not None:
        if match["region"] != call.region or match["account"] != call.account:
            raise AwsError(NOT_FOUND, f"The specified log group does not exist: {identifier}")
        name = match["name"]
    if name not in workspace_groups(call):
        raise AwsError(NOT_FOUND, f"The specified log group does not exist: {identifier}")
    return name


def one_group(call: AwsCall) -> str:
    """The group of an operation that takes ``logGroupName`` or ``logGroupIdentifier``,
    exactly one of them, as AWS requires."""
    name = call.params.get("logGroupName")
    identifier = call.params.get("logGroupIdentifier")
    if (name is None) == (identifier is None):
        raise AwsError(
            INVALID, "You must include either logGroupIdentifier or logGroupName, but not both."
        )
    return group_name(call, str(name if name is not None else identifier))


@dataclass(frozen=True)
class GroupFigures:
    """What the records of a workspace amount to, as the query language counts them."""

    first: datetime | None
    last: datetime | None
    created: datetime | None
    ingested: datetime | None
    stored_bytes: int


async def figures(call: AwsCall) -> GroupFigures:
    """The group's figures from one ``stats`` query over all time on the pooled query path
    (ServiceUnavailableException when every query thread and waiting place is taken)."""
    queries = call.services["queries"]
    try:
        result = await queries.pooled(
            _STATS,
            EPOCH,
            END_OF_TIME,
            query_id=f"logs-{uuid.uuid4()}",
            workspace=call.workspace,
            bodies_allowed=False,
        )
    except LlmtrailError as exc:
        raise AwsError("ServiceUnavailableException", str(exc), 503) from None
    row = dict(zip(result.fields, result.rows[0], strict=True)) if result.rows else {}
    size = int(result.statistics.get("bytesScanned", 0))
    return GroupFigures(
        row.get("first"), row.get("last"), row.get("created"), row.get("ingested"), size
    )


def _ms(when: datetime | None) -> int | None:
    return None if when is None else millis(when)


def _page(call: AwsCall, names: list[str], size: int) -> tuple[list[str], str | None]:
    """One page of ``names`` (sorted) after the token's name, and the next token."""
    token = call.params.get("nextToken")
    if token is not None:
        after = read_page_token(call, token)
        if not isinstance(after, str):
            raise AwsError(INVALID, "The specified nextToken is not valid")
        names = [n for n in names if n > after]
    page = names[:size]
    more = len(names) > size
    return page, page_token(call, page[-1]) if more else None


@operation("logs", "DescribeLogGroups", Permission.READ)
async def describe_log_groups(call: AwsCall) -> dict[str, Any]:
    p = call.params
    prefix, pattern = p.get("logGroupNamePrefix"), p.get("logGroupNamePattern")
    identifiers = p.get("logGroupIdentifiers")
    if prefix is not None and pattern is not None:
        raise AwsError(
            INVALID, "logGroupNamePrefix and logGroupNamePattern are mutually exclusive."
        )
    if identifiers is not None and (prefix is not None or pattern is not None):
        raise AwsError(
            INVALID,
            "logGroupIdentifiers cannot be combined with logGroupNamePrefix or"
            " logGroupNamePattern.",
        )
    names = sorted(set(workspace_groups(call)))
    if identifiers is not None:
        wanted = set()
        for identifier in identifiers:
            try:
                wanted.add(group_name(call, identifier))
            except AwsError:
                continue  # AWS lists the groups that exist among those named
        names = [n for n in names if n in wanted]
    if prefix is not None:
        names = [n for n in names if n.startswith(prefix)]
    if pattern:
        names = [n for n in names if pattern in n]
    if p.get("logGroupClass") not in (None, "STANDARD"):
        names = []  # llmtrail's groups are of the Standard class
    page, token = _page(call, names, p.get("limit", MAX_PAGE))
    groups = []
    if page:
        stats = await figures(call)
        policy = await asyncio.to_thread(RetentionPolicies(call.runtime.state).get, call.workspace)
        for name in page:
            group: dict[str, Any] = {
                "logGroupName": name,
                "creationTime": _ms(stats.created),
                "arn": group_arn(call, name) + ":*",
            }
            if pattern is None:  # AWS answers a pattern search with these three only
                group |= {
                    "retentionInDays": policy.records_days,
                    "metricFilterCount": 0,
                    "storedBytes": stats.stored_bytes,
                    "logGroupClass": "STANDARD",
                    "logGroupArn": group_arn(call, name),
                    "deletionProtectionEnabled": False,
                }
            groups.append(group)
    return {"logGroups": groups, "nextToken": token}


@operation("logs", "DescribeLogStreams", Permission.READ)
async def describe_log_streams(call: AwsCall) -> dict[str, Any]:
    p = call.params
    name = one_group(call)
    prefix = p.get("logStreamNamePrefix")
    if prefix is not None and p.get("orderBy") == "LastEventTime":
        raise AwsError(INVALID, "Cannot order by LastEventTime with a logStreamNamePrefix.")
    names = [STREAM] if prefix is None or STREAM.startswith(prefix) else []
    page, token = _page(call, names, p.get("limit", MAX_PAGE))
    streams = []
    if page:
        stats = await figures(call)
        stream: dict[str, Any] = {
            "logStreamName": STREAM,
            "creationTime": _ms(stats.created),
            "firstEventTimestamp": _ms(stats.first),
            "lastEventTimestamp": _ms(stats.last),
            "lastIngestionTime": _ms(stats.ingested),
            "arn": f"{group_arn(call, name)}:log-stream:{STREAM}",
            "storedBytes": stats.stored_bytes,
        }
        streams.append(stream)
    return {"logStreams": streams, "nextToken": token}
