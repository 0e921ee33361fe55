"""Versioned payload models: the JSON contracts with the outside and between the services.

Changes are additive; a breaking change is a new model with a new `version`. Money travels as decimal
strings, never as binary floats.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError, core_schema

# A decimal string from 0 to 10**9 with at most 4 decimal places: what a JSON client must send for money.
# A JSON number is refused (a binary float cannot hold 0.10 exactly), and so is anything else the
# published schema would not allow, so that the schema and the validation say the same.
MONEY_PATTERN = r"^([0-9]{1,9}(\.[0-9]{1,4})?|1000000000(\.0{1,4})?)$"
MONEY_MAX = 10**9


MONEY_FORM = 'money must be a decimal string such as "12.50", with at most 4 decimal places, from 0 to 1000000000'


def _amount_in_range(value: Decimal) -> Decimal:
    """An amount built in Python (not read from JSON), held to what the pattern allows a string."""
    if not value.is_finite() or value.as_tuple().exponent < -4 or not 0 <= value <= MONEY_MAX:  # type: ignore[operator]
        raise ValueError(MONEY_FORM)
    return value


class _MoneyValidation:
    """Money's validation inside pydantic's core: a string matching MONEY_PATTERN becomes a Decimal without a call
    into Python (the pattern alone bounds it: finite, at most 4 places, 0 to 10**9), as read from JSON or from
    a decoded envelope's payload; a Decimal built in Python is checked by `_amount_in_range`. Anything else (a
    JSON number, a float, an int) is refused with one message. Its validators in Python (a check before, one
    after, two bounds) were two thirds of the time to decode an order (docs/benchmarks/findings.md, round 25)."""

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        from_string = core_schema.chain_schema(
            [core_schema.str_schema(pattern=MONEY_PATTERN, strict=True), core_schema.decimal_schema()]
        )
        built = core_schema.no_info_after_validator_function(_amount_in_range, core_schema.is_instance_schema(Decimal))
        return core_schema.custom_error_schema(
            core_schema.json_or_python_schema(
                json_schema=from_string,
                python_schema=core_schema.union_schema([built, from_string], mode="left_to_right"),
                serialization=core_schema.to_string_ser_schema(when_used="json-unless-none"),
            ),
            custom_error_type="money",
            custom_error_message=MONEY_FORM,
        )


Money = Annotated[
    Decimal,
    _MoneyValidation(),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": MONEY_PATTERN,
            "description": f"decimal string, 0..{MONEY_MAX:,}",
            "examples": ["12.50"],
        }
    ),
]
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 1, 1, tzinfo=UTC)


def _in_range(value: datetime) -> datetime:
    """A moment the services can store and compare: in UTC between 1970 and 9999 (year 1 at +01:00 is
    year 0 in UTC, which no database or datetime takes)."""
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is None or not EARLIEST <= utc < LATEST:
        raise ValueError("the time must lie between 1970-01-01 and 9999-01-01 (UTC)")
    return value


# The years _in_range takes (1970 to 9998), declared in the schema: a client, or a fuzzer generating valid data from
# the document, learns the range there rather than from a refusal. (An offset may still carry a moment on the
# first or last day across the edge in UTC; the refusal says so.)
YEARS_IN_RANGE = r"^(19[7-9][0-9]|[2-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])-"
# A moment an outside party reports (with its offset), as the services can store it.
Moment = Annotated[AwareDatetime, AfterValidator(_in_range), Field(json_schema_extra={"pattern": YEARS_IN_RANGE})]
Sku = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
WarehouseId = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[a-z0-9][a-z0-9_-]*$")]
SupplierId = WarehouseId  # a dropship supplier ships in its own name where a warehouse would
ServiceLevel = Literal["standard", "express", "overnight"]
BackorderPolicy = Literal["backorder", "reject"]
# Units of one SKU an order may ask for (its lines added up): the business rule, and the bound of every
# per-SKU quantity the services exchange.
MAX_UNITS_PER_SKU = 1000
# What the schema lets through, so that an absurd quantity is a schema error while one merely over the rule
# is a business rejection with its reason. With money at most 10**9 and at most 1000 lines, no order total
# exceeds about 10**18, which capture's stored total holds (numeric(24, 4)).
MAX_SUBMITTED_QUANTITY = 1_000_000


class Storable(BaseModel):
    """A model whose text PostgreSQL can store: every string field (an optional one, each one of a list) refuses a
    NUL character (valid JSON may carry one, as \\u0000) as a schema error naming the field, rather than failing
    later in the database. Checked inside pydantic's core after the field's own string checks: a call into Python
    for every field of every contract was a fifth of the time to decode an order (docs/benchmarks/findings.md,
    round 25). Its whole numbers and yes-or-no values are read strictly, as their schema declares them."""

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        schema = handler(source)
        model: Any = schema
        while model["type"] != "model":  # under the model's own validators (model_validator)
            model = model["schema"]
        for field in model["schema"]["fields"].values():
            field["schema"] = _as_declared(field["schema"])
        return schema

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> dict[str, Any]:
        """The schema says so too: each text field without a pattern of its own gets one without NUL, so that a
        client, or a fuzzer generating valid data from the document, is not refused for what the document allowed."""
        document: dict[str, Any] = handler(schema)
        for field in handler.resolve_ref_schema(document).get("properties", {}).values():
            _declare_nul_free(field)
        return document


class Contract(Storable):
    model_config = ConfigDict(extra="forbid", frozen=True)
    event_type: ClassVar[str] = ""
    version: ClassVar[int] = 1


_NUL_FREE = core_schema.custom_error_schema(
    core_schema.str_schema(pattern=r"^[^\x00]*$", strict=True),
    custom_error_type="nul_character",
    custom_error_message="text must not contain NUL characters",
)
# Where a field's value (its text, number or time) sits in its schema: under its default, its None, its own
# validators, or as a list's items.
_AROUND_VALUE = {
    "default": "schema",
    "nullable": "schema",
    "function-after": "schema",
    "function-before": "schema",
    "list": "items_schema",
}


NUL_FREE = r"^[^\x00]*$"


def _declare_nul_free(schema: dict[str, Any]) -> None:
    """NUL_FREE on a field's text in its JSON schema: plain text (no format, pattern or fixed values), alone, one of
    several types, or a list's items."""
    if schema.get("type") == "string" and not schema.keys() & {"pattern", "format", "enum", "const"}:
        schema["pattern"] = NUL_FREE
    for alternative in schema.get("anyOf", ()):
        _declare_nul_free(alternative)
    if isinstance(schema.get("items"), dict):
        _declare_nul_free(schema["items"])


