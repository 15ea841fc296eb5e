"""``llmtrail alarms`` and ``llmtrail notifiers``: thin commands over ``/api/alarms``,
``/api/notifiers`` and ``/api/deliveries``.

``alarms put`` takes ``PutMetricAlarm``'s JSON from a file (what ``aws cloudwatch
put-metric-alarm --generate-cli-skeleton`` writes) and/or the flags of ``put-metric-alarm``
(``--metric-name``, ``--statistic``, ``--threshold`` …); flags win over the file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from llmtrail.cli.arguments import add_common_options, path_segment
from llmtrail.cli.output import Table, print_list, print_object
from llmtrail.cli.usage import add_command
from llmtrail.errors import ValidationError

_ALARM_HEADERS = ["AlarmName", "StateValue", "Value", "ComparisonOperator", "Threshold",
                  "Period", "StateUpdatedTimestamp"]  # fmt: skip
_HISTORY_HEADERS = ["Timestamp", "HistoryItemType", "OldState", "NewState", "Value", "Reason"]
_NOTIFIER_HEADERS = ["name", "type", "to", "url", "format", "secretEnv"]
_DELIVERY_HEADERS = ["created", "alarm", "action", "state", "status", "attempts", "lastError"]
# put-metric-alarm's flags and the field each sets
_FLAGS: list[tuple[str, str, Any, str]] = [
    ("--metric-name", "MetricName", str, "the metric watched (InputTokenCount, Invocations, …)"),
    ("--namespace", "Namespace", str, "the metric's namespace (AWS/Bedrock)"),
    ("--statistic", "Statistic", str, "Sum, Average, Minimum, Maximum or SampleCount"),
    ("--extended-statistic", "ExtendedStatistic", str, "a percentile such as p99"),
    ("--query", "Query", str, "a Logs Insights query ending in one stats value, instead"),
    ("--budget", "Budget", str, "a budget whose percentage used is watched, instead"),
    ("--period", "Period", int, "seconds per datapoint: 10, 30 or a multiple of 60"),
    ("--evaluation-periods", "EvaluationPeriods", int, "how many periods are evaluated (N)"),
    ("--datapoints-to-alarm", "DatapointsToAlarm", int, "breaching periods that alarm (M)"),
    ("--threshold", "Threshold", float, "the value compared with"),
    ("--comparison-operator", "ComparisonOperator", str, "GreaterThanThreshold, …"),
    ("--treat-missing-data", "TreatMissingData", str,
     "missing, notBreaching, breaching or ignore"),
    ("--alarm-description", "AlarmDescription", str, "what the alarm means, in its messages"),
]  # fmt: skip


def register(sub: Any) -> None:
    _register_alarms(sub)
    _register_notifiers(sub)


def _register_alarms(sub: Any) -> None:
    alarms = add_command(
        sub,
        "alarms",
        "alarms (CloudWatch PutMetricAlarm): list, show, put, delete, history, test",
        """Alarms watch a metric of the rollups (AWS/Bedrock names), a Logs Insights query
        ending in one stats value, or a budget, and notify the notifiers their actions name
        when their state changes (OK, ALARM, INSUFFICIENT_DATA). The server evaluates them
        every [alerts] evaluation_interval_s.""",
        [
            "llmtrail alarms list --state ALARM",
            "llmtrail alarms put hourly-tokens --metric-name InputTokenCount --statistic Sum "
            "--period 3600 --threshold 10000 --comparison-operator GreaterThanThreshold "
            "--alarm-actions ops",
            "llmtrail alarms put errors --query 'filter status = \"ERROR\" | stats count(*)' "
            "--period 300 --threshold 5 --comparison-operator GreaterThanOrEqualToThreshold "
            "--treat-missing-data notBreaching --alarm-actions oncall --ok-actions oncall",
            "llmtrail alarms history errors",
        ],
    )
    commands = alarms.add_subparsers(dest="alarms_command", required=True, metavar="COMMAND")

    listing = add_command(
        commands, "list", "every alarm with its state", "List the alarms and their state.",
        ["llmtrail alarms list", "llmtrail alarms list --state ALARM --format json"],
    )  # fmt: skip
    add_common_options(listing)
    listing.add_argument(
        "--state", choices=["OK", "ALARM", "INSUFFICIENT_DATA"], help="only alarms in STATE"
    )
    listing.add_argument("--prefix", help="only alarms whose name starts with PREFIX")
    listing.set_defaults(handler=_list)

    show = add_command(
        commands, "show", "one alarm: its fields and state", "Print one alarm.",
        ["llmtrail alarms show errors --format json"],
    )  # fmt: skip
    add_common_options(show)
    show.add_argument("name", metavar="NAME", help="the alarm's name")
    show.set_defaults(handler=_show)

    put = add_command(
        commands,
        "put",
        "create or replace an alarm",
        """Create or replace alarm NAME from PutMetricAlarm's fields: a JSON FILE (- for
        standard input) and/or put-metric-alarm's flags, which win over the file.""",
        [
            "llmtrail alarms put errors alarm.json",
            "llmtrail alarms put p99 --metric-name InvocationLatency --extended-statistic p99 "
            "--period 300 --threshold 5000 --comparison-operator GreaterThanThreshold",
        ],
    )
    add_common_options(put)
    put.add_argument("name", metavar="NAME", help="the alarm's name")
    put.add_argument("file", metavar="FILE", nargs="?", help="PutMetricAlarm JSON, - for stdin")
    for flag, _, kind, text in _FLAGS:
        put.add_argument(flag, type=kind, help=text)
    put.add_argument(
        "--dimensions", nargs="+", metavar="Name=N,Value=V", help="the metric's dimensions"
    )
    for flag, state in (("--alarm-actions", "ALARM"), ("--ok-actions", "OK"),
                        ("--insufficient-data-actions", "INSUFFICIENT_DATA")):  # fmt: skip
        put.add_argument(flag, nargs="+", metavar="NOTIFIER", help=f"notified on {state}")
    put.add_argument(
        "--actions-enabled", action="store_const", const=True, help="notify (the default)"
    )
    put.add_argument(
        "--no-actions-enabled",
        dest="actions_enabled",
        action="store_const",
        const=False,
        help="keep state and history but notify no one",
    )
    put.set_defaults(handler=_put)

    for name, summary, handler in (
        ("delete", "remove an alarm and its history", _delete),
        ("evaluate", "evaluate an alarm now", _evaluate),
        ("test", "send an alarm's ALARM message to its actions, marked as a test", _test),
    ):
        command = add_command(commands, name, summary, summary[0].upper() + summary[1:] + ".",
                              [f"llmtrail alarms {name} errors"])  # fmt: skip
        add_common_options(command)
        command.add_argument("name", metavar="NAME", help="the alarm's name")
        command.set_defaults(handler=handler)

    history = add_command(
        commands, "history", "an alarm's state changes, configuration changes and actions",
        "Print an alarm's history, newest first.",
        ["llmtrail alarms history errors --type StateUpdate"],
    )  # fmt: skip
    add_common_options(history)
    history.add_argument("name", metavar="NAME", help="the alarm's name")
    history.add_argument(
        "--type",
        choices=["StateUpdate", "ConfigurationUpdate", "Action"],
        help="only items of this kind",
    )
    history.set_defaults(handler=_history)


