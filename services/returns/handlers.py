"""Returns' handlers: keep the order facts returns decides with (validated, changed, shipped, delivered, catalogue),
decide return requests (from the API or a channel's topic) and operators' approvals, match warehouses' receipts
against their RMA, settle refunds (of returns, and of what order changes made due back) and exchanges with the payment
provider, and close RMAs whose parcel never came. Every decision about an order's returns holds the order's row
lock, so two requests for the same units cannot both be authorised."""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg

from shared.backbone.consumer import Routes, one_at_a_time
from shared.backbone.db import Conn
from shared.backbone.kafka import Inbound
from shared.backbone.outbox import enqueue
from shared.contracts import events as ev
from shared.contracts import topics
from shared.contracts.envelope import EnvelopeHead, wrap
from shared.reference.rates import ShippingRules
from shared.reference.warehouses import Warehouse

from . import domain, metrics, refunds, repository
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


@dataclass(frozen=True)
class PaymentRetries:
    """How a refund or a charge is asked again: after a retriable failure (base x 2^n seconds), or when the provider
    has not answered in `answer_timeout` seconds; abandoned after `max_attempts`."""

    max_attempts: int = 5
    base_seconds: float = 2.0
    answer_timeout_seconds: float = 300.0

    def delay(self, attempts: int) -> timedelta:
        return timedelta(seconds=self.base_seconds * 2 ** max(0, attempts - 1))


