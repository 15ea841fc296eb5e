"""Bedrock-layout delivery on a schedule, by one server when several share a store: a
`LeasedLoop` under the lease ``leases``/``bedrock-delivery`` runs `BedrockDelivery.run_once`
every ``interval_s``, so no page is delivered by two servers at once."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from llmtrail.alerts.lease import LeasedLoop
from llmtrail.capture.bedrock_delivery import BedrockDelivery
from llmtrail.store.interfaces import StateStore

LEASE_KEY = "bedrock-delivery"


class DeliverySchedule(LeasedLoop):
    def __init__(
        self,
        delivery: BedrockDelivery,
        state: StateStore,
        interval_s: float = 60.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        holder: str | None = None,
    ) -> None:
        super().__init__(
            lambda now: delivery.run_once(), state, interval_s, LEASE_KEY, clock, holder
        )
        self.delivery = delivery
