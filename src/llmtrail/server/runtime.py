"""Everything a running llmtrail holds open, built from `Settings`."""

from __future__ import annotations

import logging

from llmtrail.capture.gateway.providers import Provider, build_providers
from llmtrail.capture.gateway.routing import Router
from llmtrail.capture.tokens import count_tokens
from llmtrail.config import Settings
from llmtrail.pipeline.pipeline import Pipeline
from llmtrail.pipeline.spool import Spool
from llmtrail.store.duckdb import Database, DuckDBRecordStore, DuckDBSpanStore, DuckDBStateStore
from llmtrail.store.objects import DirectoryObjectStore
from llmtrail.store.schema import RecordSchema

log = logging.getLogger("llmtrail")


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.db = Database(settings.db_path, RecordSchema(settings.promoted_metadata_keys))
        self.records = DuckDBRecordStore(self.db)
        self.state = DuckDBStateStore(self.db)
        self.spans = DuckDBSpanStore(self.db)  # shares the file; closed with the database
        self.objects = DirectoryObjectStore(settings.data_dir / "objects")
        s = settings.spool
        self.spool = Spool(
            settings.data_dir / "spool",
            segment_bytes=s.segment_bytes,
            max_bytes=s.max_bytes,
            fsync=s.fsync,
        )
        self.pipeline = Pipeline(
            self.spool,
            self.records,
            objects=self.objects,
            settings=s,
            offload_bytes=settings.offload_bytes,
        )
        self.router = Router(settings)
        self.providers: dict[str, Provider] = build_providers(settings)
        self.closed = False

    def start(self) -> None:
        """Replay the spool and start the pipeline (blocking; run it off the event loop)."""
        count_tokens("warm the tokenizer up before the first call")  # ~1 s, before ready
        self.pipeline.start()
        stats = self.pipeline.stats()
        log.info(
            "pipeline ready: replayed %d records, %d quarantined spool regions",
            int(stats["replayed"]),
            int(stats["spool_quarantined_frames"]),
        )

    async def aclose(self) -> None:
        for provider in self.providers.values():
            await provider.close()
        self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.pipeline.stop(self.settings.drain_timeout_s)
        self.db.close()  # checkpoints
