"""A stand-in for the warehouses, the carriers, the dropship suppliers and the payment provider, so the pipeline runs
to delivered (and returns to refunded) without real ones.

Not part of the services: its warehouses are built on the integrators' kit (oms_kit.WarehouseWorker), as a
real warehouse's adapter would be: they read pick tasks and report what a warehouse would (picked, then packed);
the carriers and the payment provider are plain Kafka clients. The carriers read shipments and publish what a
carrier would report (in transit, then delivered). Each step comes after a small configurable delay. Each
warehouse picks in waves: every pick delay, the tasks waiting are picked highest priority first (the task's
`priority`), then in release order. A withdrawn pick task
(PickTaskCancelled) is not picked or packed if the warehouse has not got to it yet.

Deterministic triggers for tests and demos (everything else behaves as above):
- a SKU `HOLD-...`: a task with such a line is never picked (the warehouse sits on it; its stock stays reserved);
- a SKU `SHORT-<warehouse>-...`: that warehouse cannot find those units at all (it reports `short_picked`
  with the lines it did pick and packs those); other warehouses pick them normally;
- any other SKU whose code contains `SHORT` is short-picked by one unit (nothing is packed when nothing was
  picked);
- a ship-to postal code starting with `EXC` gets a carrier `exception` before it is delivered;
- a ship-to postal code starting with `HOLD` is held at the warehouse for `--hold` seconds before picking;
- an authorised return (ReturnAuthorised) is played as the customer's parcel arriving at the receiving warehouse
  after the carrier delay, every unit on the RMA in it: restocked, or quarantined when the reason code is under
  `damaged`; unless a SKU of the RMA contains `KEEP` (the customer never sends it, so the RMA expires);
- a dropship supplier acknowledges each purchase order after the pick delay and ships it after the pack delay, with
  its own tracking number (carrier `parcelnet`), except: a line whose SKU contains `REJECT` makes it reject the whole
  purchase order; one whose SKU contains `PARTIAL` makes it accept one unit less of that line (the rest declined);
  one whose SKU contains `SLOW` makes it answer only after `--supplier-slow` seconds (a purchase order it has
  meanwhile been told is cancelled is acknowledged late, as slow suppliers do, but never shipped);
- the payment provider pays each refund's idempotency key once (a repeated key is answered with the same
  payment), except for orders whose external id contains `REFUND-FAIL-TWICE` (the first two attempts of each key
  fail as retriable) or `REFUND-REFUSED` (refused for good); and takes each charge's key once the same way, except
  for orders whose external id contains `CHARGE-FAIL-TWICE` or `CHARGE-REFUSED` (the card declined).

Run: python -m deploy.local.simulator
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import heapq
import itertools
import json
import logging
import os
import signal
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import uvloop

from deploy.local.settings import LocalStack
from oms_kit import (
    DeadLetterFile,
    ItemQuantity,
    PickTaskCancelled,
    PickTaskReleased,
    ReturnAuthorised,
    WarehouseReturnReceived,
    WarehouseWorker,
)
from shared.backbone import kafka_access
from shared.backbone.collector import settle_collector
from shared.backbone.kafka import guard_client
from shared.contracts import topics
from shared.contracts.envelope import Envelope

log = logging.getLogger("simulator")
GRAMS_PER_UNIT = 450
HOLD_SKU_PREFIX = "HOLD-"
SHORT_SKU_MARK = "SHORT"
EXCEPTION_POSTAL_PREFIX = "EXC"
HOLD_POSTAL_PREFIX = "HOLD"
KEEP_SKU_MARK = "KEEP"
FAIL_TWICE_MARK = "REFUND-FAIL-TWICE"
REFUSED_MARK = "REFUND-REFUSED"
CHARGE_FAIL_TWICE_MARK = "CHARGE-FAIL-TWICE"
CHARGE_REFUSED_MARK = "CHARGE-REFUSED"
EXCEPTION_DETAIL = "recipient not at home; delivery will be attempted again"
SUPPLIER_REJECT_MARK = "REJECT"
SUPPLIER_PARTIAL_MARK = "PARTIAL"
SUPPLIER_SLOW_MARK = "SLOW"
SUPPLIER_CARRIER = "parcelnet"


def _now() -> str:
    return datetime.now(UTC).isoformat()


async def until_delivered(what: str, send: Callable[[], Awaitable[Any]]) -> None:
    """Send until the broker takes it: a broker outage delays a warehouse or a carrier, it never makes one forget a
    task or a parcel (the kit's reports carry stable event ids, so a report sent twice is applied once; a repeated
    carrier update or payment answer changes nothing)."""
    for attempt in itertools.count(1):
        try:
            await send()
            return
        except Exception as exc:  # the broker unavailable or too slow to answer: wait, send again
            log.warning("%s not delivered (%s), attempt %d; sending again", what, exc.__class__.__name__, attempt)
            await asyncio.sleep(min(5.0, 0.2 * 2**attempt))


def picked_lines(lines: list[dict[str, Any]], warehouse: str) -> list[dict[str, Any]]:
    """What the simulated warehouse finds on the shelf: nothing of `SHORT-<this warehouse>-` SKUs, one unit
    less of any other SKU marked SHORT (but `SHORT-<another warehouse>-` SKUs are all there)."""

    def on_shelf(sku: str, quantity: int) -> int:
        if sku.startswith(SHORT_SKU_MARK + "-"):
            return 0 if sku.startswith(f"{SHORT_SKU_MARK}-{warehouse}-") else quantity
        return quantity - (SHORT_SKU_MARK in sku)

    found = [{**line, "quantity": on_shelf(line["sku"], line["quantity"])} for line in lines]
    return [line for line in found if line["quantity"] > 0]


def supplier_answer(purchase_order: dict[str, Any]) -> tuple[str, list[dict[str, Any]] | None]:
    """How the simulated supplier answers a purchase order: (kind, accepted lines for a partial acceptance)."""
    lines = purchase_order["lines"]
    if any(SUPPLIER_REJECT_MARK in line["sku"] for line in lines):
        return "rejected", None
    accepted = [
        {**line, "quantity": line["quantity"] - (SUPPLIER_PARTIAL_MARK in line["sku"])}
        for line in lines
        if line["quantity"] - (SUPPLIER_PARTIAL_MARK in line["sku"]) > 0
    ]
    if accepted == lines:
        return "acknowledged", None
    return ("partially_accepted", accepted) if accepted else ("rejected", None)


def carrier_steps(postal_code: str | None) -> list[tuple[str, str | None]]:
    """The (kind, detail) updates the simulated carrier sends for a parcel to this postal code."""
    if postal_code and postal_code.upper().startswith(EXCEPTION_POSTAL_PREFIX):
        return [("in_transit", None), ("exception", EXCEPTION_DETAIL), ("out_for_delivery", None), ("delivered", None)]
    return [("in_transit", None), ("delivered", None)]


def disposition(line: dict[str, Any]) -> str:
    """Where the simulated warehouse puts a returned unit: damaged goods in quarantine, the rest back on the shelf."""
    return "quarantine" if line["reason"].split(".")[0] == "damaged" else "restock"


class PickQueue:
    """The pick tasks waiting at one warehouse; a wave takes them all, highest priority first, then in the order
    they were released (a task from before priorities has none: 0)."""

    def __init__(self) -> None:
        self._waiting: list[tuple[int, str, int, dict[str, Any]]] = []
        self._arrivals = itertools.count()

    def add(self, task: dict[str, Any]) -> None:
        turn = (-int(task.get("priority", 0)), str(task["created_at"]), next(self._arrivals), task)
        heapq.heappush(self._waiting, turn)

    def wave(self) -> list[dict[str, Any]]:
        return [heapq.heappop(self._waiting)[-1] for _ in range(len(self._waiting))]

    def __bool__(self) -> bool:
        return bool(self._waiting)


@dataclass(frozen=True)
class Delays:
    """Seconds before each simulated step."""

    pick: float
    pack: float
    carrier: float
    hold: float
    supplier_slow: float = 15.0


class Party:
    """One outside party's connection (its own Kafka principal): what it reads, and a producer for what it writes."""

    def __init__(self, access: kafka_access.Access, *reads: str) -> None:
        self.producer = access.producer()
        self.consumer = access.consumer(
            *reads, group_id=f"{kafka_access.consumer_group(access.principal)}-simulator", auto_offset_reset="earliest"
        )

    async def start(self) -> None:
        await self.producer.start()
        await self.consumer.start()

    async def stop(self) -> None:
        await self.consumer.stop()
        await self.producer.stop()

    async def publish(self, topic: str, key: str, body: dict[str, Any]) -> None:
        value = json.dumps(body).encode()
        await until_delivered(
            f"a record for {topic}", lambda: self.producer.send_and_wait(topic, value, key=key.encode())
        )