# A moment's or a day's text begins with its year: a string of digits would otherwise be read as seconds since 1970.
ISO_TEXT = re.compile(r"^[0-9]{4}-")
ISO_EXAMPLE = {"datetime": "2026-12-07T05:00:00+01:00", "date": "2026-12-07"}


def _as_text_only(schema: Any) -> Any:
    """A moment or a day read as its schema declares it, ISO 8601 text, never a number (or a string of digits) taken
    as seconds since 1970: from JSON only such text (inside pydantic's core); from Python the value itself or such
    text (a decoded envelope's payload holds text, a body FastAPI parsed too)."""
    kind = schema["type"]
    message = f"Input should be ISO 8601 text such as {ISO_EXAMPLE[kind]}"

    def as_text_or_itself(value: Any) -> Any:
        if isinstance(value, int | float | Decimal):
            raise PydanticCustomError(f"{kind}_type", f"Input should be a valid {kind}")
        if isinstance(value, str) and not ISO_TEXT.match(value):
            raise PydanticCustomError(f"{kind}_text", message)
        return value

    text = core_schema.custom_error_schema(
        core_schema.str_schema(strict=True, pattern=ISO_TEXT.pattern),
        custom_error_type=f"{kind}_text",
        custom_error_message=message,
    )
    return core_schema.json_or_python_schema(
        json_schema=core_schema.chain_schema([text, schema]),
        python_schema=core_schema.no_info_before_validator_function(as_text_or_itself, schema),
        # documented as before: a date-time or date string (the check of its year is what the format asks anyway)
        metadata={"pydantic_js_functions": [lambda _, handler: handler(schema)]},
    )


def _as_declared(schema: Any) -> Any:
    """A field's schema with its text held to `_NUL_FREE`, and its numbers, yes-or-no values, moments and days to what
    the published schema says they are: pydantic's lax reading took `"2"`, `true` and `2.0` as a quantity of 2 or 1,
    `"1.5"` as a number, `1` or `"yes"` as true and a number as a moment, which a client, or a fuzzer checking that
    the documented types are enforced, is told is refused."""
    if schema["type"] == "str":
        return core_schema.chain_schema([schema, _NUL_FREE])
    if schema["type"] in ("int", "bool", "float"):
        return {**schema, "strict": True}  # a float still takes a whole number, as JSON's number does
    if schema["type"] in ("datetime", "date"):
        return _as_text_only(schema)
    inner = _AROUND_VALUE.get(schema["type"])
    if inner is not None:
        schema[inner] = _as_declared(schema[inner])
    return schema


# ---- the generic order (POST /v1/orders and oms.orders.submitted) ----


class Customer(Contract):
    email: str = Field(min_length=3, max_length=254, pattern=r"^[^@\s\x00]+@[^@\s\x00]+\.[^@\s\x00]+$")
    name: str = Field(min_length=1, max_length=200)
    phone: str | None = Field(default=None, max_length=40)
    account: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        description="the business customer's account the order is bought on (credit limit and exposure)",
    )


class Address(Contract):
    name: str = Field(min_length=1, max_length=200)
    line1: str = Field(min_length=1, max_length=200)
    line2: str | None = Field(default=None, max_length=200)
    city: str = Field(min_length=1, max_length=100)
    region: str | None = Field(default=None, max_length=100)
    postal_code: str = Field(min_length=1, max_length=20)
    country: str = Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2")


class SubmittedLine(Contract):
    sku: Sku
    quantity: int = Field(
        ge=0,
        le=MAX_SUBMITTED_QUANTITY,
        description=f"schema: 0..{MAX_SUBMITTED_QUANTITY:,}; business rule: 1..{MAX_UNITS_PER_SKU} per SKU",
    )
    unit_price: Money


