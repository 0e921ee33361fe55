"""Capture's handlers: intake (HTTP and Kafka), cancel requests (HTTP and Kafka), the catalogue copy, and
the order's status and timeline fed by the lifecycle events of the other services. Each runs inside the
transaction its caller opened.

A channel's cancel request may be read before its order (they travel on different topics): it is held and
applied when the order arrives, in the intake's transaction, or answered as expired when no order claims it
in time. Both paths lock the (channel, external_id) first, so two instances reading the order and the request
at the same moment handle them one after the other."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

from prometheus_client import Counter

from shared.backbone import logs
from shared.backbone.consumer import Routes
from shared.backbone.db import Conn
from shared.backbone.kafka import Inbound
from shared.backbone.metrics import count
from shared.backbone.outbox import enqueue
from shared.contracts import events as ev
from shared.contracts import topics
from shared.contracts.backorders import describe, quantities
from shared.contracts.envelope import Envelope, EnvelopeHead, now, wrap
from shared.contracts.ids import time_ordered_id
from shared.contracts.topics import Topic
from shared.reference import catalogue

from . import (
    cancellation,
    change_handlers,
    credit,
    domain,
    holds,
    latency,
    lifecycle,
    metrics,
    repository,
    returns,
    risk,
)
from .domain import IntakeRules
from .lifecycle import Step

log = logging.getLogger(__name__)
EARLY_CANCEL_REQUESTS = Counter(
    "oms_early_cancel_requests_total",
    "Channel cancel requests read before their order: held, then applied when it arrived or expired.",
    ["channel", "outcome"],
)


@dataclass(frozen=True)
class Accepted:
    order_id: UUID
    status: str
    duplicate: bool


@dataclass(frozen=True)
class CancelOutcome:
    """`accepted`: passed on to fulfillment; `duplicate`: the same request was made before (its state in
    `request_state`); `refused` / `invalid`: not passed on, for `reasons`; `unknown`: no such order."""

    verdict: Literal["accepted", "duplicate", "refused", "invalid", "unknown"]
    order_id: UUID | None = None
    status: str | None = None
    reasons: tuple[str, ...] = ()
    request_state: str | None = None


@dataclass(frozen=True)
class HoldOutcome:
    """`released` (`remaining` still on the order), `cancelled`, `refused` (not on hold), `invalid` (a hold it
    does not have), `unknown` (no such order)."""

    verdict: Literal["released", "cancelled", "refused", "invalid", "unknown"]
    order_id: UUID | None = None
    status: str | None = None
    reasons: tuple[str, ...] = ()
    released: tuple[str, ...] = ()
    remaining: tuple[str, ...] = ()


class CaptureHandlers:
    def __init__(self, rules: IntakeRules, risk_rules: risk.RiskRules, early_cancel_window: timedelta) -> None:
        self.rules = rules
        self.risk_rules = risk_rules
        self.early_cancel_window = early_cancel_window
        self.changes = change_handlers.ChangeHandlers(rules)

    async def prepare(self, conn: Conn, batch: list[Inbound[Any]]) -> None:
        """Lock, in one global order, the (channel, external_id) of every order and cancel request in the batch,
        then the orders its lifecycle events are about: two instances then never wait on each other in a cycle."""
        keys: set[tuple[str, str]] = set()
        cancelled: set[tuple[str, str]] = set()
        orders: set[UUID] = set()
        for item in batch:
            match item.payload:
                case ev.SubmittedOrder(channel=channel, external_id=external_id):
                    keys.add((channel, external_id))
                case (
                    ev.CancelRequested(channel=channel, external_id=external_id)
                    | ev.ChangeRequested(channel=channel, external_id=external_id)
                    | ev.PaymentReceived(channel=channel, external_id=external_id)
                ):
                    keys.add((channel, external_id))
                    cancelled.add((channel, external_id))
                case payload if (order_id := lifecycle.order_of(payload)) is not None:
                    orders.add(order_id)
        await repository.lock_external_ids(conn, keys)
        orders |= await repository.order_ids(conn, cancelled)
        await repository.lock_orders(conn, orders)

    async def intake(self, conn: Conn, order: ev.SubmittedOrder, cause: EnvelopeHead | None) -> Accepted:
        """Store a new order already decided (validated or rejected) and announce the decision; a known
        (channel, external_id) returns the order as it stands. Cancel requests held for it are applied."""
        (accepted,) = await self.intake_all(conn, [(order, cause)])
        return accepted

    async def intake_all(
        self, conn: Conn, orders: Sequence[tuple[ev.SubmittedOrder, EnvelopeHead | None]]
    ) -> list[Accepted]:
        """`intake` for many orders, in the order given, with one statement per table: their (channel,
        external_id) locked, the catalogue read, the orders, their steps and their events written at once."""
        await repository.lock_external_ids(conn, [(order.channel, order.external_id) for order, _ in orders])
        known = await repository.known_external_ids(conn, [(order.channel, order.external_id) for order, _ in orders])
        known_skus = await repository.catalogue(conn, (line.sku for order, _ in orders for line in order.lines))
        fresh: dict[tuple[str, str], ev.SubmittedOrder] = {}  # the first of a (channel, external_id) counts
        for order, _ in orders:
            if (key := (order.channel, order.external_id)) not in known:
                fresh.setdefault(key, order)
        rejections = {key: domain.rejection_reasons(order, known_skus, self.rules) for key, order in fresh.items()}
        at = now()
        counted_by, assessments = await self._assess(conn, fresh, rejections, at)
        placed = {key: dict(holds.placed(assessments[key])) for key in fresh}
        for key, reason in (await self._credit_check(conn, fresh, assessments)).items():
            placed[key]["credit"] = reason
        decided = {
            key: repository.NewOrder(
                time_ordered_id(), order, domain.order_total(order), status, rejections[key], now()
            )
            for key, order in fresh.items()
            for status in ["rejected" if rejections[key] else "on_hold" if placed[key] else "validated"]
        }
        inserted = await repository.insert_orders(conn, list(decided.values()))
        risks = [
            repository.Assessed(new.order_id, counted_by[key], new.total, assessments[key])
            for key, new in decided.items()
            if new.order_id in inserted
        ]
        await repository.add_risk(conn, risks, at)
        await repository.add_holds(
            conn,
            [
                (new.order_id, hold, reason, holds.placed_by(hold))
                for key, new in decided.items()
                if new.order_id in inserted
                for hold, reason in placed[key].items()
            ],
            at,
        )
        steps: list[tuple[UUID, str, datetime, str | None]] = []
        outgoing: list[tuple[Topic, str, Envelope]] = []
        answers: list[Accepted | None] = []
        for order, cause in orders:
            new = decided.get((order.channel, order.external_id))
            if new is None or new.order_id not in inserted:
                answers.append(None)  # known already, or read twice here: answered as it stands, below
                continue
            inserted.discard(new.order_id)
            reasons = list(new.reasons)
            on_hold = placed[(order.channel, order.external_id)]
            assessment = assessments[(order.channel, order.external_id)]
            announced: ev.Contract
            if on_hold and assessment is not None:
                announced = held_order(new.order_id, order, on_hold, assessment)
                detail: str | None = holds.describe(on_hold)
                metrics.count_holds(on_hold, "placed")
            else:
                announced = decision(new.order_id, order, new.total, reasons, new.received_at)
                detail = "; ".join(reasons) or None
            if assessment is not None:
                count(metrics.RISK_ASSESSMENTS.labels(assessment.level, assessment.recommendation))
            event = wrap(announced, order_id=new.order_id, cause=cause)
            steps += [
                (new.order_id, "received", new.received_at, f"via {order.channel}"),
                (new.order_id, new.status, event.occurred_at, detail),
            ]
            outgoing.append((topics.topic_of(type(announced)), str(new.order_id), event))
            metrics.count_intake(order.channel, reasons, new.status)
            answers.append(Accepted(new.order_id, new.status, duplicate=False))
        if len(orders) == 1 and answers[0] is not None:
            logs.bind(order_id=answers[0].order_id)
        await repository.add_steps(conn, steps)
        await enqueue(conn, outgoing)
        held = await repository.held_cancel_requests(
            conn,
            [(order.channel, order.external_id) for (order, _), answer in zip(orders, answers, strict=True) if answer],
        )
        for (order, cause), answer in zip(orders, answers, strict=True):
            if answer is None:
                continue
            for request in held.pop((order.channel, order.external_id), []):
                outcome = await self._channel_cancel(
                    conn, answer.order_id, request.lines, request.reason, order.channel, cause, now()
                )
                verdict = "; ".join((outcome.verdict, *outcome.reasons))
                await repository.apply_held_request(
                    conn, order.channel, order.external_id, request.fingerprint, answer.order_id, verdict
                )
                count(EARLY_CANCEL_REQUESTS.labels(order.channel, "applied"))
        return [answer or await self._known(conn, order) for (order, _), answer in zip(orders, answers, strict=True)]

    async def _assess(
        self,
        conn: Conn,
        fresh: Mapping[tuple[str, str], ev.SubmittedOrder],
        reasons: Mapping[tuple[str, str], list[domain.Rejection]],
        at: datetime,
    ) -> tuple[dict[tuple[str, str], dict[risk.Dimension, str]], dict[tuple[str, str], risk.Assessment | None]]:
        """Every new order's velocity keys, and the assessment of those that pass validation (an exchange order,
        opened by returns for a customer whose parcel came back, is not assessed); what was seen before is read
        with one statement, and each order counts for those after it."""
        keys = {key: risk.keys(order) for key, order in fresh.items()}
        assessed = {key: not reasons[key] and order.original_order_id is None for key, order in fresh.items()}
        wanted = set().union(*(risk.lookups(keys[key], self.risk_rules, at) for key in fresh if assessed[key]))
        history = await repository.risk_history(conn, wanted)
        orders = ((order, domain.order_total(order), keys[key], assessed[key]) for key, order in fresh.items())
        return keys, dict(zip(fresh, risk.assess_all(orders, history, self.risk_rules, at), strict=True))

    async def _credit_check(
        self,
        conn: Conn,
        fresh: Mapping[tuple[str, str], ev.SubmittedOrder],
        assessments: Mapping[tuple[str, str], risk.Assessment | None],
    ) -> dict[tuple[str, str], str]:
        """The credit holds of the new orders bought on an account (those assessed: not rejected, not exchanges),
        weighed in the order given against their account's exposure, each that fits counting for those after it."""
        on_account = {
            key: order.customer.account
            for key, order in fresh.items()
            if order.customer.account is not None and assessments[key] is not None
        }
        limits = self.risk_rules.credit
        weighed = {key: account for key, account in on_account.items() if limits.limit_of(account) is not None}
        if not weighed:
            return {}
        await repository.lock_accounts(conn, weighed.values())
        exposure = {a: credit.exposure(o) for a, o in (await repository.exposures(conn, weighed.values())).items()}
        held: dict[tuple[str, str], str] = {}
        for key, account in weighed.items():
            order = fresh[key]
            amount = credit.unpaid(order, {}, credit.paid_at_intake(order))
            reason = credit.over_limit(limits, account, order, amount, exposure.get(account, Decimal(0)))
            if reason is None:
                exposure[account] = exposure.get(account, Decimal(0)) + amount
            else:
                held[key] = reason
        return held

    async def review_credit(self, conn: Conn, accounts: Iterable[str]) -> int:
        """Look again at the accounts' orders on credit hold, their exposure having fallen: each that now fits is
        released (and flows when no other hold is left). Returns how many were released."""
        limits = self.risk_rules.credit
        weighed = sorted({a for a in accounts if limits.limit_of(a) is not None})
        if not weighed:
            return 0
        await repository.lock_accounts(conn, weighed)
        open_orders = await repository.exposures(conn, weighed)
        released = 0
        for account in weighed:
            waiting = await repository.lock_credit_held(conn, account)
            if not waiting:
                continue
            found = credit.review(limits, account, waiting, credit.exposure(open_orders.get(account, [])))
            for order_id in found.released:
                await self.release(conn, order_id, ["credit"], holds.PLACED_BY_CREDIT, "it fits the account's credit")
            released += len(found.released)
        return released

    async def on_payment_received(self, conn: Conn, msgs: list[Inbound[ev.PaymentReceived]]) -> None:
        """A payment counts towards its order's paid amount once; the account's orders on credit hold are then looked
        at again. A payment for an order capture does not know is a dead letter (replayable once it has come)."""
        accounts: set[str] = set()
        for msg in msgs:
            payment = msg.payload
            found = await repository.find_by_external_id(conn, payment.channel, payment.external_id)
            if found is None:
                raise LookupError(f"payment {payment.payment_id} for an order capture does not know")
            order_id, _ = found
            progress = await repository.lock_progress(conn, order_id)
            assert progress is not None
            order, _ = await repository.order_facts(conn, order_id)
            if payment.currency != order.currency:
                raise ValueError(f"payment in {payment.currency} for an order in {order.currency}")
            if not await repository.record_payment(conn, payment, order_id):
                continue  # counted before
            detail = f"{payment.amount} {payment.currency} received"
            step = Step("payment_received", detail, progress.status)
            await repository.record(conn, order_id, progress, step, payment.received_at)
            if order.customer.account is not None:
                accounts.add(order.customer.account)
            await self.changes.on_payment(conn, order_id, msg.envelope)
        await self.review_credit(conn, accounts)

    async def _known(self, conn: Conn, order: ev.SubmittedOrder) -> Accepted:
        known = await repository.find_by_external_id(conn, order.channel, order.external_id)
        assert known is not None, "the insert met this order"
        return Accepted(*known, duplicate=True)

    async def on_order_submitted(self, conn: Conn, msgs: list[Inbound[ev.SubmittedOrder]]) -> None:
        for msg in msgs:  # a batch that fails is handled one by one: the record at fault is dead-lettered alone
            if msg.payload.original_order_id is not None:
                raise ValueError("original_order_id: exchange orders are opened by the returns service, not submitted")
        await self.intake_all(conn, [(msg.payload, msg.envelope) for msg in msgs])

    async def on_lifecycle_event(self, conn: Conn, msgs: list[Inbound[ev.Contract]]) -> None:
        """Allocation and fulfillment report progress; each order keeps its status and timeline. The batch's
        orders are loaded at once, their events applied in the order read (one order's progress carried from
        one to the next), and every step and status written with one statement."""
        progress = await repository.lock_progresses(conn, filter(None, (lifecycle.order_of(m.payload) for m in msgs)))
        changed: dict[UUID, lifecycle.Progress] = {}
        less_owed: set[UUID] = set()  # orders with units cancelled: their account's exposure fell
        rejections: dict[UUID, list[str]] = {}
        steps: list[repository.Recorded] = []
        for msg in msgs:
            order_id = lifecycle.order_of(msg.payload)
            if order_id is None:
                continue  # stock counts are about a warehouse, not an order
            before = progress.get(order_id)
            if before is None:
                raise LookupError(f"{msg.envelope.type} for an order capture does not know")
            change = lifecycle.apply(before, msg.payload)
            if change is None:
                continue
            progress[order_id] = changed[order_id] = change.progress
            if change.progress.cancelled != before.cancelled:
                less_owed.add(order_id)
            steps.append(repository.Recorded(order_id, change.step, msg.envelope.occurred_at))
            if change.status_changed and change.progress.status == "rejected" and change.step.detail is not None:
                rejections.setdefault(order_id, []).append(change.step.detail)
            if isinstance(msg.payload, ev.CancellationAccepted | ev.CancellationRefused):
                state = "accepted" if isinstance(msg.payload, ev.CancellationAccepted) else "refused"
                cause = msg.envelope.causation_id
                await repository.resolve_request(conn, order_id, cause, state, msg.payload.reason)
            latency.observe_step(before, msg)
            if change.status_changed:
                count(metrics.ORDERS_STATUS.labels(change.progress.status))
        await repository.record_all(conn, steps, changed, rejections)
        if less_owed and self.risk_rules.credit.limited:
            await self.review_credit(conn, await repository.accounts_of(conn, less_owed))

    async def on_return_event(self, conn: Conn, msgs: list[Inbound[ev.Contract]]) -> None:
        """The order's returns (requested, authorised, received, refunded) in its timeline and per-line quantities."""
        for msg in msgs:
            payload = msg.payload
            found = returns.news(payload)
            order_id = lifecycle.order_of(payload)
            if found is None or order_id is None:
                continue
            if await repository.lock_progress(conn, order_id) is None:
                raise LookupError(f"{msg.envelope.type} for an order capture does not know")
            await repository.add_return_steps(conn, order_id, found.steps, msg.envelope.occurred_at)
            return_id = getattr(payload, "return_id")  # noqa: B009 - every return event names its return
            await repository.record_return(
                conn,
                order_id,
                return_id,
                found.state,
                found.asked,
                found.authorised,
                found.received,
                msg.envelope.occurred_at,
                found.keeps,
            )
            if isinstance(payload, ev.ReturnRefunded):
                await repository.record_refund(conn, payload, msg.envelope.occurred_at)

    async def on_exchange_requested(self, conn: Conn, msgs: list[Inbound[ev.ExchangeRequested]]) -> None:
        """The exchange order, through the normal intake: the original order's customer and address, the new lines,
        paid by the returned units' value and the difference charged. Its external id names the exchange, so a
        redelivery finds it; the original's return is then exchanged."""
        for msg in msgs:
            exchange = msg.payload
            original = await repository.order_document(conn, exchange.order_id)
            if original is None:
                raise LookupError(f"exchange for an order capture does not know: {exchange.order_id}")
            order = returns.exchange_order(original, exchange, now())
            accepted = await self.intake(conn, order, cause=msg.envelope)
            if not accepted.duplicate:
                detail = returns.exchange_ordered(accepted.order_id, accepted.status, exchange)
                await repository.add_return_steps(conn, exchange.order_id, [("exchange_ordered", detail)], now())
                await repository.record_return(
                    conn,
                    exchange.order_id,
                    exchange.return_id,
                    returns.EXCHANGED,
                    None,
                    False,
                    None,
                    msg.envelope.occurred_at,
                )

    async def cancel(
        self,
        conn: Conn,
        order_id: UUID,
        lines: list[ev.ItemQuantity] | None,
        reason: str,
        source: str,
        cause: EnvelopeHead | None,
    ) -> CancelOutcome:
        """Pass a cancel request on to fulfillment (OrderCancellationRequested) unless the order is past
        cancelling or the request does not fit it; a repeat of an earlier request is not passed on again."""
        progress = await repository.lock_progress(conn, order_id)
        if progress is None:
            return CancelOutcome("unknown")
        fingerprint = cancellation.fingerprint(lines)
        earlier = await repository.find_cancel_request(conn, order_id, fingerprint)
        if earlier is not None:
            return CancelOutcome("duplicate", order_id, progress.status, request_state=earlier)
        review = cancellation.review(progress, lines)
        if review.verdict != "accepted":
            return CancelOutcome(review.verdict, order_id, progress.status, review.reasons)
        if progress.status == "on_hold":
            await self._cancel_from_hold(conn, order_id, progress, reason, source, cause, expired=None)
            return CancelOutcome("accepted", order_id, "cancelled", request_state="accepted")
        requested_at = now()
        requested = ev.OrderCancellationRequested(
            order_id=order_id, lines=lines, reason=reason, requested_at=requested_at
        )
        event = wrap(requested, order_id=order_id, cause=cause, occurred_at=requested_at)
        await repository.add_cancel_request(
            conn, order_id, fingerprint, event.event_id, lines, reason, source, requested_at
        )
        await enqueue(conn, [(topics.ORDER_CANCELLATIONS, str(order_id), event)])
        what = "whole order" if lines is None else describe(quantities(lines))
        step = Step("cancellation_requested", f"{reason}; {what} (via {source})", progress.status)
        await repository.record(conn, order_id, progress, step, requested_at)
        return CancelOutcome("accepted", order_id, progress.status, request_state="requested")

    async def on_cancel_requested(self, conn: Conn, msgs: list[Inbound[ev.CancelRequested]]) -> None:
        for msg in msgs:
            await self._cancel_requested(conn, msg)

    async def _cancel_requested(self, conn: Conn, msg: Inbound[ev.CancelRequested]) -> None:
        """A channel's cancel request; one for an order not seen yet is held until it arrives."""
        request = msg.payload
        channel, external_id = request.channel, request.external_id
        await repository.lock_external_ids(conn, [(channel, external_id)])
        found = await repository.find_by_external_id(conn, channel, external_id)
        if found is None:
            fingerprint = cancellation.fingerprint(request.lines)
            lines, reason = request.lines, request.reason
            if await repository.hold_cancel_request(
                conn, channel, external_id, fingerprint, msg.event_id, lines, reason
            ):
                log.info("cancel request from %s for order %s held: that order has not arrived", channel, external_id)
                count(EARLY_CANCEL_REQUESTS.labels(channel, "held"))
            return
        order_id, _ = found
        await self._channel_cancel(
            conn, order_id, request.lines, request.reason, channel, msg.envelope, msg.envelope.occurred_at
        )

    async def _channel_cancel(
        self,
        conn: Conn,
        order_id: UUID,
        lines: list[ev.ItemQuantity] | None,
        reason: str,
        channel: str,
        cause: EnvelopeHead | None,
        at: datetime,
    ) -> CancelOutcome:
        """A channel has no answer to wait for: a request capture cannot pass on is recorded in the timeline."""
        outcome = await self.cancel(conn, order_id, lines, reason, channel, cause)
        if outcome.verdict in ("refused", "invalid"):
            progress = await repository.lock_progress(conn, order_id)
            assert progress is not None
            refusal = Step("cancellation_refused", "; ".join(outcome.reasons), progress.status)
            await repository.record(conn, order_id, progress, refusal, at)
            log.info("cancel request for order %s refused by capture (%s)", order_id, outcome.verdict)
        return outcome

    async def expire_held_cancel_requests(self, conn: Conn, at: datetime) -> int:
        """Answer the cancel requests no order has claimed within the window: expired, with the reason."""
        seconds = round(self.early_cancel_window.total_seconds())
        expired = await repository.expire_held_requests(
            conn, at - self.early_cancel_window, f"no such order arrived within {seconds} s"
        )
        for channel, external_id in expired:
            log.warning(
                "cancel request from %s for order %s expired: it did not arrive in %d s", channel, external_id, seconds
            )
            count(EARLY_CANCEL_REQUESTS.labels(channel, "expired"))
        return len(expired)

    # ---- holds ----

    async def release(
        self, conn: Conn, order_id: UUID, hold_types: Sequence[str] | None, by: str, note: str | None
    ) -> HoldOutcome:
        """Release these holds (None: every one); when none is left the order goes on as validated: announced to
        allocation (OrderValidated) in this transaction."""
        progress = await repository.lock_progress(conn, order_id)
        if progress is None:
            return HoldOutcome("unknown")
        if progress.status != "on_hold":
            return HoldOutcome("refused", order_id, progress.status, (f"the order is not on hold ({progress.status})",))
        found = holds.release(await repository.held(conn, order_id), hold_types)
        if found.not_held:
            reasons = tuple(f"the order has no {hold} hold" for hold in found.not_held)
            return HoldOutcome("invalid", order_id, progress.status, reasons)
        at = now()
        await repository.end_holds(conn, order_id, found.released, "released", by, note, at)
        outgoing: list[tuple[Topic, str, Envelope]] = []
        steps: list[repository.Recorded] = []
        for hold in found.released:
            released = ev.HoldReleased(
                order_id=order_id, hold_type=hold, released_by=by, note=note, remaining=list(found.remaining)
            )
            outgoing.append((topics.ORDER_HOLDS, str(order_id), wrap(released, order_id=order_id, occurred_at=at)))
            detail = "; ".join(filter(None, (f"{hold} hold released by {by}", note)))
            steps.append(repository.Recorded(order_id, Step("hold_released", detail, progress.status), at))
        after = progress
        if found.order_flows:
            order, received_at = await repository.order_facts(conn, order_id)
            # The total as intake computed it (the stored one carries the column's four decimals).
            announced = decision(order_id, order, domain.order_total(order), [], received_at)
            validated = wrap(announced, order_id=order_id, occurred_at=at)
            outgoing.append((topics.ORDERS_VALIDATED, str(order_id), validated))
            after = replace(progress, status="validated")
            steps.append(repository.Recorded(order_id, Step("validated", "every hold released", "validated"), at))
            count(metrics.ORDERS_STATUS.labels("validated"))
        await repository.record_all(conn, steps, {order_id: after}, {})
        await enqueue(conn, outgoing)
        metrics.count_holds(found.released, "released")
        return HoldOutcome("released", order_id, after.status, released=found.released, remaining=found.remaining)

    async def cancel_held(self, conn: Conn, order_id: UUID, reason: str, by: str) -> HoldOutcome:
        """An operator cancels an order on hold (only one on hold: this is not the general cancel)."""
        progress = await repository.lock_progress(conn, order_id)
        if progress is None:
            return HoldOutcome("unknown")
        if progress.status != "on_hold":
            return HoldOutcome("refused", order_id, progress.status, (f"the order is not on hold ({progress.status})",))
        outcome = await self.cancel(conn, order_id, None, reason, by, cause=None)
        return HoldOutcome("cancelled", order_id, outcome.status)

    async def expire_holds(self, conn: Conn, at: datetime, limit: int = 200) -> int:
        """Cancel the orders whose holds are past their time limit, telling their customers; returns how many."""
        limits = {hold: self.risk_rules.time_limit(hold) for hold in risk.HOLD_TYPES}
        overdue = await repository.overdue_holds(conn, holds.overdue_since(limits, at), limit)
        for order_id, late in overdue.items():
            progress = await repository.lock_progress(conn, order_id)
            assert progress is not None and progress.status == "on_hold", "overdue_holds locked it on hold"
            reason = holds.expiry_reason(limits, late)
            await self._cancel_from_hold(conn, order_id, progress, reason, "time limit", None, expired=late)
            log.info("order %s cancelled: its %s hold(s) passed their time limit", order_id, ", ".join(late))
        return len(overdue)

    async def _cancel_from_hold(
        self,
        conn: Conn,
        order_id: UUID,
        progress: lifecycle.Progress,
        reason: str,
        by: str,
        cause: EnvelopeHead | None,
        expired: Sequence[ev.HoldType] | None,
    ) -> None:
        """Cancelled while on hold: nothing was allocated, so nothing is asked of allocation or fulfillment; its holds
        end, and the customer is told (HeldOrderCancelled names them: the order was never announced)."""
        at = now()
        ended = await repository.held(conn, order_id)
        await repository.end_holds(conn, order_id, ended, "cancelled" if expired is None else "expired", by, None, at)
        order, _ = await repository.order_facts(conn, order_id)
        cancelled = ev.HeldOrderCancelled(
            order_id=order_id,
            channel=order.channel,
            external_id=order.external_id,
            customer=order.customer,
            reason=reason,
            expired=expired is not None,
            holds=ended,
        )
        event = wrap(cancelled, order_id=order_id, cause=cause, occurred_at=at)
        if expired is None:  # a request someone made: a repeat of it is recognised
            fingerprint = cancellation.fingerprint(None)
            await repository.add_cancel_request(conn, order_id, fingerprint, event.event_id, None, reason, by, at)
            await repository.resolve_request(conn, order_id, event.event_id, "accepted", "cancelled while on hold")
        detail = f"{reason} (on hold: {', '.join(ended)}; nothing was allocated, so nothing to release)"
        after = replace(progress, status="cancelled", cancelled=dict(progress.ordered))
        await repository.record(conn, order_id, after, Step("cancelled", detail, "cancelled"), at)
        await enqueue(conn, [(topics.ORDER_HOLDS, str(order_id), event)])
        if order.customer.account is not None and "credit" not in ended:  # it counted in its account's exposure
            await self.review_credit(conn, [order.customer.account])
        count(metrics.ORDERS_STATUS.labels("cancelled"))
        metrics.count_holds(ended, "cancelled" if expired is None else "expired")

    def routes(self) -> Routes:
        return {
            ev.SubmittedOrder: self.on_order_submitted,
            ev.CancelRequested: self.on_cancel_requested,
            ev.ProductUpserted: catalogue.on_product_upserted,
            **dict.fromkeys(lifecycle.STEPS, self.on_lifecycle_event),
            **dict.fromkeys(returns.FOLLOWED, self.on_return_event),
            ev.ExchangeRequested: self.on_exchange_requested,
            ev.PaymentReceived: self.on_payment_received,
            ev.ChangeRequested: self.changes.on_change_requested,
            **dict.fromkeys(change_handlers.FOLLOWED, self.changes.on_change_decided),
            **dict.fromkeys(change_handlers.REFUNDS, self.changes.on_change_refund),
        }


