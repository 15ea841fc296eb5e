"""Tests for the write-ahead spool: round trips, recovery from damage, back-pressure, release."""

from __future__ import annotations

import itertools
import os
import random
import tempfile
import threading
import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmtrail.errors import Unavailable
from llmtrail.pipeline.spool import (
    HEADER,
    MAGIC,
    MAX_FRAME_PAYLOAD,
    SPOOL_FORMAT_VERSION,
    Spool,
    SpoolFullError,
    SpoolPosition,
    encode_frame,
)


def payloads(n: int, seed: int = 0) -> list[bytes]:
    rng = random.Random(seed)
    return [f"record-{i}:".encode() + rng.randbytes(rng.randrange(0, 200)) for i in range(n)]


def segment_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("segment-*.spool"))


def quarantine_files(directory: Path) -> list[Path]:
    return sorted((directory / "quarantine").glob("*.bad"))


def replay_all(spool: Spool, after: SpoolPosition = SpoolPosition.ZERO) -> list[bytes]:
    return [payload for _, payload in spool.replay(after)]


def fill(directory: Path, items: list[bytes], segment_bytes: int) -> list[SpoolPosition]:
    """Append ``items`` in batches of 7; return the position after every item (via replay)."""
    with Spool(directory, segment_bytes=segment_bytes, fsync=False) as spool:
        for i in range(0, len(items), 7):
            spool.append(items[i : i + 7])
        positions = [pos for pos, _ in spool.replay(SpoolPosition.ZERO)]
    assert len(positions) == len(items)
    return positions


# -- positions -----------------------------------------------------------------------------


def test_position_encode_decode_round_trip_and_order() -> None:
    positions = [
        SpoolPosition(0, 0),
        SpoolPosition(1, 0),
        SpoolPosition(1, 17),
        SpoolPosition(2, 5),
    ]
    for pos in positions:
        assert SpoolPosition.decode(pos.encode()) == pos
    assert SpoolPosition(12, 3456).encode() == "12:3456"
    assert SpoolPosition(0, 0) == SpoolPosition.ZERO
    assert sorted(reversed(positions)) == positions
    assert SpoolPosition(1, 10**9) < SpoolPosition(2, 0)
    for bad in ["", "1", "1:", ":2", "a:b", "1:2:3", "-1:5"]:
        with pytest.raises(ValueError):
            SpoolPosition.decode(bad)


# -- round trips ---------------------------------------------------------------------------


def test_round_trip_across_segments(tmp_path: Path) -> None:
    items = payloads(300)
    with Spool(tmp_path, segment_bytes=2048) as spool:
        returned = [spool.append(items[i : i + 10]) for i in range(0, len(items), 10)]
        assert spool.append([]) == returned[-1] == spool.end_position()
        assert returned == sorted(returned) and len(set(returned)) == len(returned)
        stats = spool.stats
        assert stats.segments == len(segment_files(tmp_path)) > 3
        assert stats.frames_appended == 300
        assert stats.fsyncs == 30  # group commit: one fsync per batch
        assert stats.bytes == sum(p.stat().st_size for p in segment_files(tmp_path))

        replayed = list(spool.replay(SpoolPosition.ZERO))
        assert [p for _, p in replayed] == items
        positions = [pos for pos, _ in replayed]
        assert all(a < b for a, b in itertools.pairwise(positions))
        assert set(returned) <= set(positions)  # each batch ends on a frame boundary
        assert positions[-1] == spool.end_position()

        middle = positions[149]
        assert replay_all(spool, middle) == items[150:]
        assert replay_all(spool, positions[-1]) == []
        # a segment boundary: positions in the next segment all come after it
        first_of_seg2 = next(i for i, pos in enumerate(positions) if pos.segment == 2)
        assert replay_all(spool, positions[first_of_seg2 - 1]) == items[first_of_seg2:]


