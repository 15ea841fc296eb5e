"""The model-invocation logging configuration of a workspace: Bedrock's
``PutModelInvocationLoggingConfiguration`` body, with Bedrock's meaning.

What it decides:

* **what is delivered** — ``textDataDeliveryEnabled``, ``imageDataDeliveryEnabled``,
  ``embeddingDataDeliveryEnabled``, ``videoDataDeliveryEnabled`` and
  ``audioDataDeliveryEnabled`` (in botocore's model of ``bedrock`` 2023-04-20, so an AWS
  runbook's body may carry it). Off, a record keeps its metadata and counts and loses those
  bodies (`llmtrail.security.delivery.apply_delivery`). A flag left out of a PUT is on, as
  the AWS console and Terraform's provider default it.
* **where** — ``s3Config`` and ``cloudWatchConfig.largeDataDeliveryS3Config`` name a bucket
  and key prefix; llmtrail has one object store, so ``bucket/prefix/`` becomes a key prefix
  inside it (`LoggingConfig.objects_prefix`, `LoggingConfig.large_data_prefix`).
  ``cloudWatchConfig.logGroupName`` is the name the query language (``SOURCE '…'``) and the
  AWS-shaped APIs use for the workspace's records, ``/aws/bedrock/modelinvocations`` when
  none is set. ``roleArn`` is required and checked as Bedrock does, kept and answered back,
  and used for nothing: llmtrail needs no role to write its own store.

Three states, per workspace:

* **default** — nothing stored: everything is delivered, as llmtrail always did (a logging
  server that logged nothing until configured would surprise everyone who runs it for that).
* **configured** — a PUT stored a body; the flags say what is delivered.
* **off** — after a DELETE. On Bedrock, deleting the configuration stops logging altogether.
  llmtrail's purpose is the metadata (who called which model, tokens, latency, cost, errors),
  so off here means **bodies off**: records are still written, with their metadata, counts,
  tokens, latency, cost and errors, and no request or response body at all. A PUT turns
  delivery back on.

Beside Bedrock's body each workspace keeps one llmtrail setting, ``allowNoLog`` (default
true): whether a caller may opt one request out of body logging with the
``x-llmtrail-no-log: true`` header. It is a top-level key of the PUT body, beside
``loggingConfig``; a PUT that leaves it out keeps the stored value, so an AWS runbook's PUT
never re-allows an opt-out the workspace forbade. Retention and redaction are resources of
their own and are not part of this body, so such a PUT never touches them either.

`LoggingConfigStore` keeps the state in the StateStore (namespace ``logging-config``, key the
workspace), so every server sharing the store sees it; `LoggingConfigs` is the capture side's
cache, re-reading a workspace at most once a second, so a change applies within a second on
every server, without a restart.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

from llmtrail.errors import ValidationError
from llmtrail.store.interfaces import StateStore

log = logging.getLogger("llmtrail.security")

NAMESPACE = "logging-config"
DEFAULT_LOG_GROUP = "/aws/bedrock/modelinvocations"
REFRESH_SECONDS = 1.0

# Limits from botocore's service model of bedrock (2023-04-20): LogGroupName 1..512,
# RoleArn 0..2048 with its pattern, BucketName 3..63, KeyPrefix 0..1024.
LOG_GROUP_NAME_MAX = 512
ROLE_ARN_MAX = 2048
BUCKET_NAME_MIN, BUCKET_NAME_MAX = 3, 63
KEY_PREFIX_MAX = 1024
# Bedrock's RoleArn pattern, matched whole (AWS validates the whole value).
_ROLE_ARN = re.compile(r"arn:aws(-[^:]+)?:iam::([0-9]{12})?:role/.+", re.DOTALL)
# CloudWatch Logs' LogGroupName pattern (botocore's logs model): the name is a log group's.
_LOG_GROUP_NAME = re.compile(r"[\.\-_/#A-Za-z0-9]+")
# S3's bucket naming rule: the bucket becomes a directory of the object store, so it must be
# one safe path segment; a name S3 itself would refuse is refused here too.
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]*[a-z0-9]")
_KEY_PREFIX_BAD = re.compile(r"[\x00-\x1f\x7f\\]")

FLAGS = (
    "textDataDeliveryEnabled",
    "imageDataDeliveryEnabled",
    "embeddingDataDeliveryEnabled",
    "videoDataDeliveryEnabled",
    "audioDataDeliveryEnabled",
)
_CONFIG_MEMBERS = (*FLAGS, "cloudWatchConfig", "s3Config")
_CLOUDWATCH_MEMBERS = ("logGroupName", "roleArn", "largeDataDeliveryS3Config")
_S3_MEMBERS = ("bucketName", "keyPrefix")
# Top-level members of a PUT: Bedrock's one, llmtrail's setting, and the read-only block a
# GET answers (so a GET's answer can be PUT back unchanged).
_BODY_MEMBERS = ("loggingConfig", "allowNoLog", "llmtrail")

State = Literal["default", "configured", "off"]

MEANINGS: dict[str, str] = {
    "default": "no configuration is stored for this workspace: every body is delivered "
    "(llmtrail's default); PUT a configuration to change what is delivered",
    "configured": "bodies are delivered as the flags say; a record whose bodies were not "
    "delivered keeps its metadata, counts, tokens, latency, cost and errors",
    "off": "delivery is off (the configuration was deleted): records keep metadata, counts, "
    "tokens, latency, cost and errors, and no request or response body at all; unlike "
    "Bedrock, which logs nothing once its configuration is deleted, llmtrail keeps the "
    "metadata; PUT a configuration to deliver bodies again",
}


@dataclass(frozen=True)
class S3Config:
    """A bucket and key prefix; in llmtrail's one object store, the prefix ``bucket/prefix/``."""

    bucket_name: str
    key_prefix: str = ""

    @property
    def prefix(self) -> str:
        """``bucket/prefix/`` with empty segments dropped: a key prefix in the object store."""
        segments = [self.bucket_name, *(s for s in self.key_prefix.split("/") if s)]
        return "/".join(segments) + "/"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"bucketName": self.bucket_name}
        if self.key_prefix:
            out["keyPrefix"] = self.key_prefix
        return out


