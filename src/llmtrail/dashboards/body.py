"""Checking a CloudWatch dashboard body, as ``PutDashboard`` does.

A body pasted from the CloudWatch console must be accepted unchanged, so the check is
structural: the shapes and ranges the Dashboard Body Structure documents (a ``widgets`` array
of 0 to 500, a widget's ``type``, its grid position and size, each widget type's required
properties, each ``metrics`` row). Every problem is a message with the ``DataPath`` it is
about (``widgets[2].properties.metrics[0]``), as ``DashboardValidationMessages`` list them;
the first one is raised as a `ValidationError` carrying them all in ``messages``. What a body
names that llmtrail does not hold (another namespace, an unknown metric) is a warning: the
dashboard is stored and that widget says so when it is drawn.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import orjson

from llmtrail.dashboards.rows import MetricRow, expand_rows
from llmtrail.errors import ValidationError
from llmtrail.metrics.model import METRIC_NAMES, NAMESPACE

MAX_WIDGETS = 500
MAX_METRICS = 2500  # rows in all metric widgets: each is a read on every view of the dashboard
MAX_BODY_BYTES = 1_000_000
GRID_COLUMNS = 24
MAX_HEIGHT = 1000
DEFAULT_SIZE = 6  # width and height when a widget gives none
NAME = re.compile(r"^[A-Za-z0-9_\-]{1,255}$")
METRIC_VIEWS = ("timeSeries", "singleValue", "gauge", "bar", "pie", "table")
LOG_VIEWS = ("table", "timeSeries", "bar", "pie")
PERIOD_OVERRIDES = ("auto", "inherit")
MAX_RELATIVE_DAYS = 3650  # ten years back: longer ones are before any record, and overflow
_RELATIVE = re.compile(r"^-P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")
_ID = re.compile(r"^[a-z][A-Za-z0-9_]*$")


def check_name(name: str) -> str:
    """A dashboard name as PutDashboard allows it: 1-255 letters, digits, - and _."""
    if not isinstance(name, str) or not NAME.match(name):
        raise ValidationError(
            "DashboardName",
            "must be 1 to 255 characters: only letters, digits, dash (-) and underscore (_)",
        )
    return name


def load_body(raw: str | bytes | dict[str, Any]) -> dict[str, Any]:
    """A body given as JSON text (``DashboardBody`` is a string in PutDashboard) or as an
    object, checked; raises `ValidationError` (with ``messages``) when it is not valid."""
    if isinstance(raw, str | bytes):
        if len(raw) > MAX_BODY_BYTES:
            raise ValidationError("DashboardBody", f"is larger than {MAX_BODY_BYTES} bytes")
        try:
            raw = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ValidationError("DashboardBody", f"is not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ValidationError("DashboardBody", "must be a JSON object with a widgets array")
    errors, _ = validate_body(raw)
    if errors:
        first = errors[0]
        error = ValidationError(first["DataPath"], first["Message"])
        error.messages = errors  # type: ignore[attr-defined]
        raise error
    return raw


def validate_body(body: dict[str, Any]) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """(errors, warnings) of ``body``, each ``{"DataPath": …, "Message": …}``."""
    check = _Check()
    check.body(body)
    return check.errors, check.warnings


def is_time(value: Any) -> bool:
    """A dashboard ``start``/``end``: relative (``-PT6H``, ``-P7D``) or an ISO 8601 instant."""
    if not isinstance(value, str):
        return False
    if _RELATIVE.match(value) and value not in ("-P", "-PT"):
        return (relative_seconds(value) or 0) <= MAX_RELATIVE_DAYS * 86400
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def relative_seconds(value: str) -> int | None:
    """Seconds before now of a relative time (``-PT3H`` → 10800), None for an instant."""
    match = _RELATIVE.match(value)
    if match is None:
        return None
    w, d, h, m, s = (int(g or 0) for g in match.groups())
    return (((w * 7 + d) * 24 + h) * 60 + m) * 60 + s


class _Check:
    def __init__(self) -> None:
        self.errors: list[dict[str, str]] = []
        self.warnings: list[dict[str, str]] = []
        self.metrics = 0  # rows seen so far in metric widgets

    def error(self, path: str, message: str) -> None:
        self.errors.append({"DataPath": path, "Message": message})

    def warn(self, path: str, message: str) -> None:
        self.warnings.append({"DataPath": path, "Message": message})

    def body(self, body: dict[str, Any]) -> None:
        widgets = body.get("widgets")
        if widgets is None:
            self.error("widgets", "is required (an array of 0 to 500 widgets)")
        elif not isinstance(widgets, list):
            self.error("widgets", "must be an array")
        elif len(widgets) > MAX_WIDGETS:
            self.error("widgets", f"has {len(widgets)} widgets; at most {MAX_WIDGETS} are allowed")
        else:
            for i, widget in enumerate(widgets):
                self.widget(f"widgets[{i}]", widget)
        for key in ("start", "end"):
            if key in body and not is_time(body[key]):
                self.error(
                    key,
                    "must be a relative time such as -PT6H (at most "
                    f"{MAX_RELATIVE_DAYS} days) or an ISO 8601 timestamp",
                )
        if "end" in body and "start" not in body:
            self.error("start", "is required when end is given")
        if "periodOverride" in body and body["periodOverride"] not in PERIOD_OVERRIDES:
            self.error("periodOverride", "must be auto or inherit")
        if "variables" in body:
            self.warn("variables", "dashboard variables are not applied by llmtrail")

    def widget(self, path: str, widget: Any) -> None:
        if not isinstance(widget, dict):
            self.error(path, "must be an object")
            return
        kind = widget.get("type")
        if not isinstance(kind, str):
            self.error(f"{path}.type", "is required (metric, text, log, alarm, …)")
        self.integer(widget, path, "x", 0, GRID_COLUMNS - 1)
        self.integer(widget, path, "y", 0, 10_000)
        self.integer(widget, path, "width", 1, GRID_COLUMNS)
        self.integer(widget, path, "height", 1, MAX_HEIGHT)
        properties = widget.get("properties")
        if kind in ("metric", "text", "log", "alarm"):
            if not isinstance(properties, dict):
                self.error(f"{path}.properties", "is required (an object)")
                return
            getattr(self, kind)(f"{path}.properties", properties)
        elif isinstance(kind, str):
            self.warn(f"{path}.type", f"{kind} widgets are shown as a placeholder by llmtrail")

    def integer(self, widget: dict[str, Any], path: str, key: str, low: int, high: int) -> None:
        value = widget.get(key)
        if value is None:
            return
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.error(f"{path}.{key}", f"must be an integer from {low} to {high}")

    def string(self, props: dict[str, Any], path: str, key: str, required: bool = False) -> None:
        value = props.get(key)
        if value is None:
            if required:
                self.error(f"{path}.{key}", "is required (a string)")
        elif not isinstance(value, str):
            self.error(f"{path}.{key}", "must be a string")

    def choice(self, props: dict[str, Any], path: str, key: str, allowed: tuple[str, ...]) -> None:
        if key in props and props[key] not in allowed:
            self.error(f"{path}.{key}", f"must be one of {', '.join(allowed)}")

    def boolean(self, props: dict[str, Any], path: str, key: str) -> None:
        if key in props and not isinstance(props[key], bool):
            self.error(f"{path}.{key}", "must be true or false")

    def text(self, path: str, props: dict[str, Any]) -> None:
        self.string(props, path, "markdown", required=True)
        self.choice(props, path, "background", ("solid", "transparent"))

    def log(self, path: str, props: dict[str, Any]) -> None:
        self.string(props, path, "query", required=True)
        self.string(props, path, "title")
        self.choice(props, path, "view", LOG_VIEWS)
        self.boolean(props, path, "stacked")

    def alarm(self, path: str, props: dict[str, Any]) -> None:
        alarms = props.get("alarms")
        if not isinstance(alarms, list) or not all(isinstance(a, str) for a in alarms):
            self.error(f"{path}.alarms", "is required (an array of alarm ARNs or names)")
        self.string(props, path, "title")

    def metric(self, path: str, props: dict[str, Any]) -> None:
        self.string(props, path, "title")
        self.string(props, path, "stat")
        self.choice(props, path, "view", METRIC_VIEWS)
        self.boolean(props, path, "stacked")
        self.boolean(props, path, "setPeriodToTimeRange")
        self.period(props, path)
        metrics = props.get("metrics")
        if not isinstance(metrics, list) or not metrics:
            self.error(f"{path}.metrics", "is required (an array of 1 to 500 metric arrays)")
            return
        if len(metrics) > MAX_WIDGETS:
            self.error(f"{path}.metrics", "has more than 500 entries")
            return
        try:
            rows = expand_rows(metrics)
        except ValidationError as exc:
            self.error(f"{path}.metrics{exc.field}", exc.message)
            return
        self.metrics += len(rows)
        if self.metrics > MAX_METRICS:
            self.error(
                f"{path}.metrics",
                f"brings the dashboard over {MAX_METRICS} metrics across all widgets",
            )
            return
        ids: set[str] = set()
        for i, row in enumerate(rows):
            self.row(f"{path}.metrics[{i}]", row, ids)

    def period(self, props: dict[str, Any], path: str) -> None:
        value = props.get("period")
        if value is None:
            return
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            self.error(f"{path}.period", "must be a whole number of seconds")
        elif value not in (1, 5, 10, 30) and value % 60:
            self.error(f"{path}.period", "must be 1, 5, 10, 30 or a multiple of 60")

    def row(self, path: str, row: MetricRow, ids: set[str]) -> None:
        options = row.options
        for key in ("label", "stat", "expression", "id", "color", "region", "accountId"):
            self.string(options, path, key)
        self.boolean(options, path, "visible")
        self.period(options, path)
        row_id = options.get("id")
        if isinstance(row_id, str):
            if not _ID.match(row_id):
                self.error(
                    f"{path}.id", "must start with a lowercase letter, then letters, digits or _"
                )
            elif row_id in ids:
                self.error(f"{path}.id", f"{row_id!r} is used by another row")
            ids.add(row_id)
        if row.expression is not None:
            if row.namespace is not None:
                self.error(path, "a row is a metric or an expression, not both")
            return
        if row.namespace is None or row.metric is None:
            self.error(path, "needs a namespace and a metric name, or an expression")
            return
        if row.namespace != NAMESPACE:
            self.warn(path, f"namespace {row.namespace} is not held by llmtrail (only {NAMESPACE})")
        elif row.metric not in METRIC_NAMES:
            self.warn(path, f"{row.metric} is not one of llmtrail's {NAMESPACE} metrics")
