"""llmtrail's library errors as the errors Bedrock's control plane answers.

The handlers of `bedrock` call the same library functions as llmtrail's own API
(`ProfileService`, `LoggingConfigStore`), which raise llmtrail's errors naming Bedrock's
fields; this module gives each the code AWS would send, so the message stays the library's
(one wording for both APIs) and only the shape differs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from llmtrail.analytics.profiles import ProfileConflict
from llmtrail.errors import Forbidden, LlmtrailError, NotFound, ValidationError
from llmtrail.server.aws.operations import AwsError

__all__ = ["bedrock_error", "run"]

T = TypeVar("T")


def bedrock_error(exc: LlmtrailError) -> AwsError:
    """The Bedrock error for a library error: a conflict (a name taken, a request token
    reused) is ConflictException, an unknown resource ResourceNotFoundException, other bad
    input ValidationException, a missing permission AccessDeniedException."""
    if isinstance(exc, ProfileConflict):
        return AwsError("ConflictException", str(exc))
    if isinstance(exc, ValidationError):
        return AwsError("ValidationException", str(exc))
    if isinstance(exc, NotFound):
        return AwsError("ResourceNotFoundException", str(exc))
    if isinstance(exc, Forbidden):
        return AwsError("AccessDeniedException", str(exc), 403)
    return AwsError("ValidationException", str(exc))


async def run(work: Callable[[], T]) -> T:
    """``work`` off the event loop (the state store blocks), its library errors as Bedrock's."""
    try:
        return await asyncio.to_thread(work)
    except LlmtrailError as exc:
        raise bedrock_error(exc) from None
