"""What a fake upstream answers: ``sim``'s planner (`llmtrail.capture.gateway.providers.sim.plan`)
in a voice tests can predict byte for byte.

Each fake checks a request as its provider would, reads it with ``sim``'s reader for the wire
format, and plans the reply with the same planner and prompt cache as ``sim``; only the voice
differs. `EchoVoice`, the fakes' default:

* text: ``echo: <last user text> `` repeated to ``size`` bytes; after a tool result,
  ``echo: tool result <result> `` the same way;
* tokens: ``len(text) // 4 + 1`` per piece of text; a request's input tokens are those of all
  its texts joined;
* tools: a fake calls a tool whenever tools are offered and allowed and the last turn is not a
  tool result — the one the user's text names, or the first (`reply_to`), so every test that
  offers tools exercises tool use.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from llmtrail.capture.gateway.providers.sim.plan import (
    Conversation,
    Reply,
    Voice,
    plan_reply,
)
from llmtrail.capture.gateway.providers.sim.prompt_cache import PromptCache
from llmtrail.errors import Picklable

__all__ = ["EchoVoice", "InvalidRequest", "count_tokens", "echo_text", "pieces", "reply_to"]


class InvalidRequest(Picklable, ValueError):
    """A request body the fake refuses; the message is what the provider would say."""


def count_tokens(text: str) -> int:
    """The fakes' token count of ``text``."""
    return len(text) // 4 + 1


def echo_text(prompt: str, size: int) -> str:
    """``echo: <prompt> `` repeated and cut to ``size`` UTF-8 bytes (never splitting a char)."""
    if size <= 0:
        return ""
    unit = f"echo: {prompt} ".encode()
    return (unit * (size // len(unit) + 1))[:size].decode("utf-8", errors="ignore")


def pieces(text: str, count: int = 8) -> list[str]:
    """``text`` in about ``count`` consecutive pieces (none for empty text)."""
    step = max(1, -(-len(text) // count))
    return [text[i : i + step] for i in range(0, len(text), step)]


@dataclass(frozen=True)
class EchoVoice:
    """The fakes' voice: an echo of the user, ``size`` bytes long (see the module docstring)."""

    size: int

    def answer(self, conversation: Conversation) -> str:
        result = conversation.tool_result
        said = conversation.last_user_text if result is None else f"tool result {result}"
        return echo_text(said, self.size)

    def count(self, text: str) -> int:
        return count_tokens(text)

    def prompt_tokens(self, parts: Sequence[str]) -> int:
        return count_tokens("".join(parts))


def reply_to(
    conversation: Conversation,
    voice: Voice,
    *,
    model: str,
    call_id: str,
    cache: PromptCache | None = None,
) -> Reply:
    """The fake's reply: ``sim``'s plan, with a tool call whenever tools are offered (an
    ``auto`` tool choice read as ``any``)."""
    if conversation.forced_tool is None:
        conversation = replace(conversation, forced_tool="")
    return plan_reply(conversation, voice, model=model, call_id=call_id, cache=cache)
