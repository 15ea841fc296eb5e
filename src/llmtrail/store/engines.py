"""Choosing the store: ``[store] url`` names an engine, `open_stores` opens all of its parts.

A server needs seven things of its store — records, spans, control-plane state, the query
engine, the metric rollups, the eraser and a way to close them — and each engine provides
them differently: DuckDB shares one file (and one writer thread) between all seven and keeps
its rollups in the batch's own transaction; ClickHouse shares one client and keeps rollups by
materialized views. `Stores` holds the seven behind their interfaces, so the runtime never
names an engine. The URL forms:

* ``duckdb:///abs/path.duckdb`` (or ``duckdb://relative/path``); the default, an empty URL,
  is ``llmtrail.duckdb`` in the data directory;
* ``clickhouse://USER@HOST:8123/DATABASE`` (``clickhouses://`` for TLS, default port 8443);
  the password is never in the URL but in the environment variable ``[store] password_env``
  names;
* ``chdb:///abs/path`` (or ``chdb://relative/path``; ``?database=NAME`` for another
  database than ``llmtrail``): ClickHouse's embedded engine through the same client library,
  for tests and single-node use. Like DuckDB, one process owns its path; inside it, any
  number of runtimes may share it (as servers share a ClickHouse server).

Engines are imported when opened, so reading the settings stays light.
"""

from __future__ import annotations

import os
import re
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmtrail.errors import ConfigError, Unavailable
from llmtrail.schema import RecordSchema
from llmtrail.store.duckdb.database import Database
from llmtrail.store.interfaces import (
    DataEraser,
    MetricStore,
    QueryEngine,
    RecordStore,
    SpanStore,
    StateStore,
)

if TYPE_CHECKING:
    from llmtrail.config import Settings
    from llmtrail.store.duckdb.metrics import DuckDBRollups

ENGINES = ("duckdb", "clickhouse", "chdb")
DEFAULT_DATABASE = "llmtrail"
_SETTING = "[store] url (LLMTRAIL_STORE__URL, --store)"
_DATABASE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")


@dataclass(frozen=True)
class StoreLocation:
    """Where the store is, as ``[store] url`` says: a file or directory for the embedded
    engines (``path``), a server for ClickHouse (``host``, ``port``, ``user``, ``secure``),
    and the database holding llmtrail's tables on either ClickHouse."""

    engine: str
    path: Path | None = None
    host: str = ""
    port: int = 0
    user: str = "default"
    secure: bool = False
    database: str = DEFAULT_DATABASE

    @property
    def url(self) -> str:
        """The URL without credentials (what logs and errors may show)."""
        if self.path is not None:
            named = self.engine == "chdb" and self.database != DEFAULT_DATABASE
            return f"{self.engine}://{self.path}" + (f"?database={self.database}" if named else "")
        scheme = "clickhouses" if self.secure else "clickhouse"
        return f"{scheme}://{self.user}@{self.host}:{self.port}/{self.database}"


