"""Capture's part of order changes: take a change in (HTTP or a channel's topic), decide it (services.capture.changes),
hold it until a higher total is paid, pass it on to fulfillment with the order's next version, and follow its outcome
(accepted by fulfillment, applied by allocation, or refused) into the order's record and timeline.

Every step locks the order's row first, as the cancellation does, so a change and the order's other events are
handled one after the other."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

from prometheus_client import Counter

from shared.backbone.db import Conn
from shared.backbone.kafka import Inbound
from shared.backbone.metrics import count
from shared.backbone.outbox import enqueue
from shared.contracts import events as ev
from shared.contracts import topics
from shared.contracts.backorders import describe, quantities
from shared.contracts.envelope import EnvelopeHead, now, wrap

from . import change_repository as store
from . import changes, domain, repository
from .domain import IntakeRules
from .lifecycle import Progress, Step

log = logging.getLogger(__name__)
ORDER_CHANGES = Counter(
    "oms_order_changes_total",
    "Order changes by what became of them: awaiting_payment, requested, refused or invalid at capture; accepted, "
    "refused (the warehouse had started) or applied after.",
    ["outcome"],
)
# The outcomes of a change that other services report, each followed here.
FOLLOWED = (ev.OrderChangeAccepted, ev.OrderChangeRefused, ev.OrderChanged)
# What became of the refund of a change's amount due back (returns asks the payment provider).
REFUNDS = (ev.ChangeRefunded, ev.ChangeRefundAbandoned)


@dataclass(frozen=True)
class ChangeOutcome:
    """`accepted` (its `state`: awaiting_payment or requested), `duplicate` (the same change made before), `refused`
    (409) or `invalid` (422) with `reasons`, `unknown` (no such order)."""

    verdict: Literal["accepted", "duplicate", "refused", "invalid", "unknown"]
    order_id: UUID | None = None
    status: str | None = None
    reasons: tuple[str, ...] = ()
    change: dict[str, Any] | None = None


@dataclass(frozen=True)
class Passed:
    """A change as it goes to fulfillment: the order after it, the units still to come and those fewer than before."""

    change_id: str
    version: int
    after: ev.SubmittedOrder
    lines: Mapping[str, int]
    reduced: Mapping[str, int]
    reroute: bool
    reason: str


class ChangeHandlers:
    def __init__(self, rules: IntakeRules) -> None:
        self.rules = rules

    async def change(
        self, conn: Conn, order_id: UUID, change: ev.OrderChange, source: str, cause: EnvelopeHead | None
    ) -> ChangeOutcome:
        progress = await repository.lock_progress(conn, order_id)
        if progress is None:
            return ChangeOutcome("unknown")
        fingerprint = changes.fingerprint(change)
        earlier = await store.find(conn, order_id, change.change_id)
        if earlier is not None:
            if earlier["fingerprint"] != fingerprint:
                reason = f"change id {change.change_id} was used for another change of this order"
                return ChangeOutcome("refused", order_id, progress.status, (reason,))
            return ChangeOutcome("duplicate", order_id, progress.status, change=earlier)
        if (busy := await store.under_way(conn, order_id)) is not None:
            reason = f"change {busy['change_id']} of this order is still under way ({busy['state']})"
            return ChangeOutcome("refused", order_id, progress.status, (reason,))
        order, _ = await repository.order_facts(conn, order_id)
        standing = await store.standing(conn, order_id)
        catalogue = await repository.catalogue(conn, (line.sku for line in change.lines or []))
        plan = changes.plan(progress, order, change, catalogue, self.rules, standing.paid)
        if not plan.goes_on or plan.after is None:
            count(ORDER_CHANGES.labels(plan.verdict))
            return ChangeOutcome(plan.verdict, order_id, progress.status, plan.reasons)  # type: ignore[arg-type]
        at = now()
        version = standing.version + 1
        state = "awaiting_payment" if plan.to_pay > 0 else "requested"
        await store.add(
            conn,
            order_id,
            change.change_id,
            fingerprint,
            version,
            state,
            source,
            change.reason,
            order,
            plan,
            standing.paid,
            at,
        )
        detail = _summary(change.change_id, version, order, plan, source)
        count(ORDER_CHANGES.labels(state))
        if state == "awaiting_payment":
            detail += f"; waits for a payment of {plan.to_pay} {order.currency}"
        else:
            passed = Passed(
                change.change_id, version, plan.after, plan.lines, plan.reduced, plan.reroute, change.reason
            )
            await self._pass_on(conn, order_id, passed, cause)
        await repository.record(conn, order_id, progress, Step("change_requested", detail, progress.status), at)
        return ChangeOutcome(
            "accepted", order_id, progress.status, plan.reasons, await store.find(conn, order_id, change.change_id)
        )

    async def _pass_on(self, conn: Conn, order_id: UUID, passed: Passed, cause: EnvelopeHead | None) -> None:
        """The change goes to fulfillment, which decides whether the pick tasks it touches may still be withdrawn."""
        at = now()
        requested = ev.OrderChangeRequested(
            order_id=order_id,
            change_id=passed.change_id,
            order_version=passed.version,
            ship_to=passed.after.shipping_address,
            service_level=passed.after.service_level,
            lines=_items(passed.lines),
            reduced=_items(passed.reduced),
            reroute=passed.reroute,
            reason=passed.reason,
            requested_at=at,
        )
        event = wrap(requested, order_id=order_id, cause=cause, occurred_at=at)
        await enqueue(conn, [(topics.ORDER_CHANGES, str(order_id), event)])

    async def on_change_requested(self, conn: Conn, msgs: list[Inbound[ev.ChangeRequested]]) -> None:
        """A channel's change: one for an order capture does not know is a dead letter (replayable once it has
        come); one capture cannot pass on is answered in the order's timeline."""
        for msg in msgs:
            request = msg.payload
            found = await repository.find_by_external_id(conn, request.channel, request.external_id)
            if found is None:
                raise LookupError(f"change {request.change_id} for an order capture does not know")
            order_id, _ = found
            change = ev.OrderChange.model_validate(request.model_dump(exclude={"channel", "external_id"}))
            outcome = await self.change(conn, order_id, change, request.channel, msg.envelope)
            if outcome.verdict in ("refused", "invalid"):
                progress = await repository.lock_progress(conn, order_id)
                assert progress is not None
                detail = f"change {request.change_id}: {'; '.join(outcome.reasons)}"
                await repository.record(
                    conn, order_id, progress, Step("change_refused", detail, progress.status), now()
                )

    async def on_payment(self, conn: Conn, order_id: UUID, cause: EnvelopeHead) -> None:
        """A payment came for the order: the change waiting for it goes on once what was paid covers it."""
        waiting = await store.under_way(conn, order_id)
        if waiting is None or waiting["state"] != "awaiting_payment":
            return
        standing = await store.standing(conn, order_id)
        if standing.paid < waiting["paid_before"] + waiting["to_pay"]:
            return
        after = ev.SubmittedOrder.model_validate(waiting["after"])
        await store.set_state(conn, order_id, waiting["change_id"], "requested", None)
        passed = Passed(
            waiting["change_id"],
            waiting["version"],
            after,
            waiting["lines"],
            waiting["reduced"],
            waiting["reroute"],
            waiting["reason"],
        )
        await self._pass_on(conn, order_id, passed, cause)
        count(ORDER_CHANGES.labels("requested"))
        progress = await repository.lock_progress(conn, order_id)
        assert progress is not None
        detail = f"change {waiting['change_id']}: paid ({standing.paid} {after.currency}), passed on"
        await repository.record(conn, order_id, progress, Step("change_paid", detail, progress.status), now())

    async def on_change_decided(self, conn: Conn, msgs: list[Inbound[Any]]) -> None:
        """Fulfillment accepted (the order takes the change: document, lines, total, version) or refused it; then
        allocation applied it (what waits for stock). Each in the timeline, with its reason."""
        for msg in msgs:
            outcome = msg.payload
            progress = await repository.lock_progress(conn, outcome.order_id)
            if progress is None:
                raise LookupError(f"{msg.envelope.type} for an order capture does not know")
            found = await store.find(conn, outcome.order_id, outcome.change_id)
            if found is None:
                raise LookupError(f"{msg.envelope.type} for change {outcome.change_id} capture does not know")
            await self._follow(conn, outcome, found, progress, msg.envelope)

    async def on_change_refund(self, conn: Conn, msgs: list[Inbound[Any]]) -> None:
        """The refund of what a change made due back, paid or abandoned: on the change, in the timeline, and (paid)
        in the order's refunded amount."""
        for msg in msgs:
            settled = msg.payload
            progress = await repository.lock_progress(conn, settled.order_id)
            if progress is None:
                raise LookupError(f"{msg.envelope.type} for an order capture does not know")
            amount = f"{settled.amount:.2f} {settled.currency}"
            if isinstance(settled, ev.ChangeRefunded):
                state, note, name, detail = "refunded", settled.provider_reference, "refunded", amount
            else:
                state, note, name, detail = "abandoned", settled.reason, "refund_failed", f"{amount}: {settled.reason}"
            if not await store.record_refund(conn, settled.order_id, settled.change_id, state, settled.amount, note):
                continue  # answered before
            if isinstance(settled, ev.ChangeRefunded):
                await repository.record_refund(conn, settled, msg.envelope.occurred_at)
            step = Step(name, f"change {settled.change_id}: {detail}", progress.status)
            await repository.record(conn, settled.order_id, progress, step, msg.envelope.occurred_at)

    async def _follow(
        self, conn: Conn, outcome: Any, found: dict[str, Any], progress: Progress, envelope: EnvelopeHead
    ) -> None:
        order_id, change_id = outcome.order_id, outcome.change_id
        match outcome:
            case ev.OrderChangeRefused(reason=reason):
                if found["state"] != "requested":
                    return  # answered before
                await store.set_state(conn, order_id, change_id, "refused", reason)
                count(ORDER_CHANGES.labels("refused"))
                step = Step("change_refused", f"change {change_id}: {reason}", progress.status)
            case ev.OrderChangeAccepted(withdrawn_shipments=withdrawn):
                if found["state"] != "requested":
                    return  # accepted before: a later withdrawal of an older version's shipment
                progress = await self._accept(conn, order_id, found, progress)
                detail = f"change {change_id}: accepted, {len(withdrawn)} pick task(s) withdrawn to be re-issued"
                step = Step("change_accepted", detail, progress.status)
            case ev.OrderChanged():
                if found["state"] == "applied":
                    return
                if found["state"] == "requested":
                    # Allocation's word overtook fulfillment's acceptance (they come on different topics): the change
                    # was accepted, and the order takes it now; the acceptance, when it comes, finds it applied.
                    progress = await self._accept(conn, order_id, found, progress)
                await store.set_state(conn, order_id, change_id, "applied", outcome.reason)
                count(ORDER_CHANGES.labels("applied"))
                if outcome.refused:
                    progress = await self._without_refused(conn, order_id, found, outcome, progress)
                progress = Progress(
                    progress.status,
                    progress.ordered,
                    quantities(outcome.backordered),
                    progress.cancelled,
                    progress.shipped,
                    progress.received_at,
                    progress.parcels_delivered,
                )
                step = Step("changed", _applied(found, outcome), progress.status)
                await self._announce_applied(conn, order_id, change_id, envelope)
            case _:
                raise TypeError(f"not a change outcome: {type(outcome).__name__}")
        await repository.record(conn, order_id, progress, step, envelope.occurred_at)

    async def _accept(self, conn: Conn, order_id: UUID, found: dict[str, Any], progress: Progress) -> Progress:
        """The order takes the accepted change: its document, total and version; returns its progress so."""
        change_id = found["change_id"]
        after = ev.SubmittedOrder.model_validate(found["after"])
        await store.set_state(conn, order_id, change_id, "accepted", None)
        count(ORDER_CHANGES.labels("accepted"))
        await store.apply(conn, order_id, found["version"], after, Decimal(found["total_after"]))
        return _reordered(progress, after)

    async def _announce_applied(self, conn: Conn, order_id: UUID, change_id: str, cause: EnvelopeHead) -> None:
        """The change as applied goes to returns, which refunds what is due back and prices later returns from the
        order's lines as the change left them."""
        found = await store.find(conn, order_id, change_id)
        assert found is not None, "the caller found this change"
        after = ev.SubmittedOrder.model_validate(found["after"])
        applied = ev.OrderChangeApplied(
            order_id=order_id,
            change_id=change_id,
            order_version=found["version"],
            currency=after.currency,
            lines=[
                ev.PricedLine(sku=line.sku, quantity=line.quantity, unit_price=line.unit_price) for line in after.lines
            ],
            shipping_price=after.shipping_price,
            total=found["total_after"],
            paid=(await store.standing(conn, order_id)).paid,
            due_back=found["due_back"],
        )
        event = wrap(applied, order_id=order_id, cause=cause, occurred_at=now())
        await enqueue(conn, [(topics.ORDER_CHANGES, str(order_id), event)])

    async def _without_refused(
        self, conn: Conn, order_id: UUID, found: dict[str, Any], changed: ev.OrderChanged, progress: Progress
    ) -> Progress:
        """Units the change added that allocation refused (the order does not wait for stock) leave the order again:
        its lines and total are as without them, and what was paid for them is due back."""
        after = ev.SubmittedOrder.model_validate(found["after"])
        refused = quantities(changed.refused)
        lines = [
            line.model_copy(update={"quantity": line.quantity - refused.get(line.sku, 0)})
            for line in after.lines
            if line.quantity > refused.get(line.sku, 0)
        ]
        kept = after.model_copy(update={"lines": lines})
        total = domain.order_total(kept)
        await store.apply(conn, order_id, found["version"], kept, total)
        await store.settle(conn, order_id, found["change_id"], kept, total)
        return _reordered(progress, kept)