def test_fresh_spool_end_position_and_empty_append(tmp_path: Path) -> None:
    with Spool(tmp_path) as spool:
        assert spool.end_position() == SpoolPosition(1, 0) > SpoolPosition.ZERO
        assert spool.append([]) == SpoolPosition(1, 0)
        assert spool.stats.fsyncs == 0 and spool.stats.frames_appended == 0
        assert replay_all(spool) == []
        pos = spool.append([b""])  # an empty payload is a frame too
        assert pos == SpoolPosition(1, HEADER.size)
        assert replay_all(spool) == [b""]


def test_reopen_appends_after_existing_data(tmp_path: Path) -> None:
    old, new = payloads(50, seed=1), payloads(30, seed=2)
    with Spool(tmp_path, segment_bytes=1024) as spool:
        end_old = spool.append(old)
    with Spool(tmp_path, segment_bytes=1024) as spool:
        assert spool.end_position() == end_old
        assert spool.stats.quarantined_frames == 0
        end_new = spool.append(new)
        assert end_new > end_old
        assert end_new.segment == end_old.segment + 1  # the full segment rolled first
        assert replay_all(spool) == old + new
        assert replay_all(spool, end_old) == new


def test_append_rejects_oversized_payload(tmp_path: Path) -> None:
    with Spool(tmp_path, max_bytes=2**31) as spool:
        with pytest.raises(ValueError):
            spool.append([b"ok", bytes(MAX_FRAME_PAYLOAD + 1)])
        assert spool.end_position() == SpoolPosition(1, 0)


def test_group_commit_is_one_write_and_one_fsync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real_write, real_fsync = os.write, os.fsync  # the spool calls them through the os module

    def write(fd: int, data: bytes) -> int:
        calls.append("write")
        return real_write(fd, data)

    def fsync(fd: int) -> None:
        calls.append("fsync")
        real_fsync(fd)

    with Spool(tmp_path) as spool:
        spool.append([b"warm-up"])
        monkeypatch.setattr(os, "write", write)
        monkeypatch.setattr(os, "fsync", fsync)
        spool.append(payloads(50))
        assert calls == ["write", "fsync"]
        calls.clear()
        spool.append([])
        assert calls == []
    with Spool(tmp_path, fsync=False) as spool:
        calls.clear()
        spool.append(payloads(5))
        assert calls == ["write"]


def test_failed_fsync_rolls_the_batch_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with Spool(tmp_path) as spool:
        end = spool.append([b"kept"])

        def failing_fsync(fd: int) -> None:
            raise OSError(5, "I/O error")

        with monkeypatch.context() as m:
            m.setattr(os, "fsync", failing_fsync)
            with pytest.raises(OSError):
                spool.append([b"lost-1", b"lost-2"])
        assert spool.end_position() == end
        assert segment_files(tmp_path)[0].stat().st_size == end.offset
        assert spool.stats.frames_appended == 1
        spool.append([b"next"])
        assert replay_all(spool) == [b"kept", b"next"]


