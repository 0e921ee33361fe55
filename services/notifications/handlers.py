"""Notifications' handlers: remember whom to tell and what still waits for stock, and record one message
per (order, kind, shipment) for the dispatcher to send."""

from __future__ import annotations

from shared.backbone.consumer import Routes
from shared.backbone.db import Conn
from shared.backbone.kafka import Inbound
from shared.contracts import events as ev
from shared.contracts.backorders import backordered_after

from . import domain, repository


class NotificationHandlers:
    async def on_lifecycle_event(self, conn: Conn, msgs: list[Inbound[ev.Contract]]) -> None:
        for msg in msgs:
            await self._lifecycle_event(conn, msg)

    async def _lifecycle_event(self, conn: Conn, msg: Inbound[ev.Contract]) -> None:
        payload = msg.payload
        if isinstance(payload, ev.OrderValidated | ev.OrderRejected | ev.HeldOrderCancelled):
            await repository.save_contact(conn, payload)
        order_id = getattr(payload, "order_id", None)
        if order_id is None:
            return  # stock counts and the like concern no customer
        backordered = await repository.backordered(conn, order_id)
        changed = backordered_after(backordered, payload)
        if changed is not None:
            backordered = changed
            await repository.save_backordered(conn, order_id, backordered)
        intent = domain.intent_for(payload, backordered)
        if intent is not None:
            await repository.add_message(conn, intent)

    def routes(self) -> Routes:
        return dict.fromkeys(domain.FOLLOWED, self.on_lifecycle_event)