class Payment(Contract):
    status: Literal["pending", "authorized", "paid", "declined", "voided", "refunded"]
    amount: Money
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    reference: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="the card fingerprint or payment reference the provider gives (never a card number)",
    )


ChannelRisk = Literal["accept", "investigate", "cancel"]


class SubmittedOrder(Contract):
    """An order as a channel adapter hands it in."""

    event_type: ClassVar[str] = "OrderSubmitted"
    channel: str = Field(min_length=1, max_length=32, pattern=r"^[a-z0-9][a-z0-9_-]*$")
    external_id: str = Field(min_length=1, max_length=128)
    placed_at: Moment
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    customer: Customer
    shipping_address: Address
    service_level: ServiceLevel
    lines: list[SubmittedLine] = Field(max_length=1000)
    shipping_price: Money
    payment: Payment
    backorder_policy: BackorderPolicy = Field(
        default="backorder", description="what to do with quantities no warehouse has: wait for stock, or reject"
    )
    original_order_id: UUID | None = Field(
        default=None, description="capture sets it on an exchange order: the order whose return pays for it"
    )
    billing_address: Address | None = Field(default=None, description="the payer's address, when the channel has it")
    client_ip: str | None = Field(
        default=None, max_length=45, pattern=r"^[0-9A-Fa-f:.]{2,45}$", description="the IP address the order came from"
    )
    channel_risk: ChannelRisk | None = Field(
        default=None, description="the channel's own fraud recommendation (Shopify's order risk), when it has one"
    )


# ---- inbound reference data and confirmations ----


class ProductUpserted(Contract):
    event_type: ClassVar[str] = "ProductUpserted"
    sku: Sku
    name: str = Field(min_length=1, max_length=200)
    weight_grams: int = Field(ge=0, le=1_000_000)
    active: bool
    category: str | None = Field(
        default=None, max_length=64, description="the product's category (return windows may depend on it)"
    )


class InventoryAdjusted(Contract):
    event_type: ClassVar[str] = "InventoryAdjusted"
    warehouse_id: WarehouseId
    sku: Sku
    kind: Literal["receipt", "count"]
    quantity: int = Field(ge=0, le=10_000_000, description="receipt: units added; count: units on hand")
    reference: str = Field(
        min_length=1,
        max_length=128,
        description="the receipt or count number: with the warehouse and SKU it names the line, so a replay is"
        " harmless (one that says otherwise is dead-lettered)",
    )


class ItemQuantity(Contract):
    sku: Sku
    quantity: int = Field(ge=1, le=MAX_UNITS_PER_SKU)


class Package(Contract):
    weight_grams: int = Field(ge=0, le=1_000_000)


class WarehouseReported(Contract):
    event_type: ClassVar[str] = "WarehouseReported"
    pick_task_id: UUID
    warehouse_id: WarehouseId
    kind: Literal["picked", "packed", "short_picked"]
    lines: list[ItemQuantity] | None = None
    package: Package | None = None
    occurred_at: Moment


class CarrierReported(Contract):
    event_type: ClassVar[str] = "CarrierReported"
    tracking_number: str = Field(min_length=1, max_length=64)
    carrier: str = Field(min_length=1, max_length=32)
    kind: Literal["in_transit", "out_for_delivery", "delivered", "exception"]
    occurred_at: Moment
    detail: str | None = Field(default=None, max_length=500)


# ---- events the services publish ----


class PricedLine(Contract):
    """A line as the customer paid for it (the unit price after every discount the channel applied)."""

    sku: Sku
    quantity: int = Field(ge=0, le=MAX_SUBMITTED_QUANTITY)
    unit_price: Money


class OrderValidated(Contract):
    event_type: ClassVar[str] = "OrderValidated"
    order_id: UUID
    channel: str
    external_id: str
    received_at: datetime
    currency: str
    total: Decimal
    customer: Customer
    ship_to: Address
    service_level: ServiceLevel
    lines: list[ItemQuantity]
    backorder_policy: BackorderPolicy = "backorder"
    # What was paid, for refunds (absent from events written before they were added).
    prices: list[PricedLine] | None = None
    shipping_price: Decimal | None = None
    paid: Decimal | None = Field(default=None, description="the payment amount captured or authorised")
    original_order_id: UUID | None = Field(default=None, description="an exchange order: the order it replaces")


class OrderRejected(Contract):
    event_type: ClassVar[str] = "OrderRejected"
    order_id: UUID
    channel: str
    external_id: str
    reasons: list[str]
    customer: Customer


class Shipment(Contract):
    """Units reserved in one warehouse for one order; fulfillment turns it into one pick task of the same id."""

    shipment_id: UUID
    warehouse_id: WarehouseId
    lines: list[ItemQuantity]


class PurchaseOrderPart(Contract):
    """Units of one order routed to one dropship supplier: fulfillment issues them as one purchase order of this id."""

    purchase_order_id: UUID
    supplier_id: SupplierId
    lines: list[ItemQuantity] = Field(min_length=1)


