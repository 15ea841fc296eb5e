"""`LoopPipe`: the serving loop writes the recorder's facts itself, on a real pipe between two
threads (the reader stands for the recorder process)."""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
import time
from typing import Any

from llmtrail.pipeline.loop_pipe import LINGER_S, LoopPipe, read_messages


def _reader(conn: Any) -> tuple[list[tuple[str, tuple[Any, ...]]], threading.Thread]:
    got: list[tuple[str, tuple[Any, ...]]] = []
    thread = threading.Thread(
        target=read_messages, args=(conn, lambda kind, body: got.append((kind, body)))
    )
    return got, thread


def test_messages_arrive_in_order_and_close_writes_what_waited() -> None:
    """Messages lingering (not yet written) when the pipe closes are written first: the
    reader reads them all, in order, then the end."""
    reading, writing = multiprocessing.get_context("spawn").Pipe(duplex=False)
    got, reader = _reader(reading)
    reader.start()

    async def main() -> None:
        pipe = LoopPipe(writing, asyncio.get_running_loop())
        for i in range(3):
            pipe.post("facts", i)
        pipe.post("call", 7, "barrier", (), at_once=True)  # goes with the loop's next turn
        await asyncio.sleep(0)
        pipe.post("facts", 3)
        assert pipe.pending() == 1  # lingering: the loop writes it within LINGER_S
        pipe.close()  # before LINGER_S: written by the close
        assert pipe.closed and pipe.pending() == 0

    asyncio.run(main())
    reader.join(10)
    assert not reader.is_alive()  # it read the end of the pipe
    assert got == [
        ("facts", (0,)),
        ("facts", (1,)),
        ("facts", (2,)),
        ("call", (7, "barrier", ())),
        ("facts", (3,)),
    ]


def test_a_full_pipe_never_holds_the_loop_up() -> None:
    """A reader that does not read: the pipe fills, the loop goes on (what waits is counted
    as pending), and once the reader reads, everything arrives in order."""
    reading, writing = multiprocessing.get_context("spawn").Pipe(duplex=False)
    got, reader = _reader(reading)
    blob = b"x" * 200_000  # several times what a pipe holds
    posted = 40

    async def main() -> None:
        pipe = LoopPipe(writing, asyncio.get_running_loop())
        started = time.monotonic()
        for i in range(posted):
            pipe.post("facts", i, blob)
            await asyncio.sleep(LINGER_S)  # each goes alone, most into a full pipe
        assert pipe.pending() > 0  # waiting for the pipe to drain, in the loop's buffer
        beats = 0
        reader.start()
        while pipe.pending():  # the loop keeps turning while the reader catches up
            await asyncio.sleep(0.001)
            beats += 1
            assert time.monotonic() - started < 60
        assert beats > 0
        pipe.close()

    asyncio.run(main())
    reader.join(10)
    assert [body[0] for _, body in got] == list(range(posted))
    assert all(body[1] == blob for _, body in got)


def test_a_broken_pipe_counts_what_it_lost_and_takes_nothing_more() -> None:
    reading, writing = multiprocessing.get_context("spawn").Pipe(duplex=False)
    lost: list[int] = []

    async def main() -> None:
        pipe = LoopPipe(writing, asyncio.get_running_loop(), lost.append)
        reading.close()  # the recorder died
        pipe.post("facts", 1)
        pipe.post("facts", 2, at_once=True)
        await asyncio.sleep(0.05)
        assert pipe.closed and pipe.pending() == 0
        pipe.post("facts", 3)
        pipe.close()

    asyncio.run(main())
    assert sum(lost) == 3


def test_posts_from_other_threads_take_the_loops_order() -> None:
    """A policy change told from another thread goes after what the loop posted before it
    ran, and before what it posts after."""
    reading, writing = multiprocessing.get_context("spawn").Pipe(duplex=False)
    got, reader = _reader(reading)
    reader.start()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        pipe = LoopPipe(writing, loop)
        pipe.post("facts", 1)
        told = threading.Thread(target=pipe.post_threadsafe, args=("invalidate",))
        told.start()
        told.join()
        await asyncio.sleep(0)  # the thread's post runs in this turn of the loop
        pipe.post("facts", 2)
        await asyncio.sleep(LINGER_S * 3)
        # closed from another thread while the loop runs: done on the loop
        await asyncio.to_thread(pipe.close)
        assert pipe.closed

    asyncio.run(main())
    reader.join(10)
    assert got == [("facts", (1,)), ("invalidate", ()), ("facts", (2,))]
