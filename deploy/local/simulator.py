"""A stand-in for the warehouses and carriers, so the pipeline runs to delivered without real ones.

Not part of the services: it reads pick tasks and publishes what a warehouse would report (picked, then
packed), and reads shipments and publishes what a carrier would report (in transit, then delivered),
each after a small configurable delay. Run: python -m deploy.local.simulator

Two SKU conventions let tests stage what real warehouses do:
- `HOLD-...`: a task with such a line is never picked (the warehouse sits on it), so its stock stays reserved;
- `SHORT-<warehouse>-...`: that warehouse cannot find those units: it reports `short_picked` with the lines it
  did pick, then packs what it picked (if anything); other warehouses pick them normally.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from shared import ports, topics
from shared.envelope import Envelope

log = logging.getLogger("simulator")
GRAMS_PER_UNIT = 450


def _now() -> str:
    return datetime.now(UTC).isoformat()


class Simulator:
    def __init__(self, bootstrap: str, delay: float) -> None:
        self.bootstrap = bootstrap
        self.delay = delay
        self.producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, linger_ms=5)
        self.pending: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        consumer = AIOKafkaConsumer(
            topics.PICK_TASKS.name,
            topics.FULFILLMENT_EVENTS.name,
            bootstrap_servers=self.bootstrap,
            group_id="oms-simulator",
            auto_offset_reset="earliest",
        )
        await self.producer.start()
        await consumer.start()
        log.info("simulating warehouses and carriers with %.2fs steps", self.delay)
        try:
            async for record in consumer:
                envelope = Envelope.model_validate_json(record.value)
                if envelope.type == "PickTaskReleased":
                    self._later(self._warehouse(envelope.payload))
                elif envelope.type == "OrderShipped":
                    self._later(self._carrier(envelope.payload))
        finally:
            await consumer.stop()
            await self.producer.stop()

    def _later(self, work: Any) -> None:
        task = asyncio.create_task(work)
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    async def _publish(self, topic: str, key: str, body: dict[str, Any]) -> None:
        await self.producer.send_and_wait(topic, json.dumps(body).encode(), key=key.encode())

    async def _warehouse(self, task: dict[str, Any]) -> None:
        warehouse = task["warehouse_id"]
        if any(line["sku"].startswith("HOLD-") for line in task["lines"]):
            return
        picked = [line for line in task["lines"] if not line["sku"].startswith(f"SHORT-{warehouse}-")]
        units = sum(line["quantity"] for line in picked)
        base = {"pick_task_id": task["pick_task_id"], "warehouse_id": warehouse}
        await asyncio.sleep(self.delay)
        kind = "picked" if len(picked) == len(task["lines"]) else "short_picked"
        await self._publish(
            topics.WAREHOUSE_EVENTS.name, warehouse, {**base, "kind": kind, "lines": picked, "occurred_at": _now()}
        )
        if not picked:
            return
        await asyncio.sleep(self.delay)
        await self._publish(
            topics.WAREHOUSE_EVENTS.name,
            task["warehouse_id"],
            {**base, "kind": "packed", "package": {"weight_grams": units * GRAMS_PER_UNIT}, "occurred_at": _now()},
        )

    async def _carrier(self, shipped: dict[str, Any]) -> None:
        base = {"tracking_number": shipped["tracking_number"], "carrier": shipped["carrier"]}
        for kind in ("in_transit", "delivered"):
            await asyncio.sleep(self.delay)
            await self._publish(
                topics.CARRIER_EVENTS.name, shipped["tracking_number"], {**base, "kind": kind, "occurred_at": _now()}
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", default=ports.KAFKA_BOOTSTRAP)
    parser.add_argument(
        "--delay",
        type=float,
        default=float(os.environ.get("OMS_SIMULATOR_DELAY", "0.2")),
        help="seconds between a simulated step and the next",
    )
    args = parser.parse_args()
    logging.basicConfig(level="INFO", format="%(asctime)s simulator %(levelname)s %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.WARNING)

    async def serve() -> None:
        task = asyncio.create_task(Simulator(args.bootstrap, args.delay).run())
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(serve())


if __name__ == "__main__":
    main()
