"""Pagination tokens (``nextToken`` / ``NextToken``): opaque to the caller, bound to the
operation and the workspace that made them, and refused clearly when altered or reused
elsewhere."""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

from llmtrail.server.aws.operations import AwsCall, AwsError

__all__ = ["page_token", "read_page_token"]


def page_token(call: AwsCall, state: Any) -> str:
    """A token carrying ``state`` (JSON values) for the next page of ``call``."""
    payload = {"op": call.operation, "ws": call.workspace, "s": state}
    return base64.urlsafe_b64encode(orjson.dumps(payload)).decode().rstrip("=")


def read_page_token(call: AwsCall, token: str, code: str = "InvalidParameterException") -> Any:
    """The state a token of this operation and workspace carries, else ``code`` (AWS's error
    for a bad token differs by service: ``logs`` InvalidParameterException, ``ce``
    InvalidNextTokenException, ``cloudwatch`` InvalidNextToken)."""
    try:
        padded = token + "=" * (-len(token) % 4)
        payload = orjson.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeEncodeError):
        payload = None
    if (
        not isinstance(payload, dict)
        or payload.get("op") != call.operation
        or payload.get("ws") != call.workspace
        or "s" not in payload
    ):
        raise AwsError(code, "The specified nextToken is not valid", 400)
    return payload["s"]