@dataclass(frozen=True)
class CloudWatchConfig:
    log_group_name: str
    role_arn: str
    large_data_delivery_s3_config: S3Config | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"logGroupName": self.log_group_name, "roleArn": self.role_arn}
        if self.large_data_delivery_s3_config is not None:
            out["largeDataDeliveryS3Config"] = self.large_data_delivery_s3_config.to_json()
        return out


@dataclass(frozen=True)
class LoggingConfig:
    """A workspace's logging configuration in effect (see the module docstring for the three
    states). `DEFAULT` when none is stored, `OFF` after a DELETE."""

    text_data_delivery_enabled: bool = True
    image_data_delivery_enabled: bool = True
    embedding_data_delivery_enabled: bool = True
    video_data_delivery_enabled: bool = True
    audio_data_delivery_enabled: bool = True
    cloud_watch_config: CloudWatchConfig | None = None
    s3_config: S3Config | None = None
    allow_no_log: bool = True
    state: State = "default"
    updated_at: str | None = field(default=None, compare=False)
    updated_by: str | None = field(default=None, compare=False)

    # -- what capture reads ----------------------------------------------------------------
    @property
    def delivers_bodies(self) -> bool:
        """False in the off state: no body of any kind is delivered."""
        return self.state != "off"

    @property
    def log_group_name(self) -> str:
        """The log group the workspace's records are, for the query language and AWS APIs."""
        cw = self.cloud_watch_config
        return cw.log_group_name if cw is not None else DEFAULT_LOG_GROUP

    @property
    def objects_prefix(self) -> str:
        """The object-store key prefix of this workspace's delivered objects (``s3Config``):
        ``bucket/prefix/``, or ``""`` (the store's root, today's layout) when none is set."""
        return self.s3_config.prefix if self.s3_config is not None else ""

    @property
    def large_data_prefix(self) -> str:
        """Where offloaded large bodies go: ``largeDataDeliveryS3Config`` when set, else
        ``s3Config`` (Bedrock writes large data beside the logs there), else the root."""
        cw = self.cloud_watch_config
        if cw is not None and cw.large_data_delivery_s3_config is not None:
            return cw.large_data_delivery_s3_config.prefix
        return self.objects_prefix

    # -- Bedrock's shape -------------------------------------------------------------------
    def logging_config_json(self) -> dict[str, Any]:
        """``loggingConfig`` as Bedrock's GET answers it, every flag present."""
        out: dict[str, Any] = {}
        if self.cloud_watch_config is not None:
            out["cloudWatchConfig"] = self.cloud_watch_config.to_json()
        if self.s3_config is not None:
            out["s3Config"] = self.s3_config.to_json()
        out["textDataDeliveryEnabled"] = self.text_data_delivery_enabled
        out["imageDataDeliveryEnabled"] = self.image_data_delivery_enabled
        out["embeddingDataDeliveryEnabled"] = self.embedding_data_delivery_enabled
        out["videoDataDeliveryEnabled"] = self.video_data_delivery_enabled
        out["audioDataDeliveryEnabled"] = self.audio_data_delivery_enabled
        return out

    def to_response(self) -> dict[str, Any]:
        """The GET answer: Bedrock's ``{"loggingConfig": …}`` (absent when off, as Bedrock
        answers after a delete), ``allowNoLog``, and a read-only ``llmtrail`` block saying
        which state is in effect and what it means."""
        out: dict[str, Any] = {}
        if self.state != "off":
            out["loggingConfig"] = self.logging_config_json()
        out["allowNoLog"] = self.allow_no_log
        info: dict[str, Any] = {
            "state": self.state,
            "isDefault": self.state == "default",
            "bodiesDelivered": self.delivers_bodies,
            "logGroupName": self.log_group_name,
            "meaning": MEANINGS[self.state],
        }
        if self.updated_at:
            info["updatedAt"] = self.updated_at
        if self.updated_by:
            info["updatedBy"] = self.updated_by
        out["llmtrail"] = info
        return out

    # -- stored form -----------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        """What the StateStore keeps for the workspace."""
        out: dict[str, Any] = {"state": self.state, "allowNoLog": self.allow_no_log}
        if self.state == "configured":
            out["loggingConfig"] = self.logging_config_json()
        if self.updated_at:
            out["updatedAt"] = self.updated_at
        if self.updated_by:
            out["updatedBy"] = self.updated_by
        return out

    @classmethod
    def from_state(cls, value: Any) -> LoggingConfig:
        """The configuration a stored value describes (`DEFAULT` for None); raises
        `ValidationError` for a value this module did not write."""
        if value is None:
            return DEFAULT
        if not isinstance(value, Mapping):
            raise ValidationError("logging-config", "the stored value is not an object")
        allow = value.get("allowNoLog", True)
        if not isinstance(allow, bool):
            raise ValidationError("allowNoLog", "must be true or false")
        at, by = value.get("updatedAt"), value.get("updatedBy")
        at = at if isinstance(at, str) else None
        by = by if isinstance(by, str) else None
        if value.get("state") == "off":
            return replace(OFF, allow_no_log=allow, updated_at=at, updated_by=by)
        if value.get("state") != "configured":
            raise ValidationError("state", f"unknown stored state {value.get('state')!r}")
        parsed = parse_logging_config(value.get("loggingConfig"))
        return replace(parsed, allow_no_log=allow, updated_at=at, updated_by=by)


