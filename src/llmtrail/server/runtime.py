"""Everything a running llmtrail holds open, built from `Settings`."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

from llmtrail.analytics.budget_guard import BudgetGuard
from llmtrail.analytics.budget_spend import month_spend
from llmtrail.analytics.budgets import Budget, BudgetService
from llmtrail.analytics.profiles import ProfileService
from llmtrail.capture.bedrock_delivery import BedrockDelivery
from llmtrail.capture.gateway.providers import Provider, build_providers
from llmtrail.capture.gateway.routing import Router
from llmtrail.capture.merge import GatewayCallIndex
from llmtrail.config import Settings
from llmtrail.metrics.service import MetricsService
from llmtrail.pipeline.enrich import Enricher
from llmtrail.pipeline.pipeline import Pipeline
from llmtrail.pipeline.spool import Spool
from llmtrail.record import InvocationRecord
from llmtrail.security.audit import AuditLog, server_identity
from llmtrail.security.erasure import Eraser
from llmtrail.security.keys import KeyRing
from llmtrail.security.logging_config import LoggingConfigs, LoggingConfigStore
from llmtrail.security.principal import Principal
from llmtrail.security.rate_limits import RateLimits
from llmtrail.security.record_policy import RecordPolicy
from llmtrail.security.redaction_store import RedactionPolicies
from llmtrail.security.retention_runner import RetentionRunner
from llmtrail.security.retention_schedule import RetentionSchedule
from llmtrail.security.sealing import Sealer
from llmtrail.security.secret import check_secret, load_secret
from llmtrail.security.sessions import Sessions
from llmtrail.server.delivery_schedule import DeliverySchedule
from llmtrail.server.record_path import LocalRecording, RecordPath
from llmtrail.server.recorder import RecorderProcess
from llmtrail.server.shared_views import SharedViews
from llmtrail.server.workers import Workers
from llmtrail.store.engines import duckdb_or_placeholder, open_stores
from llmtrail.store.objects import open_object_store

log = logging.getLogger("llmtrail")
PRICES_NAMESPACE = "prices"


class Runtime:
    def __init__(self, settings: Settings, recorder: bool = False) -> None:
        """``recorder``: run the record path in a recorder process (`llmtrail serve` does, on
        a store only this server writes); else in this process (the CLI with no server)."""
        self.settings = settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.stores = open_stores(settings, writer=server_identity(settings.data_dir))
        # The DuckDB file for the read models still written in DuckDB's SQL; on ClickHouse a
        # stand-in that answers 503 naming the engine (`NotOnThisEngine`).
        self.db = duckdb_or_placeholder(self.stores)
        self.schema = self.stores.schema
        self.rollups = self.stores.rollups  # DuckDB's; None on ClickHouse (views keep them)
        self.records = self.stores.records
        self.metric_store = self.stores.metric_store
        self.metrics = MetricsService(self.metric_store)
        self.alarms: Any = None  # the alarms API's `Alerting` (set by the app), for the web UI
        self.state = self.stores.state
        access = settings.server
        try:
            self.secret = load_secret(settings.data_dir, access.secret_env)
            check_secret(self.secret, self.state)
            self.keys = KeyRing(
                self.state,
                self.secret,
                refresh_s=access.key_refresh_s,
                sealer=Sealer(self.secret.derive("sealed-aws-secrets")),
            )
            admin_key = os.environ.get(access.admin_key_env) if access.admin_key_env else None
            if admin_key:
                self.keys.ensure_env_admin(admin_key)
        except BaseException:
            self.stores.close()
            raise
        self.sessions = Sessions(self.secret, access.session_hours)
        self.rate_limits = RateLimits()
        self.audit = AuditLog(self.state, server_identity(settings.data_dir))
        self.spans = self.stores.spans
        self.query_engine = self.stores.query_engine
        self.objects = open_object_store(settings)
        self.logging_config = LoggingConfigStore(self.state)
        self.logging_configs = LoggingConfigs(self.logging_config)
        self.redaction = RedactionPolicies(self.state, self.secret.derive("redaction-hash"))
        self.record_policy = RecordPolicy(self.logging_configs, self.redaction)
        self.enricher = Enricher(
            lambda: self.state.list(PRICES_NAMESPACE).values(),
            {name: p.type for name, p in settings.providers.items()},
        )
        self.budget_guard = BudgetGuard()  # fed by the record path, built next
        self.recording: LocalRecording | RecorderProcess
        self.spool: Spool | None = None
        self.pipeline: Pipeline | None = None
        if recorder and not self.stores.shared:
            self.recording = RecorderProcess(
                settings,
                self.records,
                self.state,
                self.stores.spans,
                self.secret.derive("redaction-hash"),
                self.learn,
                self.budget_guard.stored,
            )
            for source in (self.logging_configs, self.redaction, self.enricher):
                source.listeners.append(self.recording.tell_policies_changed)
        else:
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
                policy=self.record_policy,
                object_prefix=lambda ws: self.logging_configs.for_workspace(ws).large_data_prefix,
                shared_store=self.stores.shared,
                span_store=self.stores.spans,
                stored=lambda records: self.budget_guard.stored(
                    (r.workspace, r.request_id) for r in records
                ),
            )
            path = RecordPath(
                settings,
                self.pipeline,
                self.enricher,
                self.record_policy,
                self.logging_configs,
                self.redaction,
            )
            self.recording = LocalRecording(path, self.learn)
        archive = settings.data_dir / "archive"
        self.eraser = self.stores.eraser
        self.retention = RetentionRunner(self.state, self.eraser, self.objects, archive)
        self.erasure = Eraser(
            self.eraser,
            metric_store=self.metric_store,
            objects=self.objects,
            archive_root=archive,
            dead_letter_dir=settings.data_dir / "spool" / "deadletter",
            flush=self.recording.spool_ops.flush,
            spool_ops=self.recording.spool_ops,
        )
        self.retention_schedule = RetentionSchedule(self.retention, self.state, interval_s=3600)
        self.delivery_schedule = DeliverySchedule(
            BedrockDelivery(self.records, self.state, self.objects),
            self.state,
            interval_s=settings.objects.delivery_interval_s,
        )
        self.router = Router(settings)
        self.providers: dict[str, Provider] = build_providers(settings)
        self.profiles = ProfileService(
            self.state, region=settings.region, account_id=settings.account_id
        )
        self.budgets = BudgetService(self.state, on_change=self._budgets_changed)
        self.call_index = GatewayCallIndex()  # gateway calls that OTLP spans merge into
        # on a store other servers write too: learn what they wrote (`shared_views`)
        self.shared_views = (
            SharedViews(
                self.records,
                self.pipeline.dedup,  # on a shared store the record path runs here
                self.call_index,
                self.budgets.all,
                self._budgets_changed,
                settings.store.refresh_s,
            )
            if self.stores.shared and self.pipeline is not None
            else None
        )
        self.workers = Workers()
        self._stopping = threading.Event()
        self._maintenance = threading.Thread(
            target=self._maintain_metrics_loop, name="llmtrail-metrics", daemon=True
        )
        self.on_close: list[Callable[[], None]] = [
            self.workers.close,
            self._stop_maintenance,
            self.audit.close,
            self.retention_schedule.stop,
            self.delivery_schedule.stop,
        ]
        if self.shared_views is not None:
            self.on_close.append(self.shared_views.stop)
        self.closed = False

    def learn(self, seen: list[dict[str, Any]]) -> None:
        """What gateway records spent, from the record path: the merge index for OTLP spans,
        the budgets' month so far, and a key's tokens per minute."""
        for doc in seen:
            try:
                self.call_index.note(InvocationRecord(doc))
                self.budget_guard.observe(doc)
                tpm = doc.get("_tpm")
                if tpm is not None:
                    key = Principal(role="gateway", key_id=tpm[0], tpm=tpm[1])
                    self.rate_limits.spent(key, int(doc.get("_tokens") or 0))
            except Exception:  # one odd record must not stop the others being learned
                log.exception("learning what a gateway record spent failed")

    def _budgets_changed(self, budgets: list[Budget]) -> None:
        """Give the guard ``budgets`` with this month's spend. The spend is summed first, so
        that when summing fails the guard is left as it was and the error reaches the caller
        (`BudgetService` then saves nothing)."""
        self.budget_guard.resum(budgets, self.month_spend)

    def log_groups(self, workspace: str) -> tuple[str, ...]:
        """The log group name ``workspace``'s logging configuration gives its records
        (``SOURCE`` in queries accepts it)."""
        return (self.logging_configs.for_workspace(workspace).log_group_name,)

    def month_spend(self, budgets: list[Budget]) -> dict[str, Decimal]:
        """What each budget's records (of its workspace) cost so far this month, keyed by
        `Budget.key`, read through the query engine (either store)."""
        return month_spend(self.query_engine, budgets)

    def _maintain_metrics_loop(self) -> None:
        while not self._stopping.wait(self.settings.metrics.maintenance_interval_s):
            try:
                self.maintain_metrics()
            except Exception:  # the next round tries again; staged rows are still read
                log.exception("folding metric rollups failed")

    def _stop_maintenance(self) -> None:
        self._stopping.set()
        if self._maintenance.is_alive():
            self._maintenance.join()

    def maintain_metrics(self) -> None:
        """Fold staged rollups and drop those past their retention (blocking)."""
        m = self.settings.metrics
        self.metric_store.maintain(
            {
                10: timedelta(hours=m.retention_10s_hours),
                60: timedelta(days=m.retention_1m_days),
                300: timedelta(days=m.retention_5m_days),
                3600: timedelta(days=m.retention_1h_days),
            }
        )

    def start(self, warm: bool = True) -> None:
        """Replay the spool and start the pipeline (blocking; run it off the event loop). If
        anything fails once the pipeline runs, it stops accepting, so that /readyz answers 503
        as the log says. ``warm`` loads the tokenizer and the price table first, so that a
        server's first call does not wait for them; a CLI command that may never use them
        passes False, and they load on first use."""
        self.recording.start(warm)
        self._maintenance.start()
        self.retention_schedule.start()
        self.delivery_schedule.start()
        if self.shared_views is not None:
            self.shared_views.start()
        try:
            self._load_budgets()
            stats = self.recording.stats()
            log.info(
                "pipeline ready: replayed %d records, %d quarantined spool regions",
                int(stats.get("replayed", 0)),
                int(stats.get("spool_quarantined_frames", 0)),
            )
        except BaseException:
            self.recording.begin_stop()
            raise

    def _load_budgets(self) -> None:
        """The budgets into the guard with this month's spend; when the spend cannot be summed
        the guard still gets every budget (starting from zero) and the error is logged."""
        budgets = self.budgets.all()
        try:
            self._budgets_changed(budgets)
        except Exception:
            log.exception("summing this month's spend of the budgets failed; they start at $0")
            self.budget_guard.set_budgets(budgets)

    async def aclose(self) -> None:
        for provider in self.providers.values():
            await provider.close()
        self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for stop in self.on_close:  # e.g. worker processes the surfaces started
            stop()
        self.recording.close(self.settings.drain_timeout_s)
        self.stores.close()  # DuckDB checkpoints