def held_order(
    order_id: UUID, order: ev.SubmittedOrder, on_hold: Mapping[ev.HoldType, str], assessment: risk.Assessment
) -> ev.OrderHeld:
    return ev.OrderHeld(
        order_id=order_id,
        channel=order.channel,
        external_id=order.external_id,
        holds=[ev.HoldPlaced(hold_type=hold, reason=reason) for hold, reason in on_hold.items()],
        score=assessment.score,
        level=assessment.level,
        recommendation=assessment.recommendation,
    )


def decision(
    order_id: UUID, order: ev.SubmittedOrder, total: Decimal, reasons: Sequence[str], received_at: datetime
) -> ev.Contract:
    if reasons:
        return ev.OrderRejected(
            order_id=order_id,
            channel=order.channel,
            external_id=order.external_id,
            reasons=[str(reason) for reason in reasons],
            customer=order.customer,
        )
    return ev.OrderValidated(
        order_id=order_id,
        channel=order.channel,
        external_id=order.external_id,
        received_at=received_at,
        currency=order.currency,
        total=total,
        customer=order.customer,
        ship_to=order.shipping_address,
        service_level=order.service_level,
        lines=domain.items_to_reserve(order),
        backorder_policy=order.backorder_policy,
        original_order_id=order.original_order_id,
        prices=[
            ev.PricedLine(sku=line.sku, quantity=line.quantity, unit_price=line.unit_price) for line in order.lines
        ],
        shipping_price=order.shipping_price,
        paid=order.payment.amount,
    )
