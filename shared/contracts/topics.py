"""The topic registry: every topic, the payloads it carries, its single writer and its readers.

Topics written by outside parties carry the bare contract JSON; topics the services write carry the
envelope (shared.envelope) around the payload.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Annotated, Any, Union

from pydantic import Field, TypeAdapter

from shared.contracts import events as ev

# The services of the pipeline; any other writer or reader named below is an outside party.
SERVICES = ("capture", "allocation", "fulfillment", "notifications", "returns", "kpis")


@dataclass(frozen=True)
class Topic:
    name: str
    payloads: tuple[type[ev.Contract], ...]
    writer: str
    description: str
    readers: tuple[str, ...] = ()
    partitions: int = 6
    # How long the broker keeps its records (milliseconds); None: the cluster's default.
    retention_ms: int | None = None
    # An outside party's topic carrying several contracts: the field whose value says which one a record is.
    discriminator: str | None = None

    @property
    def config(self) -> dict[str, str]:
        """The topic's own settings for the broker, beside the cluster's."""
        return {} if self.retention_ms is None else {"retention.ms": str(self.retention_ms)}

    @property
    def external(self) -> bool:
        """Written outside the services: bare contract JSON rather than an envelope."""
        return self.writer not in SERVICES

    @cached_property
    def _bare(self) -> TypeAdapter[Any]:
        if len(self.payloads) == 1:
            return TypeAdapter(self.payloads[0])
        if self.discriminator is None:
            raise ValueError(f"{self.name} carries several contracts: name the field that tells them apart")
        return TypeAdapter(Annotated[Union[self.payloads], Field(discriminator=self.discriminator)])  # type: ignore[arg-type]  # noqa: UP007

    def parse_bare(self, document: Any) -> ev.Contract:
        """The contract a bare record of an outside party holds (raises ValidationError with the reasons)."""
        return self._bare.validate_python(document)  # type: ignore[no-any-return]

    def parse_bare_json(self, value: bytes) -> ev.Contract:
        """The same from the record's bytes, parsed and validated in one pass."""
        return self._bare.validate_json(value)  # type: ignore[no-any-return]