def test_append_after_close_fails(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.close()
    spool.close()  # idempotent
    with pytest.raises(ValueError):
        spool.append([b"x"])


# -- recovery ------------------------------------------------------------------------------


def _cut_points(frame_start: int, payload_len: int) -> list[int]:
    header_cuts = [frame_start + 1, frame_start + 4, frame_start + HEADER.size - 1]
    payload_cuts = [frame_start + HEADER.size, frame_start + HEADER.size + payload_len // 2]
    return header_cuts + payload_cuts + [frame_start + HEADER.size + payload_len - 1]


@pytest.mark.parametrize("which", range(6))
def test_torn_tail_is_quarantined(tmp_path: Path, which: int) -> None:
    items = [b"a" * 100, b"b" * 100, b"c" * 100]
    with Spool(tmp_path) as spool:
        second_end = spool.append(items[:2])
        spool.append(items[2:])
    segment = segment_files(tmp_path)[-1]
    data = segment.read_bytes()
    cut = _cut_points(second_end.offset, 100)[which]
    segment.write_bytes(data[:cut])

    with Spool(tmp_path) as spool:  # must not raise
        assert replay_all(spool) == items[:2]
        assert spool.end_position() == second_end
        stats = spool.stats
        assert stats.quarantined_frames == 1
        assert stats.quarantined_bytes == cut - second_end.offset
        (bad,) = quarantine_files(tmp_path)
        assert bad.name == f"{segment.name}.{second_end.offset}.bad"
        assert bad.read_bytes() == data[second_end.offset : cut]
        assert segment.stat().st_size == second_end.offset

        pos = spool.append([b"after-recovery"])
        assert replay_all(spool) == [*items[:2], b"after-recovery"]
        assert replay_all(spool, second_end) == [b"after-recovery"]
        assert pos == spool.end_position()
    with Spool(tmp_path) as spool:  # the repaired file is clean now
        assert spool.stats.quarantined_frames == 0
        assert replay_all(spool) == [*items[:2], b"after-recovery"]


def test_segment_torn_inside_first_frame_is_emptied(tmp_path: Path) -> None:
    with Spool(tmp_path) as spool:
        spool.append([b"x" * 50])
    (segment,) = segment_files(tmp_path)
    segment.write_bytes(segment.read_bytes()[:10])
    with Spool(tmp_path) as spool:
        assert replay_all(spool) == []
        assert spool.end_position() == SpoolPosition(1, 0)
        assert spool.stats.quarantined_frames == 1
        spool.append([b"fresh"])
        assert replay_all(spool) == [b"fresh"]


def test_corrupt_crc_in_tail(tmp_path: Path) -> None:
    items = payloads(10)
    with Spool(tmp_path) as spool:
        spool.append(items)
        positions = [pos for pos, _ in spool.replay(SpoolPosition.ZERO)]
    (segment,) = segment_files(tmp_path)
    data = bytearray(segment.read_bytes())
    bad_frame_start = positions[7].offset  # frame 8 (index 8) starts where frame 7 ends
    data[bad_frame_start + HEADER.size + 3] ^= 0xFF
    segment.write_bytes(bytes(data))

    with Spool(tmp_path) as spool:
        assert replay_all(spool) == items[:8]
        assert spool.stats.quarantined_frames == 1
        assert spool.stats.quarantined_bytes == len(data) - bad_frame_start
        (bad,) = quarantine_files(tmp_path)
        assert bad.read_bytes() == bytes(data[bad_frame_start:])


def test_corrupt_crc_in_middle_of_older_segment(tmp_path: Path) -> None:
    items = payloads(120, seed=3)
    positions = fill(tmp_path, items, segment_bytes=2048)
    seg1_count = sum(1 for pos in positions if pos.segment == 1)
    assert seg1_count > 4 and positions[-1].segment >= 3
    seg1 = segment_files(tmp_path)[0]
    data = bytearray(seg1.read_bytes())
    bad_start = positions[2].offset  # damage frame index 3 of segment 1
    data[bad_start + HEADER.size] ^= 0x01
    seg1.write_bytes(bytes(data))

    with Spool(tmp_path, segment_bytes=2048) as spool:
        assert spool.stats.quarantined_frames == 0  # open scans only the newest segment
        expected = items[:3] + items[seg1_count:]
        assert replay_all(spool) == expected
        stats = spool.stats
        assert stats.quarantined_frames == 1
        assert stats.quarantined_bytes == len(data) - bad_start
        (bad,) = quarantine_files(tmp_path)
        assert bad.name == f"{seg1.name}.{bad_start}.bad"
        assert bad.read_bytes() == bytes(data[bad_start:])
        # a second replay neither yields the damaged frames nor counts them again
        assert replay_all(spool) == expected
        assert spool.stats.quarantined_frames == 1
        # and new appends still land after everything
        spool.append([b"new"])
        assert replay_all(spool, positions[-1]) == [b"new"]


def test_garbage_after_good_frames(tmp_path: Path) -> None:
    items = payloads(20, seed=4)
    with Spool(tmp_path) as spool:
        end = spool.append(items)
    (segment,) = segment_files(tmp_path)
    garbage = random.Random(5).randbytes(777)
    with segment.open("ab") as f:
        f.write(garbage)

    with Spool(tmp_path) as spool:
        assert replay_all(spool) == items
        assert spool.end_position() == end
        assert spool.stats.quarantined_bytes == 777
        (bad,) = quarantine_files(tmp_path)
        assert bad.read_bytes() == garbage
        spool.append([b"more"])
        assert replay_all(spool) == [*items, b"more"]


@pytest.mark.parametrize(
    "header",
    [
        HEADER.pack(MAGIC, SPOOL_FORMAT_VERSION, 0, 0, MAX_FRAME_PAYLOAD + 1, 0),  # absurd length
        HEADER.pack(MAGIC, SPOOL_FORMAT_VERSION + 1, 0, 0, 3, 0x352441C2),  # unknown version
        HEADER.pack(MAGIC, SPOOL_FORMAT_VERSION, 1, 0, 3, 0x352441C2),  # unknown flags
        HEADER.pack(b"XXXX", SPOOL_FORMAT_VERSION, 0, 0, 3, 0x352441C2),  # bad magic
    ],
)
def test_bad_headers_are_rejected(tmp_path: Path, header: bytes) -> None:
    assert encode_frame(b"abc")[HEADER.size - 4 : HEADER.size] == (0x352441C2).to_bytes(4, "little")
    with Spool(tmp_path) as spool:
        end = spool.append([b"good"])
    (segment,) = segment_files(tmp_path)
    with segment.open("ab") as f:
        f.write(header + b"abc")
    with Spool(tmp_path) as spool:
        assert replay_all(spool) == [b"good"]
        assert spool.end_position() == end
        assert spool.stats.quarantined_frames == 1


def test_frame_longer_than_limit_is_corrupt_even_with_a_valid_crc(tmp_path: Path) -> None:
    with Spool(tmp_path, fsync=False) as spool:
        end = spool.append([b"good"])
    huge = bytes(MAX_FRAME_PAYLOAD + 1)
    (segment,) = segment_files(tmp_path)
    with segment.open("ab") as f:
        f.write(HEADER.pack(MAGIC, SPOOL_FORMAT_VERSION, 0, 0, len(huge), zlib.crc32(huge)))
        f.write(huge)
    del huge
    with Spool(tmp_path, fsync=False) as spool:
        assert replay_all(spool) == [b"good"]
        assert spool.end_position() == end
        assert spool.stats.quarantined_bytes == HEADER.size + MAX_FRAME_PAYLOAD + 1


# -- back-pressure and release -------------------------------------------------------------


def test_spool_full_rejects_whole_batch(tmp_path: Path) -> None:
    frame = len(encode_frame(b"x" * 100))
    with Spool(tmp_path, segment_bytes=3 * frame, max_bytes=7 * frame) as spool:
        first = spool.append([b"x" * 100] * 3)  # segment 1 full
        spool.append([b"x" * 100] * 3)  # segment 2 full
        before_files = {p.name: p.read_bytes() for p in segment_files(tmp_path)}
        before_end = spool.end_position()
        with pytest.raises(SpoolFullError):
            spool.append([b"y" * 100] * 2)  # 8 frames > 7
        assert isinstance(SpoolFullError("x"), Unavailable)
        assert {p.name: p.read_bytes() for p in segment_files(tmp_path)} == before_files
        assert spool.end_position() == before_end
        stats = spool.stats
        assert stats.full_rejections == 1
        assert stats.frames_appended == 6
        assert stats.bytes == 6 * frame

        spool.append([b"z" * 100])  # exactly at the limit is allowed
        with pytest.raises(SpoolFullError):
            spool.append([b""])
        assert spool.stats.full_rejections == 2

        assert spool.release(first) == 1  # consumer committed segment 1
        assert spool.stats.bytes == 4 * frame
        spool.append([b"y" * 100] * 2)
        assert replay_all(spool) == [b"x" * 100] * 3 + [b"z" * 100] + [b"y" * 100] * 2


def test_release_deletes_only_committed_inactive_segments(tmp_path: Path) -> None:
    items = payloads(100, seed=6)
    positions = fill(tmp_path, items, segment_bytes=1024)
    with Spool(tmp_path, segment_bytes=1024) as spool:
        n_segments = spool.stats.segments
        assert n_segments >= 4
        seg2 = [i for i, pos in enumerate(positions) if pos.segment == 2]
        mid_seg2 = positions[seg2[len(seg2) // 2]]
        assert spool.release(SpoolPosition.ZERO) == 0
        assert spool.release(mid_seg2) == 1  # only segment 1; segment 2 still has frames
        assert segment_files(tmp_path)[0].name == "segment-000000000002.spool"
        assert replay_all(spool, mid_seg2) == items[seg2[len(seg2) // 2] + 1 :]
        assert spool.release(positions[seg2[-1]]) == 1  # the end of segment 2 exactly
        assert spool.stats.segments == n_segments - 2
        # everything committed: all but the active segment go, the active one stays
        end = spool.end_position()
        assert spool.release(end) == n_segments - 3
        assert spool.release(SpoolPosition(end.segment + 5, 0)) == 0
        assert [p.name for p in segment_files(tmp_path)] == [f"segment-{end.segment:012d}.spool"]
        assert spool.stats.bytes == 0  # the released head of the active segment is free
        assert replay_all(spool, positions[-2]) == items[-1:]
        spool.append([b"still works"])
        assert replay_all(spool, end) == [b"still works"]


def test_release_and_stats_from_another_thread(tmp_path: Path) -> None:
    items = payloads(400, seed=7)
    committed: list[SpoolPosition] = []
    done = threading.Event()
    errors: list[BaseException] = []

    def consumer() -> None:
        try:
            while not done.is_set() or committed:
                if committed:
                    spool.release(committed.pop())
                spool.stats  # noqa: B018 - exercise the lock
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    with Spool(tmp_path, segment_bytes=512, fsync=False) as spool:
        thread = threading.Thread(target=consumer)
        thread.start()
        positions = []
        for i in range(0, len(items), 4):
            pos = spool.append(items[i : i + 4])
            positions.append(pos)
            if i % 40 == 0:
                committed.append(pos)
        done.set()
        thread.join()
        assert errors == []
        assert positions == sorted(positions)
        last = positions[-1]
        assert spool.end_position() == last
        assert spool.stats.segments == len(segment_files(tmp_path))
        newest_committed = positions[90]  # appended at i == 360, the last one committed
        assert all(
            int(p.stem[len("segment-") :]) >= newest_committed.segment
            for p in segment_files(tmp_path)
        )
        assert spool.stats.segments < positions[-1].segment
        tail_start = len(items) - 4
        assert replay_all(spool, positions[-2]) == items[tail_start:]


# -- properties ----------------------------------------------------------------------------

batches = st.lists(st.lists(st.binary(max_size=300), min_size=1, max_size=8), max_size=12)


@settings(max_examples=150, deadline=None, database=None)
@given(batches=batches, cut_fraction=st.floats(min_value=0.0, max_value=1.0))
def test_truncation_leaves_a_prefix(batches: list[list[bytes]], cut_fraction: float) -> None:
    items = [p for batch in batches for p in batch]
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        with Spool(directory, segment_bytes=700, fsync=False) as spool:
            for batch in batches:
                spool.append(batch)
            positions = [pos for pos, _ in spool.replay(SpoolPosition.ZERO)]
        assert len(positions) == len(items)
        last = segment_files(directory)[-1]
        data = last.read_bytes()
        cut = int(len(data) * cut_fraction)
        last.write_bytes(data[:cut])
        last_segment = int(last.name[len("segment-") : -len(".spool")])
        expected = [
            p
            for pos, p in zip(positions, items, strict=True)
            if pos.segment < last_segment or pos.offset <= cut
        ]
        boundaries = {0} | {pos.offset for pos in positions if pos.segment == last_segment}

        with Spool(directory, segment_bytes=700, fsync=False) as spool:
            assert replay_all(spool) == expected
            assert spool.stats.quarantined_frames == (0 if cut in boundaries else 1)
            spool.append([b"tail"])
            assert replay_all(spool) == [*expected, b"tail"]


@settings(max_examples=150, deadline=None, database=None)
@given(
    items=st.lists(st.binary(max_size=200), min_size=1, max_size=20),
    where=st.floats(min_value=0.0, max_value=1.0, exclude_max=True),
    flip=st.integers(min_value=1, max_value=255),
)
def test_any_flipped_byte_is_caught(items: list[bytes], where: float, flip: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        with Spool(directory, fsync=False) as spool:
            spool.append(items)
            ends = [pos.offset for pos, _ in spool.replay(SpoolPosition.ZERO)]
        (segment,) = segment_files(directory)
        data = bytearray(segment.read_bytes())
        index = int(len(data) * where)
        data[index] ^= flip
        segment.write_bytes(bytes(data))
        good = sum(1 for end in ends if end <= index)  # frames wholly before the damage

        with Spool(directory, fsync=False) as spool:
            assert replay_all(spool) == items[:good]
            assert spool.stats.quarantined_frames == 1


def test_released_bytes_of_the_active_segment_free_space(tmp_path: Path) -> None:
    with Spool(tmp_path, segment_bytes=2**20, max_bytes=1000) as spool:
        position = spool.append([b"a" * 400, b"b" * 400])
        with pytest.raises(SpoolFullError):
            spool.append([b"c" * 400])
        spool.release(position)  # stored: no segment can go, but the space is free again
        after = spool.append([b"c" * 400])
        assert after.segment == position.segment
        assert replay_all(spool, position) == [b"c" * 400]


def test_an_append_nobody_waits_for_is_fsynced_by_sync_a_durable_append_or_the_roll(
    tmp_path: Path,
) -> None:
    items = payloads(40)
    with Spool(tmp_path, segment_bytes=1 << 20) as spool:
        spool.append(items[:10], durable=False)
        spool.append(items[10:20], durable=False)
        assert spool.stats.fsyncs == 0
        assert replay_all(spool) == items[:20]  # written: readable at once
        spool.sync()
        assert spool.stats.fsyncs == 1
        spool.sync()  # nothing waits
        assert spool.stats.fsyncs == 1
        spool.append(items[20:30], durable=False)
        spool.append(items[30:], durable=True)  # covers what came before it
        spool.sync()
        assert spool.stats.fsyncs == 2
    with Spool(tmp_path, segment_bytes=256) as spool:  # small segments: each roll syncs
        before = len(segment_files(tmp_path))
        for i in range(0, 40, 5):
            spool.append(items[i : i + 5], durable=False)
        rolled = len(segment_files(tmp_path)) - before
        # every roll but the first closes a segment these appends wrote without an fsync
        assert rolled >= 2 and spool.stats.fsyncs == rolled - 1
        assert replay_all(spool)[-40:] == items


_DIE_AFTER_APPEND = """
import os, sys
from llmtrail.pipeline.spool import Spool
spool = Spool(sys.argv[1])
spool.append([b"gateway-%d" % i for i in range(5)], durable=False)
os._exit(0)  # no sync, no close: the process dies as a kill -9 leaves it
"""


def test_an_append_nobody_waits_for_survives_the_process_dying(tmp_path: Path) -> None:
    import subprocess
    import sys

    subprocess.run([sys.executable, "-c", _DIE_AFTER_APPEND, str(tmp_path)], check=True)
    with Spool(tmp_path) as spool:
        assert replay_all(spool) == [b"gateway-%d" % i for i in range(5)]
