"""Alerts: CloudWatch-style alarms over the metric rollups, Logs Insights queries and budgets,
with e-mail and webhook notifiers.

An alarm is ``PutMetricAlarm``'s fields (`alarm`); its state follows CloudWatch's "M out of
N" rule (`evaluation`, pure), over datapoints read through the store's interfaces and the
metrics service (`sources`), and every change is kept as history (`alarm_store`). A change
enqueues deliveries (`deliveries`), sent by notifiers (`notifiers`) with retries. One server
evaluates when several share a store (`lease`); `alerting` puts the parts together and runs
the schedule.
"""

from llmtrail.alerts.alarm import Alarm, parse_alarm
from llmtrail.alerts.alerting import Alerting, EvaluationLoop
from llmtrail.alerts.evaluation import Outcome, decide
from llmtrail.alerts.message import AlarmMessage

__all__ = [
    "Alarm",
    "AlarmMessage",
    "Alerting",
    "EvaluationLoop",
    "Outcome",
    "decide",
    "parse_alarm",
]
