"""The ClickHouse backend: many gateway replicas writing to one ClickHouse.

The same module talks to a ClickHouse server in production and to the embedded engine of the
``chdb`` package in tests, both through clickhouse-connect (`connect`). Tables, columns and
migration names are DuckDB's, derived from `llmtrail.schema` and the shared typed
migrations; `migrations` renders them with ClickHouse's types, partitioning and sort key.
ClickHouse has no transactions, so the idempotence DuckDB gets from committing a batch with
its spool position comes from insert de-duplication tokens and a look-up of replayed
records (`replay`). Batches go in as Arrow tables. Metric rollups are kept by materialized
views on ``records`` (`metrics`).
"""

from llmtrail.store.clickhouse.database import DEFAULT_DATABASE, ClickHouseDatabase, connect
from llmtrail.store.clickhouse.metrics import ClickHouseMetricStore
from llmtrail.store.clickhouse.query import ClickHouseQueryEngine
from llmtrail.store.clickhouse.records import ClickHouseRecordStore
from llmtrail.store.clickhouse.state import ClickHouseStateStore

__all__ = [
    "DEFAULT_DATABASE",
    "ClickHouseDatabase",
    "ClickHouseMetricStore",
    "ClickHouseQueryEngine",
    "ClickHouseRecordStore",
    "ClickHouseStateStore",
    "connect",
]
