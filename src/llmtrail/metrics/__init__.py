"""Metrics: per-minute rollups of the records, read like CloudWatch's ``GetMetricData``.

The rollups are written by the record store in the same transaction as the batch of records
they count (`llmtrail.store.duckdb.metrics`), so a replayed batch, a resent record (caught by
the de-duplication window before it is stored) or an OTLP span merged into a gateway record
never counts twice. They are kept by the named dimension sets of `dimensions`, with counts,
sums and token totals exact and latencies as mergeable log-bucketed histograms (`sketch`),
so percentiles over any range come from the rollups. `MetricsService` answers
`MetricDataQuery` lists with `MetricDataResult` series, and is what dashboards, alarms, the
web UI and ``/api/metrics`` read.
"""

from llmtrail.metrics.model import (
    METRIC_NAMES,
    NAMESPACE,
    MetricDataQuery,
    MetricDataResult,
    MetricStat,
)

__all__ = ["METRIC_NAMES", "NAMESPACE", "MetricDataQuery", "MetricDataResult", "MetricStat"]
