"""StateStore on ClickHouse: JSON values in the ``state`` table, the last write per key wins.

``state`` is a ``ReplacingMergeTree`` keyed by ``(namespace, key)``: a put inserts a row, a
delete inserts an empty value (no JSON text is empty), and reads use ``FINAL`` so that the
latest row for a key is the only one seen, before and after background merges. Several
servers may share the table; concurrent writes to one key resolve to the last one inserted.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
import pyarrow as pa

from llmtrail.store.clickhouse.database import ClickHouseDatabase

_DELETED = ""


class ClickHouseStateStore:
    """Control-plane state in a `ClickHouseDatabase`."""

    def __init__(self, db: ClickHouseDatabase) -> None:
        self.db = db

    def get(self, namespace: str, key: str) -> Any | None:
        rows = self.db.query(
            f"SELECT value FROM {self.db.table('state')} FINAL "
            "WHERE namespace = {namespace:String} AND `key` = {key:String}",
            {"namespace": namespace, "key": key},
        )
        if not rows or rows[0][0] == _DELETED:
            return None
        return orjson.loads(rows[0][0])

    def put(self, namespace: str, key: str, value: Any) -> None:
        self._write(namespace, key, orjson.dumps(value).decode())

    def put_many(self, items: Sequence[tuple[str, str, Any]]) -> None:
        last = {(ns, key): orjson.dumps(value).decode() for ns, key, value in items}
        if not last:
            return
        rows = pa.table(
            {
                "namespace": [ns for ns, _ in last],
                "key": [key for _, key in last],
                "value": list(last.values()),
            }
        )
        # one insert; never taken for a duplicate of an earlier one (see `insert_row`)
        self.db.insert_arrow("state", rows, {"insert_deduplicate": 0})

    def delete(self, namespace: str, key: str) -> bool:
        existed = self.get(namespace, key) is not None
        if existed:
            self._write(namespace, key, _DELETED)
        return existed

    def list(self, namespace: str) -> dict[str, Any]:
        rows = self.db.query(
            f"SELECT `key`, value FROM {self.db.table('state')} FINAL "
            "WHERE namespace = {namespace:String} AND value != '' ORDER BY `key`",
            {"namespace": namespace},
        )
        return {str(k): orjson.loads(v) for k, v in rows}

    def close(self) -> None:
        self.db.close()

    def _write(self, namespace: str, key: str, text: str) -> None:
        self.db.insert_row("state", {"namespace": namespace, "key": key, "value": text})
