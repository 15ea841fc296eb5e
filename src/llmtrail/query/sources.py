"""``SOURCE``: log group names → the data set a query reads.

Queries written for Bedrock's CloudWatch logs start with ``SOURCE '/aws/bedrock/modelinvocations'``
(a dashboard's log widget always does). In llmtrail a workspace's invocation records are that
log group, so the names Bedrock logging writes to, and llmtrail's own default group, all resolve
to the records data set; a group that names nothing llmtrail holds is an error naming it,
rather than a query that silently reads something else. Several groups, or a
``logGroups(namePrefix: [...])`` that matches them, read the records once.
"""

from __future__ import annotations

import re
from collections.abc import Collection

from llmtrail.query.ast import Source
from llmtrail.query.errors import QueryError

RECORDS = "records"
DEFAULT_LOG_GROUP = "/llmtrail/invocations"
# log group name -> data set
LOG_GROUPS: dict[str, str] = {
    "/aws/bedrock/modelinvocations": RECORDS,
    "aws/bedrock/modelinvocations": RECORDS,  # the log stream's name, used as a group too
    DEFAULT_LOG_GROUP: RECORDS,
}
# arn:aws:logs:us-east-1:123456789012:log-group:/aws/bedrock/modelinvocations[:*]
_ARN = re.compile(r"arn:[^:]+:logs:[^:]*:[^:]*:log-group:(?P<name>.+?)(?::\*)?")


def log_group_name(identifier: str) -> str:
    """A log group's name from its name or ARN (``logGroupIdentifier`` accepts both)."""
    match = _ARN.fullmatch(identifier)
    return match["name"] if match else identifier


def resolve_sources(sources: list[Source], text: str, own: Collection[str] = ()) -> str:
    """The data set ``sources`` read (`RECORDS` when there are none); ``own`` are the log
    group names the workspace's logging configuration gives its records
    (``cloudWatchConfig.logGroupName``). Raises `QueryError` pointing at the group that names
    nothing known."""
    groups = {**LOG_GROUPS, **dict.fromkeys(own, RECORDS)}
    found: set[str] = set()
    for source in sources:
        for name in source.names:
            data_set = groups.get(log_group_name(name))
            if data_set is None:
                known = ", ".join(sorted(groups))
                raise QueryError(f"unknown log group {name!r} (known: {known})", text, source.span)
            found.add(data_set)
        for prefix in source.prefixes:
            matched = {d for group, d in groups.items() if group.startswith(prefix)}
            if not matched:
                raise QueryError(f"no log group starts with {prefix!r}", text, source.span)
            found |= matched
    if len(found) > 1:  # one data set today; a second would need a union of different tables
        raise QueryError("the log groups name different data sets", text, sources[0].span)
    return found.pop() if found else RECORDS
