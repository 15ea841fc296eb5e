"""Server-sent events: split a byte stream into events, and assemble OpenAI chat chunks into
the non-stream ``chat.completion`` shape the record keeps (its text equals the deltas)."""

from __future__ import annotations

from typing import Any

import orjson


class SSEDecoder:
    """Feed bytes, get the ``data:`` payloads of complete events."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[bytes]:
        self._buffer += chunk.replace(b"\r\n", b"\n")
        *events, self._buffer = self._buffer.split(b"\n\n")
        out = []
        for event in events:
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
        for key in ("id", "created", "model", "system_fingerprint", "service_tier"):
            if chunk.get(key) is not None:
                self.meta[key] = chunk[key]
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        choices = chunk.get("choices")
        for choice in choices if isinstance(choices, list) else []:
            if isinstance(choice, dict):
                self._add_choice(choice)

    def _add_choice(self, choice: dict[str, Any]) -> None:
        index = choice.get("index", 0)
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < 128:
            return
        slot = self.choices.setdefault(
            index,
            {
                "index": index,
                "message": {"role": "assistant", "content": None},
                "finish_reason": None,
            },
        )
        delta = choice.get("delta")
        delta = delta if isinstance(delta, dict) else {}
        message = slot["message"]
        if isinstance(delta.get("role"), str):
            message["role"] = delta["role"]
        if isinstance(delta.get("content"), str) and delta["content"]:
            message["content"] = (message["content"] or "") + delta["content"]
        if isinstance(delta.get("refusal"), str):
            message["refusal"] = (message.get("refusal") or "") + delta["refusal"]
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
        if choice.get("finish_reason"):
            slot["finish_reason"] = choice["finish_reason"]

    def result(self) -> dict[str, Any]:
        out: dict[str, Any] = {"object": "chat.completion", **self.meta}
        out["choices"] = [self.choices[i] for i in sorted(self.choices)]
        if self.usage is not None:
            out["usage"] = self.usage
        return out