ORDERS_SUBMITTED = Topic(
    "oms.orders.submitted",
    (ev.SubmittedOrder,),
    "channel adapters",
    "Orders from channel adapters, key `<channel>:<external_id>`.",
    readers=("capture",),
)
CANCEL_REQUESTS = Topic(
    "oms.orders.cancel-requests",
    (ev.CancelRequested,),
    "channel adapters",
    "Cancel requests from channels, key `<channel>:<external_id>`.",
    readers=("capture",),
)
CHANGE_REQUESTS = Topic(
    "oms.orders.change-requests",
    (ev.ChangeRequested,),
    "channel adapters",
    "Order changes from channels (address, service level, lines), key `<channel>:<external_id>`.",
    readers=("capture",),
)
CATALOG_PRODUCTS = Topic(
    "oms.catalog.products",
    (ev.ProductUpserted,),
    "catalogue",
    "Product upserts, key sku.",
    readers=("capture", "allocation", "returns", "kpis"),
)
INVENTORY_ADJUSTMENTS = Topic(
    "oms.inventory.adjustments",
    (ev.InventoryAdjusted,),
    "warehouses",
    "Receipts and stock counts, key `<warehouse_id>:<sku>`.",
    readers=("allocation",),
)
WAREHOUSE_EVENTS = Topic(
    "oms.warehouse.events",
    (ev.WarehouseReported, ev.WarehouseReturnReceived),
    "warehouses",
    "Picked, packed and short-picked reports, and return parcels received (`kind` tells them apart).",
    readers=("fulfillment", "returns"),
    discriminator="kind",
)
CARRIER_EVENTS = Topic(
    "oms.carrier.events",
    (ev.CarrierReported,),
    "carriers",
    "Tracking updates, key tracking number.",
    readers=("fulfillment",),
)
RETURN_REQUESTS = Topic(
    "oms.returns.requests",
    (ev.ReturnRequested,),
    "channel adapters",
    "Return requests from channels, key `<channel>:<external_id>`.",
    readers=("returns",),
)
ORDERS_VALIDATED = Topic(
    "oms.orders.validated",
    (ev.OrderValidated,),
    "capture",
    "Orders that passed validation, key order id.",
    readers=("allocation", "notifications", "returns", "kpis"),
)
ORDERS_REJECTED = Topic(
    "oms.orders.rejected",
    (ev.OrderRejected,),
    "capture",
    "Orders refused with their reasons, key order id.",
    readers=("notifications", "kpis"),
)
ORDER_HOLDS = Topic(
    "oms.orders.holds",
    (ev.OrderHeld, ev.HoldReleased, ev.HeldOrderCancelled),
    "capture",
    "Orders the risk assessment put on hold, holds released, and orders cancelled while on hold, key order id.",
    readers=("notifications", "channel adapters", "kpis"),
)
ORDER_CANCELLATIONS = Topic(
    "oms.orders.cancellations",
    (ev.OrderCancellationRequested,),
    "capture",
    "Cancellations capture accepted for orders not yet shipped, key order id.",
    readers=("fulfillment",),
)
ORDER_CHANGES = Topic(
    "oms.orders.changes",
    (ev.OrderChangeRequested, ev.OrderChangeApplied),
    "capture",
    "Order changes capture accepted (and whose payment covers them), and each once applied with the order's lines and"
    " prices from then on and what is due back, key order id.",
    readers=("fulfillment", "returns", "kpis"),
)
ALLOCATION_EVENTS = Topic(
    "oms.allocation.events",
    (
        ev.OrderAllocated,
        ev.OrderBackordered,
        ev.OrderUnfulfillable,
        ev.OrderCancelled,
        ev.WithdrawalRequested,
        ev.StockCountShort,
        ev.OrderChanged,
    ),
    "allocation",
    "Reservations, backorders, releases, withdrawals asked of fulfillment, stock count discrepancies and order"
    " changes applied, key order id (or warehouse:sku).",
    readers=("capture", "fulfillment", "notifications", "kpis"),
)
REPLENISHMENT_SUGGESTIONS = Topic(
    "oms.replenishment.suggestions",
    (ev.ReplenishmentSuggested,),
    "allocation",
    "Draft purchase orders for purchasing when a SKU's forecast stock at a warehouse falls below its reorder rule's"
    " minimum, one open per warehouse and SKU, key `<warehouse_id>:<sku>`.",
    readers=("purchasing",),
)
PICK_TASKS = Topic(
    "oms.warehouse.pick-tasks",
    (ev.PickTaskReleased, ev.PickTaskCancelled),
    "fulfillment",
    "One pick task per shipment and its withdrawal, key warehouse id.",
    readers=("capture", "warehouses"),
)
FULFILLMENT_EVENTS = Topic(
    "oms.fulfillment.events",
    (
        ev.OrderShipped,
        ev.OrderDelivered,
        ev.DeliveryException,
        ev.ShortPickReported,
        ev.CancellationAccepted,
        ev.CancellationRefused,
        ev.DropshipDeclined,
        ev.OrderChangeAccepted,
        ev.OrderChangeRefused,
    ),
    "fulfillment",
    "Shipments, deliveries, delivery exceptions, short picks, cancellation and order change outcomes, and dropship"
    " lines a supplier will not ship, key order id.",
    readers=("capture", "allocation", "notifications", "carriers", "returns", "kpis"),
)
PURCHASE_ORDERS = Topic(
    "oms.dropship.purchase-orders",
    (ev.PurchaseOrderIssued, ev.PurchaseOrderCancelled),
    "fulfillment",
    "Purchase orders for dropship suppliers (one per order and supplier, with the end customer's address, a ship-by"
    " date and a packing slip without prices) and their cancellation after no answer in time, key supplier id.",
    readers=("suppliers",),
)
SUPPLIER_REPORTS = Topic(
    "oms.dropship.supplier-reports",
    (ev.SupplierReported,),
    "suppliers",
    "Dropship suppliers' answers to purchase orders: acknowledged, rejected, partially accepted, shipped with carrier"
    " and tracking number, key purchase order id.",
    readers=("fulfillment",),
)
RETURN_EVENTS = Topic(
    "oms.returns.events",
    (
        ev.ReturnAuthorised,
        ev.ReturnUnderReview,
        ev.ReturnRejected,
        ev.ReturnReceived,
        ev.ReturnClosed,
        ev.ReturnRefunded,
        ev.RefundAbandoned,
        ev.ExchangeRequested,
        ev.ExchangeChargeFailed,
        ev.ChangeRefunded,
        ev.ChangeRefundAbandoned,
    ),
    "returns",
    "Return decisions (authorised with RMA and label, under review, rejected), receipts with their dispositions,"
    " RMAs closed unfinished, refunds paid or abandoned (of returns and of order changes that lowered the total),"
    " exchange orders asked of capture or given up when their difference could not be charged, key order id.",
    readers=("capture", "allocation", "notifications", "channel adapters", "warehouses", "kpis"),
)
REFUND_REQUESTS = Topic(
    "oms.payments.refund-requests",
    (ev.RefundRequested,),
    "returns",
    "Refunds asked of the payment provider, each with its idempotency key, key order id.",
    readers=("payment provider",),
)
REFUND_RESULTS = Topic(
    "oms.payments.refund-results",
    (ev.RefundSucceeded, ev.RefundFailed),
    "payment provider",
    "The payment provider's answers to refund requests (`outcome` tells them apart), key idempotency key.",
    readers=("returns",),
    discriminator="outcome",
)
CHARGE_REQUESTS = Topic(
    "oms.payments.charge-requests",
    (ev.ChargeRequested,),
    "returns",
    "Charges asked of the payment provider (a dearer exchange's difference), each with its idempotency key, key"
    " order id.",
    readers=("payment provider",),
)
CHARGE_RESULTS = Topic(
    "oms.payments.charge-results",
    (ev.ChargeSucceeded, ev.ChargeFailed),
    "payment provider",
    "The payment provider's answers to charge requests (`outcome` tells them apart), key idempotency key.",
    readers=("returns",),
    discriminator="outcome",
)
PAYMENTS_RECEIVED = Topic(
    "oms.payments.received",
    (ev.PaymentReceived,),
    "payment provider",
    "Payments received for orders after they were placed (invoices paid on a business account), key"
    " `<channel>:<external_id>`.",
    readers=("capture",),
)

