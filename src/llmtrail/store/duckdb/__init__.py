"""The embedded DuckDB backend: one file, one writer thread, reads on their own cursors.

DuckDB lets one process own a file. Inside it, exactly one thread holds the write
connection (`Database.write` hands it work and waits); readers take a fresh cursor per call,
which DuckDB's MVCC lets run while a batch is being written. Batches go in as Arrow tables.
"""

from llmtrail.store.duckdb.database import Database
from llmtrail.store.duckdb.records import DuckDBRecordStore
from llmtrail.store.duckdb.spans import DuckDBSpanStore
from llmtrail.store.duckdb.state import DuckDBStateStore

__all__ = ["Database", "DuckDBRecordStore", "DuckDBSpanStore", "DuckDBStateStore"]
