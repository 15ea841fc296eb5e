"""Settings: defaults < ``llmtrail.toml`` < ``LLMTRAIL_*`` environment variables < flags.

Static settings only (providers, routes, aliases, limits, spool, store). Secrets never appear
in the file: a provider names the environment variable that holds its key (``api_key_env``),
and `masked` is what ``llmtrail config show`` prints.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmtrail.errors import ConfigError
from llmtrail.schema import DEFAULT_PROMOTED_KEYS
from llmtrail.store.query_bounds import QueryLimits

DEFAULT_PORT = 7788
PROVIDER_TYPES = ("sim", "openai", "anthropic", "bedrock")


@dataclass
class Timeouts:
    connect: float = 5.0
    first_byte: float = 120.0
    stream_idle: float = 60.0
    total: float = 600.0


@dataclass
class ProviderConfig:
    name: str
    type: str
    base_url: str = ""
    api_key_env: str | None = None
    timeouts: Timeouts = field(default_factory=Timeouts)
    options: dict[str, Any] = field(default_factory=dict)  # provider-specific (sim behaviour)


@dataclass
class RouteConfig:
    match: str  # glob over the requested model id
    provider: str
    model: str | None = None  # upstream model id; default: the requested id, prefix stripped


@dataclass
class Limits:
    max_request_bytes: int = 32 * 2**20  # gateway request body
    max_json_depth: int = 64
    max_stream_log_bytes: int = 16 * 2**20  # a stream's copy kept for its record
    max_ingest_bytes: int = 64 * 2**20  # one POST /api/records body
    max_ingest_records: int = 50_000  # records in one POST /api/records


@dataclass
class SpoolSettings:
    max_bytes: int = 2**30
    segment_bytes: int = 64 * 2**20
    fsync: bool = True
    queue_records: int = 100_000  # gateway records waiting for the spool thread
    batch_records: int = 20_000  # records per store transaction
    batch_wait_ms: int = 1000  # at most, under steady traffic
    batch_quiet_ms: int = 30  # a batch is stored once the spool was quiet this long
    dedup_window_s: int = 3600
    dedup_max_entries: int = 2_000_000


@dataclass
class MetricSettings:
    """``[metrics]``: how many values of a caller-chosen dimension get series of their own
    (later ones count as ``other``), how often staged rollups are folded, and how long each
    rollup width is kept."""

    top_n: int = 100
    maintenance_interval_s: float = 10.0
    retention_10s_hours: float = 6.0
    retention_1m_days: float = 15.0
    retention_5m_days: float = 63.0
    retention_1h_days: float = 455.0


@dataclass
class AlertSettings:
    """``[alerts]``: how often alarms are evaluated, where webhooks may go, delivery retries."""

    evaluation_interval_s: float = 60.0
    allow_private_webhooks: bool = False  # webhooks to loopback, link-local, private ranges
    public_url: str = ""  # the UI's address in messages; default http://HOST:PORT
    delivery_attempts: int = 5
    delivery_timeout_s: float = 10.0


@dataclass
class SmtpSettings:
    """``[smtp]``: the server e-mail notifiers send through (``from`` in TOML is ``sender``);
    the password only as the name of the environment variable holding it."""

    host: str = ""
    port: int = 25
    sender: str = ""
    starttls: bool = False
    user: str = ""
    password_env: str = ""
    timeout_s: float = 10.0


@dataclass
class ObjectSettings:
    """``[objects]``: where large bodies and archives go. ``url`` is empty (the default:
    ``objects`` in the data directory), a directory, or ``s3://BUCKET/PREFIX`` through boto3;
    ``endpoint_url`` points at an S3-compatible store, ``region`` is the bucket's. Credentials
    come from boto3's standard chain (environment, shared files, roles), never from here."""

    url: str = ""
    endpoint_url: str = ""
    region: str = ""
    delivery_interval_s: float = 60.0  # how often records go out in Bedrock's layout (s3Config)


