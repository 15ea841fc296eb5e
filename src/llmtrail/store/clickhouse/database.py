"""One ClickHouse database holding llmtrail's tables, reached through clickhouse-connect.

The same client class drives a ClickHouse server (``http://user:password@host:8123``) and the
embedded engine of the ``chdb`` package (``chdb:///data/path``), so this module does not care
which it has. A server client is made without a session, which keeps it safe to share between
threads; a chdb client serialises calls on its own handle. chdb hosts one data path per
process, so several stores on one engine are told apart by their database, not their path.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import clickhouse_connect
import pyarrow as pa
from clickhouse_connect.driver.client import Client

from llmtrail.errors import ConfigError
from llmtrail.schema import RecordSchema
from llmtrail.store.clickhouse.migrations import apply_migrations, promoted_keys, table_name

DEFAULT_DATABASE = "llmtrail"
_DATABASE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")


def connect(url: str) -> Client:
    """A clickhouse-connect client for a server URL or the embedded engine (``chdb:///path``)."""
    if url.startswith("chdb:"):
        return clickhouse_connect.get_client(dsn=url)
    return clickhouse_connect.get_client(dsn=url, autogenerate_session_id=False)


class ClickHouseDatabase:
    """llmtrail's tables in one ClickHouse ``database``, migrated on open.

    ``client`` is borrowed unless ``owns_client`` (as from `open`): `close` then closes it.
    """

    def __init__(
        self,
        client: Client,
        database: str = DEFAULT_DATABASE,
        schema: RecordSchema | None = None,
        *,
        owns_client: bool = False,
    ) -> None:
        if not _DATABASE_NAME.fullmatch(database):
            raise ConfigError(
                f"ClickHouse database name {database!r}: use letters, digits and underscores"
            )
        self.client = client
        self.database = database
        self._owns_client = owns_client
        self._closed = False
        schema = schema or RecordSchema()
        apply_migrations(client, database, schema)
        known = promoted_keys(client, database)
        # a key promoted once stays a column, even when the configuration drops it
        self.schema = RecordSchema(
            schema.promoted_keys + tuple(k for k in known if k not in schema.promoted_keys)
        )

    @classmethod
    def open(
        cls, url: str, database: str = DEFAULT_DATABASE, schema: RecordSchema | None = None
    ) -> ClickHouseDatabase:
        """Connect to ``url`` (see `connect`) and open ``database`` with a client of its own."""
        client = connect(url)
        try:
            return cls(client, database, schema, owns_client=True)
        except BaseException:
            client.close()
            raise

    def table(self, name: str) -> str:
        """The quoted, qualified name of table ``name``."""
        return table_name(self.database, name)

    def query(
        self,
        sql: str,
        parameters: Mapping[str, Any] | None = None,
        settings: Mapping[str, Any] | None = None,
    ) -> Sequence[Sequence[Any]]:
        """The rows of a ``SELECT`` with server-bound ``{name:Type}`` parameters."""
        self._check_open()
        result = self.client.query(
            sql, parameters=dict(parameters or {}), settings=dict(settings or {})
        )
        return result.result_rows

    def command(
        self,
        sql: str,
        parameters: Mapping[str, Any] | None = None,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        """Run a statement that returns no rows."""
        self._check_open()
        self.client.command(sql, parameters=dict(parameters or {}), settings=dict(settings or {}))

    def insert_row(self, table: str, values: Mapping[str, str]) -> None:
        """Insert one row of strings into ``table``, never taken for a duplicate of an earlier
        insert (a replicated table would otherwise drop a repeated identical row)."""
        columns = ", ".join(f"{{{name}:String}}" for name in values)
        self.command(
            f"INSERT INTO {self.table(table)} SELECT {columns}",
            values,
            {"insert_deduplicate": 0},
        )

    def insert_arrow(
        self, table: str, data: pa.Table, settings: Mapping[str, Any] | None = None
    ) -> None:
        """Insert an Arrow table into ``table`` of this database, as one insert."""
        self._check_open()
        self.client.insert_arrow(table, data, database=self.database, settings=dict(settings or {}))

    def close(self) -> None:
        """Release the client if this database owns it; later calls are errors."""
        if self._closed:
            return
        self._closed = True
        if self._owns_client:
            self.client.close()

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("database is closed")
