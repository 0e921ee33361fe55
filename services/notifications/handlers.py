"""Notifications' handlers: remember whom to tell, and record one message per (order, kind)."""

from __future__ import annotations

from shared import events as ev
from shared import topics
from shared.consumer import Handler
from shared.db import Conn
from shared.kafka import Inbound

from . import domain, repository


class NotificationHandlers:
    async def on_lifecycle_event(self, conn: Conn, msg: Inbound) -> None:
        payload = msg.payload
        if isinstance(payload, ev.OrderValidated | ev.OrderRejected):
            await repository.save_contact(conn, payload.order_id, payload.customer)
        intent = domain.intent_for(payload)
        if intent is not None:
            await repository.add_message(conn, intent)

    def routes(self) -> dict[str, Handler]:
        return {
            topics.ORDERS_VALIDATED.name: self.on_lifecycle_event,
            topics.ORDERS_REJECTED.name: self.on_lifecycle_event,
            topics.FULFILLMENT_EVENTS.name: self.on_lifecycle_event,
        }