class ReturnsHandlers:
    def __init__(
        self,
        policy: ReturnsPolicy,
        rules: ShippingRules,
        warehouses: Mapping[str, Warehouse],
        clock: Clock,
        retries: PaymentRetries | None = None,
    ) -> None:
        self.policy = policy
        self.rules = rules
        self.countries = {w.id: w.country for w in warehouses.values()}
        self.clock = clock
        self.retries = retries or PaymentRetries()

    # ---- the facts returns decides with ----

    async def on_order_validated(self, conn: Conn, msgs: list[Inbound[ev.OrderValidated]]) -> None:
        await repository.save_orders(conn, [m.payload for m in msgs])

    async def on_order_shipped(self, conn: Conn, msgs: list[Inbound[ev.OrderShipped]]) -> None:
        await repository.save_shipments(conn, [m.payload for m in msgs])

    async def on_order_delivered(self, conn: Conn, msgs: list[Inbound[ev.OrderDelivered]]) -> None:
        await repository.save_deliveries(conn, [m.payload for m in msgs])

    async def on_order_change_applied(self, conn: Conn, msg: Inbound[ev.OrderChangeApplied]) -> None:
        """The order as a change left it (its lines and prices price and bound later returns), and what the change made
        due back refunded, once: the change is recorded once, and its refund's idempotency key names it."""
        applied = msg.payload
        order = await repository.lock_order(conn, applied.order_id)
        if order is None:
            raise LookupError(f"change {applied.change_id} of an order returns does not know: {applied.order_id}")
        if not await repository.save_change(conn, applied, self.clock()):
            log.info("change %s of order %s was recorded before", applied.change_id, applied.order_id)
            return
        if not applied.due_back:
            return
        what = f"order change {applied.change_id} (version {applied.order_version})"
        before = await repository.refunded(conn, applied.order_id)
        refund = refunds.change_refund(what, applied.due_back, applied.paid, before, applied.currency)
        if not refund.total:
            log.error("%s of order %s: nothing left to refund (%s)", what, applied.order_id, refund.explanation[-2:])
            return
        # The change id is the channel's, unique within its order only; the order's version names the change too.
        key = f"order-change:{applied.order_id}:{applied.order_version}"
        await self._ask_refund(conn, order, None, refund, key, msg.envelope, change_id=applied.change_id)

    async def on_product_upserted(self, conn: Conn, msgs: list[Inbound[ev.ProductUpserted]]) -> None:
        latest = {m.payload.sku: m.payload for m in msgs}
        await repository.save_products(conn, [latest[sku] for sku in sorted(latest)])

    # ---- requests and decisions ----

    async def on_return_requested(self, conn: Conn, msg: Inbound[ev.ReturnRequested]) -> None:
        asked = msg.payload
        order_id = await repository.order_id_of(conn, asked.channel, asked.external_id)
        if order_id is None:
            raise LookupError(f"no order {asked.external_id} of channel {asked.channel} is known to returns")
        request = Request(tuple(asked.lines), asked.note, asked.resolution, tuple(asked.exchange_for or ()))
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
        cause: EnvelopeHead | None,
    ) -> Outcome:
        order = await repository.lock_order(conn, order_id)
        if order is None:
            return Outcome("unknown")
        if request_key is not None and (known := await repository.return_of_request(conn, request_key)):
            return Outcome("duplicate", known)
        facts = await repository.facts(conn, order)
        if problems := domain.problems(request, facts, self.policy):
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
        cause: EnvelopeHead | None,
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
        cause: EnvelopeHead | None,
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
        order_id = await repository.order_of_rma(conn, report.rma)
        if order_id is not None:
            await repository.lock_order(conn, order_id)  # the order first, as requests and decisions take it
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
        if found["resolution"] == "refund" and receipt.accepted:
            key = f"refund:{report.rma}:{report.warehouse_id}:{report.receipt}"
            await self._refund(conn, found, receipt.accepted, rows, key, msg.envelope)
        if found["resolution"] == "exchange" and complete and still_open:
            await self._exchange(conn, found, rows, receipt.received, msg.envelope)

    # ---- exchanges ----

    async def _exchange(
        self,
        conn: Conn,
        found: asyncpg.Record,
        rows: Sequence[asyncpg.Record],
        received: Mapping[str, int],
        cause: EnvelopeHead,
    ) -> None:
        """Everything came back: capture opens the exchange order, paid by the returned units' value; a new order
        that costs less has the difference refunded (one more refund, its own idempotency key); one that costs more
        has it charged first, and is opened once it is paid."""
        order = await repository.lock_order(conn, found["order_id"])
        assert order is not None
        paid = repository.paid_order(order)
        wanted = [ev.PricedLine.model_validate(line) for line in found["exchange_for"] or []]
        if paid is None or not wanted:
            log.error("return %s: no payment or nothing to exchange for; the exchange is for an operator", found["rma"])
            return
        returned = self._returned_units(received, {r["sku"]: r["reason"] for r in rows})
        before = await repository.refunded(conn, order["order_id"])
        value = refunds.calculate(paid, returned, before, order["currency"])
        new_total = sum((line.unit_price * line.quantity for line in wanted), refunds.ZERO)
        exchange = ev.ExchangeRequested(
            order_id=order["order_id"],
            return_id=found["return_id"],
            exchange_id=uuid.uuid5(found["return_id"], "exchange"),
            lines=wanted,
            credit=value.total,
            difference=refunds.cents(new_total) - value.total,
            currency=order["currency"],
        )
        dearer = exchange.difference > 0
        if not await repository.insert_exchange(conn, exchange, "charging" if dearer else "ordered", self.clock()):
            return
        if dearer:
            await self._ask_charge(conn, order, exchange, found["rma"], cause)
            return
        await self._emit(conn, exchange, order["order_id"], cause)
        if exchange.difference < 0:
            settled = f"exchanged for {refunds.cents(new_total)}: {-exchange.difference} back"
            back = dataclasses.replace(value, total=-exchange.difference, explanation=(*value.explanation, settled))
            await self._ask_refund(conn, order, found["return_id"], back, f"exchange:{found['rma']}", cause)

    async def _ask_charge(
        self, conn: Conn, order: asyncpg.Record, exchange: ev.ExchangeRequested, rma: str, cause: EnvelopeHead
    ) -> None:
        """The difference is taken on the order's payment before capture opens the exchange order: nothing ships
        that is not paid, and a refused charge leaves no order (and no reserved stock) to undo."""
        now = self.clock()
        request = ev.ChargeRequested(
            charge_id=uuid.uuid5(exchange.exchange_id, "charge"),
            order_id=order["order_id"],
            order_reference=f"{order['channel']}:{order['external_id']}",
            idempotency_key=f"exchange-charge:{rma}",
            amount=exchange.difference,
            currency=exchange.currency,
            attempt=1,
        )
        answer_by = now + timedelta(seconds=self.retries.answer_timeout_seconds)
        if await repository.insert_charge(conn, request, exchange.exchange_id, exchange.return_id, answer_by, now):
            metrics.count_emitted(request)
            await self._send(conn, topics.CHARGE_REQUESTS, request, cause)

    async def on_charge_succeeded(self, conn: Conn, msg: Inbound[ev.ChargeSucceeded]) -> None:
        """The difference is paid: capture opens the exchange order, paid in full."""
        answer = msg.payload
        charge = await self._charge_answered(conn, answer.charge_id, answer.idempotency_key)
        if charge["status"] == "succeeded":
            return  # the provider answers a repeated key with the same charge: charged once
        if answer.amount != charge["amount"]:
            raise ValueError(f"charge {answer.charge_id}: the provider took {answer.amount}, not {charge['amount']}")
        await repository.settle(conn, "charges", answer.charge_id, answer.provider_reference, self.clock())
        metrics.count_charged(charge["currency"], charge["amount"])
        exchange = await repository.exchange_of_charge(conn, answer.charge_id)
        assert exchange is not None  # a charge is for an exchange
        if charge["status"] == "abandoned":
            await self._pay_back(conn, charge, exchange["rma"], msg.envelope)
            return
        await repository.set_exchange_status(conn, exchange["exchange_id"], "ordered")
        ordered = ev.ExchangeRequested(
            order_id=charge["order_id"],
            return_id=charge["return_id"],
            exchange_id=exchange["exchange_id"],
            lines=[ev.PricedLine.model_validate(line) for line in exchange["exchange_for"]],
            credit=refunds.cents(exchange["credit"]),
            difference=refunds.cents(exchange["difference"]),
            currency=charge["currency"],
            charge_reference=answer.provider_reference,
        )
        await self._emit(conn, ordered, charge["order_id"], msg.envelope)

    async def on_charge_failed(self, conn: Conn, msg: Inbound[ev.ChargeFailed]) -> None:
        answer = msg.payload
        charge = await self._charge_answered(conn, answer.charge_id, answer.idempotency_key)
        if charge["status"] != "requested":
            return
        if answer.retriable and charge["attempts"] < self.retries.max_attempts:
            later = self.clock() + self.retries.delay(charge["attempts"])
            log.warning("charge %s failed (attempt %d), asked again at %s", answer.charge_id, charge["attempts"], later)
            await repository.retry_at(conn, "charges", answer.charge_id, later, answer.reason)
            return
        await self._give_up_exchange(conn, charge, answer.reason, msg.envelope)

    async def _charge_answered(self, conn: Conn, charge_id: UUID, key: str) -> asyncpg.Record:
        # The charge first, then (giving up) the order: the order the retry sweep takes them in.
        charge = await repository.lock_charge(conn, charge_id)
        if charge is None or charge["idempotency_key"] != key:
            raise LookupError(f"no charge {charge_id} with idempotency key {key}")
        return charge

    async def _give_up_exchange(
        self, conn: Conn, charge: asyncpg.Record, reason: str, cause: EnvelopeHead | None
    ) -> None:
        """The difference cannot be charged (refused, or every attempt failed): no exchange order is opened, the
        customer is told, and the returned units' value is refunded instead, as for a return for a refund (an
        operator need not step in, and the customer is not left without the goods and without the money)."""
        log.error("charge %s abandoned after %d attempts: %s", charge["charge_id"], charge["attempts"], reason)
        await repository.abandon(conn, "charges", charge["charge_id"], reason, self.clock())
        exchange = await repository.exchange_of_charge(conn, charge["charge_id"])
        order = await repository.lock_order(conn, charge["order_id"])
        assert exchange is not None and order is not None  # a charge is for an exchange of a known order
        paid = repository.paid_order(order)
        assert paid is not None  # the exchange was priced from it
        await repository.set_exchange_status(conn, exchange["exchange_id"], "charge_failed")
        rows = await repository.lines(conn, charge["return_id"])
        returned = self._returned_units({r["sku"]: r["received"] for r in rows}, {r["sku"]: r["reason"] for r in rows})
        value = refunds.calculate(paid, returned, await repository.refunded(conn, order["order_id"]), order["currency"])
        amount = f"{refunds.cents(charge['amount'])} {charge['currency']}"
        instead = f"exchange not made: the difference of {amount} could not be charged ({reason})"
        value = dataclasses.replace(value, explanation=(instead, *value.explanation))
        failed = ev.ExchangeChargeFailed(
            order_id=order["order_id"],
            return_id=charge["return_id"],
            exchange_id=exchange["exchange_id"],
            charge_id=charge["charge_id"],
            amount=refunds.cents(charge["amount"]),
            currency=charge["currency"],
            reason=reason,
            attempts=charge["attempts"],
            refunded=value.total,
        )
        await self._emit(conn, failed, order["order_id"], cause)
        if value.total:
            await self._ask_refund(conn, order, charge["return_id"], value, f"exchange:{exchange['rma']}", cause)

    async def _pay_back(self, conn: Conn, charge: asyncpg.Record, rma: str, cause: EnvelopeHead) -> None:
        """The provider took the difference after the exchange was given up (its answer came after the last
        attempt): the exchange stays given up, its value refunded, and the charge is paid back."""
        log.error("charge %s succeeded after it was given up: paid back", charge["charge_id"])
        order = await repository.lock_order(conn, charge["order_id"])
        assert order is not None
        amount = refunds.cents(charge["amount"])
        unit = f"{amount} {charge['currency']}"
        text = (
            f"the exchange's difference, charged after the exchange was given up, paid back: {unit}",
            f"refund: {unit}",
        )
        back = refunds.Refund((), refunds.ZERO, amount, amount, text)
        key = f"charge-back:{rma}"
        await self._ask_refund(conn, order, charge["return_id"], back, key, cause, charge_id=charge["charge_id"])

    def _returned_units(self, units: Mapping[str, int], reasons: Mapping[str, str]) -> list[refunds.ReturnedUnits]:
        rules = self.policy.leaves()
        returned = []
        for sku, quantity in sorted(units.items()):
            if not quantity:
                continue
            rule = rules.get(reasons[sku])
            returned.append(
                refunds.ReturnedUnits(
                    sku,
                    quantity,
                    reasons[sku],
                    refund_shipping=bool(rule and rule.refund_shipping),
                    restocking_fee_percent=rule.restocking_fee_percent if rule else refunds.ZERO,
                )
            )
        return returned

    # ---- refunds ----

    async def _refund(
        self,
        conn: Conn,
        found: asyncpg.Record,
        accepted: Sequence[ev.ReceivedLine],
        rows: Sequence[asyncpg.Record],
        key: str,
        cause: EnvelopeHead,
    ) -> None:
        """Ask the payment provider to refund the units of a receipt, as the calculator explains it."""
        order = await repository.lock_order(conn, found["order_id"])  # held already: one refund decided at a time
        assert order is not None  # a return references its order
        paid = repository.paid_order(order)
        if paid is None:
            log.error("return %s: the order's payment is not known; the refund is for an operator", found["rma"])
            return
        units: dict[str, int] = {}
        for line in accepted:
            units[line.sku] = units.get(line.sku, 0) + line.quantity
        returned = self._returned_units(units, {r["sku"]: r["reason"] for r in rows})
        refund = refunds.calculate(
            paid, returned, await repository.refunded(conn, order["order_id"]), order["currency"]
        )
        if not refund.total:
            log.info("return %s: nothing to refund (%s)", found["rma"], refund.explanation[-2:])
            return
        await self._ask_refund(conn, order, found["return_id"], refund, key, cause)

    async def _ask_refund(
        self,
        conn: Conn,
        order: asyncpg.Record,
        return_id: UUID | None,
        refund: refunds.Refund,
        key: str,
        cause: EnvelopeHead | None,
        charge_id: UUID | None = None,
        change_id: str | None = None,
    ) -> None:
        now = self.clock()
        request = ev.RefundRequested(
            refund_id=uuid.uuid4(),
            order_id=order["order_id"],
            order_reference=f"{order['channel']}:{order['external_id']}",
            idempotency_key=key,
            amount=refund.total,
            currency=order["currency"],
            attempt=1,
        )
        answer_by = now + timedelta(seconds=self.retries.answer_timeout_seconds)
        if await repository.insert_refund(conn, request, return_id, refund, answer_by, now, charge_id, change_id):
            metrics.count_emitted(request)
            await self._send(conn, topics.REFUND_REQUESTS, request, cause)

    async def _send(
        self,
        conn: Conn,
        topic: topics.Topic,
        request: ev.RefundRequested | ev.ChargeRequested,
        cause: EnvelopeHead | None,
    ) -> None:
        envelope = wrap(request, order_id=request.order_id, cause=cause, occurred_at=self.clock())
        await enqueue(conn, [(topic, str(request.order_id), envelope)])

    async def on_refund_succeeded(self, conn: Conn, msg: Inbound[ev.RefundSucceeded]) -> None:
        answer = msg.payload
        refund = await self._answered(conn, answer.refund_id, answer.idempotency_key)
        if refund is None or refund["status"] == "succeeded":
            return  # the provider answers a repeated key with the same payment: paid once
        if answer.amount != refund["amount"]:
            raise ValueError(f"refund {answer.refund_id}: the provider paid {answer.amount}, not {refund['amount']}")
        now = self.clock()
        await repository.settle(conn, "refunds", answer.refund_id, answer.provider_reference, now)
        # As with an abandoned refund: the return's or the change's own event, the same payment in both.
        kind: type[ev.ChangeRefunded | ev.ReturnRefunded]
        owner: dict[str, Any]
        if refund["change_id"] is not None:
            kind, owner = ev.ChangeRefunded, {"change_id": refund["change_id"]}
        else:
            waited = (now - refund["return_requested_at"]).total_seconds()
            kind, owner = ev.ReturnRefunded, {"return_id": refund["return_id"], "requested_to_refunded_seconds": waited}
        refunded = kind(
            order_id=refund["order_id"],
            refund_id=answer.refund_id,
            amount=refunds.cents(refund["amount"]),
            currency=refund["currency"],
            explanation=list(refund["explanation"]),
            provider_reference=answer.provider_reference,
            **owner,
        )
        await self._emit(conn, refunded, refund["order_id"], msg.envelope)

    async def on_refund_failed(self, conn: Conn, msg: Inbound[ev.RefundFailed]) -> None:
        answer = msg.payload
        refund = await self._answered(conn, answer.refund_id, answer.idempotency_key)
        if refund is None or refund["status"] != "requested":
            return
        if answer.retriable and refund["attempts"] < self.retries.max_attempts:
            later = self.clock() + self.retries.delay(refund["attempts"])
            log.warning("refund %s failed (attempt %d), asked again at %s", answer.refund_id, refund["attempts"], later)
            await repository.retry_at(conn, "refunds", answer.refund_id, later, answer.reason)
            return
        await self._abandon(conn, refund, answer.reason, msg.envelope)

    async def _answered(self, conn: Conn, refund_id: UUID, key: str) -> asyncpg.Record | None:
        refund = await repository.lock_refund(conn, refund_id)
        if refund is None or refund["idempotency_key"] != key:
            raise LookupError(f"no refund {refund_id} with idempotency key {key}")
        return refund

    async def _abandon(self, conn: Conn, refund: asyncpg.Record, reason: str, cause: EnvelopeHead | None) -> None:
        log.error("refund %s abandoned after %d attempts: %s", refund["refund_id"], refund["attempts"], reason)
        await repository.abandon(conn, "refunds", refund["refund_id"], reason, self.clock())
        # A refund belongs to a return or to an order change; each is told apart by its own event.
        kind: type[ev.ChangeRefundAbandoned | ev.RefundAbandoned] = ev.RefundAbandoned
        owner: dict[str, Any] = {"return_id": refund["return_id"]}
        if refund["change_id"] is not None:
            kind, owner = ev.ChangeRefundAbandoned, {"change_id": refund["change_id"]}
        abandoned = kind(
            order_id=refund["order_id"],
            refund_id=refund["refund_id"],
            amount=refunds.cents(refund["amount"]),
            currency=refund["currency"],
            reason=reason,
            attempts=refund["attempts"],
            **owner,
        )
        await self._emit(conn, abandoned, refund["order_id"], cause)

    async def retry_payments(self, conn: Conn, now: datetime) -> int:
        """Ask again, under the same idempotency key, the refunds and charges due (failed or unanswered); the last
        attempt spent, give them up with the reason."""
        due = 0
        for table in ("refunds", "charges"):
            for payment in await repository.lock_due(conn, table, now):
                due += 1
                if payment["attempts"] < self.retries.max_attempts:
                    await self._ask_again(conn, table, payment, now)
                    continue
                reason = payment["last_error"] or "the payment provider did not answer"
                reason = f"{reason} ({payment['attempts']} attempts)"
                if table == "refunds":
                    await self._abandon(conn, payment, reason, None)
                else:
                    await self._give_up_exchange(conn, payment, reason, None)
        return due

    async def _ask_again(self, conn: Conn, table: repository.Payments, payment: asyncpg.Record, now: datetime) -> None:
        key = "refund_id" if table == "refunds" else "charge_id"
        answer_by = now + timedelta(seconds=self.retries.answer_timeout_seconds)
        asked = {
            key: payment[key],
            "order_id": payment["order_id"],
            "order_reference": f"{payment['channel']}:{payment['external_id']}",
            "idempotency_key": payment["idempotency_key"],
            "amount": refunds.cents(payment["amount"]),
            "currency": payment["currency"],
            "attempt": await repository.count_attempt(conn, table, payment[key], answer_by),
        }
        if table == "refunds":
            metrics.count_retry("refund")
            await self._send(conn, topics.REFUND_REQUESTS, ev.RefundRequested.model_validate(asked), None)
        else:
            metrics.count_retry("charge")
            await self._send(conn, topics.CHARGE_REQUESTS, ev.ChargeRequested.model_validate(asked), None)

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

    async def _emit(self, conn: Conn, payload: ev.Contract, order_id: UUID, cause: EnvelopeHead | None) -> None:
        metrics.count_emitted(payload)
        envelope = wrap(payload, order_id=order_id, cause=cause, occurred_at=self.clock())
        await enqueue(conn, [(topics.RETURN_EVENTS, str(order_id), envelope)])

    def routes(self) -> Routes:
        return {
            ev.OrderValidated: self.on_order_validated,
            ev.OrderShipped: self.on_order_shipped,
            ev.OrderDelivered: self.on_order_delivered,
            ev.ProductUpserted: self.on_product_upserted,
            ev.OrderChangeApplied: one_at_a_time(self.on_order_change_applied),
            ev.ReturnRequested: one_at_a_time(self.on_return_requested),
            ev.WarehouseReturnReceived: one_at_a_time(self.on_return_received),
            ev.RefundSucceeded: one_at_a_time(self.on_refund_succeeded),
            ev.RefundFailed: one_at_a_time(self.on_refund_failed),
            ev.ChargeSucceeded: one_at_a_time(self.on_charge_succeeded),
            ev.ChargeFailed: one_at_a_time(self.on_charge_failed),
        }