class Payments:
    """The payment provider's book of refunds or charges: each idempotency key paid once (a repeated key is
    answered with the same payment); orders marked to fail twice or to be refused are answered so."""

    def __init__(self, what: str, prefix: str, fail_twice_mark: str, refused_mark: str, refusal: str) -> None:
        self.what, self.prefix, self.fail_twice_mark, self.refused_mark, self.refusal = (
            what, prefix, fail_twice_mark, refused_mark, refusal,
        )  # fmt: skip
        # Idempotency key -> the provider's reference of the payment made under it (and the amount).
        self.paid: dict[str, tuple[str, str]] = {}
        self.attempts: dict[str, int] = {}

    def answer(self, request: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """The answer to a request (key, body) on the results topic."""
        key = request["idempotency_key"]
        self.attempts[key] = self.attempts.get(key, 0) + 1
        base = {f"{self.what}_id": request[f"{self.what}_id"], "idempotency_key": key, "occurred_at": _now()}
        if key not in self.paid and self.refused_mark in request["order_reference"]:
            return key, {**base, "outcome": "failed", "reason": self.refusal, "retriable": False}
        if key not in self.paid and self.fail_twice_mark in request["order_reference"] and self.attempts[key] <= 2:
            return key, {**base, "outcome": "failed", "reason": "provider timeout", "retriable": True}
        if key not in self.paid:
            self.paid[key] = (f"{self.prefix}_{uuid.uuid4().hex[:16]}", request["amount"])
            log.info("%s paid: %s under key %s", self.what, request["amount"], key)
        reference, amount = self.paid[key]
        return key, {**base, "outcome": "succeeded", "amount": amount, "provider_reference": reference}


class Simulator:
    def __init__(self, local: LocalStack, delays: Delays) -> None:
        self.delays = delays
        # The warehouses read pick tasks and the returns they will receive (through the kit, in the group the
        # simulator has always used); the carriers learn of parcels from the shipments.
        self.warehouses = WarehouseWorker(
            local.kit_connection("warehouses"),
            group=f"{kafka_access.consumer_group('warehouses')}-simulator",
            returns=True,
            dead_letters=DeadLetterFile(local.state / "simulator" / "dead-letters.jsonl"),
        )
        self.warehouses.on_pick_task(self._on_pick_task)
        self.warehouses.on_withdrawal(self._on_withdrawal)
        self.warehouses.on_return_authorised(self._on_return_authorised)
        self.carriers = Party(local.access("carriers"), topics.FULFILLMENT_EVENTS.name)
        self.suppliers = Party(local.access("suppliers"), topics.PURCHASE_ORDERS.name)
        self.cancelled_purchase_orders: set[str] = set()
        self.provider = Party(
            local.access("payment-provider"), topics.REFUND_REQUESTS.name, topics.CHARGE_REQUESTS.name
        )
        self.refunds = Payments("refund", "re", FAIL_TWICE_MARK, REFUSED_MARK, "the card account is closed")
        self.charges = Payments("charge", "ch", CHARGE_FAIL_TWICE_MARK, CHARGE_REFUSED_MARK, "the card was declined")
        self.pending: set[asyncio.Task[None]] = set()
        self.queues: dict[str, PickQueue] = {}
        self.pickers: set[str] = set()  # warehouses with a wave under way
        self.withdrawn: set[str] = set()
        # Postal codes of released tasks, until their parcel ships: a carrier event needs only this much.
        self.postal_codes: dict[str, str] = {}

    async def run(self) -> None:
        guard_client()  # after a broker restart: reconnect, and go on from the committed offsets
        parties = (self.carriers, self.suppliers, self.provider)
        await self.warehouses.start()
        for party in parties:
            await party.start()
        log.info("simulating warehouses, carriers and the payment provider with steps of %s", self.delays)
        try:
            await asyncio.gather(*(self._follow(party) for party in parties))
        finally:
            for party in parties:
                await party.stop()
            await self.warehouses.stop()

    async def _on_pick_task(self, task: PickTaskReleased) -> None:
        self.postal_codes[str(task.pick_task_id)] = task.ship_to.postal_code
        self._release(task.model_dump(mode="json"))

    async def _on_withdrawal(self, cancelled: PickTaskCancelled) -> None:
        self.withdrawn.add(str(cancelled.pick_task_id))

    async def _on_return_authorised(self, authorised: ReturnAuthorised) -> None:
        self._later(self._return_parcel(authorised.model_dump(mode="json")))

    async def _follow(self, party: Party) -> None:
        async for record in party.consumer:
            envelope = Envelope.model_validate_json(record.value)
            if envelope.type == "PurchaseOrderIssued":
                self._later(self._supply(envelope.payload))
            elif envelope.type == "PurchaseOrderCancelled":
                self.cancelled_purchase_orders.add(envelope.payload["purchase_order_id"])
            elif envelope.type == "RefundRequested":
                await self.provider.publish(topics.REFUND_RESULTS.name, *self.refunds.answer(envelope.payload))
            elif envelope.type == "ChargeRequested":
                await self.provider.publish(topics.CHARGE_RESULTS.name, *self.charges.answer(envelope.payload))
            elif envelope.type == "OrderShipped":
                postal_code = self.postal_codes.pop(envelope.payload["pick_task_id"], None)
                self._later(self._carrier(envelope.payload, postal_code))

    def _later(self, work: Any) -> None:
        task = asyncio.create_task(work)
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    def _release(self, task: dict[str, Any]) -> None:
        """A task reaches its warehouse: held ones wait their time alone, the others join the next wave."""
        if any(line["sku"].startswith(HOLD_SKU_PREFIX) for line in task["lines"]):
            return
        if task["ship_to"]["postal_code"].upper().startswith(HOLD_POSTAL_PREFIX):
            self._later(self._held(task))
            return
        warehouse = task["warehouse_id"]
        self.queues.setdefault(warehouse, PickQueue()).add(task)
        if warehouse not in self.pickers:
            self.pickers.add(warehouse)
            self._later(self._waves(warehouse))

    async def _waves(self, warehouse: str) -> None:
        """While tasks wait at the warehouse: after the pick delay, pick every one of them in priority order (their
        reports are queued in that order on the warehouse's partition), then pack each after the pack delay."""
        queue = self.queues[warehouse]
        try:
            while queue:
                await asyncio.sleep(self.delays.pick)
                picked = [(task, sent) for task in queue.wave() if (sent := await self._pick(task)) is not None]
                for task, (delivery, found) in picked:
                    await self._delivered(delivery, task, found)
                    self._later(self._pack(task, found))
        finally:
            self.pickers.discard(warehouse)

    async def _held(self, task: dict[str, Any]) -> None:
        await asyncio.sleep(self.delays.hold)
        if (sent := await self._pick(task)) is not None:
            delivery, found = sent
            await self._delivered(delivery, task, found)
            await self._pack(task, found)

    async def _pick(self, task: dict[str, Any]) -> tuple[asyncio.Future[Any], list[dict[str, Any]]] | None:
        """Report what was found on the shelf: the report's delivery (queued, not awaited) and the lines found;
        None for a task withdrawn meanwhile."""
        task_id, warehouse = task["pick_task_id"], task["warehouse_id"]
        if task_id in self.withdrawn:
            log.info("pick task %s withdrawn before picking", task_id)
            self._forget(task_id)
            return None
        found = picked_lines(task["lines"], warehouse)
        delivery = await self._report_pick(task, found, confirm=False)
        assert delivery is not None
        return delivery, found

    async def _report_pick(
        self, task: dict[str, Any], found: list[dict[str, Any]], *, confirm: bool
    ) -> asyncio.Future[Any] | None:
        released = PickTaskReleased.model_validate(task)
        if found == task["lines"]:
            return await self.warehouses.picked(released, confirm=confirm)
        lines = [ItemQuantity.model_validate(line) for line in found]
        return await self.warehouses.short_picked(released, lines, confirm=confirm)

    async def _delivered(
        self, delivery: asyncio.Future[Any], task: dict[str, Any], found: list[dict[str, Any]]
    ) -> None:
        """Wait for a queued pick report; if the broker did not take it, send it again until it does."""
        try:
            await delivery
        except Exception as exc:  # the broker unavailable or too slow to answer
            log.warning("pick report not delivered (%s); sending again", exc.__class__.__name__)
            await until_delivered("a pick report", lambda: self._report_pick(task, found, confirm=True))

    async def _pack(self, task: dict[str, Any], found: list[dict[str, Any]]) -> None:
        task_id = task["pick_task_id"]
        await asyncio.sleep(self.delays.pack)
        if not found or task_id in self.withdrawn:
            self._forget(task_id)
            return
        weight = sum(line["quantity"] for line in found) * GRAMS_PER_UNIT
        released = PickTaskReleased.model_validate(task)
        await until_delivered("a packed report", lambda: self.warehouses.packed(released, weight))

    async def _supply(self, purchase_order: dict[str, Any]) -> None:
        """A supplier answers a purchase order, then ships what it accepted straight to the customer."""
        po_id, supplier = purchase_order["purchase_order_id"], purchase_order["supplier_id"]
        slow = any(SUPPLIER_SLOW_MARK in line["sku"] for line in purchase_order["lines"])
        await asyncio.sleep(self.delays.supplier_slow if slow else self.delays.pick)
        kind, accepted = supplier_answer(purchase_order)
        base = {"purchase_order_id": po_id, "supplier_id": supplier}
        answer = {**base, "kind": kind, "occurred_at": _now()}
        if accepted is not None:
            answer["lines"] = accepted
        if kind == "rejected":
            answer["reason"] = "out of stock at the supplier"
        await self.suppliers.publish(topics.SUPPLIER_REPORTS.name, po_id, answer)
        if kind == "rejected":
            return
        await asyncio.sleep(self.delays.pack)
        if po_id in self.cancelled_purchase_orders:
            self.cancelled_purchase_orders.discard(po_id)
            return
        notice = {
            **base,
            "kind": "shipped",
            "carrier": SUPPLIER_CARRIER,
            "tracking_number": f"{supplier[:20].upper()}-{uuid.uuid4().hex[:16].upper()}",
            "occurred_at": _now(),
        }
        await self.suppliers.publish(topics.SUPPLIER_REPORTS.name, po_id, notice)

    async def _return_parcel(self, authorised: dict[str, Any]) -> None:
        """The customer's parcel reaches the receiving warehouse, which reports what it found."""
        lines = authorised["lines"]
        if any(KEEP_SKU_MARK in line["sku"] for line in lines):
            return
        await asyncio.sleep(self.delays.carrier)
        found = [{"sku": line["sku"], "quantity": line["quantity"], "disposition": disposition(line)} for line in lines]
        warehouse = authorised["label"]["warehouse_id"]
        report = {
            "kind": "return_received",
            "warehouse_id": warehouse,
            "rma": authorised["rma"],
            "receipt": f"R-{authorised['rma']}",
            "lines": found,
            "occurred_at": _now(),
        }
        received = WarehouseReturnReceived.model_validate(report)
        await until_delivered("a return receipt", lambda: self.warehouses.return_received(received))

    def _forget(self, task_id: str) -> None:
        self.withdrawn.discard(task_id)
        self.postal_codes.pop(task_id, None)

    async def _carrier(self, shipped: dict[str, Any], postal_code: str | None) -> None:
        base = {"tracking_number": shipped["tracking_number"], "carrier": shipped["carrier"]}
        for kind, detail in carrier_steps(postal_code):
            await asyncio.sleep(self.delays.carrier)
            update = {**base, "kind": kind, "occurred_at": _now(), **({"detail": detail} if detail else {})}
            await self.carriers.publish(topics.CARRIER_EVENTS.name, shipped["tracking_number"], update)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--delay",
        type=float,
        default=float(os.environ.get("OMS_SIMULATOR_DELAY", "0.2")),
        help="seconds between a simulated step and the next (each step's own option overrides it)",
    )
    for step in ("pick", "pack", "carrier"):
        variable = f"OMS_SIMULATOR_{step.upper()}_DELAY"
        parser.add_argument(
            f"--{step}-delay",
            type=float,
            default=float(os.environ[variable]) if variable in os.environ else None,
            help=f"seconds before each {step} step ({variable})",
        )
    parser.add_argument(
        "--hold",
        type=float,
        default=float(os.environ.get("OMS_SIMULATOR_HOLD", "30")),
        help=f"seconds a task for a postal code starting with {HOLD_POSTAL_PREFIX} waits before picking",
    )
    parser.add_argument(
        "--supplier-slow",
        type=float,
        default=float(os.environ.get("OMS_SIMULATOR_SUPPLIER_SLOW", "15")),
        help=f"seconds a supplier takes to answer a purchase order with a {SUPPLIER_SLOW_MARK} SKU",
    )
    args = parser.parse_args()
    delays = Delays(
        pick=args.delay if args.pick_delay is None else args.pick_delay,
        pack=args.delay if args.pack_delay is None else args.pack_delay,
        carrier=args.delay if args.carrier_delay is None else args.carrier_delay,
        hold=args.hold,
        supplier_slow=args.supplier_slow,
    )
    logging.basicConfig(level="INFO", format="%(asctime)s simulator %(levelname)s %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.WARNING)

    async def serve() -> None:
        task = asyncio.create_task(Simulator(LocalStack.from_env(), delays).run())
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    # uvloop and the services' collector settings: the stand-ins for warehouses and carriers share the machine
    # with the pipeline under test; the plain loop's socket writes and polling were a fifth of their samples, and
    # the collector's scans another fifth.
    settle_collector()
    uvloop.run(serve())


if __name__ == "__main__":
    main()
