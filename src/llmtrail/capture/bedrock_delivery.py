"""Continuous delivery in Bedrock's layout: each workspace whose logging configuration sets
``s3Config`` gets its records written as ``AWSLogs/…/YYYY/MM/DD/HH/*.json.gz`` objects under
that prefix of the object store, as Bedrock delivers its invocation logs.

`BedrockDelivery.run_once` is one round (a server calls it every ``interval_s`` seconds, so
objects are at most about that late): per configured workspace, the records stored since its
checkpoint, in ingestion order, a page at a time, become batch objects (`bedrock_layout`).

Never twice, resumable after a restart: the checkpoint (the ingestion cursor, in the
StateStore namespace ``bedrock-delivery``) moves only after a page's objects are written, and
a page's object names depend only on where the page starts (the checkpoint), its hour folder
and its place there — not on what it holds. A round cut short by a crash is redone from the
same checkpoint and writes the same names again, each object replaced by one holding the same
records or more (records stored meanwhile), so no record is in two objects. Delivery starts at
the moment ``s3Config`` named its destination (the configuration's ``updatedAt`` then), as
Bedrock's does; a later PUT naming the same destination does not restart it.
"""

from __future__ import annotations

import hashlib
import logging

import orjson

from llmtrail.capture.bedrock_layout import (
    DEFAULT_ACCOUNT,
    DEFAULT_REGION,
    HourFolder,
    encode_batch,
    folder_of,
)
from llmtrail.record import InvocationRecord, parse_timestamp
from llmtrail.security.logging_config import NAMESPACE as CONFIG_NAMESPACE
from llmtrail.security.logging_config import LoggingConfig
from llmtrail.store.interfaces import RecordQuery, RecordStore, StateStore
from llmtrail.store.objects import ObjectStore

NAMESPACE = "bedrock-delivery"
PAGE = 5000  # records in one round's page, and at most in one object
log = logging.getLogger("llmtrail.delivery")


class BedrockDelivery:
    def __init__(self, records: RecordStore, state: StateStore, objects: ObjectStore) -> None:
        self.records = records
        self.state = state
        self.objects = objects

    def run_once(self) -> int:
        """One round over every workspace with ``s3Config``; how many records were written."""
        written = 0
        for workspace, value in self.state.list(CONFIG_NAMESPACE).items():
            config = LoggingConfig.from_state(value)
            if config.s3_config is None:
                continue
            while True:
                done = self._page(workspace, config)
                written += done
                if done < PAGE:
                    break
        return written

    def _page(self, workspace: str, config: LoggingConfig) -> int:
        prefix = config.objects_prefix
        checkpoint = self.state.get(NAMESPACE, workspace) or {}
        if checkpoint.get("prefix") != prefix:  # a new destination: from the moment it was set
            since = config.updated_at or "1970-01-01T00:00:00Z"
            checkpoint = {"prefix": prefix, "since": since, "cursor": None}
        since = str(checkpoint["since"])
        page = self.records.find(
            RecordQuery(
                workspace=workspace,
                order="ingested",
                ingested_after=parse_timestamp(since, "updatedAt"),
                cursor=checkpoint.get("cursor"),
                limit=PAGE,
                with_bodies=True,
            )
        )
        if not page.records:
            return 0
        start = f"{workspace}\n{since}\n{checkpoint.get('cursor')}"
        for key, data in delivery_objects(page.records, prefix, start):
            self.objects.put(key, data)
        self.state.put(NAMESPACE, workspace, {**checkpoint, "cursor": page.next_cursor})
        return len(page.records)


def delivery_objects(
    records: list[InvocationRecord], prefix: str, start: str
) -> list[tuple[str, bytes]]:
    """The objects of one page: one per hour folder (a page holds at most `PAGE` records),
    named by the folder's hour and a digest of where the page starts."""
    folders: dict[HourFolder, list[InvocationRecord]] = {}
    for record in records:
        doc = record.to_dict("bedrock")
        folders.setdefault(folder_of(doc, DEFAULT_ACCOUNT, DEFAULT_REGION), []).append(record)
    out = []
    for folder, group in folders.items():
        group.sort(key=lambda r: (r.timestamp, r.request_id))
        digest = hashlib.sha256(f"{start}\n{folder}".encode()).hexdigest()[:16]
        name = f"{folder.hour:%Y%m%dT%H%M%SZ}_{digest}.json.gz"
        lines = [_line(r) for r in group]
        out.append((folder.key(prefix) + name, encode_batch(lines)))
    return out


def _line(record: InvocationRecord) -> bytes:
    return orjson.dumps(record.to_dict("bedrock"))
