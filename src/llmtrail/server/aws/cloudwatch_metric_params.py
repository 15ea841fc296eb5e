"""What CloudWatch's three metric reads share: the unit each ``AWS/Bedrock`` metric is kept
in, a fingerprint that binds a ``NextToken`` to the request that made it, and llmtrail's
validation errors said in CloudWatch's words.

llmtrail's metrics library names a bad field as a JSON path (``MetricDataQueries[2].Period``);
CloudWatch names it as its query protocol did (``MetricDataQueries.member.3.Period``, members
counted from 1), and code written for AWS prints or matches those paths, so `refusal`
rewrites them. The reason stays llmtrail's: it says what is kept, which CloudWatch cannot.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

import orjson

from llmtrail.server.aws.operations import AwsError

__all__ = ["PAGE_FIELDS", "fingerprint", "member_path", "refusal", "unit_of"]

# CloudWatch's StandardUnit of each metric (the rest are counts); llmtrail converts none.
_UNITS: dict[str, str] = {
    "InvocationLatency": "Milliseconds",
    "TimeToFirstToken": "Milliseconds",
    "CostUsd": "None",
}
# members that may change from one page to the next without ending the pagination
PAGE_FIELDS = ("NextToken", "MaxDatapoints")


def unit_of(metric: str) -> str:
    """The StandardUnit ``metric`` is kept in."""
    return _UNITS.get(metric, "Count")


def member_path(field: str) -> str:
    """``MetricDataQueries[2].Metric.Dimensions[0]`` as CloudWatch writes it:
    ``MetricDataQueries.member.3.Metric.Dimensions.member.1``."""
    return re.sub(r"\[(\d+)\]", lambda m: f".member.{int(m.group(1)) + 1}", field)


def refusal(code: str, path: str, reason: str) -> AwsError:
    """An `AwsError` naming the parameter at ``path`` (CloudWatch's spelling) and why."""
    reason = reason.rstrip(".")
    if reason.startswith(("must ", "is ")):
        return AwsError(code, f"The parameter {path} {reason}.", 400)
    return AwsError(code, f"The parameter {path} is not valid: {reason}.", 400)


def fingerprint(params: Mapping[str, Any]) -> str:
    """A digest of a request's parameters but its paging ones: a token made for one request
    is refused for another."""
    kept = {k: v for k, v in params.items() if k not in PAGE_FIELDS}
    return hashlib.sha256(orjson.dumps(kept, option=orjson.OPT_SORT_KEYS)).hexdigest()[:24]
