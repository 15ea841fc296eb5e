"""The recorder link's framing: a batch's pickle, then a frame for each buffer it holds out of
band (`ipc_buffer`: a store batch's Arrow tables), which the receiver unpickles without a copy.
Two real links over a real pipe, in this process."""

from __future__ import annotations

import multiprocessing
import pickle
import threading
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pytest

from llmtrail.pipeline.link import Link, from_ipc, ipc_buffer


def _table(rows: int) -> pa.Table:
    return pa.table({"id": list(range(rows)), "text": [f"body {i} " * 20 for i in range(rows)]})


@pytest.fixture
def pair() -> Iterator[tuple[Link, list[tuple[str, tuple[Any, ...]]]]]:
    """A sending link and what the other end's handler got."""
    left, right = multiprocessing.Pipe()
    got: list[tuple[str, tuple[Any, ...]]] = []
    sender = Link(left, lambda kind, body: None, name="left").start()
    receiver = Link(right, lambda kind, body: got.append((kind, body)), name="right").start()
    yield sender, got
    sender.close()
    receiver.close()


def _wait_for(got: list[Any], n: int) -> None:
    import time

    deadline = time.monotonic() + 10
    while len(got) < n and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(got) == n


def test_tables_cross_out_of_band_in_order_with_the_rest(
    pair: tuple[Link, list[tuple[str, tuple[Any, ...]]]],
) -> None:
    sender, got = pair
    big, small = _table(5000), _table(3)
    sender.post("append", ipc_buffer(big), 7, ipc_buffer(small))
    sender.post("plain", b"in band", {"k": [1, 2]})
    sender.post("append", ipc_buffer(small), 8, ipc_buffer(big))
    _wait_for(got, 3)
    (k1, b1), (k2, b2), (k3, b3) = got
    assert (k1, k2, k3) == ("append", "plain", "append")
    assert from_ipc(b1[0]).equals(big) and b1[1] == 7 and from_ipc(b1[2]).equals(small)
    assert b2 == (b"in band", {"k": [1, 2]})
    assert from_ipc(b3[0]).equals(small) and b3[1] == 8 and from_ipc(b3[2]).equals(big)


def test_the_pickle_holds_none_of_a_tables_bytes() -> None:
    """What `Link._write` sends: the batch's pickle first, small however large the table,
    then the table's IPC stream as a frame of its own, which is what the receiver gets."""
    left, right = multiprocessing.Pipe()
    link = Link(left, lambda kind, body: None)
    table = _table(5000)
    writing = threading.Thread(target=link._write, args=([("append", ipc_buffer(table), None)],))
    writing.start()  # the pipe holds less than the table: read while it writes
    head = right.recv_bytes()
    assert right.poll(10)  # a frame follows
    payload = right.recv_bytes()
    writing.join()
    assert len(head) < 200 < 100_000 < len(payload)
    assert from_ipc(payload).equals(table)
    (message,) = pickle.loads(head, buffers=[payload])
    assert message[1] is payload  # the frame itself: no copy
    left.close()
    right.close()