@dataclass
class AccessSettings:
    """``[server]``: who may reach the server. ``allowed_hosts`` are the ``Host`` names it
    answers (empty: the loopback names and the address it is bound to), ``secret_env`` names
    the environment variable holding the server secret that several servers on one store share
    (empty: a file generated in the data directory), ``admin_key_env`` the variable whose key
    becomes an admin key at start (unattended deployments). ``recorder_process`` runs the
    record path (parsing, pricing, redaction, spool) in a process of its own beside the
    serving one (docs/record-path.md); off, it runs in the serving process. ``recorder_nice``
    is the recorder's scheduling niceness (0-19, added to the server's): where the two compete
    for a core, the relay of a model call goes first. ``recorder_idle`` (Linux) runs the
    recorder under ``SCHED_IDLE`` while it keeps up, so it takes only cores nothing else
    wants, and at its niceness while calls or requests wait on it (`server/yielding.py`).
    ``ingest_workers`` is how many worker processes of the recorder prepare ingest bodies of
    64 KB or more (0-64; 0: the recorder prepares them itself), started with the first such
    body (`pipeline/ingest_frames.py`)."""

    allowed_hosts: list[str] = field(default_factory=list)
    secret_env: str = ""
    admin_key_env: str = "LLMTRAIL_ADMIN_KEY"
    session_hours: float = 12.0
    key_refresh_s: float = 5.0  # how stale a server's view of the keys may be (revocation)
    recorder_process: bool = True
    recorder_nice: int = 10
    recorder_idle: bool = True
    ingest_workers: int = 2


@dataclass
class StoreSettings:
    """``[store]``: where records, spans and state live. ``url`` is ``duckdb:///PATH``
    (default: ``llmtrail.duckdb`` in the data directory), ``clickhouse://USER@HOST:8123/DB``
    (or ``clickhouses://`` for TLS) or ``chdb:///PATH`` (ClickHouse's embedded engine);
    ``password_env`` names the environment variable holding the ClickHouse password."""

    url: str = ""
    password_env: str = ""
    # on a store several servers share: how stale this server's view of what the others
    # wrote may be (the resend window, the budgets' spend, the gateway calls spans merge into)
    refresh_s: float = 5.0


@dataclass
class Settings:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    data_dir: Path = Path("llmtrail-data")
    account_id: str = "000000000000"
    region: str = "local"
    log_level: str = "info"
    drain_timeout_s: float = 30.0
    offload_bytes: int = 100 * 1024
    record_invocations: bool = True  # False: the gateway forwards without logging
    promoted_metadata_keys: tuple[str, ...] = DEFAULT_PROMOTED_KEYS
    providers: dict[str, ProviderConfig] = field(default_factory=dict)
    routes: list[RouteConfig] = field(default_factory=list)
    aliases: dict[str, str] = field(default_factory=dict)
    limits: Limits = field(default_factory=Limits)
    spool: SpoolSettings = field(default_factory=SpoolSettings)
    objects: ObjectSettings = field(default_factory=ObjectSettings)
    query: QueryLimits = field(default_factory=QueryLimits)
    metrics: MetricSettings = field(default_factory=MetricSettings)
    alerts: AlertSettings = field(default_factory=AlertSettings)
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
    server: AccessSettings = field(default_factory=AccessSettings)
    store: StoreSettings = field(default_factory=StoreSettings)

    @property
    def db_path(self) -> Path:
        """The DuckDB file ``[store] url`` names (by default in the data directory)."""
        from llmtrail.store.engines import parse_store_url

        where = parse_store_url(self.store.url, self.data_dir)
        if where.engine == "duckdb" and where.path is not None:
            return where.path
        return self.data_dir / "llmtrail.duckdb"  # unused on ClickHouse


# Built-in providers: `sim` always; `openai` when a route names it without defining it.
PRESETS: dict[str, dict[str, Any]] = {
    "sim": {"type": "sim"},
    "openai": {
        "type": "openai",
        "base_url": "https://api.openai.com/v1",
        "api_key_env": "OPENAI_API_KEY",
    },
    "anthropic": {
        "type": "anthropic",
        "base_url": "https://api.anthropic.com",
        "api_key_env": "ANTHROPIC_API_KEY",
    },
    "bedrock": {"type": "bedrock", "region": "us-east-1"},
}
DEFAULT_ROUTES = [RouteConfig(match="sim/*", provider="sim")]
_SECRET_NAMES = ("api_key", "key", "secret", "token", "password")
_ENV_SCALARS = {
    "HOST": "host",
    "PORT": "port",
    "DATA_DIR": "data_dir",
    "LOG_LEVEL": "log_level",
    "ACCOUNT_ID": "account_id",
    "REGION": "region",
    "RECORD_INVOCATIONS": "record_invocations",
}