class OrderAllocated(Contract):
    """New shipments reserved for an order (at first, when a backorder is released, or after a re-route);
    `backordered` lists what still waits for stock, `reason` explains the routing decision."""

    event_type: ClassVar[str] = "OrderAllocated"
    order_id: UUID
    shipments: list[Shipment]
    ship_to: Address
    service_level: ServiceLevel
    backordered: list[ItemQuantity] = Field(default_factory=list)
    reason: str = ""
    priority: int = Field(
        default=0, description="the order's priority score when these shipments were reserved (higher: more urgent)"
    )
    dropship: list[PurchaseOrderPart] = Field(
        default_factory=list,
        description="lines routed to dropship suppliers, one purchase order per supplier (fulfillment issues them)",
    )
    order_version: int = Field(default=0, ge=0, description="the order's version: 0 until a change is applied")


class OrderBackordered(Contract):
    """Nothing could be reserved yet; the order waits for stock, by priority band, then first come first served."""

    event_type: ClassVar[str] = "OrderBackordered"
    order_id: UUID
    reason: str
    missing: list[ItemQuantity]
    order_version: int = Field(default=0, ge=0, description="the order's version: 0 until a change is applied")


class OrderUnfulfillable(Contract):
    """Allocation refuses an order its policy does not allow to wait (backorder_policy reject)."""

    event_type: ClassVar[str] = "OrderUnfulfillable"
    order_id: UUID
    reason: str


class OrderCancelled(Contract):
    """Allocation released the reservations and backorders of the cancelled lines (all lines when `lines` is None)."""

    event_type: ClassVar[str] = "OrderCancelled"
    order_id: UUID
    lines: list[ItemQuantity] | None = None
    reason: str


class WithdrawalRequested(Contract):
    """Allocation asks fulfillment to withdraw these lines of a shipment: a partial cancellation fulfillment
    accepted crossed the shipment's allocation, so fulfillment had not seen the shipment when it decided.
    Fulfillment answers as to a cancellation request: CancellationAccepted, or CancellationRefused if packed."""

    event_type: ClassVar[str] = "WithdrawalRequested"
    order_id: UUID
    shipment_id: UUID
    warehouse_id: WarehouseId
    lines: list[ItemQuantity] = Field(min_length=1)
    reason: str


class StockCountShort(Contract):
    """A stock count found fewer units than are reserved; on hand kept at the reserved level."""

    event_type: ClassVar[str] = "StockCountShort"
    warehouse_id: WarehouseId
    sku: Sku
    counted: int
    reserved: int
    reference: str


class ReplenishmentSuggested(Contract):
    """A draft purchase order for purchasing: the forecast stock of a SKU at a warehouse (on hand - reserved + on
    order within the lead time) fell below its reorder rule's minimum. One is open per warehouse and SKU at a time;
    a receipt on oms.inventory.adjustments whose reference is the `suggestion_id` (alone or followed by `/...`)
    closes it."""

    event_type: ClassVar[str] = "ReplenishmentSuggested"
    suggestion_id: UUID
    warehouse_id: WarehouseId
    sku: Sku
    supplier: str
    quantity: int = Field(ge=1, description="up to the maximum, rounded up to whole packs")
    forecast: int = Field(description="on hand - reserved + on order within the lead time, when suggested")
    on_hand: int
    reserved: int
    on_order: int
    minimum: int
    maximum: int
    pack_multiple: int
    lead_time_days: int
    expected_by: date = Field(description="the day the supplier's lead time brings it, if ordered today")
    reason: str


class CancelRequested(Contract):
    """A channel asks to cancel an order (bare JSON on oms.orders.cancel-requests, key `<channel>:<external_id>`)."""

    event_type: ClassVar[str] = "CancelRequested"
    channel: str = Field(min_length=1, max_length=32)
    external_id: str = Field(min_length=1, max_length=128)
    lines: list[ItemQuantity] | None = Field(default=None, description="omit to cancel the whole order")
    reason: str = Field(default="customer request", max_length=500)


class OrderCancellationRequested(Contract):
    """Capture accepted a cancel request for an order not yet shipped; fulfillment decides if it can be honoured."""

    event_type: ClassVar[str] = "OrderCancellationRequested"
    order_id: UUID
    lines: list[ItemQuantity] | None = None
    reason: str
    requested_at: datetime


# ---- order changes (issue 14): requested by the channel, decided by capture, fulfillment and allocation ----

ChangeId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")]


class ChangedLine(Contract):
    """A line's new quantity (0 removes it); `unit_price` is needed for a SKU the order does not have yet."""

    sku: Sku
    quantity: int = Field(ge=0, le=MAX_UNITS_PER_SKU, description="the units wanted from now on (0: remove)")
    unit_price: Money | None = None


class OrderChange(Contract):
    """What a change asks for: any of a new shipping address, a new service level, new line quantities."""

    change_id: ChangeId = Field(description="the channel's id of the change: a repeat is recognised")
    shipping_address: Address | None = None
    service_level: ServiceLevel | None = None
    lines: list[ChangedLine] | None = Field(default=None, min_length=1, max_length=100)
    reason: str = Field(default="customer request", min_length=1, max_length=500)


class ChangeRequested(OrderChange):
    """A channel asks to change an order (bare JSON on oms.orders.change-requests, key `<channel>:<external_id>`)."""

    event_type: ClassVar[str] = "ChangeRequested"
    channel: str = Field(min_length=1, max_length=32)
    external_id: str = Field(min_length=1, max_length=128)