def parse_store_url(url: str, data_dir: Path) -> StoreLocation:
    """The location ``url`` names; `ConfigError` naming the setting when it names none."""
    if not url:
        return StoreLocation("duckdb", Path(data_dir) / "llmtrail.duckdb")
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in (*ENGINES, "clickhouses"):
        raise ConfigError(
            f"{_SETTING}: {_shown(url)!r} is not a store URL; use duckdb:///PATH, "
            "clickhouse://USER@HOST:8123/DATABASE or chdb:///PATH"
        )
    if scheme in ("duckdb", "chdb"):
        text, _, query = rest.partition("?")
        path = urllib.parse.unquote(text)
        if not path.strip("/"):
            raise ConfigError(f"{_SETTING}: {scheme}:// needs a path, as in {scheme}:///data/x")
        options = urllib.parse.parse_qs(query, keep_blank_values=True)
        database = DEFAULT_DATABASE
        if (
            scheme == "chdb"
            and set(options) <= {"database"}
            and len(options.get("database", [])) < 2
        ):
            database = options.get("database", [DEFAULT_DATABASE])[0]
        elif options:
            raise ConfigError(
                f"{_SETTING}: {scheme}:// takes "
                + ("only ?database=NAME" if scheme == "chdb" else "no query string")
            )
        _check_database(database)
        return StoreLocation(scheme, Path(path), database=database)
    parts = urllib.parse.urlsplit(url)
    if parts.password is not None:
        raise ConfigError(
            f"{_SETTING}: the URL must not carry a password; name the environment variable "
            'holding it in [store] password_env (password_env = "CLICKHOUSE_PASSWORD")'
        )
    if parts.query or parts.fragment:
        raise ConfigError(f"{_SETTING}: a ClickHouse URL takes no query string or fragment")
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(f"{_SETTING}: the port must be a number from 1 to 65535") from None
    if not parts.hostname:
        raise ConfigError(f"{_SETTING}: a ClickHouse URL needs a host, as in clickhouse://HOST")
    database = parts.path.strip("/") or DEFAULT_DATABASE
    _check_database(database)
    secure = scheme == "clickhouses"
    return StoreLocation(
        "clickhouse",
        host=parts.hostname,
        port=port or (8443 if secure else 8123),
        user=urllib.parse.unquote(parts.username or "default"),
        secure=secure,
        database=database,
    )


def _check_database(database: str) -> None:
    if not _DATABASE_NAME.fullmatch(database):
        raise ConfigError(f"{_SETTING}: database {database!r}: use letters, digits and underscores")


@dataclass
class Stores:
    """Everything a server reads and writes, on one engine. ``duckdb`` is the DuckDB
    `Database` itself on DuckDB (for the read models still written in its SQL) and None on
    ClickHouse, ``rollups`` DuckDB's rollup writer (ClickHouse's views need none);
    ``closers`` run once, in order, on `close`."""

    location: StoreLocation
    schema: RecordSchema
    records: RecordStore
    spans: SpanStore
    state: StateStore
    query_engine: QueryEngine
    metric_store: MetricStore
    eraser: DataEraser
    duckdb: Database | None = None
    rollups: DuckDBRollups | None = None
    closers: list[Callable[[], None]] = field(default_factory=list)
    closed: bool = False

    @property
    def engine(self) -> str:
        return self.location.engine

    @property
    def shared(self) -> bool:
        """Whether other servers may write this store too (ClickHouse; chdb's directory is
        one process's, but its client may be shared within that process)."""
        return self.location.engine != "duckdb"

    def close(self) -> None:
        """Close every part (DuckDB checkpoints its file); later calls do nothing."""
        if self.closed:
            return
        self.closed = True
        for close in self.closers:
            close()


def open_stores(
    settings: Settings, *, writer: str = "main", env: Mapping[str, str] | None = None
) -> Stores:
    """Open the store ``settings.store`` names, migrated. ``writer`` names this server's
    spool where the engine keeps one committed position per server (ClickHouse)."""
    location = parse_store_url(settings.store.url, settings.data_dir)
    schema = RecordSchema(settings.promoted_metadata_keys)
    if location.engine == "duckdb":
        return _open_duckdb(settings, location, schema)
    return _open_clickhouse(settings, location, schema, writer, os.environ if env is None else env)


def _open_duckdb(settings: Settings, location: StoreLocation, schema: RecordSchema) -> Stores:
    from llmtrail.store.duckdb import DuckDBRecordStore, DuckDBSpanStore, DuckDBStateStore
    from llmtrail.store.duckdb.erasure import DuckDBEraser
    from llmtrail.store.duckdb.metric_store import DuckDBMetricStore
    from llmtrail.store.duckdb.metrics import DuckDBRollups
    from llmtrail.store.duckdb.query import DuckDBQueryEngine

    assert location.path is not None
    location.path.parent.mkdir(parents=True, exist_ok=True)
    db = Database(location.path, schema, settings.query)
    rollups = DuckDBRollups(db.schema, top_n=settings.metrics.top_n)
    return Stores(
        location=location,
        schema=db.schema,
        records=DuckDBRecordStore(db, rollups),
        spans=DuckDBSpanStore(db),  # every part shares the file; closed with the database
        state=DuckDBStateStore(db),
        query_engine=DuckDBQueryEngine(db),
        metric_store=DuckDBMetricStore(db, rollups),
        eraser=DuckDBEraser(db, rollups),
        duckdb=db,
        rollups=rollups,
        closers=[db.close],  # checkpoints
    )


