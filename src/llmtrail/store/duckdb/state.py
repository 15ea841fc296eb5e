"""StateStore on DuckDB: JSON values in the ``state`` table, written by the writer thread."""

from __future__ import annotations

import array
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import duckdb
import orjson

from llmtrail.store.duckdb.database import Database

if TYPE_CHECKING:
    import pyarrow as pa


class DuckDBStateStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, namespace: str, key: str) -> Any | None:
        row = self.db.read(
            lambda c: c.execute(
                "SELECT value FROM state WHERE namespace = ? AND key = ?", [namespace, key]
            ).fetchone()
        )
        return None if row is None else orjson.loads(row[0])

    def put(self, namespace: str, key: str, value: Any) -> None:
        text = orjson.dumps(value).decode()

        def write(conn: duckdb.DuckDBPyConnection) -> None:
            conn.execute("BEGIN")
            try:
                conn.execute("DELETE FROM state WHERE namespace = ? AND key = ?", [namespace, key])
                conn.execute("INSERT INTO state VALUES (?, ?, ?)", [namespace, key, text])
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

        self.db.write(write)

    def put_many(self, items: Sequence[tuple[str, str, Any]]) -> None:
        last = {(ns, key): orjson.dumps(value).decode() for ns, key, value in items}
        if not last:
            return
        import pyarrow as pa  # on first use (`records.arrow_types`)

        incoming = pa.Table.from_arrays(
            [
                _text([ns for ns, _ in last]),
                _text([key for _, key in last]),
                _text(list(last.values())),
            ],
            names=["namespace", "key", "value"],
        )

        def write(conn: duckdb.DuckDBPyConnection) -> None:
            conn.register("incoming_state", incoming)
            conn.execute("BEGIN")
            try:
                conn.execute(
                    "DELETE FROM state USING incoming_state AS i "
                    "WHERE state.namespace = i.namespace AND state.key = i.key"
                )
                conn.execute("INSERT INTO state SELECT namespace, key, value FROM incoming_state")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            finally:
                conn.unregister("incoming_state")

        self.db.write(write)

    def delete(self, namespace: str, key: str) -> bool:
        def write(conn: duckdb.DuckDBPyConnection) -> bool:
            row = conn.execute(
                "DELETE FROM state WHERE namespace = ? AND key = ? RETURNING key", [namespace, key]
            ).fetchall()
            return bool(row)

        return self.db.write(write)

    def list(self, namespace: str) -> dict[str, Any]:
        rows = self.db.read(
            lambda c: c.execute(
                "SELECT key, value FROM state WHERE namespace = ? ORDER BY key", [namespace]
            ).fetchall()
        )
        return {str(k): orjson.loads(v) for k, v in rows}

    def close(self) -> None:
        self.db.close()


def _text(values: list[str]) -> pa.Array:
    """A string column built from its buffers: pyarrow's conversion of a list would import
    pandas (to check the list is not a pandas object), seconds of CPU for nothing."""
    import pyarrow as pa

    data = [v.encode() for v in values]
    offsets = array.array("q", [0])
    for item in data:
        offsets.append(offsets[-1] + len(item))
    buffers = [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(data))]
    return pa.Array.from_buffers(pa.large_string(), len(values), buffers)
