"""Bounded gzip decompression, the one llmtrail uses wherever gzip arrives (``POST
/api/records``, ``POST /v1/traces``, ``llmtrail ingest FILE.gz``).

A gzip body may hold several members one after another — what ``cat a.gz b.gz`` makes and what
some log shippers send — and it means their contents joined, so every member is read, as the
``gzip`` tool and Python's `gzip` module read them; NUL bytes between or after members (tape
padding) are skipped, as Python's `gzip` module skips them. Anything else after a member is
refused, never dropped in silence. The output of all members together never exceeds the
caller's limit, so a gzip bomb costs at most ``limit`` bytes of memory, and the input is fed to
zlib a block at a time so that a body of many tiny members costs time linear in its size.

Imports nothing of llmtrail but `llmtrail.errors`, so every layer may use it.
"""

from __future__ import annotations

import re
import zlib

from llmtrail.errors import PayloadTooLarge, ValidationError

GZIP_MAGIC = b"\x1f\x8b"
# compressed bytes handed to zlib per call: small at a member's start (zlib copies what is left
# of a block after the member's end), doubling up to the largest
_FIRST_BLOCK, _LARGEST_BLOCK = 4096, 256 * 1024
_NUL_RUN = re.compile(rb"\x00*")


def is_gzip_encoded(content_encoding: str | None) -> bool:
    """Whether a request's ``Content-Encoding`` says gzip; `ValidationError` on
    ``content-encoding`` for any encoding other than gzip or identity (read as plain text, a
    ``br`` or ``deflate`` body would be taken for garbage)."""
    encoding = (content_encoding or "identity").strip().lower()
    if encoding not in ("gzip", "identity", ""):
        raise ValidationError(
            "content-encoding", f"must be gzip or identity, got {encoding[:40]!r}"
        )
    return encoding == "gzip"


def gunzip_limited(data: bytes, limit: int, field: str = "body") -> bytes:
    """The contents of every gzip member in ``data``, joined.

    Raises `PayloadTooLarge` (naming ``field`` and ``limit``) as soon as the contents would
    pass ``limit`` bytes, and `ValidationError` on ``field`` for data that is not gzip, a
    member cut short, or bytes after a member that do not start another one.
    """
    view = memoryview(data)
    parts: list[bytes] = []
    size = 0
    pos = 0
    member = 0
    while True:
        member += 1
        if bytes(view[pos : pos + 2]) != GZIP_MAGIC:
            if member == 1:
                raise ValidationError(field, "is not gzip (it does not start with 1f 8b)")
            raise ValidationError(
                field,
                f"has {len(data) - pos} bytes after gzip member {member - 1} that are not "
                "another gzip member; send gzip members only",
            )
        decompressor = zlib.decompressobj(wbits=31)
        block_size = _FIRST_BLOCK
        while not decompressor.eof:
            if pos >= len(data):
                raise ValidationError(field, f"is truncated gzip: member {member} has no end")
            block = view[pos : pos + block_size]
            block_size = min(2 * block_size, _LARGEST_BLOCK)
            try:
                # never more than one byte past the limit: enough to know it was passed
                part = decompressor.decompress(block, limit - size + 1)
            except zlib.error as exc:
                raise ValidationError(
                    field, f"is not valid gzip (member {member}): {exc}"
                ) from None
            size += len(part)
            if size > limit or decompressor.unconsumed_tail:
                raise PayloadTooLarge(
                    field, f"decompresses to more than the limit of {limit} bytes"
                )
            parts.append(part)
            pos += len(block) - len(decompressor.unused_data)
        match = _NUL_RUN.match(data, pos)
        pos = match.end() if match else pos
        if pos >= len(data):
            return b"".join(parts)
