"""What a key without the ``bodies`` permission gets instead of bodies.

Records keep their metadata, counts, cost and the S3 paths of offloaded bodies (no route
serves those objects); ``input.inputBodyJson`` and ``output.outputBodyJson`` go, and the
answer says so (`OMITTED`, a header, and ``bodiesOmitted`` in a list). Spans of a trace lose
their ``input`` and ``output`` the same way. Asking for bodies explicitly without the
permission is `Forbidden` (403), never an answer that silently lacks them.
"""

from __future__ import annotations

from typing import Any

from llmtrail.errors import Forbidden
from llmtrail.security.principal import Permission, Principal

BODY_FIELDS = (("input", "inputBodyJson"), ("output", "outputBodyJson"))
OMITTED = {"x-llmtrail-bodies": "omitted"}


def without_bodies(doc: dict[str, Any]) -> dict[str, Any]:
    """The record ``doc`` without its request and response bodies (a copy when it had any)."""
    out = doc
    for section, key in BODY_FIELDS:
        part = out.get(section)
        if isinstance(part, dict) and key in part:
            if out is doc:
                out = dict(doc)
            out[section] = {k: v for k, v in part.items() if k != key}
    return out


def has_body(doc: dict[str, Any]) -> bool:
    return any(isinstance(doc.get(s), dict) and k in doc[s] for s, k in BODY_FIELDS)


def bodies_wanted(principal: Principal, asked: str | None) -> bool:
    """Whether to answer with bodies: asked for (``bodies``, yes by default) and allowed. A
    key without the ``bodies`` permission that asks for them explicitly gets `Forbidden`."""
    wanted = asked is None or asked not in ("0", "false")
    if principal.can(Permission.BODIES):
        return wanted
    if asked is not None and wanted:
        raise Forbidden(
            "bodies",
            "this key does not have the 'bodies' permission; list records without them "
            "(bodies=0, the default for such a key)",
        )
    return False
