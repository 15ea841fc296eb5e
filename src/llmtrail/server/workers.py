"""Worker processes for a request's CPU-bound work, so that it runs beside the process that
received it instead of sharing its GIL: the serving process's decode large OTLP exports
(``POST /v1/traces``), the recorder's prepare large ingest bodies
(`llmtrail.pipeline.ingest_frames`). The functions sent there read nothing of the server's
state: bytes and what the caller read for them in, values out.

Why not `concurrent.futures.ProcessPoolExecutor`: one answer that fails to unpickle, or one
worker that dies, leaves that pool broken for every later call, and its workers outlive a
server killed with ``kill -9``. Here each worker is a ``spawn``-ed process (no copy of the
server's threads or open files) talking over its own pipe:

- it leaves as soon as its parent is gone: the pipe reads end of file, and a watcher thread
  checks the parent's pid twice a second, so even a worker busy with a long job exits;
- a supervisor thread restarts a worker that dies, and a call whose worker died is retried
  once on a fresh one;
- an exception raised in a worker comes back as itself (every llmtrail error pickles), and
  one that cannot cross the boundary comes back as a `WorkerError` naming it; the worker
  stays usable either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import queue
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection, wait
from typing import Any, TypeVar

from llmtrail.errors import LlmtrailError, Unavailable
from llmtrail.server.collector import RECORD_PATH_YOUNG, settle_collector
from llmtrail.server.no_pandas import refuse_pandas

T = TypeVar("T")
_PARENT_CHECK_S = 0.5
_STOP_TIMEOUT_S = 5.0


class WorkerError(LlmtrailError):
    """A worker's job failed in a way that cannot cross the process boundary as itself."""


class _WorkerDied(Exception):
    """The worker process ended before it answered."""