def load_settings(
    config: Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    routes: Sequence[str] = (),
) -> Settings:
    """Build the effective settings. ``overrides`` are flags (None means not given);
    ``routes`` are ``PATTERN=PROVIDER[:MODEL]`` strings from ``--route``."""
    env = os.environ if env is None else env
    raw: dict[str, Any] = {}
    data_dir = (overrides or {}).get("data_dir") or env.get("LLMTRAIL_DATA_DIR")
    path = config or (Path(env["LLMTRAIL_CONFIG"]) if env.get("LLMTRAIL_CONFIG") else None)
    if path is None and data_dir and (Path(data_dir) / "llmtrail.toml").exists():
        path = Path(data_dir) / "llmtrail.toml"
    if path is not None:
        try:
            raw = tomllib.loads(Path(path).read_text())
        except FileNotFoundError:
            raise ConfigError(f"--config: no file at {path}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: {exc}") from None
    for suffix, key in _ENV_SCALARS.items():
        if f"LLMTRAIL_{suffix}" in env:
            raw[key] = env[f"LLMTRAIL_{suffix}"]
    for name, text in env.items():  # LLMTRAIL_SPOOL__MAX_BYTES=… sets [spool] max_bytes
        section, sep, key = name.removeprefix("LLMTRAIL_").partition("__")
        if name.startswith("LLMTRAIL_") and sep and section.lower() in _ENV_SECTIONS:
            raw.setdefault(section.lower(), {})[key.lower()] = _env_value(text)
    for key, value in (overrides or {}).items():
        if key == "store" and isinstance(value, str):  # --store URL sets [store] url alone
            raw["store"] = {**_table(raw, "store", dict, "settings"), "url": value}
        elif value is not None:
            raw[key] = value
    settings = _build(raw, str(path or "settings"))
    for spec in routes:
        settings.routes.insert(0, parse_route(spec))
    for route in settings.routes:
        if route.provider not in settings.providers:
            if route.provider not in PRESETS:
                raise ConfigError(
                    f"route {route.match!r}: provider {route.provider!r} is not defined "
                    f"(define [providers.{route.provider}] or use one of {sorted(PRESETS)})"
                )
            settings.providers[route.provider] = _provider(route.provider, PRESETS[route.provider])
    return settings


_ENV_SECTIONS = (
    "limits",
    "spool",
    "query",
    "metrics",
    "alerts",
    "smtp",
    "objects",
    "server",
    "store",
)


