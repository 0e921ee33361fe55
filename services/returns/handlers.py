"""Returns' handlers: keep the order facts returns decides with (validated, shipped, delivered, catalogue), decide
return requests (from the API or a channel's topic) and operators' approvals, match warehouses' receipts against
their RMA, and close RMAs whose parcel never came. Every decision about an order's returns holds the order's row
lock, so two requests for the same units cannot both be authorised."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID

import asyncpg

from shared.backbone.consumer import Routes, one_at_a_time
from shared.backbone.db import Conn
from shared.backbone.kafka import Inbound
from shared.backbone.outbox import enqueue
from shared.contracts import events as ev
from shared.contracts import topics
from shared.contracts.envelope import Envelope, wrap
from shared.reference.rates import ShippingRules
from shared.reference.warehouses import Warehouse

from . import domain, metrics, repository
from .domain import Request
from .policy import ReturnsPolicy

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]


@dataclass(frozen=True)
class Outcome:
    """How a request or an operator's decision went: `decided` (see the return's status), `duplicate` (the same
    request was decided before), `invalid` (malformed for this order: nothing recorded), `refused` (the return is
    not waiting for a decision), `unknown` (no such order or return)."""

    verdict: str
    return_id: UUID | None = None
    reasons: tuple[str, ...] = field(default_factory=tuple)


class ReturnsHandlers:
    def __init__(
        self, policy: ReturnsPolicy, rules: ShippingRules, warehouses: Mapping[str, Warehouse], clock: Clock
    ) -> None:
        self.policy = policy
        self.rules = rules
        self.countries = {w.id: w.country for w in warehouses.values()}
        self.clock = clock

    # ---- the facts returns decides with ----

    async def on_order_validated(self, conn: Conn, msgs: list[Inbound[ev.OrderValidated]]) -> None:
        await repository.save_orders(conn, [m.payload for m in msgs])

    async def on_order_shipped(self, conn: Conn, msg: Inbound[ev.OrderShipped]) -> None:
        await repository.save_shipment(conn, msg.payload)

    async def on_order_delivered(self, conn: Conn, msg: Inbound[ev.OrderDelivered]) -> None:
        await repository.save_delivery(conn, msg.payload)

    async def on_product_upserted(self, conn: Conn, msgs: list[Inbound[ev.ProductUpserted]]) -> None:
        latest = {m.payload.sku: m.payload for m in msgs}
        await repository.save_products(conn, [latest[sku] for sku in sorted(latest)])

    # ---- requests and decisions ----

    async def on_return_requested(self, conn: Conn, msg: Inbound[ev.ReturnRequested]) -> None:
        asked = msg.payload
        order_id = await repository.order_id_of(conn, asked.channel, asked.external_id)
        if order_id is None:
            raise LookupError(f"no order {asked.external_id} of channel {asked.channel} is known to returns")
        request = Request(tuple(asked.lines), asked.note, asked.resolution)
        outcome = await self.request(
            conn, order_id, request, f"{asked.channel}:{asked.request_id}", "topic", cause=msg.envelope
        )
        if outcome.verdict == "invalid":
            raise ValueError("; ".join(outcome.reasons))

    async def request(
        self,
        conn: Conn,
        order_id: UUID,
        request: Request,
        request_key: str | None,
        source: str,
        cause: Envelope | None,
    ) -> Outcome:
        order = await repository.lock_order(conn, order_id)
        if order is None:
            return Outcome("unknown")
        if request_key is not None and (known := await repository.return_of_request(conn, request_key)):
            return Outcome("duplicate", known)
        facts = await repository.facts(conn, order)
        if problems := domain.problems(request.lines, facts, self.policy):
            return Outcome("invalid", reasons=tuple(problems))
        products = await repository.products(conn, [line.sku for line in request.lines])
        now = self.clock()
        decision = domain.decide(request.lines, facts, products, self.policy, now)
        return_id = uuid.uuid4()
        await repository.insert_return(conn, return_id, order_id, request, request_key, source, now)
        metrics.count_request(facts.channel, decision.outcome, request.lines)
        lines = list(request.lines)
        if decision.outcome == domain.AUTHORISED:
            await self._authorise(conn, order, return_id, lines, "policy", cause)
        elif decision.outcome == domain.REVIEW:
            await repository.decide(conn, return_id, domain.REVIEW, decision.reasons, now, "policy")
            review = ev.ReturnUnderReview(
                order_id=order_id, return_id=return_id, lines=lines, reasons=list(decision.reasons)
            )
            await self._emit(conn, review, order_id, cause)
        else:
            await self._reject(conn, order_id, return_id, lines, decision.reasons, "policy", cause)
        return Outcome("decided", return_id, decision.reasons)

    async def _authorise(
        self,
        conn: Conn,
        order: asyncpg.Record,
        return_id: UUID,
        lines: list[ev.ReturnLine],
        decided_by: str,
        cause: Envelope | None,
    ) -> None:
        facts = await repository.facts(conn, order)
        products = await repository.products(conn, [line.sku for line in lines])
        warehouse = domain.receiving_warehouse(lines, facts, self.countries, self.policy)
        weight = domain.parcel_weight(lines, products)
        label = domain.cheapest_label(self.rules, warehouse, self.countries[warehouse], weight)
        if label is None:
            raise LookupError(f"no carrier service in the rate table takes {weight} g to warehouse {warehouse}")
        now = self.clock()
        authorised = ev.ReturnAuthorised(
            order_id=order["order_id"],
            return_id=return_id,
            rma=domain.rma_number(await repository.next_rma_serial(conn)),
            lines=lines,
            label=label,
            expires_at=now + timedelta(days=self.policy.rma_valid_days),
            decided_by="operator" if decided_by != "policy" else "policy",
        )
        await repository.decide(conn, return_id, domain.AUTHORISED, [], now, decided_by, authorised)
        await self._emit(conn, authorised, order["order_id"], cause)

    async def _reject(
        self,
        conn: Conn,
        order_id: UUID,
        return_id: UUID,
        lines: list[ev.ReturnLine],
        reasons: Sequence[str],
        decided_by: str,
        cause: Envelope | None,
    ) -> None:
        await repository.decide(conn, return_id, domain.REJECTED, reasons, self.clock(), decided_by)
        rejected = ev.ReturnRejected(
            order_id=order_id,
            return_id=return_id,
            lines=lines,
            reasons=list(reasons),
            decided_by="operator" if decided_by != "policy" else "policy",
        )
        await self._emit(conn, rejected, order_id, cause)

    async def review(self, conn: Conn, return_id: UUID, approve: bool, operator: str, reason: str) -> Outcome:
        """An operator's decision on a return under review; 'refused' once it is decided."""
        order_id = await repository.order_of_return(conn, return_id)
        if order_id is None:
            return Outcome("unknown")
        order = await repository.lock_order(conn, order_id)  # the order first, as a request takes it
        found = await repository.lock_return(conn, return_id)
        if order is None or found is None or found["status"] != domain.REVIEW:
            status = found["status"] if found else "unknown"
            return Outcome("refused", return_id, (f"the return is {status}, not waiting for a decision",))
        lines = [
            ev.ReturnLine(sku=r["sku"], quantity=r["quantity"], reason=r["reason"])
            for r in await repository.lines(conn, return_id)
        ]
        if approve:
            await self._authorise(conn, order, return_id, lines, operator, cause=None)
        else:
            await self._reject(conn, order["order_id"], return_id, lines, [reason], operator, cause=None)
        return Outcome("decided", return_id)

    # ---- receipts and expiry ----

    async def on_return_received(self, conn: Conn, msg: Inbound[ev.WarehouseReturnReceived]) -> None:
        report = msg.payload
        found = await repository.lock_return_by_rma(conn, report.rma)
        if found is None:
            raise LookupError(f"no return with RMA {report.rma}: the parcel is set aside at {report.warehouse_id}")
        if await repository.receipt_known(conn, report.warehouse_id, report.receipt):
            log.info("receipt %s at %s was recorded before", report.receipt, report.warehouse_id)
            return
        rows = await repository.lines(conn, found["return_id"])
        authorised = {r["sku"]: r["quantity"] for r in rows}
        still_open = found["status"] in (domain.AUTHORISED, domain.PARTIALLY_RECEIVED)
        receipt = domain.match_receipt(report.lines, authorised, {r["sku"]: r["received"] for r in rows}, still_open)
        await repository.record_receipt(conn, found["return_id"], report, receipt.accepted, receipt.unexpected)
        complete = receipt.complete(authorised)
        if still_open:
            status = domain.RECEIVED if complete else domain.PARTIALLY_RECEIVED
            await repository.set_status(conn, found["return_id"], status)
        if receipt.unexpected:
            log.warning("receipt %s for %s: units not on the RMA set aside for review", report.receipt, report.rma)
        received = ev.ReturnReceived(
            order_id=found["order_id"],
            return_id=found["return_id"],
            rma=report.rma,
            warehouse_id=report.warehouse_id,
            receipt=report.receipt,
            lines=list(receipt.accepted),
            unexpected=list(receipt.unexpected),
            complete=complete and still_open,
        )
        await self._emit(conn, received, found["order_id"], msg.envelope)

    async def expire(self, conn: Conn, now: datetime) -> int:
        """Close the RMAs past their expiry with the reason; returns how many."""
        expired = await repository.lock_expired(conn, now)
        for found in expired:
            rows = await repository.lines(conn, found["return_id"])
            received = {r["sku"]: r["received"] for r in rows if r["received"]}
            reason = domain.expiry_reason({r["sku"]: r["quantity"] for r in rows}, received, found["expires_at"])
            await repository.set_status(conn, found["return_id"], domain.CLOSED, now)
            closed = ev.ReturnClosed(
                order_id=found["order_id"],
                return_id=found["return_id"],
                rma=found["rma"],
                reason=reason,
                received=[ev.ItemQuantity(sku=sku, quantity=n) for sku, n in sorted(received.items())],
            )
            await self._emit(conn, closed, found["order_id"], None)
        return len(expired)

    async def _emit(self, conn: Conn, payload: ev.Contract, order_id: UUID, cause: Envelope | None) -> None:
        metrics.count_emitted(payload)
        envelope = wrap(payload, order_id=order_id, cause=cause, occurred_at=self.clock())
        await enqueue(conn, [(topics.RETURN_EVENTS, str(order_id), envelope)])

    def routes(self) -> Routes:
        return {
            ev.OrderValidated: self.on_order_validated,
            ev.OrderShipped: one_at_a_time(self.on_order_shipped),
            ev.OrderDelivered: one_at_a_time(self.on_order_delivered),
            ev.ProductUpserted: self.on_product_upserted,
            ev.ReturnRequested: one_at_a_time(self.on_return_requested),
            ev.WarehouseReturnReceived: one_at_a_time(self.on_return_received),
        }
