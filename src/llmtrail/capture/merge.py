"""One model call, one record: an llm span that reaches llmtrail from OTLP or the SDK for a
call that also went through the gateway is merged into the gateway's record, never stored
twice (DESIGN.md, *Records and spans*).

The gateway notes, for each record it makes, the two keys by which a span can name the same
call: its ``traceparent`` parent (the client's span that wrapped the HTTP call) and the
upstream's response id. The index is in memory and bounded (the newest keys win); spans are
exported seconds after the call, well inside it. The gateway's tokens and bodies win: a
matched span adds nothing but its name to the trace, which the record already stands for.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from llmtrail.record import InvocationRecord


class GatewayCallIndex:
    """Keys of recent gateway records: ``(workspace, traceId, spanId-of-parent)`` and
    ``(workspace, responseId)``."""

    def __init__(self, capacity: int = 200_000) -> None:
        self.capacity = capacity
        self._keys: OrderedDict[tuple[str, ...], str] = OrderedDict()
        self._lock = threading.Lock()

    def note(self, record: InvocationRecord) -> None:
        """Remember the keys of a gateway record (cheap: called on the gateway's hot path)."""
        doc = record.data
        workspace = str(doc.get("workspace", "default"))
        keys: list[tuple[str, ...]] = []
        trace = doc.get("trace")
        if isinstance(trace, dict) and trace.get("traceId") and trace.get("parentSpanId"):
            keys.append(("parent", workspace, trace["traceId"], trace["parentSpanId"]))
        if doc.get("responseId"):
            keys.append(("response", workspace, str(doc["responseId"])))
        if not keys:
            return
        request_id = str(doc.get("requestId", ""))
        with self._lock:
            for key in keys:
                self._keys[key] = request_id
                self._keys.move_to_end(key)
            while len(self._keys) > self.capacity:
                self._keys.popitem(last=False)

    def match(self, doc: Mapping[str, Any]) -> str | None:
        """The ``requestId`` of the gateway record that ``doc`` (an llm record decoded from a
        span) describes too, or None."""
        workspace = str(doc.get("workspace", "default"))
        trace = doc.get("trace")
        keys: list[tuple[str, ...]] = []
        if isinstance(trace, Mapping) and trace.get("traceId") and trace.get("spanId"):
            keys.append(("parent", workspace, trace["traceId"], trace["spanId"]))
        if doc.get("responseId"):
            keys.append(("response", workspace, str(doc["responseId"])))
        with self._lock:
            for key in keys:
                if key in self._keys:
                    return self._keys[key]
        return None
