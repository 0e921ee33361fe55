"""A sales channel's side of the OMS: orders and cancellation requests in.

    async with ChannelAdapter(Connection.from_env(), channel="webshop") as adapter:
        await adapter.submit(order)

An order is keyed `<channel>:<external_id>`, so every record about one order lands on one partition in the
order sent; sending the same order again is harmless (the OMS takes each external id once per channel). The
publish returns once every in-sync replica has the record."""

from __future__ import annotations

from types import TracebackType

from oms_kit.connection import Connection
from shared.contracts.events import CancelRequested, SubmittedOrder
from shared.contracts.topics import CANCEL_REQUESTS, ORDERS_SUBMITTED


class ChannelAdapter:
    def __init__(self, connection: Connection, *, channel: str) -> None:
        self.channel = channel
        self.broker = connection.broker()
        self._orders = self.broker.publisher(
            ORDERS_SUBMITTED.name, schema=SubmittedOrder, title="orders", description=ORDERS_SUBMITTED.description
        )
        self._cancels = self.broker.publisher(
            CANCEL_REQUESTS.name,
            schema=CancelRequested,
            title="cancel requests",
            description=CANCEL_REQUESTS.description,
        )

    async def submit(self, order: SubmittedOrder) -> None:
        await self._orders.publish(order.model_dump(mode="json", exclude_none=True), key=self._key(order))

    async def request_cancellation(self, request: CancelRequested) -> None:
        await self._cancels.publish(request.model_dump(mode="json", exclude_none=True), key=self._key(request))

    def _key(self, about: SubmittedOrder | CancelRequested) -> bytes:
        if about.channel != self.channel:
            raise ValueError(f"this adapter speaks for channel {self.channel}, not {about.channel}")
        return f"{about.channel}:{about.external_id}".encode()

    async def start(self) -> None:
        await self.broker.connect()

    async def stop(self) -> None:
        await self.broker.stop()

    async def __aenter__(self) -> ChannelAdapter:
        await self.start()
        return self

    async def __aexit__(self, *_: type[BaseException] | BaseException | TracebackType | None) -> None:
        await self.stop()