class OrderChangeRequested(Contract):
    """Capture accepted a change (and its payment); fulfillment decides whether the pick tasks it touches may still
    be withdrawn. `lines` are the units wanted from now on per SKU (neither cancelled nor shipped); `reduced` the
    units fewer than before (the pick tasks holding them are withdrawn)."""

    event_type: ClassVar[str] = "OrderChangeRequested"
    order_id: UUID
    change_id: str
    order_version: int = Field(ge=1, description="the order's version once the change is applied")
    ship_to: Address
    service_level: ServiceLevel
    lines: list[ItemQuantity]
    reduced: list[ItemQuantity] = Field(default_factory=list)
    reroute: bool = Field(description="the ship-to or service level changes: every open pick task is re-issued")
    reason: str
    requested_at: datetime


class OrderChangeAccepted(Contract):
    """Fulfillment withdrew the pick tasks the change touches; allocation re-allocates in one step. Sent again with
    more `withdrawn_shipments` when a shipment of an older version reached fulfillment after the change."""

    event_type: ClassVar[str] = "OrderChangeAccepted"
    order_id: UUID
    change_id: str
    order_version: int
    ship_to: Address
    service_level: ServiceLevel
    lines: list[ItemQuantity]
    withdrawn_shipments: list[UUID]
    reason: str


class OrderChangeRefused(Contract):
    """Fulfillment refused the change: a pick task it touches was picked (or packed) first."""

    event_type: ClassVar[str] = "OrderChangeRefused"
    order_id: UUID
    change_id: str
    order_version: int
    reason: str


class OrderChanged(Contract):
    """Allocation applied the change: the order's version, what it holds now, and what waits for stock."""

    event_type: ClassVar[str] = "OrderChanged"
    order_id: UUID
    change_id: str
    order_version: int
    ship_to: Address
    service_level: ServiceLevel
    lines: list[ItemQuantity]
    backordered: list[ItemQuantity] = Field(default_factory=list)
    refused: list[ItemQuantity] = Field(
        default_factory=list, description="units added that the order's policy does not let wait for stock"
    )
    reason: str


class OrderChangeApplied(Contract):
    """Capture recorded a change as applied (allocation's OrderChanged, with the units it refused to add taken out
    again): the order's lines at the prices paid for them from now on, its total, what was paid for it, and what is
    due back to the customer (returns refunds it)."""

    event_type: ClassVar[str] = "OrderChangeApplied"
    order_id: UUID
    change_id: str
    order_version: int = Field(ge=1)
    currency: str
    lines: list[PricedLine] = Field(description="every line of the order after the change, at its unit price")
    shipping_price: Decimal
    total: Decimal = Field(description="the order's total after the change")
    paid: Decimal = Field(description="what was paid for the order, payments received for changes included")
    due_back: Decimal = Field(description="owed back to the customer for this change (0: nothing)")


class PickTaskReleased(Contract):
    """A pick task for one warehouse: the contract on oms.warehouse.pick-tasks."""

    event_type: ClassVar[str] = "PickTaskReleased"
    pick_task_id: UUID
    order_id: UUID
    warehouse_id: WarehouseId
    lines: list[ItemQuantity]
    ship_to: Address
    service_level: ServiceLevel
    created_at: datetime
    priority: int = Field(
        default=0,
        description="the order's priority score when allocation reserved the units; pick higher scores first, then"
        " by created_at (absent from tasks released before priorities: 0)",
    )
    order_version: int = Field(default=0, ge=0, description="the order's version: 0 until a change is applied")


class PickTaskCancelled(Contract):
    """Tells the warehouse to stop picking a task (the order or those lines were cancelled)."""

    event_type: ClassVar[str] = "PickTaskCancelled"
    pick_task_id: UUID
    order_id: UUID
    warehouse_id: WarehouseId
    reason: str
    cancelled_at: datetime
    order_version: int = Field(default=0, ge=0, description="the order's version: 0 until a change is applied")


class CancellationAccepted(Contract):
    """Fulfillment withdrew the pick tasks of the cancelled lines; allocation may release their stock."""

    event_type: ClassVar[str] = "CancellationAccepted"
    order_id: UUID
    lines: list[ItemQuantity] | None = None
    withdrawn_shipments: list[UUID]
    reason: str


class CancellationRefused(Contract):
    event_type: ClassVar[str] = "CancellationRefused"
    order_id: UUID
    reason: str


class ShortPickReported(Contract):
    """A warehouse could not pick everything; allocation releases and re-routes the missing units."""

    event_type: ClassVar[str] = "ShortPickReported"
    order_id: UUID
    shipment_id: UUID
    warehouse_id: WarehouseId
    missing: list[ItemQuantity]


class OrderShipped(Contract):
    """One shipment left the warehouse; `order_complete` says whether every known shipment of the order has."""

    event_type: ClassVar[str] = "OrderShipped"
    order_id: UUID
    pick_task_id: UUID
    warehouse_id: WarehouseId
    carrier: str
    tracking_number: str
    shipped_at: datetime
    lines: list[ItemQuantity] = Field(default_factory=list)
    service: str | None = None
    promised_delivery: date | None = None
    tracking_url: str | None = None
    order_complete: bool = True