BUSINESS_TOPICS = (
    ORDERS_SUBMITTED,
    CANCEL_REQUESTS,
    CHANGE_REQUESTS,
    RETURN_REQUESTS,
    CATALOG_PRODUCTS,
    INVENTORY_ADJUSTMENTS,
    WAREHOUSE_EVENTS,
    CARRIER_EVENTS,
    ORDERS_VALIDATED,
    ORDERS_REJECTED,
    ORDER_HOLDS,
    ORDER_CANCELLATIONS,
    ORDER_CHANGES,
    ALLOCATION_EVENTS,
    REPLENISHMENT_SUGGESTIONS,
    PICK_TASKS,
    FULFILLMENT_EVENTS,
    PURCHASE_ORDERS,
    SUPPLIER_REPORTS,
    RETURN_EVENTS,
    REFUND_REQUESTS,
    REFUND_RESULTS,
    CHARGE_REQUESTS,
    CHARGE_RESULTS,
    PAYMENTS_RECEIVED,
)


def dead_letter_topic(service: str) -> str:
    """Each service writes its own dead-letter topic; the origin topic is in the record's headers."""
    return f"oms.dead-letter.{service}"


DEAD_LETTER_TOPICS = tuple(
    Topic(dead_letter_topic(s), (), s, f"Messages {s} could not process, with reason and origin.", partitions=3)
    for s in SERVICES
)
# The order path's backlog as capture measures it, twice a second. Read by every service's watch of the order path,
# with no consumer group (kafka_access.watching_the_order_path): not a business event, never in the outbox; a report
# is stale a second later, so the topic keeps an hour of them.
INTAKE_QUEUE = Topic(
    "oms.order-path.intake-queue",
    (ev.IntakeQueueMeasured,),
    "capture",
    "The order path's backlog as each capture instance measured it, with the orders waiting at its HTTP intake; key "
    "the instance.",
    partitions=1,
    retention_ms=3_600_000,
)
TOPICS = BUSINESS_TOPICS + DEAD_LETTER_TOPICS + (INTAKE_QUEUE,)
BY_NAME = {t.name: t for t in TOPICS}


# What each service reads on an order's way from intake to its pick task. Its consumer of this topic keeps to the
# order path's pacing; what else it reads (status reports, cancellations, payments, returns) no pick task waits
# for, and another consumer in the same group follows it in larger batches (shared/backbone/runtime.py).
ORDER_PATH: dict[str, Topic] = {
    "capture": ORDERS_SUBMITTED,
    "allocation": ORDERS_VALIDATED,
    "fulfillment": ALLOCATION_EVENTS,
}


# Reports of what already happened to an order further down its way, one or more for every order: at a peak they
# come at the intake's rate. A service on the order path reads them off it, and they can wait while the path is
# behind (shared/backbone/peak.py); commands (cancellations, changes), stock, the catalogue, payments and returns
# it reads as they come.
REPORTS = frozenset({ALLOCATION_EVENTS, PICK_TASKS, FULFILLMENT_EVENTS, WAREHOUSE_EVENTS, CARRIER_EVENTS})


def waits_at_a_peak(reader: str, topic: Topic) -> bool:
    """Whether the reader's follow-up consumer pauses the topic while the order path is behind: the reports above
    for the services on the path, everything for those that only follow orders (mail, returns, KPIs)."""
    if reader not in ORDER_PATH:
        return True
    return topic in REPORTS and topic != ORDER_PATH[reader]


def measures_the_order_path(service: str) -> bool:
    """Whether the service measures the order path's backlog for every watch of it: the writer of the reports."""
    return service == INTAKE_QUEUE.writer


def inputs(reader: str) -> tuple[Topic, ...]:
    return tuple(t for t in TOPICS if reader in t.readers)


def outputs(writer: str) -> tuple[Topic, ...]:
    return tuple(t for t in TOPICS if t.writer == writer)


CARRIER = {payload: topic for topic in TOPICS for payload in topic.payloads}


def topic_of(payload: type[ev.Contract]) -> Topic:
    """The one topic an event type travels on."""
    return CARRIER[payload]


def check_reads(reader: str, payloads: Iterable[type[ev.Contract]]) -> None:
    """Refuse to start a consumer of events on a topic the registry does not name this reader for: the registry
    is what the Kafka ACLs and the AsyncAPI document are derived from, so it must say who reads what."""
    unknown = sorted(p.__name__ for p in payloads if p not in CARRIER)
    if unknown:
        raise ValueError(f"{reader} handles {', '.join(unknown)}, which no topic in shared/contracts/topics.py carries")
    read = {t.name for t in inputs(reader)}
    undeclared = sorted({topic_of(p).name for p in payloads} - read)
    if undeclared:
        raise ValueError(
            f"{reader} consumes {', '.join(undeclared)}, which shared/contracts/topics.py does not list it reading"
        )
