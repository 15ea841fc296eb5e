"""Application inference profiles, as Bedrock has them: a named, tagged handle on a model.

A team creates a profile that copies a model (``copyFrom``), tags it (``dept=claims``) and
calls the profile's ARN instead of the model; the gateway calls the underlying model and
stamps the record with the profile and its tags, so cost groups by tag.

Built this way because:

- Profiles are control-plane state, so they live in the `StateStore` (namespace
  ``profiles``, value JSON with Bedrock's field names) and every replica sharing the store
  sees them. A profile belongs to one workspace: the key is ``WORKSPACE/ID`` (the default
  workspace's are the bare id, as profiles were stored before workspaces, so those stay
  readable). Every read and write names the caller's workspace; another workspace's profile
  is "not found", and its ARN does not resolve. Ids are unique across workspaces, so an ARN
  names one profile.
- The gateway asks `ProfileService.resolve` on every request, so resolving is one dict
  lookup ((workspace, id or ARN) → `ResolvedProfile`). The dict is rebuilt after every write
  made through this service; `refresh` re-reads the store for writes made by another
  replica.
- Input is checked by the pure functions of `profile_rules`, which name Bedrock's fields.
- The clock and the id generator are injected, so tests are deterministic.
- System-defined (cross-region) profiles are data (`system_profiles`): listed and readable,
  never stored, deleted or tagged; the gateway forwards their ids to the route table as is.
"""

from __future__ import annotations

import base64
import builtins
import logging
import secrets
import string
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import orjson

from llmtrail.analytics.profile_rules import (
    MAX_TAGS,
    PROFILE_ARN,
    underlying_model_id,
    validate_copy_from,
    validate_description,
    validate_identifier,
    validate_max_results,
    validate_name,
    validate_tag_keys,
    validate_tags,
    validate_token,
)
from llmtrail.analytics.system_profiles import SYSTEM_PROFILES, SystemProfile
from llmtrail.errors import NotFound, ValidationError
from llmtrail.model_ids import parse_model_id
from llmtrail.record import DEFAULT_WORKSPACE, format_timestamp, parse_timestamp
from llmtrail.store.interfaces import StateStore

log = logging.getLogger("llmtrail")

NAMESPACE = "profiles"
APPLICATION = "APPLICATION"
SYSTEM_DEFINED = "SYSTEM_DEFINED"
PROFILE_TYPES = (APPLICATION, SYSTEM_DEFINED)
ACTIVE = "ACTIVE"
DEFAULT_MAX_RESULTS = 100
_ID_ALPHABET = string.ascii_lowercase + string.digits


class ProfileConflict(ValidationError):
    """Bedrock's ConflictException: a name already taken, or a ``clientRequestToken`` reused
    with other parameters (→ 409)."""

    status = 409


def state_key(workspace: str, profile_id: str) -> str:
    """The StateStore key of a profile: the bare id in the default workspace (as stored
    before workspaces), ``WORKSPACE/ID`` elsewhere (neither part can hold a ``/``)."""
    return profile_id if workspace == DEFAULT_WORKSPACE else f"{workspace}/{profile_id}"


def workspace_of_key(key: str) -> str:
    """The workspace a `state_key` names."""
    return key.split("/", 1)[0] if "/" in key else DEFAULT_WORKSPACE


