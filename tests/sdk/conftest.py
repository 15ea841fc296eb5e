from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from llmtrail import sdk
from llmtrail.sdk.testing import SequentialIds, StepClock
from tests.sdk.collector import Collector


@pytest.fixture
def collector() -> Iterator[Collector]:
    with Collector() as server:
        yield server
        sdk.shutdown(timeout=5)  # before the server goes away


@pytest.fixture(autouse=True)
def sdk_off_afterwards() -> Iterator[None]:
    """Every test leaves the SDK unconfigured, whatever it did."""
    yield
    sdk.shutdown(timeout=5)


def deterministic(collector: Collector, **overrides: Any) -> None:
    """Configure the SDK against ``collector`` with a step clock and sequential ids; batches go
    only on flush unless a test says otherwise."""
    options: dict[str, Any] = {
        "url": collector.url,
        "app": "test-app",
        "clock": StepClock(start_ns=1_000_000_000, step_ns=1_000),
        "id_generator": SequentialIds(),
        "export_interval": 3600.0,
        "retry_delay": 0.01,
    }
    options.update(overrides)
    sdk.configure(**options)


@pytest.fixture
def traced(collector: Collector) -> Collector:
    """The SDK configured deterministically against a live collector."""
    deterministic(collector)
    return collector


def exported(collector: Collector) -> list[dict[str, Any]]:
    """Flush, then every span the collector received."""
    assert sdk.flush(timeout=30)
    return collector.spans()
