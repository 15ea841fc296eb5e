"""Parameters every API parses the same way. Integers are ASCII digits only (``str.isdigit``
also accepts ``²`` and ``٣``, which ``int`` then refuses or reads), within bounds that the
error names; one parser, so ``limit=0`` or ``limit=²`` is the same 400 on every route. Times
and durations are `llmtrail.timerange`'s."""

from __future__ import annotations

import re
from typing import Any

import orjson
from starlette.requests import Request

from llmtrail.errors import PayloadTooLarge, ValidationError

_DIGITS = re.compile(r"[0-9]{1,18}")


def int_param(value: str | None, field: str, *, default: int, minimum: int, maximum: int) -> int:
    """``value`` (a query parameter) as an integer in ``[minimum, maximum]``; ``default``
    when it is absent."""
    found = optional_int_param(value, field, minimum=minimum, maximum=maximum)
    return default if found is None else found


def optional_int_param(value: str | None, field: str, *, minimum: int, maximum: int) -> int | None:
    """``value`` as an integer in ``[minimum, maximum]``, or None when it is absent."""
    if value is None:
        return None
    if _DIGITS.fullmatch(value) is None or not minimum <= int(value) <= maximum:
        shown = repr(value) if len(value) <= 40 else repr(value[:40]) + "..."
        raise ValidationError(field, f"must be an integer from {minimum} to {maximum}, got {shown}")
    return int(value)


async def json_body(request: Request, limit: int) -> Any:
    """The request's JSON body (``{}`` when empty), read up to ``limit`` bytes: a larger one
    is a 413 before it is all read, a malformed one a 400 naming ``body``."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge("body", f"is {declared} bytes; the limit is {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge("body", f"is larger than the limit of {limit} bytes")
        chunks.append(chunk)
    try:
        return orjson.loads(b"".join(chunks) or b"{}")
    except orjson.JSONDecodeError as exc:
        raise ValidationError("body", f"is not valid JSON: {exc}") from None


async def json_object(request: Request, limit: int) -> dict[str, Any]:
    """`json_body`, which must be a JSON object."""
    body = await json_body(request, limit)
    if not isinstance(body, dict):
        raise ValidationError("body", "must be a JSON object")
    return body