def new_profile_id() -> str:
    """A profile id as Bedrock makes them: 12 random lowercase letters and digits."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(12))


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class InferenceProfile:
    """One inference profile, application or system-defined. ``tags`` keep their order."""

    profile_id: str
    name: str
    arn: str
    type: str
    model_arns: tuple[str, ...]
    model_id: str  # what the gateway forwards to (see `underlying_model_id`)
    description: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    copy_from: str | None = None
    tags: tuple[tuple[str, str], ...] = ()
    client_request_token: str | None = None
    status: str = ACTIVE
    workspace: str = DEFAULT_WORKSPACE

    def tag_map(self) -> dict[str, str]:
        """The tags as a new dict."""
        return dict(self.tags)

    def summary(self) -> dict[str, Any]:
        """Bedrock's ``InferenceProfileSummary`` (also the GetInferenceProfile response)."""
        out: dict[str, Any] = {"inferenceProfileName": self.name}
        if self.description is not None:
            out["description"] = self.description
        if self.created_at is not None:
            out["createdAt"] = format_timestamp(self.created_at)
        if self.updated_at is not None:
            out["updatedAt"] = format_timestamp(self.updated_at)
        out["inferenceProfileArn"] = self.arn
        out["models"] = [{"modelArn": arn} for arn in self.model_arns]
        out["inferenceProfileId"] = self.profile_id
        out["status"] = self.status
        out["type"] = self.type
        return out

    def to_state(self) -> dict[str, Any]:
        """The JSON value kept in the StateStore."""
        return {
            **self.summary(),
            "copyFrom": self.copy_from,
            "tags": [{"key": k, "value": v} for k, v in self.tags],
            "clientRequestToken": self.client_request_token,
            "workspace": self.workspace,
        }

    @classmethod
    def from_state(
        cls, value: Mapping[str, Any], workspace: str = DEFAULT_WORKSPACE
    ) -> InferenceProfile:
        """The profile a `to_state` value kept under ``workspace`` describes (raises
        KeyError/TypeError if damaged)."""
        copy_from = value["copyFrom"]
        return cls(
            profile_id=value["inferenceProfileId"],
            name=value["inferenceProfileName"],
            arn=value["inferenceProfileArn"],
            type=value["type"],
            model_arns=tuple(m["modelArn"] for m in value["models"]),
            model_id=underlying_model_id(copy_from),
            description=value.get("description"),
            created_at=_when(value.get("createdAt")),
            updated_at=_when(value.get("updatedAt")),
            copy_from=copy_from,
            tags=tuple((t["key"], t["value"]) for t in value.get("tags") or ()),
            client_request_token=value.get("clientRequestToken"),
            status=value.get("status", ACTIVE),
            workspace=workspace,
        )


def _when(text: str | None) -> datetime | None:
    return parse_timestamp(text) if text else None


@dataclass(frozen=True)
class ResolvedProfile:
    """What the gateway needs when a caller names a profile: the model to call and the
    record's ``inferenceProfile`` block."""

    model_id: str
    profile_id: str
    arn: str
    name: str
    tags: tuple[tuple[str, str], ...] = ()

    def stamp(self) -> dict[str, Any]:
        """A new ``{"arn", "name", "tags": {k: v}}`` for the record's ``inferenceProfile``."""
        return {"arn": self.arn, "name": self.name, "tags": dict(self.tags)}


@dataclass
class ProfilePage:
    """One page of ListInferenceProfiles."""

    profiles: list[InferenceProfile] = field(default_factory=list)
    next_token: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Bedrock's ListInferenceProfiles response."""
        out: dict[str, Any] = {"inferenceProfileSummaries": [p.summary() for p in self.profiles]}
        if self.next_token is not None:
            out["nextToken"] = self.next_token
        return out