def _env_value(text: str) -> Any:
    """A TOML value (number, boolean, string) from an environment variable's text."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_route(spec: str) -> RouteConfig:
    pattern, sep, target = spec.partition("=")
    if not sep or not pattern or not target:
        raise ConfigError(f"--route {spec!r}: expected PATTERN=PROVIDER[:UPSTREAM_MODEL]")
    provider, _, model = target.partition(":")
    return RouteConfig(match=pattern, provider=provider, model=model or None)


def _build(raw: dict[str, Any], where: str) -> Settings:
    s = Settings()
    known = {f.name for f in dataclasses.fields(Settings)}
    for key in raw:
        if key not in known:
            raise ConfigError(f"{where}: unknown setting {key!r}")
    for key in ("host", "account_id", "region", "log_level"):
        if key in raw:
            setattr(s, key, str(raw[key]))
    if s.log_level.lower() not in _LOG_LEVELS:
        raise ConfigError(f"{where}: log_level must be one of {', '.join(_LOG_LEVELS)}")
    for key, kind in (("port", int), ("drain_timeout_s", float), ("offload_bytes", int)):
        if key in raw:
            try:
                value = kind(raw[key])
            except (TypeError, ValueError, OverflowError):
                value = -1
            if not 0 <= value < 2**63 or (key == "port" and value > 65535):
                raise ConfigError(f"{where}: {key} must be a number in range, got {raw[key]!r}")
            setattr(s, key, value)
    if "record_invocations" in raw:
        value = raw["record_invocations"]
        s.record_invocations = (
            value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes", "on")
        )
    if "data_dir" in raw:
        s.data_dir = Path(raw["data_dir"])
    if "promoted_metadata_keys" in raw:
        s.promoted_metadata_keys = _promoted(raw["promoted_metadata_keys"], where)
    s.providers = {"sim": _provider("sim", PRESETS["sim"])}
    for name, body in _table(raw, "providers", dict, where).items():
        s.providers[name] = _provider(name, _table({"p": body}, "p", dict, f"[providers.{name}]"))
    s.routes = []
    for i, r in enumerate(_table(raw, "routes", list, where)):
        route = _only(_table({"r": r}, "r", dict, f"routes[{i}]"), RouteConfig, f"routes[{i}]")
        if not isinstance(route.get("match"), str) or not isinstance(route.get("provider"), str):
            raise ConfigError(f"{where}: routes[{i}] needs match and provider (strings)")
        s.routes.append(RouteConfig(**route))
    s.routes += list(DEFAULT_ROUTES)
    s.aliases = {str(k): str(v) for k, v in _table(raw, "aliases", dict, where).items()}
    s.limits = Limits(**_only(_table(raw, "limits", dict, where), Limits, f"{where}: [limits]"))
    s.spool = SpoolSettings(
        **_only(_table(raw, "spool", dict, where), SpoolSettings, f"{where}: [spool]")
    )
    s.query = QueryLimits(
        **_only(_table(raw, "query", dict, where), QueryLimits, f"{where}: [query]")
    )
    s.metrics = MetricSettings(
        **_only(_table(raw, "metrics", dict, where), MetricSettings, f"{where}: [metrics]")
    )
    s.alerts = AlertSettings(
        **_only(_table(raw, "alerts", dict, where), AlertSettings, f"{where}: [alerts]")
    )
    smtp = dict(_table(raw, "smtp", dict, where))
    if "from" in smtp:
        smtp["sender"] = smtp.pop("from")
    s.smtp = SmtpSettings(**_only(smtp, SmtpSettings, f"{where}: [smtp]"))
    objects = _only(_table(raw, "objects", dict, where), ObjectSettings, f"{where}: [objects]")
    interval = objects.pop("delivery_interval_s", ObjectSettings.delivery_interval_s)
    if isinstance(interval, bool) or not isinstance(interval, int | float) or interval <= 0:
        raise ConfigError(f"{where}: [objects] delivery_interval_s must be a number of seconds > 0")
    s.objects = ObjectSettings(
        **{k: str(v) for k, v in objects.items()}, delivery_interval_s=float(interval)
    )
    from llmtrail.store.objects import check_object_settings  # names the setting

    check_object_settings(s.objects, f"{where}: [objects]")
    access = _only(_table(raw, "server", dict, where), AccessSettings, f"{where}: [server]")
    hosts = access.get("allowed_hosts", [])
    if not isinstance(hosts, list) or not all(isinstance(h, str) and h for h in hosts):
        raise ConfigError(f"{where}: [server] allowed_hosts must be a list of host names")
    s.server = AccessSettings(**access)
    if s.query.threads > 1024:
        raise ConfigError(f"{where}: [query] threads must be from 0 (every core) to 1024")
    if not 0 <= s.server.recorder_nice <= 19:
        raise ConfigError(f"{where}: [server] recorder_nice must be from 0 to 19")
    if not 0 <= s.server.ingest_workers <= 64:
        raise ConfigError(f"{where}: [server] ingest_workers must be from 0 to 64")
    store = _only(_table(raw, "store", dict, where), StoreSettings, f"{where}: [store]")
    refresh = store.pop("refresh_s", StoreSettings.refresh_s)
    if isinstance(refresh, bool) or not isinstance(refresh, int | float) or refresh < 1:
        raise ConfigError(f"{where}: [store] refresh_s must be a number of seconds ≥ 1")
    s.store = StoreSettings(**{k: str(v) for k, v in store.items()}, refresh_s=float(refresh))
    from llmtrail.store.engines import parse_store_url  # checks the URL, names the setting

    parse_store_url(s.store.url, s.data_dir)
    return s


def _table(raw: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    value = raw.get(key, kind())
    if not isinstance(value, kind):
        word = "a table" if kind is dict else "an array of tables"
        raise ConfigError(f"{where}: {key} must be {word}")
    return value


def _promoted(value: Any, where: str) -> tuple[str, ...]:
    from llmtrail.schema import metadata_column_name

    if not isinstance(value, list) or not all(isinstance(k, str) and k for k in value):
        raise ConfigError(f"{where}: promoted_metadata_keys must be an array of strings")
    columns: dict[str, str] = {}
    for key in value:
        other = columns.setdefault(metadata_column_name(key), key)
        if other != key:
            raise ConfigError(
                f"{where}: promoted_metadata_keys {other!r} and {key!r} would share the column "
                f"{metadata_column_name(key)!r}; keep one"
            )
    return tuple(dict.fromkeys(value))


def _provider(name: str, body: Mapping[str, Any]) -> ProviderConfig:
    where = f"[providers.{name}]"
    for key in body:
        if key != "api_key_env" and any(word in key.lower() for word in _SECRET_NAMES):
            raise ConfigError(
                f"{where}: {key!r} looks like a secret; name the environment variable that "
                'holds it instead (api_key_env = "MY_KEY_VARIABLE")'
            )
    kind = body.get("type", PRESETS.get(name, {}).get("type"))
    if kind not in PROVIDER_TYPES and kind not in _plugin_types():
        raise ConfigError(f"{where}: type must be one of {', '.join(PROVIDER_TYPES)}, got {kind!r}")
    if kind in ("openai", "anthropic") and not body.get("base_url"):
        raise ConfigError(f"{where}: base_url is required for an {kind} provider")
    if body.get("base_url"):
        url = urllib.parse.urlsplit(str(body["base_url"]))
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ConfigError(f"{where}: base_url must be an http(s) URL")
        if url.username or url.password or url.query or url.fragment:
            raise ConfigError(
                f"{where}: base_url must not carry credentials or a query string; "
                "put the key in an environment variable named by api_key_env"
            )
    timeouts = Timeouts(**_only(body.get("timeouts", {}), Timeouts, f"{where}.timeouts"))
    options = {
        k: v for k, v in body.items() if k not in ("type", "base_url", "api_key_env", "timeouts")
    }
    known = {
        "sim": _SIM_OPTIONS,
        "openai": frozenset(),
        "anthropic": frozenset({"anthropic_version"}),
        "bedrock": frozenset({"region", "profile"}),
    }.get(kind)
    if known is not None and set(options) - known:
        raise ConfigError(
            f"{where}: unknown setting(s) {sorted(set(options) - known)} for a {kind} provider"
        )
    return ProviderConfig(
        name,
        kind,
        str(body.get("base_url", "")).rstrip("/"),
        body.get("api_key_env"),
        timeouts,
        options,
    )


_LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
# zero would mean "unbounded" or "nothing fits" for these
_AT_LEAST_ONE = frozenset(
    {
        "max_bytes",
        "session_hours",
        "key_refresh_s",
        "segment_bytes",
        "queue_records",
        "batch_records",
        "max_request_bytes",
        "max_json_depth",
        "max_stream_log_bytes",
        "max_ingest_bytes",
        "max_ingest_records",
        "dedup_max_entries",
        "timeout_s",
        "memory_bytes",
        "result_bytes",
        "temp_bytes",
        "concurrency",
        "evaluation_interval_s",
        "delivery_attempts",
        "delivery_timeout_s",
        "top_n",
        "maintenance_interval_s",
        "retention_10s_hours",
        "retention_1m_days",
        "retention_5m_days",
        "retention_1h_days",
    }
)
_SIM_OPTIONS = frozenset(
    {"latency_ms", "ttft_ms", "chunk_delay_ms", "chunk_words", "words", "error"}
)


def _plugin_types() -> set[str]:
    from importlib.metadata import entry_points

    return {entry.name for entry in entry_points(group="llmtrail.providers")}


def _only(body: Mapping[str, Any], cls: type, where: str) -> dict[str, Any]:
    """``body``'s settings for dataclass ``cls``: unknown names are errors, and values are
    converted to the type of each field's default (numbers, booleans)."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(body) - set(fields)
    if unknown:
        raise ConfigError(f"{where}: unknown setting(s) {sorted(unknown)}; known: {sorted(fields)}")
    out = dict(body)
    for name, value in body.items():
        default = fields[name].default
        kind = type(default) if default is not dataclasses.MISSING else None
        if kind is bool and not isinstance(value, bool):
            raise ConfigError(f"{where}: {name} must be true or false, got {value!r}")
        if kind in (int, float):
            low = 1 if name in _AT_LEAST_ONE else 0
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or not low <= value < 2**63
            ):
                raise ConfigError(
                    f"{where}: {name} must be a finite number of at least {low}, got {value!r}"
                )
            out[name] = kind(value)
    return out


def masked(settings: Settings, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The effective settings as plain data, secrets shown only as set/unset."""
    env = os.environ if env is None else env
    out = dataclasses.asdict(settings)
    out["data_dir"] = str(settings.data_dir)
    for name, provider in out["providers"].items():
        var = provider.get("api_key_env")
        provider["api_key"] = (
            ("****** (from $" + var + ")")
            if var and env.get(var)
            else (
                "not set: the caller's key is passed through" if provider["type"] != "sim" else None
            )
        )
        out["providers"][name] = provider
    return out
