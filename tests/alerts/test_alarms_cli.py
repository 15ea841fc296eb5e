"""``llmtrail alarms`` and ``llmtrail notifiers`` with no server (the data directory opened
in process), as a user types them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmtrail.cli import main


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_put_list_history_delete(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = ("--data-dir", str(tmp_path / "data"))
    code, out, err = run(
        capsys, "notifiers", "put", "ops", "--webhook", "http://127.0.0.1:9/hook", *data
    )
    assert code == 1 and "allow_private_webhooks" in err
    body = tmp_path / "alarm.json"
    body.write_text(json.dumps({"AlarmName": "tokens", "MetricName": "InputTokenCount",
                                "Statistic": "Sum", "Period": 3600}))  # fmt: skip
    code, out, err = run(
        capsys, "alarms", "put", "tokens", str(body), "--threshold", "10000",
        "--comparison-operator", "GreaterThanThreshold", "--dimensions", "ModelId=sim/echo",
        "--alarm-actions", "arn:aws:sns:us-east-1:000000000000:ops", "--format", "json", *data,
    )  # fmt: skip
    assert code == 0, err
    alarm = json.loads(out)
    assert alarm["Threshold"] == 10000 and alarm["Period"] == 3600
    assert alarm["Dimensions"] == [{"Name": "ModelId", "Value": "sim/echo"}]
    assert alarm["StateValue"] == "INSUFFICIENT_DATA"

    code, out, err = run(capsys, "alarms", "list", "--json", *data)
    assert code == 0 and [a["AlarmName"] for a in json.loads(out)] == ["tokens"]
    code, out, err = run(capsys, "alarms", "history", "tokens", "--json", *data)
    assert code == 0 and json.loads(out)[0]["HistoryItemType"] == "ConfigurationUpdate"
    code, out, err = run(capsys, "alarms", "put", "bad", "--query", "fields x", "--threshold",
                         "1", "--comparison-operator", "GreaterThanThreshold", *data)  # fmt: skip
    assert code == 1 and "Query" in err
    code, out, err = run(capsys, "alarms", "delete", "tokens", *data)
    assert code == 0 and "deleted alarm tokens" in out
    code, out, err = run(capsys, "alarms", "show", "tokens", *data)
    assert code == 1 and "no alarm named" in err
