"""A request written to a connection the broker has closed fails as a broken connection, on any event loop.

aiokafka catches OSError around writing a request, which is what asyncio's transports give. uvloop's transports
raise RuntimeError instead ("unable to perform operation on <TCPTransport closed=True ...>; the handler is
closed"), which aiokafka does not expect (aiokafka issue 1038): in the chaos run it ended the consumer group
coordination of the warehouse simulator after a broker kill, and the simulator read no pick task again. The
services and the simulator run on uvloop.

`guard_closed_connections` makes that write fail as aiokafka's own broken connection does: the connection is
closed and a KafkaConnectionError raised, which aiokafka retries after reconnecting. To drop once aiokafka catches
it itself.
"""

from __future__ import annotations

from typing import Any

from aiokafka import errors
from aiokafka.conn import AIOKafkaConnection, CloseReason

_GUARDED = "_oms_closed_connections_guarded"


def closed(connection: AIOKafkaConnection) -> bool:
    """Whether the connection's transport is closed or closing (a write to it cannot go out)."""
    writer = connection._writer
    try:
        return writer is not None and writer.transport.is_closing()
    except RuntimeError:  # a transport that refuses even to say so is closed too
        return True


def guard_closed_connections() -> None:
    """Apply once per process, before any client starts; later calls do nothing."""
    if getattr(AIOKafkaConnection, _GUARDED, False):
        return
    send = AIOKafkaConnection.send

    def send_guarded(self: AIOKafkaConnection, request: Any, expect_response: bool = True) -> Any:
        try:
            return send(self, request, expect_response)
        except RuntimeError as exc:
            if not closed(self):
                raise
            self.close(reason=CloseReason.CONNECTION_BROKEN)
            raise errors.KafkaConnectionError(f"Connection at {self.host}:{self.port} broken: {exc}") from exc

    AIOKafkaConnection.send = send_guarded
    setattr(AIOKafkaConnection, _GUARDED, True)
