"""The integrators' kit: what a channel adapter or a warehouse needs to work with the OMS over Kafka, built on
FastStream with the settings that neither lose nor loop (see docs/kit.md).

- `Connection`: where the brokers are and who you are (your SCRAM principal); makes a safely configured broker.
- `ChannelAdapter`: hands orders and cancellation requests in (keyed, idempotent producer, acks from every
  in-sync replica).
- `WarehouseWorker`: receives pick tasks and their withdrawals, and reports picked, short picked and packed (and
  return parcels received), committing a record only after your handler has taken it.
- The contract models, as the services validate them.
"""

from oms_kit.channel import ChannelAdapter
from oms_kit.connection import Connection
from oms_kit.deadletters import DeadLetter, DeadLetterFile, DeadLetters
from oms_kit.warehouse import WarehouseWorker
from shared.contracts.events import (
    Address,
    CancelRequested,
    ItemQuantity,
    PickTaskCancelled,
    PickTaskReleased,
    ReturnAuthorised,
    SubmittedOrder,
    WarehouseReported,
    WarehouseReturnReceived,
)

__all__ = [
    "Address",
    "CancelRequested",
    "ChannelAdapter",
    "Connection",
    "DeadLetter",
    "DeadLetterFile",
    "DeadLetters",
    "ItemQuantity",
    "PickTaskCancelled",
    "PickTaskReleased",
    "ReturnAuthorised",
    "SubmittedOrder",
    "WarehouseReported",
    "WarehouseReturnReceived",
    "WarehouseWorker",
]
