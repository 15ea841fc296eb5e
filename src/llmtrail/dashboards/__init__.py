"""Dashboards: CloudWatch dashboard bodies, stored per workspace and rendered to views.

A body pasted from the CloudWatch console is the format, unchanged: it is validated
(`body`, errors naming the field path like PutDashboard's ``DashboardValidationMessages``),
stored in the StateStore (`store`), and rendered widget by widget (`render`) into
`view.WidgetView` items that the web UI draws. Metric widgets read the metrics service and
metric math (`llmtrail.metrics.math`); log widgets run on the same bounded query path as
``POST /api/query``.
"""

from llmtrail.dashboards.view import DashboardContext, WidgetView, view_dashboard

__all__ = ["DashboardContext", "WidgetView", "view_dashboard"]
