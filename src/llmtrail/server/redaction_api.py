"""The redaction policy of the caller's workspace, a resource of its own (so a logging
configuration PUT from an AWS runbook never wipes it):

=================================  ====================================================
``GET /api/redaction``             the policy in effect (``read``)
``PUT /api/redaction``             replace it (``manage``); body: the policy, or
                                   ``{"policy": {…}}`` as GET answers it
``DELETE /api/redaction``          back to the default policy (``manage``)
``POST /api/redaction/test``       ``{"text", "group", "policy"?}`` → the redacted text
                                   and the findings, under the stored policy or the one
                                   given (``manage``: it is how an admin tries a policy)
=================================  ====================================================

Answers: ``{"workspace", "isDefault", "policy", "unavailable"?}``, where ``unavailable``
names detectors the policy asks for that this server cannot run (Presidio not installed).
Errors are problem JSON naming the field. A change applies to this server's capture at once
and to the others' within a second (`RedactionPolicies`).
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from llmtrail.errors import LlmtrailError, ValidationError
from llmtrail.security.detectors_custom import presidio_problem
from llmtrail.security.principal import Permission, principal_of
from llmtrail.security.redaction import Redactor
from llmtrail.security.redaction_policy import (
    DEFAULT_POLICY,
    GROUPS,
    RedactionPolicy,
    parse_policy,
)
from llmtrail.security.redaction_store import (
    NAMESPACE,
    RedactionPolicies,
    RedactionPolicyStore,
)
from llmtrail.server.access import guarded_route
from llmtrail.server.params import json_object
from llmtrail.server.problems import from_error
from llmtrail.store.interfaces import StateStore

MAX_BODY_BYTES = 256 * 1024
MAX_TEST_TEXT = 100_000  # characters a test may redact
_ENVELOPE = frozenset({"policy", "workspace", "isDefault", "unavailable"})


def _json(value: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(value), status, media_type="application/json")


def _policy_in(body: dict[str, Any], workspace: str) -> Any:
    """The policy a PUT body holds: the policy itself, or GET's answer around it."""
    if "policy" not in body or not set(body) <= _ENVELOPE:
        return body
    if body.get("workspace") not in (None, workspace):
        raise ValidationError(
            "workspace", f"a key changes its own workspace's policy only ({workspace!r})"
        )
    return body["policy"]


def _prefixed(exc: ValidationError, prefix: str) -> ValidationError:
    return ValidationError(f"{prefix}.{exc.field}", exc.message)


class RedactionAPI:
    def __init__(self, state: StateStore, policies: RedactionPolicies) -> None:
        self.store = RedactionPolicyStore(state)
        self.policies = policies

    def routes(self) -> list[Route]:
        return [
            guarded_route("/api/redaction", self.get, Permission.READ, methods=["GET"]),
            guarded_route("/api/redaction", self.put, Permission.MANAGE, methods=["PUT"]),
            guarded_route("/api/redaction", self.delete, Permission.MANAGE, methods=["DELETE"]),
            guarded_route("/api/redaction/test", self.test, Permission.MANAGE, methods=["POST"]),
        ]

    def _answer(self, workspace: str, **extra: Any) -> dict[str, Any]:
        stored = self.store.state.get(NAMESPACE, workspace)
        answer: dict[str, Any] = {
            "workspace": workspace,
            "isDefault": stored is None,
            "policy": stored if stored is not None else DEFAULT_POLICY.to_json(),
            **extra,
        }
        if isinstance(stored, dict) and "names_addresses" in (stored.get("detectors") or []):
            problem = presidio_problem()
            if problem:
                answer["unavailable"] = {"names_addresses": problem}
        return answer

    async def get(self, request: Request) -> Response:
        workspace = principal_of(request.scope).workspace
        return await self._run(lambda: self._answer(workspace))

    async def put(self, request: Request) -> Response:
        workspace = principal_of(request.scope).workspace
        try:
            body = await json_object(request, MAX_BODY_BYTES)
            value = _policy_in(body, workspace)
        except LlmtrailError as exc:
            return from_error(exc)

        def put() -> dict[str, Any]:
            self.store.put(workspace, value)
            self.policies.invalidate(workspace)
            return self._answer(workspace)

        return await self._run(put)

    async def delete(self, request: Request) -> Response:
        workspace = principal_of(request.scope).workspace

        def delete() -> dict[str, Any]:
            existed = self.store.delete(workspace)
            self.policies.invalidate(workspace)
            return self._answer(workspace, deleted=existed)

        return await self._run(delete)

    async def test(self, request: Request) -> Response:
        workspace = principal_of(request.scope).workspace
        try:
            body = await json_object(request, MAX_BODY_BYTES)
            text, group, trial = _test_arguments(body)
        except LlmtrailError as exc:
            return from_error(exc)

        def test() -> dict[str, Any]:
            if trial is not None:
                redactor = Redactor(trial, self.policies.hash_key)
            else:
                redactor = self.policies.for_workspace(workspace)
            return redaction_trial(redactor, text, group)

        return await self._run(test)

    @staticmethod
    async def _run(work: Any) -> Response:
        try:
            return _json(await asyncio.to_thread(work))
        except LlmtrailError as exc:
            return from_error(exc)


def _test_arguments(body: dict[str, Any]) -> tuple[str, str, RedactionPolicy | None]:
    unknown = sorted(set(body) - {"text", "group", "policy"})
    if unknown:
        raise ValidationError(unknown[0][:64], "is not a field of a test (text, group, policy)")
    text = body.get("text")
    if not isinstance(text, str):
        raise ValidationError("text", "is required: the text to redact (a string)")
    if len(text) > MAX_TEST_TEXT:
        raise ValidationError("text", f"is {len(text)} characters; the limit is {MAX_TEST_TEXT}")
    group = body.get("group", "bodies")
    if group not in GROUPS:
        raise ValidationError("group", f"must be one of {', '.join(GROUPS)}")
    trial = None
    if body.get("policy") is not None:
        try:
            trial = parse_policy(body["policy"])
        except ValidationError as exc:
            raise _prefixed(exc, "policy") from None
    return text, group, trial


def redaction_trial(redactor: Redactor, text: str, group: str) -> dict[str, Any]:
    """What ``POST /api/redaction/test`` answers: the text as capture would store it, and
    each finding with where it was and what replaced it (never the value found)."""
    action = redactor.policy.actions[group]
    findings = redactor.findings(text, group)
    return {
        "group": group,
        "action": action,
        "text": redactor.redact_text(text, group),
        "findings": [
            {
                "kind": f.kind,
                "start": f.start,
                "end": f.end,
                "replacement": "" if action == "drop" else redactor.replacement(f, action),
            }
            for f in findings
        ],
    }
