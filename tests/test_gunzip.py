"""`llmtrail.gunzip`: every member of a multi-member gzip body is read, NUL padding is
skipped as the ``gzip`` tool skips it, anything else after a member is refused, and the limit
holds across all members."""

from __future__ import annotations

import gzip
import os
import zlib

import pytest

from llmtrail.errors import PayloadTooLarge, ValidationError
from llmtrail.gunzip import gunzip_limited

ONE = b'{"requestId": "one"}\n'
TWO = b'{"requestId": "two"}\n'


def test_every_member_is_read() -> None:
    body = gzip.compress(ONE) + gzip.compress(TWO)
    assert gunzip_limited(body, 1000) == ONE + TWO
    assert gunzip_limited(body, 1000) == gzip.decompress(body)  # what the stdlib reads


def test_members_larger_than_a_block_and_many_small_ones() -> None:
    big = os.urandom(700_000)  # incompressible: spans several of the blocks fed to zlib
    body = gzip.compress(big, 1) + gzip.compress(ONE) + gzip.compress(big, 9)
    assert gunzip_limited(body, 2_000_000) == big + ONE + big
    tiny = b"".join(gzip.compress(b"%d\n" % i) for i in range(5000))
    assert gunzip_limited(tiny, 100_000) == b"".join(b"%d\n" % i for i in range(5000))


def test_a_member_split_anywhere_in_the_payload_joins_back() -> None:
    text = b"".join(b'{"i": %d}\n' % i for i in range(1000))
    for cut in (1, 7, len(text) // 2, len(text) - 1):
        body = gzip.compress(text[:cut]) + gzip.compress(text[cut:])
        assert gunzip_limited(body, len(text)) == text


def test_nul_padding_between_and_after_members_is_skipped() -> None:
    body = gzip.compress(ONE) + b"\0" * 512 + gzip.compress(TWO) + b"\0" * 3
    assert gunzip_limited(body, 1000) == ONE + TWO


@pytest.mark.parametrize(
    ("tail", "needle"),
    [
        (b"garbage", "7 bytes after gzip member 2 that are not another gzip member"),
        (b"\n", "1 bytes after gzip member 2"),
        (b"\x1f", "1 bytes after gzip member 2"),
        (b"\0\0junk", "4 bytes after gzip member 2"),
    ],
)
def test_bytes_after_the_last_member_are_refused(tail: bytes, needle: str) -> None:
    body = gzip.compress(ONE) + gzip.compress(TWO) + tail
    with pytest.raises(ValidationError) as caught:
        gunzip_limited(body, 1000)
    assert caught.value.field == "body" and needle in caught.value.message
    assert not isinstance(caught.value, PayloadTooLarge)


def test_broken_and_truncated_members_are_refused_with_their_number() -> None:
    second = gzip.compress(TWO)
    with pytest.raises(ValidationError, match="member 2 has no end"):
        gunzip_limited(gzip.compress(ONE) + second[:-4], 1000)
    with pytest.raises(ValidationError, match=r"not valid gzip \(member 2\)"):
        gunzip_limited(gzip.compress(ONE) + second[:3] + b"\xff" * 30, 1000)
    with pytest.raises(ValidationError, match="is not gzip"):
        gunzip_limited(b"plain text", 1000)
    with pytest.raises(ValidationError, match="is not gzip"):
        gunzip_limited(b"", 1000)
    with pytest.raises(ValidationError, match="traces"):
        gunzip_limited(b"", 1000, field="traces")


def test_the_limit_holds_across_members() -> None:
    half = gzip.compress(b" " * 600)
    assert len(gunzip_limited(half + half, 1200)) == 1200  # exactly the limit is fine
    with pytest.raises(PayloadTooLarge) as caught:
        gunzip_limited(half + half, 1199)
    assert caught.value.field == "body" and "limit of 1199 bytes" in caught.value.message


def test_a_bomb_in_a_later_member_stops_at_the_limit() -> None:
    bomb = zlib.compressobj(9, zlib.DEFLATED, 31)
    member = bomb.compress(b"\0" * 50_000_000) + bomb.flush()
    assert len(member) < 100_000
    with pytest.raises(PayloadTooLarge):
        gunzip_limited(gzip.compress(ONE) + member, 1_000_000)
