"""Worker processes: what a job raises comes back as itself, a worker that dies is replaced,
workers leave with their parent; and every exception llmtrail defines pickles."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import os
import pickle
import pkgutil
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest

import llmtrail
from llmtrail.errors import Unavailable, ValidationError
from llmtrail.query.errors import QueryError, Span
from llmtrail.server.workers import WorkerError, Workers
from tests.processes import alive
from tests.worker_jobs import (
    die,
    double,
    nested_too_deep,
    own_pid,
    raise_nested_too_deep,
    raise_unpicklable,
    refuse,
    refuse_query,
)

# -- every exception class llmtrail defines ----------------------------------------------------

# Arguments for the classes whose ``__init__`` takes more than a message.
CONSTRUCTED: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {
    "llmtrail.errors.ValidationError": (("body", "is not JSON"), {}),
    "llmtrail.errors.PayloadTooLarge": (("body", "exceeds 1000 bytes"), {}),
    "llmtrail.errors.Forbidden": (("input.inputBodyJson", "needs the bodies permission"), {}),
    "llmtrail.analytics.profiles.ProfileConflict": (("name", "is taken"), {}),
    "llmtrail.pricing.price.RateError": (("prices.input_mtok", "must be a number"), {}),
    "llmtrail.pricing.price_data.PriceDataError": (
        ("acme.json", "widget-1", "prices[0].input_mtok", "must be a number"),
        {},
    ),
    "llmtrail.query.errors.QueryError": (
        ("unknown command", "stats count(*) | frobnicate", Span(18, 28)),
        {"field": "queryString"},
    ),
    "llmtrail.capture.gateway.providers.sim.embeddings.Refused": (
        ("dimensions", "must be from 1 to 3072"),
        {},
    ),
    "llmtrail.capture.gateway.providers.base.UpstreamError": (
        ("upstream_timeout", 504, "no answer in 30 s"),
        {},
    ),
    "llmtrail.server.aws.operations.AwsError": (
        ("ResourceNotFound", "no dashboard named x", 404),
        {"fields": {"resourceName": "x"}},
    ),
    "llmtrail.server.aws.cloudwatch_dashboards.DashboardInvalid": (
        ([{"DataPath": "/widgets/0", "Message": "Should be an object"}],),
        {},
    ),
    "llmtrail.server.aws.shapes.InputInvalid": ((["Value at 'limit' must be an integer"],), {}),
    "llmtrail.security.sigv4_verify.SignatureRejected": (
        ("InvalidSignatureException", "The request signature we calculated does not match", 403),
        {},
    ),
}


def llmtrail_exception_classes() -> list[type[BaseException]]:
    for info in pkgutil.walk_packages(llmtrail.__path__, "llmtrail."):
        if not info.name.endswith("__main__"):
            importlib.import_module(info.name)
    found: dict[str, type[BaseException]] = {}
    pending: list[type] = [BaseException]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls.__module__.startswith("llmtrail."):
            found[f"{cls.__module__}.{cls.__qualname__}"] = cls
    return [found[name] for name in sorted(found)]


def build(cls: type[BaseException]) -> BaseException:
    name = f"{cls.__module__}.{cls.__qualname__}"
    if name in CONSTRUCTED:
        args, kwargs = CONSTRUCTED[name]
        return cls(*args, **kwargs)
    params = [
        p
        for p in inspect.signature(cls.__init__).parameters.values()  # type: ignore[misc]
        if p.name != "self"
        and p.default is p.empty
        and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    assert not params, f"{name} takes {[p.name for p in params]}: add it to CONSTRUCTED"
    return cls("something went wrong")


EXCEPTIONS = llmtrail_exception_classes()


def test_the_walk_finds_llmtrail_exceptions() -> None:
    names = {c.__name__ for c in EXCEPTIONS}
    assert {"LlmtrailError", "ValidationError", "QueryError", "UpstreamError", "WorkerError"} <= (
        names
    )


@pytest.mark.parametrize("cls", EXCEPTIONS, ids=lambda c: f"{c.__module__}.{c.__qualname__}")
def test_exception_pickles_as_itself(cls: type[BaseException]) -> None:
    error = build(cls)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is cls
    assert copy.args == error.args
    assert str(copy) == str(error)
    assert vars(copy) == vars(error)


# -- the worker pool -----------------------------------------------------------------------------


@pytest.fixture
def workers() -> Iterator[Workers]:
    pool = Workers(processes=2)
    yield pool
    pool.close()
    for pid in pool.pids():
        assert not alive(pid)


def run(pool: Workers, fn: Any, *args: Any) -> Any:
    return asyncio.run(pool.run(fn, *args))


def test_a_job_runs_in_another_process(workers: Workers) -> None:
    assert run(workers, double, 21) == 42
    assert run(workers, own_pid) in workers.pids()
    assert os.getpid() not in workers.pids()


def test_an_error_crosses_intact_and_the_pool_keeps_working(workers: Workers) -> None:
    for _ in range(3):  # more failures than workers: none is left broken
        with pytest.raises(ValidationError) as caught:
            run(workers, refuse, "body")
        assert caught.value.field == "body" and caught.value.message.startswith("is not valid")
    with pytest.raises(QueryError) as query_error:
        run(workers, refuse_query)
    assert query_error.value.field == "queryString" and query_error.value.column == 1
    assert run(workers, double, 2) == 4


def test_an_exception_that_does_not_unpickle_is_named_and_harmless(workers: Workers) -> None:
    for _ in range(3):
        with pytest.raises(WorkerError, match="Unpicklable"):
            run(workers, raise_unpicklable)
    assert run(workers, double, 5) == 10


def test_a_result_too_deep_to_send_is_an_error_and_the_worker_lives_on(workers: Workers) -> None:
    run(workers, double, 1)
    before = sorted(workers.pids())
    for job in (nested_too_deep, raise_nested_too_deep):
        with pytest.raises(WorkerError, match="could not be sent back"):
            run(workers, job)
    assert sorted(workers.pids()) == before and workers.restarts == 0
    assert run(workers, double, 3) == 6


def test_a_worker_that_is_killed_is_restarted(workers: Workers) -> None:
    run(workers, double, 1)
    before = workers.pids()
    os.kill(before[0], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while workers.restarts < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert workers.restarts == 1
    after = workers.pids()
    assert len(after) == 2 and before[0] not in after and before[1] in after
    assert [run(workers, double, n) for n in range(4)] == [0, 2, 4, 6]


def test_a_job_that_kills_its_worker_is_retried_once_then_refused(workers: Workers) -> None:
    with pytest.raises(Unavailable, match="worker process died"):
        run(workers, die)
    assert workers.restarts >= 2
    assert len(workers.pids()) == 2
    assert run(workers, double, 8) == 16


def test_closed_pool_refuses_new_jobs() -> None:
    pool = Workers(processes=1)
    assert run(pool, double, 1) == 2
    (pid,) = pool.pids()
    pool.close()
    assert not alive(pid)
    with pytest.raises(Unavailable):
        run(pool, double, 1)
