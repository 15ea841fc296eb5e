"""Server-sent events: split a byte stream into events, and assemble OpenAI chat chunks into
the non-stream ``chat.completion`` shape the record keeps (its text equals the deltas)."""

from __future__ import annotations

from typing import Any

import orjson

_META_KEYS = ("id", "created", "model", "system_fingerprint", "service_tier")


class SSEDecoder:
    """Feed bytes, get the ``data:`` payloads of complete events."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[bytes]:
        if b"\r" in chunk:  # a one-byte search is much cheaper than a replace that finds none
            chunk = chunk.replace(b"\r\n", b"\n")
        self._buffer += chunk
        *events, self._buffer = self._buffer.split(b"\n\n")
        out = []
        for event in events:
            # the common shapes first: one ``data:`` line, alone or last after others
            if event.startswith(b"data:"):
                if event.find(b"\n") < 0:
                    out.append(event[5:].lstrip(b" "))
                    continue
            else:
                at = event.find(b"\ndata:")
                if at >= 0 and event.find(b"\n", at + 1) < 0:
                    out.append(event[at + 6 :].lstrip(b" "))
                    continue
            data = [
                line[5:].lstrip(b" ") for line in event.split(b"\n") if line.startswith(b"data:")
            ]
            if data:
                out.append(b"\n".join(data))
        return out


class ChatStreamAccumulator:
    """Builds the chat.completion a stream of chat.completion.chunk objects amounts to."""

    def __init__(self) -> None:
        self.meta: dict[str, Any] = {}
        self.choices: dict[int, dict[str, Any]] = {}
        self.usage: dict[str, Any] | None = None

    def add(self, payload: bytes) -> None:
        if payload.strip() == b"[DONE]":
            return
        try:
            chunk = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return
        if not isinstance(chunk, dict):
            return
        meta = self.meta
        for key in _META_KEYS:
            value = chunk.get(key)
            if value is not None:
                meta[key] = value
        usage = chunk.get("usage")
        if usage:
            self.usage = usage
        choices = chunk.get("choices")
        if isinstance(choices, list):
            for choice in choices:
                if isinstance(choice, dict):
                    self._add_choice(choice)

    def _add_choice(self, choice: dict[str, Any]) -> None:
        index = choice.get("index", 0)
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < 128:
            return
        slot = self.choices.get(index)
        if slot is None:
            slot = self.choices[index] = {
                "index": index,
                "message": {"role": "assistant", "content": None},
                "finish_reason": None,
            }
        delta = choice.get("delta")
        if isinstance(delta, dict) and delta:
            message = slot["message"]
            content = delta.get("content")
            if isinstance(content, str) and len(delta) == 1:  # a piece of text, as most are
                if content:
                    message["content"] = (message["content"] or "") + content
            else:
                self._add_delta(message, delta)
        finish_reason = choice.get("finish_reason")
        if finish_reason:
            slot["finish_reason"] = finish_reason

    def _add_delta(self, message: dict[str, Any], delta: dict[str, Any]) -> None:
        role = delta.get("role")
        if isinstance(role, str):
            message["role"] = role
        content = delta.get("content")
        if isinstance(content, str) and content:
            message["content"] = (message["content"] or "") + content
        refusal = delta.get("refusal")
        if isinstance(refusal, str):
            message["refusal"] = (message.get("refusal") or "") + refusal
        tool_calls = delta.get("tool_calls")
        for call in tool_calls if isinstance(tool_calls, list) else []:
            if not isinstance(call, dict):
                continue
            calls = message.setdefault("tool_calls", [])
            i = call.get("index", len(calls))
            if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < 128:
                continue
            while len(calls) <= i:
                calls.append(
                    {"id": None, "type": "function", "function": {"name": "", "arguments": ""}}
                )
            target = calls[i]
            if isinstance(call.get("id"), str):
                target["id"] = call["id"]
            function = call.get("function")
            function = function if isinstance(function, dict) else {}
            for part in ("name", "arguments"):
                if isinstance(function.get(part), str):
                    target["function"][part] += function[part]

    def result(self) -> dict[str, Any]:
        out: dict[str, Any] = {"object": "chat.completion", **self.meta}
        out["choices"] = [self.choices[i] for i in sorted(self.choices)]
        if self.usage is not None:
            out["usage"] = self.usage
        return out