def _register_notifiers(sub: Any) -> None:
    notifiers = add_command(
        sub,
        "notifiers",
        "where alarms send messages: list, show, put, delete, test, deliveries",
        """A notifier is an e-mail (through the SMTP server of [smtp]) or a webhook (JSON or
        Slack text, signed with HMAC-SHA256 when --secret-env names the variable holding the
        key). Alarm actions name notifiers, or SNS topic ARNs whose last part is one.""",
        [
            "llmtrail notifiers put oncall --email oncall@example.com",
            "llmtrail notifiers put ops --webhook https://hooks.example.com/x --secret-env KEY",
            "llmtrail notifiers test oncall",
            "llmtrail notifiers deliveries --status failed",
        ],
    )
    commands = notifiers.add_subparsers(dest="notifiers_command", required=True, metavar="COMMAND")
    listing = add_command(commands, "list", "every notifier", "List the notifiers.",
                          ["llmtrail notifiers list"])  # fmt: skip
    add_common_options(listing)
    listing.set_defaults(handler=_notifiers)

    put = add_command(
        commands, "put", "create or replace a notifier",
        "Create or replace notifier NAME: an e-mail (--email) or a webhook (--webhook).",
        ["llmtrail notifiers put slack --webhook https://hooks.slack.com/services/x --slack"],
    )  # fmt: skip
    add_common_options(put)
    put.add_argument("name", metavar="NAME", help="letters, digits, _ . - (an SNS topic name)")
    kind = put.add_mutually_exclusive_group(required=True)
    kind.add_argument("--email", nargs="+", metavar="ADDRESS", help="send e-mail to ADDRESS")
    kind.add_argument("--webhook", metavar="URL", help="POST to URL")
    put.add_argument("--slack", action="store_true", help="post Slack-compatible text")
    put.add_argument("--secret-env", metavar="VAR", help="sign with the key in $VAR")
    put.add_argument("--subject-prefix", help="put this before e-mail subjects")
    put.set_defaults(handler=_put_notifier)

    for name, summary, handler in (
        ("show", "one notifier", _show_notifier),
        ("delete", "remove a notifier", _delete_notifier),
        ("test", "send a test message through a notifier", _test_notifier),
    ):
        command = add_command(commands, name, summary, summary[0].upper() + summary[1:] + ".",
                              [f"llmtrail notifiers {name} oncall"])  # fmt: skip
        add_common_options(command)
        command.add_argument("name", metavar="NAME", help="the notifier's name")
        command.set_defaults(handler=handler)

    deliveries = add_command(
        commands, "deliveries", "notifications sent, pending and failed",
        "List the latest deliveries, newest first.",
        ["llmtrail notifiers deliveries --status failed"],
    )  # fmt: skip
    add_common_options(deliveries)
    deliveries.add_argument("--alarm", help="only this alarm's")
    deliveries.add_argument(
        "--status", choices=["pending", "delivered", "failed"], help="only deliveries in STATUS"
    )
    deliveries.add_argument("--limit", type=int, default=100, help="at most this many (100)")
    deliveries.set_defaults(handler=_deliveries)