def _open_clickhouse(
    settings: Settings,
    location: StoreLocation,
    schema: RecordSchema,
    writer: str,
    env: Mapping[str, str],
) -> Stores:
    from llmtrail.store.clickhouse import (
        ClickHouseDatabase,
        ClickHouseMetricStore,
        ClickHouseQueryEngine,
        ClickHouseRecordStore,
        ClickHouseStateStore,
    )
    from llmtrail.store.clickhouse.erasure import ClickHouseEraser
    from llmtrail.store.clickhouse.spans import ClickHouseSpanStore

    client = _clickhouse_client(settings, location, env)
    try:
        db = ClickHouseDatabase(client, location.database, schema, owns_client=True)
    except BaseException:
        client.close()
        raise
    query_engine = ClickHouseQueryEngine(db, settings.query)
    return Stores(
        location=location,
        schema=db.schema,
        records=ClickHouseRecordStore(db, spool=writer),
        spans=ClickHouseSpanStore(db),
        state=ClickHouseStateStore(db),
        query_engine=query_engine,
        metric_store=ClickHouseMetricStore(db),
        eraser=ClickHouseEraser(db),
        closers=[query_engine.close, db.close],
    )


def _clickhouse_client(settings: Settings, location: StoreLocation, env: Mapping[str, str]) -> Any:
    import clickhouse_connect
    from clickhouse_connect.driver.exceptions import ClickHouseError

    if location.engine == "chdb":
        assert location.path is not None
        path = location.path.resolve()
        path.mkdir(parents=True, exist_ok=True)
        return clickhouse_connect.get_client(dsn=f"chdb://{path}")
    name = settings.store.password_env
    if name and name not in env:
        raise ConfigError(f"[store] password_env: ${name} is not set")
    try:
        return clickhouse_connect.get_client(
            host=location.host,
            port=location.port,
            username=location.user,
            password=env.get(name, "") if name else "",
            secure=location.secure,
            autogenerate_session_id=False,  # stateless HTTP: one client serves every thread
        )
    except (ClickHouseError, OSError) as exc:
        raise Unavailable(f"cannot reach ClickHouse at {location.url}: {exc}") from None


class NotOnThisEngine(Database):
    """Stands in for the DuckDB `Database` on ClickHouse, where ``runtime.db`` is read only
    for ``/readyz`` (``available``) and the store's ``schema``: anything else raises
    `Unavailable` (503) naming the engine, instead of an ``AttributeError`` on None. Every
    read model runs through the `QueryEngine` on both engines."""

    def __init__(self, stores: Stores) -> None:  # no file is opened
        self.schema = stores.schema
        self._engine = stores.location.url

    @property
    def available(self) -> bool:
        return True

    def write(self, fn: Any) -> Any:
        raise self._unsupported()

    def read(self, fn: Any) -> Any:
        raise self._unsupported()

    def lose(self, exc: BaseException) -> None:
        raise self._unsupported()

    def checkpoint(self) -> None:
        """Nothing to checkpoint: the store's own engine keeps its files."""

    def close(self) -> None:
        """Nothing to close: `Stores.close` closes the store."""

    def __getattr__(self, name: str) -> Any:
        raise self._unsupported()

    def _unsupported(self) -> Unavailable:
        return Unavailable(
            f"not available yet on the store {self._engine}: this feature still reads "
            "DuckDB's SQL (it runs with [store] url = duckdb:///...)"
        )


def duckdb_or_placeholder(stores: Stores) -> Database:
    """The DuckDB `Database` of ``stores``, or a `NotOnThisEngine` on another engine."""
    return stores.duckdb if stores.duckdb is not None else NotOnThisEngine(stores)


def _shown(url: str) -> str:
    """``url`` without anything that could be a password, for error messages."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{parts.username}:***@{netloc}"))
