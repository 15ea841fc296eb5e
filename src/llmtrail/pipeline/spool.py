"""An append-only, durable write-ahead spool on disk for the logging pipeline.

Records are acknowledged only once they are on disk, so the spool is the one place where a
crash, a full disk or a bad sector can lose or mangle data. It is built to make those cases
boring:

Frame format. Every payload is written as one frame: a 16-byte little-endian header
``<4sBBHII`` (magic ``b"LTSP"``, format version, flags, reserved, payload length, CRC32 of the
payload) followed by the payload. The magic and version catch garbage and files from a future
format, the length bounds the read (anything over 64 MiB is treated as corruption, never as an
allocation request), and the CRC catches torn or bit-rotted payloads. Nonzero flags or reserved
bits are rejected too: a new meaning for them needs a new version. Frames live in numbered
segment files (``segment-000000000001.spool``, ...); a position is ``(segment, offset just
after a frame)``, so positions order the same way the records were written.

Group commit. ``append`` takes a whole batch, encodes it into one buffer, issues ONE ``write``
and ONE ``fsync``, and only then returns the position after the last frame. The cost of an fsync
is paid once per batch instead of once per record, and a batch is never acknowledged before it
is durable. A failed write or fsync truncates the segment back to where the batch began. A
batch nobody waits for (gateway records) may be appended without its fsync: the write alone
survives the process's death, and ``sync`` (which the pipeline calls before the batch's
position is committed to the store), the next durable append or the segment's end makes it
durable.
Appends that would push the live segments over ``max_bytes`` are refused whole with
``SpoolFullError`` (back-pressure instead of filling the disk).

Recovery. A crash can leave a torn frame at the end of the newest segment; disks can corrupt
anything. On open the newest segment is scanned and any bad tail (short header, short payload,
bad magic, unknown version, bad CRC, absurd length) is copied to ``quarantine/`` for a human,
then the segment is truncated to its last good frame, so new appends follow good data. Older
segments are checked during ``replay``: a bad frame there quarantines the rest of that segment
and replay moves on to the next one. Damage is counted in ``stats`` and never raises, so a bad
file cannot put the process into a crash loop. Quarantine copies are made durable before the
truncation, so a crash in between only repeats the (idempotent) copy.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import struct
import threading
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, ClassVar

from llmtrail.errors import Unavailable

__all__ = [
    "MAX_FRAME_PAYLOAD",
    "SPOOL_FORMAT_VERSION",
    "Spool",
    "SpoolFullError",
    "SpoolPosition",
    "SpoolStats",
    "encode_frame",
]

SPOOL_FORMAT_VERSION = 1
MAGIC = b"LTSP"
HEADER = struct.Struct("<4sBBHII")
MAX_FRAME_PAYLOAD = 64 * 2**20
QUARANTINE_DIR = "quarantine"
_PREFIX, _SUFFIX = "segment-", ".spool"


@dataclass(frozen=True, order=True)
class SpoolPosition:
    """A point in the spool: ``offset`` is the byte just after a frame in ``segment``."""

    segment: int
    offset: int

    ZERO: ClassVar[SpoolPosition]

    def encode(self) -> str:
        return f"{self.segment}:{self.offset}"

    @classmethod
    def decode(cls, text: str) -> SpoolPosition:
        segment, sep, offset = text.strip().partition(":")
        if not sep or not segment.isdigit() or not offset.isdigit():
            raise ValueError(f"not a spool position (want 'segment:offset'): {text!r}")
        return cls(int(segment), int(offset))


SpoolPosition.ZERO = SpoolPosition(0, 0)


class SpoolFullError(Unavailable):
    """The append would take the spool over ``max_bytes``; nothing was written."""


@dataclass
class SpoolStats:
    bytes: int
    segments: int
    frames_appended: int
    fsyncs: int
    quarantined_frames: int
    quarantined_bytes: int
    full_rejections: int


def encode_frame(payload: bytes) -> bytes:
    """One frame: header + payload. Payloads over ``MAX_FRAME_PAYLOAD`` are a ValueError."""
    if len(payload) > MAX_FRAME_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes exceeds {MAX_FRAME_PAYLOAD}")
    header = HEADER.pack(MAGIC, SPOOL_FORMAT_VERSION, 0, 0, len(payload), zlib.crc32(payload))
    return header + payload


def _read_frame(f: BinaryIO) -> bytes | None:
    """Read one frame at the current position; None if it is short, torn or corrupt."""
    header = f.read(HEADER.size)
    if len(header) < HEADER.size:
        return None
    magic, version, flags, reserved, length, crc = HEADER.unpack(header)
    if magic != MAGIC or version != SPOOL_FORMAT_VERSION or flags or reserved:
        return None
    if length > MAX_FRAME_PAYLOAD:
        return None
    payload = f.read(length)
    if len(payload) < length or zlib.crc32(payload) != crc:
        return None
    return payload


def _segment_name(segment: int) -> str:
    return f"{_PREFIX}{segment:012d}{_SUFFIX}"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Spool:
    """Append-only segmented spool; see the module docstring for the design.

    ``append`` (one thread) may run concurrently with ``release``/``stats``/``end_position``
    (another thread). ``replay`` is meant for start-up, before appends begin.
    """

    def __init__(
        self,
        directory: Path,
        *,
        segment_bytes: int = 64 * 2**20,
        max_bytes: int = 2**30,
        fsync: bool = True,
    ) -> None:
        if segment_bytes <= 0 or max_bytes <= 0:
            raise ValueError("segment_bytes and max_bytes must be positive")
        self.directory = Path(directory)
        self.segment_bytes = segment_bytes
        self.max_bytes = max_bytes
        self.fsync = fsync
        self._lock = threading.Lock()  # guards the state below
        self._append_lock = threading.Lock()  # serializes append/close (held across fsync)
        self._sizes: dict[int, int] = {}  # live segment -> size in bytes, ascending order
        self._frames_appended = 0
        self._fsyncs = 0
        self._unsynced = False  # written by appends that were not durable, not yet fsync'd
        self._quarantined_frames = 0
        self._quarantined_bytes = 0
        self._full_rejections = 0
        self._released_in_active = 0  # bytes of the active segment already stored
        self._closed = False

        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / QUARANTINE_DIR).mkdir(exist_ok=True)
        found: list[int] = []
        for path in self.directory.glob(f"{_PREFIX}*{_SUFFIX}"):
            number = path.name[len(_PREFIX) : -len(_SUFFIX)]
            if number.isdigit() and int(number) > 0 and path.is_file():
                found.append(int(number))
        for segment in sorted(found):
            self._sizes[segment] = self._path(segment).stat().st_size
        if not self._sizes:
            self._sizes[1] = 0
        self._active = max(self._sizes)
        self._fd = self._open_segment(self._active)
        self._recover_active()

    # -- public API ------------------------------------------------------------------------

    def append(self, payloads: Sequence[bytes], durable: bool = True) -> SpoolPosition:
        """Write a batch durably (one write, one fsync); return the position after it. Not
        ``durable``: one write and no fsync until `sync` (or the next durable append, or the
        segment's end): it survives the process's death, not the machine's."""
        with self._append_lock:
            if self._closed:
                raise ValueError("spool is closed")
            if not payloads:
                return self.end_position()
            data = b"".join(encode_frame(bytes(p)) for p in payloads)
            with self._lock:
                live = self._unreleased()
                if live + len(data) > self.max_bytes:
                    self._full_rejections += 1
                    raise SpoolFullError(
                        f"spool full: {live} + {len(data)} bytes > max_bytes={self.max_bytes}"
                    )
                if self._sizes[self._active] >= self.segment_bytes:
                    self._roll()
                segment, start = self._active, self._sizes[self._active]
            self._write_durably(data, start, durable)
            with self._lock:
                self._sizes[segment] = start + len(data)
                self._frames_appended += len(payloads)
                if self.fsync and durable:
                    self._fsyncs += 1
                self._unsynced = self.fsync and not durable
            return SpoolPosition(segment, start + len(data))

    def sync(self) -> None:
        """fsync what appends that were not ``durable`` wrote; nothing when nothing waits."""
        with self._append_lock:
            if not self._closed:
                self._sync_unsynced()

    def replay(self, after: SpoolPosition) -> Iterator[tuple[SpoolPosition, bytes]]:
        """Yield ``(position_after_frame, payload)`` for every good frame after ``after``."""
        with self._lock:
            segments = [s for s in self._sizes if s >= after.segment]
        for segment in segments:
            try:
                f = open(self._path(segment), "rb")  # noqa: SIM115 - closed below
            except FileNotFoundError:  # released meanwhile
                continue
            with f:
                size = os.fstat(f.fileno()).st_size
                offset = 0
                while offset < size:
                    payload = _read_frame(f)
                    if payload is None:
                        self._quarantine(segment, offset)
                        break
                    offset += HEADER.size + len(payload)
                    position = SpoolPosition(segment, offset)
                    if position > after:
                        yield position, payload

    def release(self, upto: SpoolPosition) -> int:
        """Delete non-active segments whose frames all lie at or before ``upto``."""
        deleted = 0
        with self._lock:
            for segment, size in list(self._sizes.items()):
                if segment == self._active:
                    continue
                if segment < upto.segment or (segment == upto.segment and upto.offset >= size):
                    self._path(segment).unlink(missing_ok=True)
                    del self._sizes[segment]
                    deleted += 1
            if upto.segment == self._active:
                self._released_in_active = max(self._released_in_active, upto.offset)
        return deleted

    def _unreleased(self) -> int:
        """Bytes not yet released (caller holds ``_lock``): what ``max_bytes`` bounds. The
        released head of the active segment stays on disk until the segment rolls, so the
        files can exceed ``max_bytes`` by up to one segment."""
        return sum(self._sizes.values()) - self._released_in_active

    def advance_past(self, position: SpoolPosition) -> None:
        """Make every later append land after ``position``.

        The store may have committed a position the spool's files no longer reach (a damaged
        tail was cut off, or segment files were removed); appending below it would hide new
        frames from the next replay. A fresh segment numbered past it keeps positions rising.
        """
        with self._append_lock, self._lock:
            if SpoolPosition(self._active, self._sizes[self._active]) >= position:
                return
            segment = max(self._active, position.segment) + 1
            fd = self._open_segment(segment)
            os.close(self._fd)
            self._fd, self._active = fd, segment
            self._sizes[segment] = 0
            self._released_in_active = 0

    def end_position(self) -> SpoolPosition:
        """The position after the last committed frame (``(1, 0)`` for a fresh spool)."""
        with self._lock:
            return SpoolPosition(self._active, self._sizes[self._active])

    def last_frame_end(self) -> SpoolPosition | None:
        """The position just after the last frame in the spool's files; None when they hold
        none (a fresh spool, or one whose stored segments were released and whose active
        segment is still empty). Unlike `end_position`, an empty active segment does not
        move it: nothing in that segment waits to be stored."""
        with self._lock:
            filled = [segment for segment, size in self._sizes.items() if size]
            if not filled:
                return None
            return SpoolPosition(max(filled), self._sizes[max(filled)])

    @property
    def stats(self) -> SpoolStats:
        with self._lock:
            return SpoolStats(
                bytes=self._unreleased(),
                segments=len(self._sizes),
                frames_appended=self._frames_appended,
                fsyncs=self._fsyncs,
                quarantined_frames=self._quarantined_frames,
                quarantined_bytes=self._quarantined_bytes,
                full_rejections=self._full_rejections,
            )

    def close(self) -> None:
        with self._append_lock, self._lock:
            if not self._closed:
                self._closed = True
                with contextlib.suppress(OSError):
                    self._sync_unsynced()
                os.close(self._fd)

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals -------------------------------------------------------------------------

    def _path(self, segment: int) -> Path:
        return self.directory / _segment_name(segment)

    def _open_segment(self, segment: int) -> int:
        path = self._path(segment)
        created = not path.exists()
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        if created and self.fsync:
            _fsync_dir(self.directory)
        return fd

    def _roll(self) -> None:
        """Start the next segment (caller holds ``_lock``); every batch in the old one is done."""
        self._sync_unsynced()  # what was written without an fsync is durable before it closes
        fd = self._open_segment(self._active + 1)  # if this fails, nothing has changed
        os.close(self._fd)
        self._fd, self._active = fd, self._active + 1
        self._sizes[self._active] = 0
        self._released_in_active = 0

    def _sync_unsynced(self) -> None:
        """fsync the active segment if appends left it unsynced (caller holds
        ``_append_lock``, which every writer of these fields holds)."""
        if self._unsynced:
            os.fsync(self._fd)
            self._fsyncs += 1
            self._unsynced = False

    def _write_durably(self, data: bytes, start: int, durable: bool = True) -> None:
        view = memoryview(data)
        try:
            while view:  # one write call for any regular file; loop only on a short write
                view = view[os.write(self._fd, view) :]
            if self.fsync and durable:
                os.fsync(self._fd)
        except BaseException:
            # Never leave a half batch behind an unacknowledged append; if even this fails,
            # the next open's recovery quarantines the torn tail.
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, start)
            raise

    def _recover_active(self) -> None:
        with open(self._path(self._active), "rb") as f:
            size = os.fstat(f.fileno()).st_size
            offset = 0
            while offset < size:
                payload = _read_frame(f)
                if payload is None:
                    self._quarantine(self._active, offset)
                    return
                offset += HEADER.size + len(payload)

    def _quarantine(self, segment: int, offset: int) -> None:
        """Copy ``segment[offset:]`` to quarantine/, make it durable, truncate the segment."""
        path = self._path(segment)
        target = self.directory / QUARANTINE_DIR / f"{path.name}.{offset}.bad"
        with self._lock:
            try:
                with open(path, "r+b") as src, open(target, "wb") as dst:
                    src.seek(offset)
                    shutil.copyfileobj(src, dst)
                    copied = dst.tell()
                    if self.fsync:
                        dst.flush()
                        os.fsync(dst.fileno())
                        _fsync_dir(target.parent)
                    src.truncate(offset)
                    if self.fsync:
                        os.fsync(src.fileno())
            except FileNotFoundError:  # released meanwhile: nothing left to damage
                return
            if segment in self._sizes:
                self._sizes[segment] = offset
            self._quarantined_frames += 1
            self._quarantined_bytes += copied
