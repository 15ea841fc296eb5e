"""A one-way pipe an asyncio event loop writes itself, with no thread of its own: how the
serving process hands a gateway call's facts to the recorder process.

`Link` writes through a sender thread. For the facts of gateway calls that thread woke every
10 ms and took the GIL from the event loop twice, to pickle them and after the write: in four
A/B runs the same calls cost ~50 µs of CPU less each on average with the loop writing them
itself, and 64 calls in flight ran 2 % faster (docs/record-path.md). Here the loop gathers
10 ms of messages, pickles them in one callback and writes them to a non-blocking pipe. What
the pipe cannot take at once waits in a buffer and is written as the pipe drains
(`add_writer`): the loop never waits on the reader.

Messages keep their order: the facts, the barriers an OTLP export waits on (answered on the
`Link`) and the policy changes that apply to the calls handed over after them all take this
pipe. A frame is a 4-byte big-endian length and a pickled list of messages; `read_messages`
reads them on the other side.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import pickle
import select
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

log = logging.getLogger("llmtrail.pipeline")
LINGER_S = 0.010  # as `Link`'s messages nobody waits for: one write carries 10 ms of calls
_HEADER = 4
_FLUSH_TIMEOUT_S = 5.0


class LoopPipe:
    """The writing end, used from ``loop``'s thread (`post`; other threads `post_threadsafe`).
    ``on_lost(n)`` is told of messages that never reached the pipe because it broke."""

    def __init__(
        self,
        conn: Connection,
        loop: asyncio.AbstractEventLoop,
        on_lost: Callable[[int], None] = lambda n: None,
    ) -> None:
        self._conn = conn  # kept open as long as we write its descriptor
        self._fd = conn.fileno()
        os.set_blocking(self._fd, False)
        self._loop = loop
        self._on_lost = on_lost
        self._gathered: list[tuple[Any, ...]] = []  # messages not yet pickled
        self._out = bytearray()  # frames pickled and not yet written
        self._frames: collections.deque[list[int]] = collections.deque()  # [bytes, messages]
        self._timer: asyncio.Handle | None = None  # the flush to come
        self._writing = False  # waiting for the pipe to drain
        self.closed = False

    def pending(self) -> int:
        """Messages not yet in the pipe."""
        return len(self._gathered) + sum(f[1] for f in self._frames)

    def post(self, *message: Any, at_once: bool = False) -> None:
        """Queue one message (on the loop's thread); it goes within `LINGER_S`, or with the
        loop's next turn when ``at_once``, after every message posted before it."""
        if self.closed:
            self._on_lost(1)
            return
        self._gathered.append(message)
        if at_once:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = self._loop.call_soon(self._flush)
        elif self._timer is None:
            self._timer = self._loop.call_later(LINGER_S, self._flush)

    def post_threadsafe(self, *message: Any, at_once: bool = False) -> None:
        """`post` from another thread: queued in the loop's order of callbacks."""
        try:
            self._loop.call_soon_threadsafe(lambda: self.post(*message, at_once=at_once))
        except RuntimeError:  # the loop is closed: the server is stopping
            self._on_lost(1)

    def _flush(self) -> None:
        self._timer = None
        if self.closed or not self._gathered:
            return
        batch, self._gathered = self._gathered, []
        try:
            payload = pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # a value that does not pickle: the others still go
            log.error("a message to the recorder did not pickle: %r", exc)
            payload = pickle.dumps(_picklable(batch, self._on_lost), pickle.HIGHEST_PROTOCOL)
        self._out += len(payload).to_bytes(_HEADER, "big") + payload
        self._frames.append([_HEADER + len(payload), len(batch)])
        if not self._writing:
            self._write()

    def _write(self) -> None:
        while self._out:
            try:
                written = os.write(self._fd, self._out)
            except BlockingIOError:
                if not self._writing:
                    self._loop.add_writer(self._fd, self._write)
                    self._writing = True
                return
            except OSError:  # the reader is gone: the recorder died (it is restarted)
                self._broken()
                return
            self._wrote(written)
        if self._writing:
            self._loop.remove_writer(self._fd)
            self._writing = False

    def _wrote(self, count: int) -> None:
        del self._out[:count]
        while count and self._frames:
            frame = self._frames[0]
            taken = min(count, frame[0])
            frame[0] -= taken
            count -= taken
            if frame[0] == 0:
                self._frames.popleft()

    def _broken(self) -> None:
        lost = self.pending()
        self._out.clear()
        self._frames.clear()
        self._gathered = []
        self._stop()
        if lost:
            self._on_lost(lost)

    def _stop(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._writing:
            with contextlib.suppress(Exception):
                self._loop.remove_writer(self._fd)
            self._writing = False

    def close(self, flush_s: float = _FLUSH_TIMEOUT_S) -> None:
        """Write what is queued (waiting up to ``flush_s`` for the reader), then close: the
        reader reads the end of the pipe after the last message. From any thread."""
        if self._on_loop_elsewhere():
            done = threading.Event()

            def close_here() -> None:
                try:
                    self.close(flush_s)
                finally:
                    done.set()

            try:
                self._loop.call_soon_threadsafe(close_here)
            except RuntimeError:  # closed meanwhile: this thread may write now
                self.close(flush_s)
                return
            done.wait(flush_s + 1)
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self.closed:
            self._flush()
            self._drain(flush_s)
            self._stop()
        with contextlib.suppress(OSError):
            self._conn.close()

    def _on_loop_elsewhere(self) -> bool:
        """Whether the loop runs on another thread than this one."""
        if not self._loop.is_running() or self._loop.is_closed():
            return False
        try:
            return asyncio.get_running_loop() is not self._loop
        except RuntimeError:
            return True

    def _drain(self, flush_s: float) -> None:
        """Write the buffer out, waiting (here, blocking) for the reader up to ``flush_s``."""
        if self._writing:
            with contextlib.suppress(Exception):
                self._loop.remove_writer(self._fd)
            self._writing = False
        poller = select.poll()
        poller.register(self._fd, select.POLLOUT)
        while self._out:
            if not poller.poll(int(flush_s * 1000)):
                self._broken()
                return
            try:
                self._wrote(os.write(self._fd, self._out))
            except BlockingIOError:
                continue
            except OSError:
                self._broken()
                return


def _picklable(batch: list[tuple[Any, ...]], on_lost: Callable[[int], None]) -> list[Any]:
    kept = []
    for message in batch:
        try:
            pickle.dumps(message, pickle.HIGHEST_PROTOCOL)
        except Exception:
            on_lost(1)
        else:
            kept.append(message)
    return kept


def read_messages(conn: Connection, handle: Callable[[str, tuple[Any, ...]], None]) -> None:
    """Read a `LoopPipe`'s frames until its end, handing each message to ``handle(kind,
    body)`` in order (a thread of the reading process)."""
    fd = conn.fileno()
    while True:
        header = _read_exactly(fd, _HEADER)
        if header is None:
            return
        payload = _read_exactly(fd, int.from_bytes(header, "big"))
        if payload is None:
            return
        for message in pickle.loads(payload):
            handle(message[0], message[1:])


def _read_exactly(fd: int, size: int) -> bytes | None:
    """``size`` bytes, or None at the end of the pipe (or when it broke)."""
    parts = []
    while size:
        try:
            chunk = os.read(fd, min(size, 1 << 20))
        except OSError:
            return None
        if not chunk:
            return None
        parts.append(chunk)
        size -= len(chunk)
    return b"".join(parts)