def _alarm_path(name: str, suffix: str = "") -> str:
    return f"/api/alarms/{path_segment(name)}{suffix}"


def _alarm_row(alarm: dict[str, Any]) -> list[Any]:
    return [alarm.get(h) for h in _ALARM_HEADERS]


def _list(backend: Any, args: argparse.Namespace) -> int:
    query = {"state": args.state, "prefix": args.prefix}
    items = backend.request("GET", "/api/alarms", query)["MetricAlarms"]
    print_list(items, Table(_ALARM_HEADERS, [_alarm_row(a) for a in items]), args.format)
    return 0


def _show(backend: Any, args: argparse.Namespace) -> int:
    print_object(backend.request("GET", _alarm_path(args.name)), args.format)
    return 0


def alarm_body(args: argparse.Namespace) -> dict[str, Any]:
    """PutMetricAlarm's fields from FILE and the flags (flags win)."""
    body: dict[str, Any] = {}
    if args.file:
        try:
            text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text()
            body = json.loads(text)
        except OSError as exc:
            raise ValidationError("FILE", f"cannot be read: {exc}") from None
        except ValueError as exc:
            raise ValidationError("FILE", f"{args.file} is not valid JSON: {exc}") from None
        if not isinstance(body, dict):
            raise ValidationError("FILE", "must hold a JSON object of PutMetricAlarm's fields")
    for flag, field, _, _ in _FLAGS:
        value = getattr(args, flag.removeprefix("--").replace("-", "_"))
        if value is not None:
            body[field] = int(value) if field == "Threshold" and value == int(value) else value
    if args.dimensions is not None:
        body["Dimensions"] = [_dimension(text) for text in args.dimensions]
    for flag, field in (("alarm_actions", "AlarmActions"), ("ok_actions", "OKActions"),
                        ("insufficient_data_actions", "InsufficientDataActions")):  # fmt: skip
        if getattr(args, flag) is not None:
            body[field] = getattr(args, flag)
    if args.actions_enabled is not None:
        body["ActionsEnabled"] = args.actions_enabled
    if body.get("AlarmName") == args.name:
        del body["AlarmName"]  # the URL names it
    return body