DEFAULT = LoggingConfig()
OFF = LoggingConfig(
    text_data_delivery_enabled=False,
    image_data_delivery_enabled=False,
    embedding_data_delivery_enabled=False,
    video_data_delivery_enabled=False,
    audio_data_delivery_enabled=False,
    state="off",
)


# -- parsing and validation -------------------------------------------------------------------
@dataclass(frozen=True)
class PutRequest:
    """A parsed PUT body: the configuration, and ``allowNoLog`` when the body gave it."""

    config: LoggingConfig
    allow_no_log: bool | None


def parse_put_body(body: Any) -> PutRequest:
    """Bedrock's ``PutModelInvocationLoggingConfiguration`` body, plus llmtrail's optional
    top-level ``allowNoLog``; a read-only ``llmtrail`` block (from a GET) is ignored. Raises
    `ValidationError` naming the field and the limit; unknown members are refused."""
    obj = _object(body, "body")
    _known(obj, _BODY_MEMBERS, "body", "PutModelInvocationLoggingConfiguration")
    if "loggingConfig" not in obj:
        raise ValidationError("loggingConfig", "is required")
    config = parse_logging_config(obj["loggingConfig"])
    allow = obj.get("allowNoLog")
    if allow is not None and not isinstance(allow, bool):
        raise ValidationError("allowNoLog", f"must be true or false, got {_kind(allow)}")
    return PutRequest(config, allow)


