"""Applying a workspace's logging configuration to a record before it reaches any file.

`apply_delivery` takes a record document (Bedrock's ``ModelInvocationLog`` shape plus
llmtrail's additions) and removes what the configuration says is not delivered. What a record
always keeps: its metadata (ids, identity, model, operation, ``requestMetadata``, trace,
headers), counts (tokens, characters, images, embeddings), latency, cost, status and errors.

How each flag reads a record:

* **off state** (the configuration was deleted) or a **no-log** request
  (``x-llmtrail-no-log: true``, honoured unless the workspace's ``allowNoLog`` is false):
  no body at all — ``inputBodyJson``, ``outputBodyJson``, their ``…S3Path`` and
  ``outputVideoS3Path`` go.
* **embedding off**: an embeddings call (operation ``Embeddings``, an embedding model, or a
  response holding embedding vectors) loses both bodies; the embedding flag governs those
  calls and nothing else.
* **text off**: any other call loses both bodies. llmtrail keeps a body as one JSON document
  of the API's wire shape, with text everywhere in it (system prompt, messages, tool inputs),
  so a body without its text is not kept: images and video in it go too.
* **image, video or audio off** (text on): the body stays and each such block in it becomes
  a small placeholder of the same wire shape marked ``{"llmtrail": "not delivered"}``, so the
  number and order of blocks survive. Blocks are recognised by shape anywhere in a body:
  Converse ``{"image"|"video"|"audio"|"document": {…}}`` blocks, OpenAI ``image_url``,
  ``input_image``, ``input_audio``, ``file`` and ``video_url`` parts and a message's
  ``audio``, Anthropic ``image`` and ``document`` blocks, and image-generation bodies
  (Titan / Nova Canvas ``images``, Stability ``artifacts``, OpenAI ``b64_json``). Documents
  follow the image flag, as on Bedrock ("image or document data … if you have enabled image
  logging"). A body already offloaded (only an ``…S3Path``) cannot be looked into, so it goes.

A record that lost anything says so in an llmtrail addition, ``delivery``::

    {"bodies": "withheld" | "partial",
     "reason": "logging-off" | "no-log" | "configuration",
     "withheld": ["text" | "image" | "video" | "audio" | "embedding", …],  # by configuration
     "blocks": 3}                                                           # partial only

and a refused opt-out leaves ``{"noLog": "refused"}`` there, so an auditor can tell that the
caller asked. Counts derived from an output body (images, embeddings) are written to
``output.outputImageCount`` / ``output.outputEmbeddingCount`` before the body goes; call this
after enrichment (cost, ``textCharacters``), which reads the bodies too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from llmtrail.pricing.usage_counts import embedding_count, image_count
from llmtrail.security.logging_config import LoggingConfig

DELIVERY_KEY = "delivery"
NOT_DELIVERED = "not delivered"
_MARK = {"llmtrail": NOT_DELIVERED}
_BODY_KEYS = {
    "input": ("inputBodyJson", "inputBodyS3Path"),
    "output": ("outputBodyJson", "outputBodyS3Path", "outputVideoS3Path"),
}
# Converse content blocks (a union: one member) whose member holds media.
_CONVERSE_MEDIA = {"image": "image", "document": "image", "video": "video", "audio": "audio"}
# OpenAI and Anthropic parts and blocks: their "type" → (kind, key of the payload)
_TYPED_MEDIA: dict[str, tuple[str, str]] = {
    "image_url": ("image", "image_url"),  # OpenAI chat
    "input_image": ("image", "image_url"),  # OpenAI Responses
    "image": ("image", "source"),  # Anthropic
    "document": ("image", "source"),  # Anthropic
    "file": ("image", "file"),  # OpenAI chat
    "input_file": ("image", "file_data"),  # OpenAI Responses
    "input_audio": ("audio", "input_audio"),  # OpenAI chat
    "video_url": ("video", "video_url"),  # vLLM and other OpenAI-compatible servers
}
_EMBED_OPERATIONS = frozenset({"Embeddings", "Embedding", "CreateEmbedding", "Embed"})
# Deeper than this (far past the gateway's JSON depth limit) a body is not looked into: the
# subtree there is withheld whole, as an offloaded body is.
_MAX_DEPTH = 200


def apply_delivery(doc: dict[str, Any], config: LoggingConfig, no_log: bool = False) -> bool:
    """Remove from ``doc`` what ``config`` (and a caller's ``no_log`` opt-out, when the
    workspace allows it) says is not delivered; mark what went under ``delivery``. Returns
    True if anything was withheld. Never raises on odd documents."""
    if not config.delivers_bodies:
        return _withhold_all(doc, {"reason": "logging-off"})
    if no_log:
        if config.allow_no_log:
            return _withhold_all(doc, {"reason": "no-log"})
        doc[DELIVERY_KEY] = {"noLog": "refused"}
    if _is_embedding(doc):
        if not config.embedding_data_delivery_enabled:
            return _withhold_all(doc, {"reason": "configuration", "withheld": ["embedding"]})
        return False
    if not config.text_data_delivery_enabled:
        return _withhold_all(doc, {"reason": "configuration", "withheld": ["text"]})
    off = media_off(config)
    return _withhold_media(doc, off) if off else False


def media_off(config: LoggingConfig) -> set[str]:
    """The kinds of media (``image``, ``video``, ``audio``) ``config`` does not deliver."""
    return {
        kind
        for kind, on in (
            ("image", config.image_data_delivery_enabled),
            ("video", config.video_data_delivery_enabled),
            ("audio", config.audio_data_delivery_enabled),
        )
        if not on
    }


def withhold_media(value: Any, off: set[str]) -> Any:
    """``value`` (any JSON value: a span's input or output) with each media block of a kind
    in ``off`` replaced by its placeholder, recognised as in a body."""
    return _strip(value, off, {}, 0) if off else value


def _has_body(doc: dict[str, Any]) -> bool:
    return any(
        isinstance(doc.get(part), dict) and any(doc[part].get(k) is not None for k in keys)
        for part, keys in _BODY_KEYS.items()
    )


def _withhold_all(doc: dict[str, Any], why: dict[str, Any]) -> bool:
    if not _has_body(doc):
        return False
    _keep_counts(doc)
    for part, keys in _BODY_KEYS.items():
        section = doc.get(part)
        if isinstance(section, dict):
            for key in keys:
                section.pop(key, None)
    _mark(doc, {"bodies": "withheld", **why})
    return True


def _withhold_media(doc: dict[str, Any], off: set[str]) -> bool:
    found: dict[str, int] = {}
    offloaded = False
    for part, (body_key, path_key, *_) in _BODY_KEYS.items():
        section = doc.get(part)
        if not isinstance(section, dict):
            continue
        if section.get(body_key) is not None:
            section[body_key] = _strip(section[body_key], off, found, 0)
        elif section.get(path_key) is not None:
            # offloaded: what it holds cannot be seen, so it is not delivered
            section.pop(path_key)
            offloaded = True
    output = doc.get("output")
    if "video" in off and isinstance(output, dict) and output.pop("outputVideoS3Path", None):
        found["video"] = found.get("video", 0) + 1
    if not found and not offloaded:
        return False
    if found:
        _keep_counts(doc)
    why: dict[str, Any] = {"reason": "configuration", "withheld": sorted(found or off)}
    if offloaded:
        why["bodies"] = "withheld"
    else:
        why["bodies"] = "partial"
        why["blocks"] = sum(found.values())
    _mark(doc, why)
    return True


def _strip(value: Any, off: set[str], found: dict[str, int], depth: int) -> Any:
    """``value`` with every media block of a kind in ``off`` replaced by a placeholder;
    counts replaced blocks by kind in ``found``."""
    if depth > _MAX_DEPTH:
        first = min(off)
        found[first] = found.get(first, 0) + 1
        return dict(_MARK)
    if isinstance(value, list):
        return [_strip(item, off, found, depth + 1) for item in value]
    if not isinstance(value, dict):
        return value
    replaced = _placeholder(value, off, found)
    if replaced is not None:
        return replaced
    out: dict[str, Any] = {}
    for key, item in value.items():
        kind, marker = _media_field(key, item)
        if kind in off and marker is not None:
            found[kind] = found.get(kind, 0) + _count(item)
            out[key] = marker(item)
        else:
            out[key] = _strip(item, off, found, depth + 1)
    return out


def _placeholder(block: dict[str, Any], off: set[str], found: dict[str, int]) -> Any | None:
    """The placeholder for ``block`` if it is a media block to withhold, else None."""
    block_type = block.get("type")
    typed = _TYPED_MEDIA.get(block_type) if isinstance(block_type, str) else None
    if typed is not None:
        kind, payload = typed
        if kind in off and len(block) > 1:
            found[kind] = found.get(kind, 0) + 1
            return {"type": block_type, payload: dict(_MARK)}
        return None
    if len(block) == 1:
        ((member, inner),) = block.items()
        member_kind = _CONVERSE_MEDIA.get(member)
        if (
            member_kind is not None
            and member_kind in off
            and isinstance(inner, dict)
            and ("source" in inner or "format" in inner)
        ):
            found[member_kind] = found.get(member_kind, 0) + 1
            kept = {k: inner[k] for k in ("format", "name") if isinstance(inner.get(k), str)}
            return {member: {**kept, **_MARK}}
    return None


def _media_field(key: str, value: Any) -> tuple[str | None, Callable[[Any], Any] | None]:
    """Body members holding media directly: image-generation outputs and inputs (Titan /
    Nova Canvas ``images`` and ``image``, Stability ``artifacts``, OpenAI ``b64_json``) and
    an OpenAI message's generated ``audio``."""
    if key == "images" and isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "image", lambda v: [dict(_MARK) for _ in v]
    if key in ("image", "b64_json") and isinstance(value, str):
        return "image", lambda v: dict(_MARK)
    if key == "artifacts" and isinstance(value, list):
        return "image", lambda v: [
            {k: a[k] for k in ("seed", "finishReason") if k in a} | _MARK
            if isinstance(a, dict)
            else dict(_MARK)
            for a in v
        ]
    if key == "audio" and isinstance(value, dict) and "data" in value:
        return (
            "audio",
            lambda v: {k: v[k] for k in ("id", "expires_at", "transcript") if k in v} | _MARK,
        )
    return None, None


def _count(value: Any) -> int:
    return len(value) if isinstance(value, list) else 1


def _is_embedding(doc: dict[str, Any]) -> bool:
    """An embeddings call: by operation, model id, or a response of embedding vectors."""
    if doc.get("operation") in _EMBED_OPERATIONS:
        return True
    for key in ("modelId", "resolvedModelId"):
        model = doc.get(key)
        if isinstance(model, str) and "embed" in model.lower():
            return True
    output = doc.get("output")
    body = output.get("outputBodyJson") if isinstance(output, dict) else None
    if isinstance(body, dict):
        if "embedding" in body or "embeddings" in body:
            return True
        data = body.get("data")
        if isinstance(data, list) and data and isinstance(data[0], dict):
            return data[0].get("object") == "embedding"
    return False


def _keep_counts(doc: dict[str, Any]) -> None:
    """Counts a reader would otherwise derive from the output body, kept before it goes."""
    output = doc.get("output")
    if not isinstance(output, dict) or not isinstance(output.get("outputBodyJson"), dict):
        return
    images, embeddings = image_count(doc), embedding_count(doc)
    if images is not None:
        output.setdefault("outputImageCount", images)
    if embeddings is not None:
        output.setdefault("outputEmbeddingCount", embeddings)


def _mark(doc: dict[str, Any], why: dict[str, Any]) -> None:
    existing = doc.get(DELIVERY_KEY)
    refused = isinstance(existing, dict) and existing.get("noLog") == "refused"
    doc[DELIVERY_KEY] = {**why, **({"noLog": "refused"} if refused else {})}