def _reordered(progress: Progress, after: ev.SubmittedOrder) -> Progress:
    return Progress(
        progress.status,
        quantities(after.lines),
        progress.backordered,
        progress.cancelled,
        progress.shipped,
        progress.received_at,
        progress.parcels_delivered,
    )


def _items(lines: Mapping[str, int]) -> list[ev.ItemQuantity]:
    return [ev.ItemQuantity(sku=sku, quantity=n) for sku, n in sorted(lines.items()) if n > 0]


def _summary(change_id: str, version: int, before: ev.SubmittedOrder, plan: changes.Plan, source: str) -> str:
    """Before and after, in words the timeline can carry (the address by its city and country only)."""
    assert plan.after is not None
    after = plan.after
    parts = [f"change {change_id} (via {source}, version {version})"]
    if after.shipping_address != before.shipping_address:
        parts.append(f"ship to {_place(before.shipping_address)} -> {_place(after.shipping_address)}")
    if after.service_level != before.service_level:
        parts.append(f"service level {before.service_level} -> {after.service_level}")
    old, new = quantities(before.lines), quantities(after.lines)
    if old != new:
        parts.append(f"lines {describe(old)} -> {describe(new)}")
    parts.append(f"total {plan.total_before} -> {plan.total_after} {before.currency}")
    if plan.due_back:
        parts.append(f"{plan.due_back} {before.currency} due back")
    return "; ".join([*parts, *plan.reasons])


def _applied(found: dict[str, Any], changed: ev.OrderChanged) -> str:
    parts = [f"change {found['change_id']} applied (version {changed.order_version})", changed.reason]
    if changed.backordered:
        parts.append(f"waiting for stock: {describe(quantities(changed.backordered))}")
    if changed.refused:
        parts.append(f"not added (the order does not wait for stock): {describe(quantities(changed.refused))}")
    return "; ".join(parts)


def _place(address: ev.Address) -> str:
    return f"{address.city}, {address.country}"
