"""A steady flow of orders for the cluster tests, as a marketplace sends them on the intake topic: one every 1/rate
seconds whatever the broker does (each send retried until the cluster takes it), kept in the chaos suite's ledger
(deploy/chaos/load.py) so that its evidence and invariant checks apply; and a watcher noting when each order is
first seen delivered, from which the pause is measured."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import statistics
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import asyncpg

from deploy.chaos.load import Driver, OrderSpec, Outside, order_document
from shared.contracts import topics

CHANNEL = "marketplace"
COUNTRIES = ("NL", "DE", "FR")
WATCH_EVERY = 0.2


@dataclass
class Flow:
    driver: Driver
    rate: float  # orders per second
    started: float = field(default_factory=time.monotonic)
    submitted: dict[str, float] = field(default_factory=dict)  # external id -> when the cluster took the order
    delivered: dict[str, float] = field(default_factory=dict)  # external id -> when first seen delivered

    @property
    def run(self) -> str:
        return self.driver.ledger.run

    async def send(self, seconds: float) -> None:
        """rate x seconds orders of one to three common SKUs (each shipped by one warehouse), evenly spread."""
        outside: Outside = self.driver.outside
        rng = random.Random(self.run)
        self.started = time.monotonic()

        async def one(number: int) -> None:
            lines = [(sku, rng.randint(1, 2)) for sku in rng.sample(self.driver.catalogue.common, rng.randint(1, 3))]
            external_id = f"chaos-{self.run}-{number}"
            spec = OrderSpec(number, "single", "kafka", CHANNEL, external_id, lines, rng.choice(COUNTRIES), 0.0)
            self.driver.ledger.orders.append(spec)
            body = json.dumps(order_document(spec, self.run)).encode()
            await outside.publish(topics.ORDERS_SUBMITTED, f"{CHANNEL}:{external_id}", body)
            spec.accepted = True
            self.submitted[external_id] = time.monotonic()

        sending = []
        for number in range(round(self.rate * seconds)):
            await asyncio.sleep(max(0.0, self.started + number / self.rate - time.monotonic()))
            sending.append(asyncio.create_task(one(number)))
        await asyncio.gather(*sending)

    @contextlib.asynccontextmanager
    async def watched(self, db: asyncpg.Pool) -> AsyncIterator[None]:
        """While inside, note each of the run's orders the moment capture shows it delivered."""

        async def watch() -> None:
            while True:
                rows = await db.fetch(
                    "SELECT external_id FROM capture.orders"
                    " WHERE channel = $1 AND external_id LIKE $2 AND status = 'delivered'",
                    CHANNEL,
                    f"chaos-{self.run}-%",
                )
                now = time.monotonic()
                for row in rows:
                    self.delivered.setdefault(row["external_id"], now)
                await asyncio.sleep(WATCH_EVERY)

        watcher = asyncio.create_task(watch(), name="delivered-watcher")
        try:
            yield
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    def delivered_after(self, moment: float) -> int:
        """Orders submitted after `moment` and delivered since."""
        return sum(1 for ref, at in self.submitted.items() if at > moment and ref in self.delivered)


@dataclass(frozen=True)
class Pause:
    """How the flow of completed orders stalled around a moment (the kill), in seconds."""

    longest_gap: float  # between two consecutive deliveries, from 10 s before the moment on
    first_after: float  # from the moment to the first delivery after it
    latency_before: float  # median submit-to-delivered of the orders submitted before the moment
    latency_worst: float  # the longest submit-to-delivered of any order

    def describe(self) -> str:
        return (
            f"longest gap between deliveries {self.longest_gap:.1f} s, first delivery {self.first_after:.1f} s after"
            f" the kill; order latency {self.latency_before:.1f} s (median before the kill),"
            f" {self.latency_worst:.1f} s at worst"
        )


def pause_around(flow: Flow, moment: float) -> Pause:
    times = sorted(at for at in flow.delivered.values() if at >= moment - 10.0)
    after = [at for at in times if at > moment]
    gaps = [b - a for a, b in zip([moment - 10.0, *times], times, strict=False)]
    latencies = {ref: flow.delivered[ref] - at for ref, at in flow.submitted.items() if ref in flow.delivered}
    before = [latencies[ref] for ref, at in flow.submitted.items() if at < moment and ref in latencies]
    return Pause(
        longest_gap=max(gaps, default=0.0),
        first_after=(after[0] - moment) if after else float("inf"),
        latency_before=statistics.median(before) if before else 0.0,
        latency_worst=max(latencies.values(), default=0.0),
    )