class DeliveryException(Contract):
    event_type: ClassVar[str] = "DeliveryException"
    order_id: UUID
    pick_task_id: UUID
    carrier: str
    tracking_number: str
    detail: str
    occurred_at: datetime


class OrderDelivered(Contract):
    event_type: ClassVar[str] = "OrderDelivered"
    order_id: UUID
    delivered_at: datetime


# ---- risk and holds (capture) ----

HoldType = Literal["fraud", "credit", "address", "payment"]


class HoldPlaced(Contract):
    hold_type: HoldType
    reason: str


class OrderHeld(Contract):
    """The risk assessment did not accept the order: it waits on these holds, not announced to allocation, until an
    operator releases the last (then OrderValidated) or it is cancelled from hold."""

    event_type: ClassVar[str] = "OrderHeld"
    order_id: UUID
    channel: str
    external_id: str
    holds: list[HoldPlaced] = Field(min_length=1)
    score: int
    level: str
    recommendation: str


class HoldReleased(Contract):
    """An operator released one hold; `remaining` are still on the order (none: it goes on as validated)."""

    event_type: ClassVar[str] = "HoldReleased"
    order_id: UUID
    hold_type: HoldType
    released_by: str
    note: str | None = None
    remaining: list[HoldType] = Field(default_factory=list)


class HeldOrderCancelled(Contract):
    """An order cancelled while on hold (by an operator, its channel, or its time limit: `expired`). Nothing was
    allocated for it, so nothing is released; the customer is told (whom to tell is here: the order was never
    announced)."""

    event_type: ClassVar[str] = "HeldOrderCancelled"
    order_id: UUID
    channel: str
    external_id: str
    customer: Customer
    reason: str
    expired: bool
    holds: list[HoldType]


# ---- returns (after delivery) ----

# A leaf of the reason tree the returns service is configured with (deploy/config/returns.json), e.g.
# `damaged.in_transit`; the service refuses codes its tree does not hold.
ReasonCode = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")]
Resolution = Literal["refund", "exchange", "store_credit"]
Disposition = Literal["restock", "quarantine", "refurbish", "scrap"]
Rma = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Z0-9-]+$")]


class ReturnLine(Contract):
    sku: Sku
    quantity: int = Field(ge=1, le=MAX_UNITS_PER_SKU)
    reason: ReasonCode


class ReturnRequested(Contract):
    """A channel asks to take units of a delivered order back (bare JSON on oms.returns.requests, key
    `<channel>:<external_id>`). `request_id` is the channel's own id of the request: a repeat is recognised."""

    event_type: ClassVar[str] = "ReturnRequested"
    channel: str = Field(min_length=1, max_length=32)
    external_id: str = Field(min_length=1, max_length=128)
    request_id: str = Field(min_length=1, max_length=128)
    lines: list[ReturnLine] = Field(min_length=1, max_length=100)
    note: str | None = Field(default=None, max_length=1000, description="the customer's words")
    resolution: Resolution = "refund"
    exchange_for: list[PricedLine] | None = Field(
        default=None, max_length=100, description="for an exchange: what the customer gets instead, at its price"
    )


class ReceivedLine(Contract):
    sku: Sku
    quantity: int = Field(ge=1, le=MAX_UNITS_PER_SKU)
    disposition: Disposition


class WarehouseReturnReceived(Contract):
    """A warehouse opened a customer's return parcel (bare JSON on oms.warehouse.events, `kind` return_received):
    what it found per SKU and where each unit goes. `receipt` names the receipt: a replay is harmless."""

    event_type: ClassVar[str] = "WarehouseReturnReceived"
    kind: Literal["return_received"]
    warehouse_id: WarehouseId
    rma: Rma
    receipt: str = Field(min_length=1, max_length=64)
    lines: list[ReceivedLine] = Field(min_length=1, max_length=100)
    occurred_at: Moment


class ReturnLabel(Contract):
    """The prepaid label back to the receiving warehouse: the cheapest carrier service the rate table has."""

    carrier: str
    service: str
    warehouse_id: WarehouseId
    weight_grams: int
    price: Decimal


class ReturnAuthorised(Contract):
    event_type: ClassVar[str] = "ReturnAuthorised"
    order_id: UUID
    return_id: UUID
    rma: Rma
    lines: list[ReturnLine]
    label: ReturnLabel
    expires_at: datetime
    decided_by: Literal["policy", "operator"] = "policy"


class ReturnUnderReview(Contract):
    """The policy leaves the request to an operator (approve or reject)."""

    event_type: ClassVar[str] = "ReturnUnderReview"
    order_id: UUID
    return_id: UUID
    lines: list[ReturnLine]
    reasons: list[str]


class ReturnRejected(Contract):
    event_type: ClassVar[str] = "ReturnRejected"
    order_id: UUID
    return_id: UUID
    lines: list[ReturnLine]
    reasons: list[str]
    decided_by: Literal["policy", "operator"] = "policy"