def _dimension(text: str) -> dict[str, str]:
    """``Name=ModelId,Value=x`` (put-metric-alarm's shorthand) or ``ModelId=x``."""
    parts = dict(p.split("=", 1) for p in text.split(",") if "=" in p)
    if set(parts) == {"Name", "Value"}:
        return {"Name": parts["Name"], "Value": parts["Value"]}
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise ValidationError("--dimensions", f"expected Name=N,Value=V or N=V, got {text!r}")
    return {"Name": name, "Value": value}


def _put(backend: Any, args: argparse.Namespace) -> int:
    answer = backend.request("PUT", _alarm_path(args.name), body=alarm_body(args))
    print_object(answer, args.format, text=f"put alarm {args.name}: {answer.get('StateValue')}")
    return 0


def _delete(backend: Any, args: argparse.Namespace) -> int:
    answer = backend.request("DELETE", _alarm_path(args.name))
    print_object(answer, args.format, text=f"deleted alarm {answer['deleted']}")
    return 0


def _evaluate(backend: Any, args: argparse.Namespace) -> int:
    answer = backend.request("POST", _alarm_path(args.name, "/evaluate"))
    print_object(answer, args.format, Table(_ALARM_HEADERS, [_alarm_row(answer)]))
    return 0


def _test(backend: Any, args: argparse.Namespace) -> int:
    items = backend.request("POST", _alarm_path(args.name, "/test"))["deliveries"]
    _print_deliveries(items, args.format)
    return 0 if all(d["status"] == "delivered" for d in items) else 1


def _history(backend: Any, args: argparse.Namespace) -> int:
    answer = backend.request("GET", _alarm_path(args.name, "/history"), {"type": args.type})
    items = answer["AlarmHistoryItems"]
    rows = [[_history_cell(i, h) for h in _HISTORY_HEADERS] for i in items]
    print_list(items, Table(_HISTORY_HEADERS, rows), args.format)
    return 0


def _history_cell(item: dict[str, Any], header: str) -> Any:
    if header == "Reason":  # a configuration change or an action has only a summary
        return item.get("Reason") or item.get("HistorySummary")
    return item.get(header)


def _notifier_path(name: str, suffix: str = "") -> str:
    return f"/api/notifiers/{path_segment(name)}{suffix}"


def _notifiers(backend: Any, args: argparse.Namespace) -> int:
    items = backend.request("GET", "/api/notifiers")["notifiers"]
    rows = [[n.get(h) for h in _NOTIFIER_HEADERS] for n in items]
    print_list(items, Table(_NOTIFIER_HEADERS, rows), args.format)
    return 0


def _put_notifier(backend: Any, args: argparse.Namespace) -> int:
    body: dict[str, Any]
    if args.email:
        body = {"type": "email", "to": args.email}
        if args.subject_prefix:
            body["subjectPrefix"] = args.subject_prefix
    else:
        body = {"type": "webhook", "url": args.webhook, "format": "slack" if args.slack else "json"}
        if args.secret_env:
            body["secretEnv"] = args.secret_env
    answer = backend.request("PUT", _notifier_path(args.name), body=body)
    print_object(answer, args.format, text=f"put notifier {args.name} ({answer['type']})")
    return 0


def _show_notifier(backend: Any, args: argparse.Namespace) -> int:
    print_object(backend.request("GET", _notifier_path(args.name)), args.format)
    return 0


def _delete_notifier(backend: Any, args: argparse.Namespace) -> int:
    answer = backend.request("DELETE", _notifier_path(args.name))
    print_object(answer, args.format, text=f"deleted notifier {answer['deleted']}")
    return 0


def _test_notifier(backend: Any, args: argparse.Namespace) -> int:
    answer = backend.request("POST", _notifier_path(args.name, "/test"))
    row = [answer.get(h) for h in _DELIVERY_HEADERS]  # one delivery: one object, not a list
    print_object(answer, args.format, Table(_DELIVERY_HEADERS, [row]))
    return 0 if answer["status"] == "delivered" else 1


def _deliveries(backend: Any, args: argparse.Namespace) -> int:
    query = {"alarm": args.alarm, "status": args.status, "limit": args.limit}
    _print_deliveries(backend.request("GET", "/api/deliveries", query)["deliveries"], args.format)
    return 0


def _print_deliveries(items: list[dict[str, Any]], fmt: str) -> None:
    rows = [[d.get(h) for h in _DELIVERY_HEADERS] for d in items]
    print_list(items, Table(_DELIVERY_HEADERS, rows), fmt)
