"""The `QueryEngine` a read model runs on, from what a caller holds.

Read models take a `QueryEngine`; callers that still hold a DuckDB `Database` (tests that
write a file, tools that open a data directory) are served by an engine over that database,
made here so that no module above the store imports an engine's package. The engine is
light (it holds no connection: each query takes a cursor of the database), so one is made per
call rather than kept, which would keep every database it ever saw alive.
"""

from __future__ import annotations

from typing import Any

from llmtrail.store.interfaces import QueryEngine


def read_engine(source: Any) -> QueryEngine:
    """``source`` itself when it is a `QueryEngine` (it has a ``dialect`` and ``execute``),
    else the DuckDB engine over ``source``, a `llmtrail.store.duckdb.Database`."""
    if isinstance(getattr(source, "dialect", None), str) and hasattr(source, "execute"):
        return source
    from llmtrail.store.duckdb.database import Database
    from llmtrail.store.duckdb.query import DuckDBQueryEngine

    if not isinstance(source, Database):
        raise TypeError(f"expected a QueryEngine or a DuckDB Database, got {type(source)!r}")
    return DuckDBQueryEngine(source)