class ReturnReceived(Contract):
    """Units of an RMA received at the warehouse, each with its disposition (restock goes back on hand);
    `unexpected` were in the parcel but not on the RMA (set aside for review, never sellable); `complete`
    says whether the RMA has now everything it authorised."""

    event_type: ClassVar[str] = "ReturnReceived"
    order_id: UUID
    return_id: UUID
    rma: Rma
    warehouse_id: WarehouseId
    receipt: str
    lines: list[ReceivedLine]
    unexpected: list[ReceivedLine] = Field(default_factory=list)
    complete: bool


class ExchangeRequested(Contract):
    """The returned units came back: capture opens the exchange order (linked by `original_order_id`), paid by
    their value (`credit`); `difference` is what the new order costs above it (negative: refunded)."""

    event_type: ClassVar[str] = "ExchangeRequested"
    order_id: UUID
    return_id: UUID
    exchange_id: UUID
    lines: list[PricedLine] = Field(min_length=1)
    credit: Decimal
    difference: Decimal
    currency: str
    charge_reference: str | None = Field(
        default=None, description="a dearer exchange: the provider's reference of the difference charged"
    )


class ExchangeChargeFailed(Contract):
    """A dearer exchange's difference could not be charged (the provider refused it, or every attempt failed): no
    exchange order is opened, and the returned units' value (`refunded`) is refunded instead."""

    event_type: ClassVar[str] = "ExchangeChargeFailed"
    order_id: UUID
    return_id: UUID
    exchange_id: UUID
    charge_id: UUID
    amount: Decimal
    currency: str
    reason: str
    attempts: int
    refunded: Decimal


class ReturnClosed(Contract):
    """An RMA closed before everything it authorised came back (its parcel never arrived), with the reason."""

    event_type: ClassVar[str] = "ReturnClosed"
    order_id: UUID
    return_id: UUID
    rma: Rma
    reason: str
    received: list[ItemQuantity] = Field(default_factory=list)


# ---- refunds (the payment provider) ----


class RefundRequested(Contract):
    """Returns asks the payment provider to pay money back on the order's payment. The provider pays an
    `idempotency_key` once, however often it is asked (retries carry the same key)."""

    event_type: ClassVar[str] = "RefundRequested"
    refund_id: UUID
    order_id: UUID
    order_reference: str = Field(description="`<channel>:<external_id>`: the payment the refund goes back on")
    idempotency_key: str
    amount: Decimal
    currency: str
    attempt: int


class RefundSucceeded(Contract):
    """The provider paid the refund (bare JSON on oms.payments.refund-results, `outcome` succeeded)."""

    event_type: ClassVar[str] = "RefundSucceeded"
    outcome: Literal["succeeded"]
    refund_id: UUID
    idempotency_key: str = Field(min_length=1, max_length=128)
    amount: Money
    provider_reference: str = Field(min_length=1, max_length=128)
    occurred_at: Moment


class RefundFailed(Contract):
    """The provider did not pay; `retriable` says whether asking again may help."""

    event_type: ClassVar[str] = "RefundFailed"
    outcome: Literal["failed"]
    refund_id: UUID
    idempotency_key: str = Field(min_length=1, max_length=128)
    reason: str = Field(min_length=1, max_length=500)
    retriable: bool
    occurred_at: Moment


class ReturnRefunded(Contract):
    """Money went back to the customer for returned units, with the calculation line by line."""

    event_type: ClassVar[str] = "ReturnRefunded"
    order_id: UUID
    return_id: UUID
    refund_id: UUID
    amount: Decimal
    currency: str
    explanation: list[str]
    provider_reference: str
    requested_to_refunded_seconds: float


class RefundAbandoned(Contract):
    """The provider refused a refund for good, or every attempt failed: an operator must settle it."""

    event_type: ClassVar[str] = "RefundAbandoned"
    order_id: UUID
    return_id: UUID
    refund_id: UUID
    amount: Decimal
    currency: str
    reason: str
    attempts: int


class ChangeRefunded(Contract):
    """Money due back after an order change lowered the order's total went back to the customer."""

    event_type: ClassVar[str] = "ChangeRefunded"
    order_id: UUID
    change_id: str
    refund_id: UUID
    amount: Decimal
    currency: str
    explanation: list[str]
    provider_reference: str


class ChangeRefundAbandoned(Contract):
    """The provider refused the refund of an order change for good, or every attempt failed: an operator must settle
    it."""

    event_type: ClassVar[str] = "ChangeRefundAbandoned"
    order_id: UUID
    change_id: str
    refund_id: UUID
    amount: Decimal
    currency: str
    reason: str
    attempts: int


# ---- charges (the payment provider): a dearer exchange's difference ----


class ChargeRequested(Contract):
    """Returns asks the payment provider to take money on the order's payment (the difference a dearer exchange
    costs). The provider charges an `idempotency_key` once, however often it is asked (retries carry the same
    key)."""

    event_type: ClassVar[str] = "ChargeRequested"
    charge_id: UUID
    order_id: UUID
    order_reference: str = Field(description="`<channel>:<external_id>`: the payment the charge is taken on")
    idempotency_key: str
    amount: Decimal
    currency: str
    attempt: int


