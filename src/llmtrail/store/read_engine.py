"""The `QueryEngine` a read model runs on, from what a caller holds.

Read models take a `QueryEngine`; callers that still hold a DuckDB `Database` (the CLI opening
a data directory, tests that write a file) are served by the engine over that database, one
per database, made here so that no module above the store imports an engine's package.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

from llmtrail.store.interfaces import QueryEngine

_ENGINES: weakref.WeakKeyDictionary[Any, QueryEngine] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def read_engine(source: Any) -> QueryEngine:
    """``source`` itself when it is a `QueryEngine` (it has a ``dialect`` and ``execute``),
    else the DuckDB engine over ``source``, a `llmtrail.store.duckdb.Database`."""
    if isinstance(getattr(source, "dialect", None), str) and hasattr(source, "execute"):
        return source
    from llmtrail.store.duckdb.database import Database
    from llmtrail.store.duckdb.query import DuckDBQueryEngine

    if not isinstance(source, Database):
        raise TypeError(f"expected a QueryEngine or a DuckDB Database, got {type(source)!r}")
    with _LOCK:
        engine = _ENGINES.get(source)
        if engine is None:
            engine = _ENGINES[source] = DuckDBQueryEngine(source)
        return engine
