"""Notifications' handlers: remember whom to tell and what still waits for stock, and record one message per
(order, kind, shipment). A message whose recipient is known is rendered here, in the same transaction, and its
deliveries are handed to this instance's dispatcher once that commits; the rest wait for their recipient."""

from __future__ import annotations

import time

from shared.backbone.aftercommit import after_commit
from shared.backbone.consumer import Routes
from shared.backbone.db import Conn
from shared.backbone.kafka import Inbound
from shared.contracts import events as ev

from . import domain, repository
from .dispatcher import Handoff
from .planning import Planner, Waiting


class NotificationHandlers:
    def __init__(self, planner: Planner, handoff: Handoff, lease_seconds: float) -> None:
        self.planner = planner
        self.handoff = handoff
        self.lease_seconds = lease_seconds

    async def on_lifecycle_event(self, conn: Conn, msgs: list[Inbound[ev.Contract]]) -> None:
        """The whole batch with one statement per table."""
        payloads = [msg.payload for msg in msgs]
        await repository.save_contacts(
            conn, [p for p in payloads if isinstance(p, ev.OrderValidated | ev.OrderRejected | ev.HeldOrderCancelled)]
        )
        backordered = await repository.backordered(conn, domain.orders_of(payloads))
        changed, intents = domain.messages_for(payloads, backordered)
        await repository.save_backordered(conn, changed)
        if not intents:
            return
        recipients = await repository.recipients(conn, (i.order_id for i in intents))
        await repository.add_messages(conn, [i for i in intents if i.order_id not in recipients])
        planned, unrenderable = self.planner.plan(
            Waiting((i.order_id, i.kind, i.shipment_key), i.facts, recipients[i.order_id])
            for i in intents
            if i.order_id in recipients
        )
        # Taken before the deliveries' lease starts, so this instance's bound on it ends no later than the lease.
        leased_until = time.monotonic() + self.lease_seconds
        leased = await repository.add_planned(conn, planned, unrenderable, self.lease_seconds)
        if leased:
            after_commit(lambda: self.handoff.give(leased, leased_until))

    def routes(self) -> Routes:
        return dict.fromkeys(domain.FOLLOWED, self.on_lifecycle_event)
