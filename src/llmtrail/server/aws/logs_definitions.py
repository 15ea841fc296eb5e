"""Query definitions (``PutQueryDefinition``, ``DescribeQueryDefinitions``,
``DeleteQueryDefinition``) are llmtrail's saved queries: the same objects ``/api/saved-queries``
lists, in the caller's workspace's part of the StateStore (`SavedQueries`).

Saved queries are keyed by name; a definition's id is derived from its workspace and name
(a UUID5), so a query saved through ``/api`` has an id without anything more being stored,
and one saved here keeps its id in its stored value, beside what AWS also keeps
(``logGroupNames``, ``parameters``, ``lastModified``), so that a rename through
``PutQueryDefinition`` keeps the id. Names are unique in llmtrail: a PUT without an id of a
name already saved replaces it (AWS would make a second definition of that name), and a
rename onto another definition's name is refused. Names and queries are checked by
`SavedQueries` (its name rule, and the query must parse): InvalidParameterException.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

from llmtrail.errors import NotFound, ValidationError
from llmtrail.security.principal import Permission
from llmtrail.server.aws.logs_groups import INVALID, NOT_FOUND, group_name, millis
from llmtrail.server.aws.operations import AwsCall, AwsError, operation
from llmtrail.server.aws.tokens import page_token, read_page_token

_IDS = uuid.UUID("4f0c1e36-6a8e-4d43-9a54-1b7d3d1f0c55")  # the namespace of derived ids
LANGUAGE = "CWLI"


def definition_id(workspace: str, value: dict[str, Any]) -> str:
    """The id of a saved query: the one stored with it, else derived from its name."""
    stored = value.get("queryDefinitionId")
    if isinstance(stored, str) and stored:
        return stored
    return str(uuid.uuid5(_IDS, f"{workspace}\n{value['name']}"))


def _definition(workspace: str, value: dict[str, Any]) -> dict[str, Any]:
    """A ``QueryDefinition``."""
    return {
        "queryLanguage": LANGUAGE,
        "queryDefinitionId": definition_id(workspace, value),
        "name": value["name"],
        "queryString": value["queryString"],
        "lastModified": value.get("lastModified"),
        "logGroupNames": value.get("logGroupNames") or [],
        "parameters": value.get("parameters"),
    }


def _saved(call: AwsCall) -> Any:
    return call.services["queries"].saved_for(call.workspace)


@operation("logs", "PutQueryDefinition", Permission.MANAGE)
async def put_query_definition(call: AwsCall) -> dict[str, Any]:
    p = call.params
    if p.get("queryLanguage", LANGUAGE) != LANGUAGE:
        raise AwsError(INVALID, "llmtrail saves Logs Insights QL (queryLanguage CWLI) only.")
    name, text = p["name"], p["queryString"]
    groups = [group_name(call, g) for g in p.get("logGroupNames", [])]
    saved = _saved(call)
    existing: list[dict[str, Any]] = await asyncio.to_thread(saved.list)
    named = {v["name"]: v for v in existing}
    given = p.get("queryDefinitionId")
    old: dict[str, Any] | None
    if given is not None:
        old = next((v for v in existing if definition_id(call.workspace, v) == given), None)
        if old is None:
            raise AwsError(NOT_FOUND, f"The query definition {given} does not exist.")
        if old["name"] != name and name in named:
            raise AwsError(
                INVALID, f"A query definition named {name!r} already exists (names are unique)."
            )
    else:
        old = named.get(name)
    ident = definition_id(call.workspace, old or {"name": name})
    extra = {
        "queryDefinitionId": ident,
        "logGroupNames": groups,
        "lastModified": millis(datetime.now(UTC)),
    }
    if p.get("parameters") is not None:
        extra["parameters"] = p["parameters"]
    description = old.get("description") if old is not None else None
    try:
        await asyncio.to_thread(saved.put, name, text, description, extra)
    except ValidationError as exc:  # the saved queries' name rule, or a query that won't parse
        raise AwsError(INVALID, str(exc)) from None
    if old is not None and old["name"] != name:
        await asyncio.to_thread(saved.delete, old["name"])
    return {"queryDefinitionId": ident}


@operation("logs", "DescribeQueryDefinitions", Permission.READ)
async def describe_query_definitions(call: AwsCall) -> dict[str, Any]:
    p = call.params
    values: list[dict[str, Any]] = await asyncio.to_thread(_saved(call).list)
    values = sorted(values, key=lambda v: v["name"])
    prefix = p.get("queryDefinitionNamePrefix")
    if prefix is not None:
        values = [v for v in values if v["name"].startswith(prefix)]
    if p.get("queryLanguage", LANGUAGE) != LANGUAGE:
        values = []
    if p.get("nextToken"):
        after = read_page_token(call, p["nextToken"])
        if not isinstance(after, str):
            raise AwsError(INVALID, "The specified nextToken is not valid")
        values = [v for v in values if v["name"] > after]
    size = p.get("maxResults", 1000)
    page = values[:size]
    token = page_token(call, page[-1]["name"]) if len(values) > size else None
    return {
        "queryDefinitions": [_definition(call.workspace, v) for v in page],
        "nextToken": token,
    }


@operation("logs", "DeleteQueryDefinition", Permission.MANAGE)
async def delete_query_definition(call: AwsCall) -> dict[str, Any]:
    given = call.params["queryDefinitionId"]
    saved = _saved(call)
    existing: list[dict[str, Any]] = await asyncio.to_thread(saved.list)
    found = next((v for v in existing if definition_id(call.workspace, v) == given), None)
    if found is None:
        raise AwsError(NOT_FOUND, f"The query definition {given} does not exist.")
    try:
        await asyncio.to_thread(saved.delete, found["name"])
    except NotFound:  # deleted meanwhile
        raise AwsError(NOT_FOUND, f"The query definition {given} does not exist.") from None
    return {"success": True}