class PaymentReceived(Contract):
    """Money received for an order after it was placed (an invoice paid on an account), bare JSON on
    oms.payments.received; the same payment id reported twice counts once."""

    event_type: ClassVar[str] = "PaymentReceived"
    channel: str = Field(min_length=1, max_length=32, pattern=r"^[a-z0-9][a-z0-9_-]*$")
    external_id: str = Field(min_length=1, max_length=128)
    payment_id: str = Field(min_length=1, max_length=128)
    amount: Money = Field(gt=0)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    received_at: Moment


class ChargeSucceeded(Contract):
    """The provider took the money (bare JSON on oms.payments.charge-results, `outcome` succeeded)."""

    event_type: ClassVar[str] = "ChargeSucceeded"
    outcome: Literal["succeeded"]
    charge_id: UUID
    idempotency_key: str = Field(min_length=1, max_length=128)
    amount: Money
    provider_reference: str = Field(min_length=1, max_length=128)
    occurred_at: Moment


class ChargeFailed(Contract):
    """The provider did not take the money; `retriable` says whether asking again may help."""

    event_type: ClassVar[str] = "ChargeFailed"
    outcome: Literal["failed"]
    charge_id: UUID
    idempotency_key: str = Field(min_length=1, max_length=128)
    reason: str = Field(min_length=1, max_length=500)
    retriable: bool
    occurred_at: Moment


# ---- dropship (allocation routes, fulfillment issues purchase orders and follows the suppliers) ----


class PackingSlip(Contract):
    """What the supplier puts in the parcel for the end customer: the order and its units, never a price."""

    order_id: UUID
    recipient: str = Field(min_length=1, max_length=200)
    lines: list[ItemQuantity] = Field(min_length=1)
    note: str = Field(default="", max_length=500)


class PurchaseOrderIssued(Contract):
    """A purchase order for a dropship supplier: one per (order, supplier), never merged across customers, shipped
    straight to the end customer by `ship_by`; the supplier answers by `answer_by` or the lines go elsewhere."""

    event_type: ClassVar[str] = "PurchaseOrderIssued"
    purchase_order_id: UUID
    order_id: UUID
    supplier_id: SupplierId
    lines: list[ItemQuantity] = Field(min_length=1)
    ship_to: Address
    service_level: ServiceLevel
    ship_by: date
    answer_by: datetime
    packing_slip: PackingSlip
    issued_at: datetime


class PurchaseOrderCancelled(Contract):
    """The supplier did not answer in time: the purchase order is off (its lines were routed elsewhere), and a late
    answer changes nothing."""

    event_type: ClassVar[str] = "PurchaseOrderCancelled"
    purchase_order_id: UUID
    order_id: UUID
    supplier_id: SupplierId
    reason: str
    cancelled_at: datetime


class SupplierReported(Contract):
    """A supplier's answer to a purchase order (bare JSON on oms.dropship.supplier-reports): acknowledged, rejected,
    partially accepted (`lines`: the units it accepts), or shipped (with `carrier` and `tracking_number`)."""

    event_type: ClassVar[str] = "SupplierReported"
    purchase_order_id: UUID
    supplier_id: SupplierId
    kind: Literal["acknowledged", "rejected", "partially_accepted", "shipped"]
    lines: list[ItemQuantity] | None = Field(default=None, description="partially_accepted: the units accepted")
    carrier: str | None = Field(default=None, min_length=1, max_length=32)
    tracking_number: str | None = Field(default=None, min_length=1, max_length=64)
    reason: str | None = Field(default=None, max_length=500)
    occurred_at: Moment

    @model_validator(mode="after")
    def _complete(self) -> SupplierReported:
        if self.kind == "partially_accepted" and not self.lines:
            raise ValueError("a partial acceptance names the lines accepted")
        if self.kind == "shipped" and (self.carrier is None or self.tracking_number is None):
            raise ValueError("a shipment notice carries the carrier and the tracking number")
        return self


class DropshipDeclined(Contract):
    """Units a supplier will not ship (rejected, the remainder of a partial acceptance, or no answer in time):
    allocation routes them to a warehouse that has them, or backorders them."""

    event_type: ClassVar[str] = "DropshipDeclined"
    order_id: UUID
    purchase_order_id: UUID
    supplier_id: SupplierId
    lines: list[ItemQuantity] = Field(min_length=1)
    cause: Literal["rejected", "partially_accepted", "timed_out"]
    reason: str


# ---- the pipeline's own signals ----

# An instance is named after its service and OMS_INSTANCE (on Kubernetes the pod's name, up to 253 characters).
INSTANCE_NAME_LENGTH = 270


class IntakeQueueMeasured(Contract):
    """One capture instance's report of the order path's backlog, sent at every look of its watch: the records the
    path's consumer groups have still to read, and how many orders wait at its HTTP intake to be written (a backlog
    no group's lag shows). Every service's watch of the order path reads them (shared/backbone/peak.py)."""

    event_type: ClassVar[str] = "IntakeQueueMeasured"
    instance: str = Field(min_length=1, max_length=INSTANCE_NAME_LENGTH, description="the service and its instance")
    waiting: int = Field(ge=0)
    unread: int | None = Field(
        default=None,
        ge=0,
        description="the records the order path's groups have to read by the instance's next look: those unread, and"
        " those arriving meanwhile at the pace since its last look; none if the instance did not measure",
    )