def parse_logging_config(value: Any, where: str = "loggingConfig") -> LoggingConfig:
    """A ``LoggingConfig`` structure as a configured `LoggingConfig`."""
    obj = _object(value, where)
    _known(obj, _CONFIG_MEMBERS, where, "LoggingConfig")
    flags: dict[str, bool] = {}
    for name in FLAGS:
        given = obj.get(name)
        if given is not None and not isinstance(given, bool):
            raise ValidationError(f"{where}.{name}", f"must be true or false, got {_kind(given)}")
        flags[name] = True if given is None else given
    cw = obj.get("cloudWatchConfig")
    s3 = obj.get("s3Config")
    return LoggingConfig(
        text_data_delivery_enabled=flags["textDataDeliveryEnabled"],
        image_data_delivery_enabled=flags["imageDataDeliveryEnabled"],
        embedding_data_delivery_enabled=flags["embeddingDataDeliveryEnabled"],
        video_data_delivery_enabled=flags["videoDataDeliveryEnabled"],
        audio_data_delivery_enabled=flags["audioDataDeliveryEnabled"],
        cloud_watch_config=None if cw is None else _cloud_watch(cw, f"{where}.cloudWatchConfig"),
        s3_config=None if s3 is None else _s3(s3, f"{where}.s3Config"),
        state="configured",
    )


def _cloud_watch(value: Any, where: str) -> CloudWatchConfig:
    obj = _object(value, where)
    _known(obj, _CLOUDWATCH_MEMBERS, where, "CloudWatchConfig")
    name = _string(obj, "logGroupName", where, 1, LOG_GROUP_NAME_MAX)
    if not _LOG_GROUP_NAME.fullmatch(name):
        raise ValidationError(
            f"{where}.logGroupName",
            "may hold only letters, digits and . - _ / # (CloudWatch Logs' log group names)",
        )
    role = _string(obj, "roleArn", where, 0, ROLE_ARN_MAX)
    if not _ROLE_ARN.fullmatch(role):
        raise ValidationError(
            f"{where}.roleArn",
            "must match arn:aws(-[^:]+)?:iam::([0-9]{12})?:role/.+ "
            "(an IAM role ARN, as Bedrock requires)",
        )
    large = obj.get("largeDataDeliveryS3Config")
    return CloudWatchConfig(
        name, role, None if large is None else _s3(large, f"{where}.largeDataDeliveryS3Config")
    )


def _s3(value: Any, where: str) -> S3Config:
    obj = _object(value, where)
    _known(obj, _S3_MEMBERS, where, "S3Config")
    bucket = _string(obj, "bucketName", where, BUCKET_NAME_MIN, BUCKET_NAME_MAX)
    if not _BUCKET_NAME.fullmatch(bucket) or ".." in bucket:
        raise ValidationError(
            f"{where}.bucketName",
            "must be an S3 bucket name: lowercase letters, digits, . and -, starting and "
            "ending with a letter or digit, no '..'",
        )
    prefix = (
        "" if obj.get("keyPrefix") is None else _string(obj, "keyPrefix", where, 0, KEY_PREFIX_MAX)
    )
    if _KEY_PREFIX_BAD.search(prefix):
        raise ValidationError(
            f"{where}.keyPrefix", "may not hold control characters or backslashes"
        )
    if any(segment in (".", "..") for segment in prefix.split("/")):
        raise ValidationError(
            f"{where}.keyPrefix", "may not hold '.' or '..' segments (it becomes a key prefix)"
        )
    return S3Config(bucket, prefix)