class ProfileService:
    """Create, read, list, delete and tag application inference profiles; resolve a model id
    the gateway was given to the profile it names.

    ``model_known`` (optional) says whether the gateway routes a model id; when given, a
    ``copyFrom`` whose underlying model it does not know is refused at create time.
    """

    def __init__(
        self,
        state: StateStore,
        *,
        region: str = "local",
        account_id: str = "000000000000",
        clock: Callable[[], datetime] = _utc_now,
        new_id: Callable[[], str] = new_profile_id,
        model_known: Callable[[str], bool] | None = None,
    ) -> None:
        self.state = state
        self.region = region
        self.account_id = account_id
        self.clock = clock
        self.new_id = new_id
        self.model_known = model_known
        self._lock = threading.Lock()
        self._index: dict[tuple[str, str], ResolvedProfile] | None = None

    # -- reads --------------------------------------------------------------------------------
    def resolve(self, model_id: str, workspace: str = DEFAULT_WORKSPACE) -> ResolvedProfile | None:
        """The application profile of ``workspace`` that ``model_id`` names (its id or its
        ARN), or None (another workspace's profile included)."""
        index = self._index
        if index is None:
            index = self.refresh()
        return index.get((workspace, model_id))

    def refresh(self) -> dict[tuple[str, str], ResolvedProfile]:
        """Re-read the profiles from the store into the resolve index (and return it)."""
        index: dict[tuple[str, str], ResolvedProfile] = {}
        for p in self._stored(None):
            resolved = ResolvedProfile(p.model_id, p.profile_id, p.arn, p.name, p.tags)
            index[(p.workspace, p.profile_id)] = resolved
            index[(p.workspace, p.arn)] = resolved
        self._index = index
        return index

    def get(self, identifier: str, *, workspace: str = DEFAULT_WORKSPACE) -> InferenceProfile:
        """GetInferenceProfile: by id or ARN, application (of ``workspace``) or
        system-defined. Raises `NotFound`."""
        identifier = validate_identifier(identifier)
        profile = self._application(identifier, workspace)
        if profile is not None:
            return profile
        system = self._system(identifier)
        if system is None:
            raise NotFound(f"no inference profile {identifier!r}")
        return system

    def list(
        self,
        type_equals: str | None = None,
        max_results: int | None = None,
        next_token: str | None = None,
        *,
        workspace: str = DEFAULT_WORKSPACE,
    ) -> ProfilePage:
        """ListInferenceProfiles: ``workspace``'s application profiles (oldest first), then
        system-defined ones (by id); ``type_equals`` keeps one type. Unlike Bedrock, which
        lists only SYSTEM_DEFINED when no type is given, no type means both."""
        if type_equals is not None and type_equals not in PROFILE_TYPES:
            raise ValidationError(
                "typeEquals", f"must be APPLICATION or SYSTEM_DEFINED, got {type_equals!r}"
            )
        limit = DEFAULT_MAX_RESULTS if max_results is None else validate_max_results(max_results)
        after = _decode_token(next_token) if next_token is not None else None
        rows: list[tuple[tuple[int, str, str], InferenceProfile]] = []
        if type_equals in (None, APPLICATION):
            for p in self._stored(workspace):
                created = format_timestamp(p.created_at) if p.created_at else ""
                rows.append(((0, created, p.profile_id), p))
        if type_equals in (None, SYSTEM_DEFINED):
            rows += [
                ((1, "", s.profile_id), self._system_profile(s)) for s in SYSTEM_PROFILES.values()
            ]
        rows.sort(key=lambda row: row[0])
        if after is not None:
            rows = [row for row in rows if row[0] > after]
        page = rows[:limit]
        token = _encode_token(page[-1][0]) if len(rows) > limit else None
        return ProfilePage([p for _, p in page], token)

    def tags(self, identifier: str, *, workspace: str = DEFAULT_WORKSPACE) -> dict[str, str]:
        """ListTagsForResource: the profile's tags (system-defined profiles have none)."""
        return self.get(identifier, workspace=workspace).tag_map()

    # -- writes -------------------------------------------------------------------------------
    def create(
        self,
        name: str,
        copy_from: str,
        *,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        client_request_token: str | None = None,
        workspace: str = DEFAULT_WORKSPACE,
    ) -> InferenceProfile:
        """CreateInferenceProfile in ``workspace``. The same ``client_request_token`` with the
        same parameters returns the profile it created; with other parameters, or a name
        already taken in the workspace, it raises `ProfileConflict`."""
        name = validate_name(name)
        copy_from = validate_copy_from(copy_from)
        description = validate_description(description)
        tag_map = validate_tags(tags or {})
        token = validate_token(client_request_token)
        model_id = underlying_model_id(copy_from)
        if self.model_known is not None and not self.model_known(model_id):
            raise ValidationError(
                "modelSource.copyFrom", f"no route or alias serves the model {model_id!r}"
            )
        with self._lock:
            everywhere = self._stored(None)
            stored = [p for p in everywhere if p.workspace == workspace]
            if token is not None:
                for p in stored:
                    if p.client_request_token != token:
                        continue
                    if (p.name, p.copy_from, p.description, p.tag_map()) == (
                        name,
                        copy_from,
                        description,
                        tag_map,
                    ):
                        return p
                    raise ProfileConflict(
                        "clientRequestToken",
                        f"was already used to create {p.profile_id!r} with other parameters",
                    )
            if any(p.name == name for p in stored):
                raise ProfileConflict(
                    "inferenceProfileName", f"an inference profile named {name!r} exists"
                )
            taken = {p.profile_id for p in everywhere}  # an ARN names one profile
            profile_id = self.new_id()
            while profile_id in taken:
                profile_id = self.new_id()
            now = self.clock().astimezone(UTC)
            profile = InferenceProfile(
                profile_id=profile_id,
                name=name,
                arn=self._arn("application-inference-profile", profile_id),
                type=APPLICATION,
                model_arns=self._model_arns(copy_from),
                model_id=model_id,
                description=description,
                created_at=now,
                updated_at=now,
                copy_from=copy_from,
                tags=tuple(tag_map.items()),
                client_request_token=token,
                workspace=workspace,
            )
            self._save(profile)
        return profile

    def delete(self, identifier: str, *, workspace: str = DEFAULT_WORKSPACE) -> None:
        """DeleteInferenceProfile. Raises `NotFound`, or `ValidationError` for a
        system-defined profile."""
        with self._lock:
            profile = self._writable(identifier, "deleted", workspace)
            self.state.delete(NAMESPACE, state_key(profile.workspace, profile.profile_id))
            self.refresh()

    def tag(
        self, identifier: str, tags: Mapping[str, str], *, workspace: str = DEFAULT_WORKSPACE
    ) -> dict[str, str]:
        """TagResource: add or overwrite tags; returns the profile's tags after."""
        new = validate_tags(tags)
        with self._lock:
            profile = self._writable(identifier, "tagged", workspace)
            merged = {**profile.tag_map(), **new}
            if len(merged) > MAX_TAGS:
                raise ValidationError(
                    "tags", f"would give the profile {len(merged)} tags; at most {MAX_TAGS}"
                )
            self._save(replace(profile, tags=tuple(merged.items())))
        return merged

    def untag(
        self, identifier: str, keys: Sequence[str], *, workspace: str = DEFAULT_WORKSPACE
    ) -> dict[str, str]:
        """UntagResource: remove the keys (absent ones are ignored); returns the tags after."""
        drop = set(validate_tag_keys(keys))
        with self._lock:
            profile = self._writable(identifier, "untagged", workspace)
            kept = {k: v for k, v in profile.tags if k not in drop}
            self._save(replace(profile, tags=tuple(kept.items())))
        return kept

    # -- internals ----------------------------------------------------------------------------
    def _save(self, profile: InferenceProfile) -> None:
        key = state_key(profile.workspace, profile.profile_id)
        self.state.put(NAMESPACE, key, profile.to_state())
        self.refresh()

    def _writable(self, identifier: str, verb: str, workspace: str) -> InferenceProfile:
        identifier = validate_identifier(identifier)
        profile = self._application(identifier, workspace)
        if profile is not None:
            return profile
        if self._system(identifier) is not None:
            raise ValidationError(
                "inferenceProfileIdentifier",
                f"{identifier!r} is a system-defined inference profile; it cannot be {verb}",
            )
        raise NotFound(f"no inference profile {identifier!r}")

    def _stored(self, workspace: str | None) -> builtins.list[InferenceProfile]:
        """The stored profiles of ``workspace`` (of every workspace for None)."""
        out = []
        for key, value in self.state.list(NAMESPACE).items():
            owner = workspace_of_key(key)
            if workspace is not None and owner != workspace:
                continue
            try:
                out.append(InferenceProfile.from_state(value, owner))
            except (KeyError, TypeError, ValueError, ValidationError):
                log.warning("skipping damaged inference profile %r in the state store", key)
        return out

    def _application(self, identifier: str, workspace: str) -> InferenceProfile | None:
        match = PROFILE_ARN.fullmatch(identifier)
        if match is not None and match["kind"] != "application-inference-profile":
            return None
        profile_id = match["id"] if match is not None else identifier
        if "/" in profile_id:  # never a key of another workspace
            return None
        value = self.state.get(NAMESPACE, state_key(workspace, profile_id))
        if value is None:
            return None
        profile = InferenceProfile.from_state(value, workspace)
        if match is not None and profile.arn != identifier:
            return None  # the same id under another region or account is another profile
        return profile

    def _system(self, identifier: str) -> InferenceProfile | None:
        match = PROFILE_ARN.fullmatch(identifier)
        if match is not None and match["kind"] != "inference-profile":
            return None
        system = SYSTEM_PROFILES.get(match["id"] if match is not None else identifier)
        return self._system_profile(system) if system is not None else None

    def _system_profile(self, system: SystemProfile) -> InferenceProfile:
        return InferenceProfile(
            profile_id=system.profile_id,
            name=system.name,
            arn=self._arn("inference-profile", system.profile_id),
            type=SYSTEM_DEFINED,
            model_arns=system.model_arns(),
            model_id=system.profile_id,
            description=system.description,
        )

    def _arn(self, kind: str, resource_id: str) -> str:
        return f"arn:aws:bedrock:{self.region}:{self.account_id}:{kind}/{resource_id}"

    def _model_arns(self, copy_from: str) -> tuple[str, ...]:
        """The ``models`` of a new profile: the foundation model(s) ``copy_from`` names."""
        region = self.region
        if copy_from.startswith("arn:"):
            region = copy_from.split(":")[3] or region
        model_id = underlying_model_id(copy_from)
        system = SYSTEM_PROFILES.get(model_id)
        if system is not None:
            return system.model_arns()
        base = parse_model_id(model_id).base_model_id or model_id
        return (f"arn:aws:bedrock:{region}::foundation-model/{base}",)


def _encode_token(key: tuple[int, str, str]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(key))).decode().rstrip("=")


def _decode_token(token: str) -> tuple[int, str, str]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        rank, created, profile_id = orjson.loads(raw)
        if type(rank) is int and isinstance(created, str) and isinstance(profile_id, str):
            return rank, created, profile_id
    except (ValueError, TypeError, orjson.JSONDecodeError):
        pass
    raise ValidationError("nextToken", "is not a token this server issued")