class _Worker:
    def __init__(self, context: Any, parent_pid: int) -> None:
        self.conn, child = context.Pipe()
        self.process = context.Process(
            target=serve_jobs, args=(child, parent_pid), name="llmtrail-worker", daemon=True
        )
        self.process.start()
        child.close()

    def call(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> tuple[str, Any]:
        """Send one job and wait for its answer; `_WorkerDied` if the process ends first."""
        try:
            self.conn.send((fn, args))  # pickled whole before a byte is written
        except (BrokenPipeError, ConnectionResetError, EOFError) as exc:
            raise _WorkerDied from exc
        ready = wait([self.conn, self.process.sentinel])
        if self.conn not in ready:
            raise _WorkerDied
        try:
            answer: tuple[str, Any] = self.conn.recv()
        except (EOFError, ConnectionResetError) as exc:
            raise _WorkerDied from exc
        except Exception as exc:  # the answer arrived whole but does not unpickle here
            return "error", WorkerError(f"the worker's answer could not be read: {exc!r}")
        return answer

    def stop(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.conn.send(None)
        self.process.join(_STOP_TIMEOUT_S)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(_STOP_TIMEOUT_S)
        self.conn.close()


class Workers:
    """``processes`` supervised worker processes, started on first use."""

    def __init__(self, processes: int = 2) -> None:
        self.processes = processes
        self.restarts = 0
        self._context = multiprocessing.get_context("spawn")
        self._lock = threading.Lock()
        self._workers: list[_Worker] = []
        self._idle: queue.Queue[_Worker | None] = queue.Queue()
        self._threads = ThreadPoolExecutor(processes, thread_name_prefix="llmtrail-worker-io")
        self._started = False
        self._closed = threading.Event()

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in a worker process; what it raises is raised here."""
        if self._closed.is_set():
            raise Unavailable("the server is stopping")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._threads, self._call, fn, args)

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in a worker process, waiting on this thread (the GIL is free while
        it waits); what it raises is raised here."""
        if self._closed.is_set():
            raise Unavailable("the record path is stopping")
        return self._call(fn, args)

    def pids(self) -> list[int]:
        """The worker processes' ids (none before the first call)."""
        with self._lock:
            return [w.process.pid for w in self._workers if w.process.pid is not None]

    def close(self) -> None:
        """Stop every worker (each finishes its job first, at most a few seconds)."""
        with self._lock:
            self._closed.set()
            workers, self._workers = self._workers, []
            for _ in range(self.processes):
                self._idle.put(None)  # wakes any caller waiting for a worker
        for worker in workers:
            worker.stop()
        self._threads.shutdown(wait=False, cancel_futures=True)

    def _call(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        for _attempt in range(2):
            worker = self._checkout()
            try:
                kind, value = worker.call(fn, args)
            except _WorkerDied:
                self._replace(worker)
                worker.conn.close()
                continue
            except BaseException:
                self._idle.put(worker)  # e.g. arguments that do not pickle: nothing was sent
                raise
            self._idle.put(worker)
            if kind == "error":
                raise value
            return value
        raise Unavailable("a worker process died while handling this request; it was restarted")

    def _checkout(self) -> _Worker:
        with self._lock:
            if self._closed.is_set():
                raise Unavailable("the server is stopping")
            if not self._started:
                self._started = True
                for _ in range(self.processes):
                    self._idle.put(self._spawn())
                threading.Thread(
                    target=self._supervise, name="llmtrail-workers", daemon=True
                ).start()
        while True:
            worker = self._idle.get()
            if worker is None:
                raise Unavailable("the server is stopping")
            with self._lock:
                if worker in self._workers:
                    return worker
            worker.conn.close()  # died while idle and was replaced: dropped here

    def _spawn(self) -> _Worker:
        """A new worker, counted among the live ones (the caller holds the lock)."""
        worker = _Worker(self._context, os.getpid())
        self._workers.append(worker)
        return worker

    def _replace(self, dead: _Worker) -> None:
        """Swap a worker whose process ended for a fresh one (once, whoever notices first)."""
        with self._lock:
            if self._closed.is_set() or dead not in self._workers:
                return
            self._workers.remove(dead)
            self.restarts += 1
            self._idle.put(self._spawn())
        # reap it (no zombie left behind); one still exiting gets a moment, then is killed
        dead.process.join(_STOP_TIMEOUT_S)
        if dead.process.is_alive():
            dead.process.kill()
            dead.process.join(_STOP_TIMEOUT_S)

    def _supervise(self) -> None:
        while not self._closed.is_set():
            with self._lock:
                by_sentinel = {w.process.sentinel: w for w in self._workers}
            if not by_sentinel:
                time.sleep(_PARENT_CHECK_S)
                continue
            for sentinel in wait(list(by_sentinel), timeout=_PARENT_CHECK_S):
                self._replace(by_sentinel[sentinel])


# -- in the worker process ---------------------------------------------------------------------


def serve_jobs(conn: Connection, parent_pid: int) -> None:
    """The worker's loop: run each job it receives and send back its result or exception,
    until the parent says stop or is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the
    # server decides when its workers stop
    ordinary_scheduling()
    threading.Thread(target=exit_with_parent, args=(parent_pid,), daemon=True).start()
    refuse_pandas()  # pyarrow would import it on the first spans' conversion, for nothing
    settle_collector(RECORD_PATH_YOUNG)
    settled = False
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return  # the parent is gone
        if job is None:
            return
        fn, args = job
        try:
            answer: tuple[str, Any] = ("ok", fn(*args))
        except BaseException as exc:  # every failure goes back to the caller
            answer = ("error", exc)
        try:
            conn.send(answer)
        except (BrokenPipeError, ConnectionResetError, EOFError):
            return
        except Exception as exc:  # the result or exception does not pickle
            conn.send(("error", WorkerError(_unsendable(answer, exc))))
        del job, fn, args, answer
        if not settled:  # the first job imported what the jobs run: frozen too, once
            settle_collector(RECORD_PATH_YOUNG)
            settled = True


def ordinary_scheduling() -> None:
    """Run under ordinary scheduling at the niceness inherited: a worker started by a
    recorder thread while it yielded (`server/yielding.py`) inherits ``SCHED_IDLE``, and its
    jobs, which a request always waits on, would get only idle cores. Leaving it is allowed
    where the recorder was let yield at all (`idle_is_reversible`)."""
    if hasattr(os, "sched_setscheduler"):
        with contextlib.suppress(OSError):
            if os.sched_getscheduler(0) != os.SCHED_OTHER:
                os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))


def _unsendable(answer: tuple[str, Any], exc: Exception) -> str:
    """Why ``answer`` could not be sent, in words that never fail themselves (the value may
    be nested too deep to print, which is often why it did not pickle)."""
    kind, value = answer
    what = "result" if kind == "ok" else "error"
    try:
        shown = str(value)[:500] if kind == "error" else ""
    except Exception:
        shown = ""
    detail = f"{type(value).__name__}: {shown}" if shown else type(value).__name__
    return f"the job's {what} could not be sent back ({type(exc).__name__}): {detail}"


def exit_with_parent(parent_pid: int) -> None:
    """Leave at once when the parent process is gone (kill -9 included); run on a thread."""
    while os.getppid() == parent_pid:
        time.sleep(_PARENT_CHECK_S)
    os._exit(0)
