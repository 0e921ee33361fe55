"""Notifications' handlers: remember whom to tell and what still waits for stock, and record one message per
(order, kind, shipment). Nothing is rendered here: the planning renders each message once its recipient is known,
outside any transaction (woken by the messages' insert)."""

from __future__ import annotations

from shared.backbone.consumer import Routes
from shared.backbone.db import Conn
from shared.backbone.kafka import Inbound
from shared.contracts import events as ev

from . import domain, repository


class NotificationHandlers:
    async def on_lifecycle_event(self, conn: Conn, msgs: list[Inbound[ev.Contract]]) -> None:
        """The whole batch with one statement per table."""
        payloads = [msg.payload for msg in msgs]
        await repository.save_contacts(
            conn, [p for p in payloads if isinstance(p, ev.OrderValidated | ev.OrderRejected | ev.HeldOrderCancelled)]
        )
        backordered = await repository.backordered(conn, domain.orders_of(payloads))
        changed, intents = domain.messages_for(payloads, backordered)
        await repository.save_backordered(conn, changed)
        await repository.add_messages(conn, intents)

    def routes(self) -> Routes:
        return dict.fromkeys(domain.FOLLOWED, self.on_lifecycle_event)
