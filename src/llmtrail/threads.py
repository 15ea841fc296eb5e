"""A process's threads as Linux lists them: niceness and the scheduling policy are per thread
there, so what yields the CPU (`server.yielding`, `store.duckdb.database`) sets them thread by
thread."""

from __future__ import annotations

import os


def thread_ids(pid: int | str = "self") -> set[int]:
    """The ids of process ``pid``'s threads (this process's by default); empty when it is
    gone, or where there is no ``/proc``."""
    try:
        return {int(task) for task in os.listdir(f"/proc/{pid}/task")}
    except OSError:
        return set()