def _object(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValidationError(where, f"must be a JSON object, got {_kind(value)}")
    return value


def _known(obj: Mapping[str, Any], members: tuple[str, ...], where: str, shape: str) -> None:
    for key in obj:
        if key not in members:
            raise ValidationError(
                f"{where}.{str(key)[:64]}",
                f"is not a member of {shape} (members: {', '.join(members)})",
            )


def _string(obj: Mapping[str, Any], name: str, where: str, low: int, high: int) -> str:
    value = obj.get(name)
    if value is None:
        raise ValidationError(f"{where}.{name}", "is required")
    if not isinstance(value, str):
        raise ValidationError(f"{where}.{name}", f"must be a string, got {_kind(value)}")
    if not low <= len(value) <= high:
        raise ValidationError(
            f"{where}.{name}",
            f"is {len(value)} characters long; it must be {low} to {high} characters",
        )
    return value


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return {str: "a string", int: "a number", float: "a number", list: "an array"}.get(
        type(value), "an object"
    )


# -- the store and the capture side's cache ------------------------------------------------
class LoggingConfigStore:
    """Workspaces' configurations in the StateStore: namespace ``logging-config``, key the
    workspace. Nothing stored is the default state."""

    def __init__(self, state: StateStore, now: Callable[[], datetime] | None = None) -> None:
        self.state = state
        self._now = now or (lambda: datetime.now(UTC))

    def get(self, workspace: str) -> LoggingConfig:
        """The workspace's configuration in effect (`DEFAULT` when none is stored)."""
        return LoggingConfig.from_state(self.state.get(NAMESPACE, workspace))

    def put(self, workspace: str, request: PutRequest, actor: str | None = None) -> LoggingConfig:
        """Store a parsed PUT; ``allowNoLog`` left out keeps the stored value."""
        allow = request.allow_no_log
        if allow is None:
            allow = self.get(workspace).allow_no_log
        config = replace(
            request.config, allow_no_log=allow, updated_at=self._stamp(), updated_by=actor
        )
        self.state.put(NAMESPACE, workspace, config.to_state())
        return config

    def delete(self, workspace: str, actor: str | None = None) -> LoggingConfig:
        """Turn delivery off (the off state), keeping ``allowNoLog``."""
        allow = self.get(workspace).allow_no_log
        config = replace(OFF, allow_no_log=allow, updated_at=self._stamp(), updated_by=actor)
        self.state.put(NAMESPACE, workspace, config.to_state())
        return config

    def reset(self, workspace: str) -> bool:
        """Forget the workspace's configuration (back to the default state); True if one was
        stored. Not Bedrock's DELETE, which turns delivery off: for tests and erasure."""
        return self.state.delete(NAMESPACE, workspace)

    def _stamp(self) -> str:
        return self._now().astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class LoggingConfigs:
    """The configuration capture applies, per workspace, re-read from the store at most once
    every ``max_age`` seconds (by the injected monotonic ``clock``), so a change made on any
    server sharing the store applies within that time. Thread-safe.

    A read that fails keeps the configuration read before; with none read before, the
    workspace is taken to be off (metadata kept, bodies withheld) until a read succeeds:
    capture never delivers bodies a configuration it cannot read may forbid."""

    def __init__(
        self,
        store: LoggingConfigStore,
        clock: Callable[[], float] = time.monotonic,
        max_age: float = REFRESH_SECONDS,
    ) -> None:
        self.store = store
        self._clock = clock
        self._max_age = max_age
        self._cache: dict[str, tuple[float, LoggingConfig]] = {}
        self._lock = threading.Lock()
        # told of every change made here (the recorder process re-reads it too)
        self.listeners: list[Callable[[], None]] = []

    def for_workspace(self, workspace: str) -> LoggingConfig:
        now = self._clock()
        with self._lock:
            cached = self._cache.get(workspace)
        if cached is not None and now - cached[0] < self._max_age:
            return cached[1]
        try:
            config = self.store.get(workspace)
        except Exception:
            log.exception("reading the logging configuration of workspace %r failed", workspace)
            config = cached[1] if cached is not None else OFF
        with self._lock:
            self._cache[workspace] = (now, config)
        return config

    def invalidate(self, workspace: str | None = None) -> None:
        """Re-read ``workspace`` (every workspace with None) on its next use: this server's
        own changes apply at once."""
        with self._lock:
            if workspace is None:
                self._cache.clear()
            else:
                self._cache.pop(workspace, None)
        for listener in self.listeners:
            listener()
