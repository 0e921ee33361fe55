"""The load of a chaos run: orders spread over the load window, drawn from the seed, as the outside world sends
them, and everything the driver sent kept in a ledger the checker compares the system with.

Orders come over HTTP with their channel's key (to either capture instance), on the Kafka intake topic, and as
Shopify webhooks signed with the development shop's secret. Their scenarios:
- single: common SKUs, one warehouse ships everything; split: a SKU only Amsterdam holds and one only Frankfurt
  holds (two shipments);
- backorder: SKUs nobody holds at first, released by goods receipts arriving during the run (they cover about
  three quarters of what is asked, so some orders end waiting, which is a legitimate end);
- short: `SHORT-ams-` SKUs Amsterdam cannot find (the simulator short-picks them there), re-routed to Frankfurt;
- cancel_whole / early_cancel / cancel_part: `HOLD-` SKUs the warehouses never pick, so the cancellation always
  finds the pick task open: the whole order at a random moment (over HTTP, or the channel's cancel request on
  Kafka, even before the order itself), or only the held line (the rest ships);
- cancel_race: an order that ships, cancelled at a random moment (it may ship first);
- rejected: an unknown SKU or an underpaid order.
A full run also sends a peak: 800 more orders on the Kafka intake within one second, while the faults go on.
Poison records (not JSON, nested too deeply, tombstones, wrong schema, a null event_id header, an unknown
tracking number, a receipt line contradicting one applied) go to the inbound topics at random moments.

Every call is retried until it is answered (a fault may take an instance, the broker or the database away),
within a deadline: an intake the pipeline never answered is a finding of the run, not lost silently."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from deploy.local import shopify
from deploy.local.keys import DevelopmentKeys
from deploy.local.settings import LocalStack
from services.capture.settings import DEVELOPMENT_SHOP
from shared.backbone import kafka_access
from shared.contracts import topics

WAREHOUSES = ("ams", "fra", "lyo")
COUNTRIES = ("NL", "DE", "FR", "BE", "AT", "LU")
HTTP_CHANNELS = ("webshop", "marketplace", "pos", "b2b")
SHIPPING = Decimal("4.95")
SCENARIOS = {
    "single": 30,
    "split": 10,
    "backorder": 12,
    "short": 8,
    "cancel_whole": 10,
    "early_cancel": 4,
    "cancel_part": 8,
    "cancel_race": 12,
    "rejected": 6,
}
# How long the driver keeps trying one call before it records it as not answered.
CALL_DEADLINE = 240.0
RECEIPT_SHARE = 0.75
# Where in the load window a peak's orders arrive (draw_orders).
PEAK_AT = 0.4


@dataclass(frozen=True)
class Catalogue:
    """The run's SKUs, named after the run so that nothing collides with other data on the stack."""

    run: str

    def _skus(self, kind: str, count: int) -> list[str]:
        return [f"{kind}-{self.run}-{i}" for i in range(count)]

    @property
    def common(self) -> list[str]:
        return self._skus("CHAOS", 8)

    @property
    def only_ams(self) -> str:
        return f"SPLITA-{self.run}"

    @property
    def only_fra(self) -> str:
        return f"SPLITF-{self.run}"

    @property
    def held(self) -> list[str]:
        return self._skus("HOLD", 2)

    @property
    def short(self) -> list[str]:
        return [f"SHORT-ams-{self.run}-{i}" for i in range(2)]

    @property
    def waiting(self) -> list[str]:
        return self._skus("WAIT", 3)

    @property
    def products(self) -> list[str]:
        return [*self.common, self.only_ams, self.only_fra, *self.held, *self.short, *self.waiting]

    def initial_stock(self) -> list[tuple[str, str, int]]:
        stock = [(w, sku, 2000) for w in WAREHOUSES for sku in self.common]
        stock += [("ams", self.only_ams, 1500), ("fra", self.only_fra, 1500)]
        stock += [(w, sku, 1000) for w in WAREHOUSES for sku in self.held]
        stock += [(w, sku, 600) for w in ("ams", "fra") for sku in self.short]
        stock += [(w, sku, 0) for w in WAREHOUSES for sku in self.waiting]
        return stock


@dataclass
class OrderSpec:
    """One order of the run as drawn from the seed, and what became of sending it."""

    number: int
    scenario: str
    via: str  # http, kafka or shopify
    channel: str
    external_id: str
    lines: list[tuple[str, int]]
    country: str
    at: float  # seconds after the load started
    cancel_after: float | None = None  # seconds after acceptance (early_cancel: before the order)
    cancel_lines: list[tuple[str, int]] | None = None  # None: the whole order
    order_id: str | None = None  # known from the HTTP answer; for Kafka intake, looked up afterwards
    accepted: bool = False
    answers: list[str] = field(default_factory=list)  # what each call was answered (status codes, or errors)
    cancel_outcome: str | None = None

    @property
    def ref(self) -> tuple[str, str]:
        return (self.channel, self.external_id)


@dataclass
class PoisonRecord:
    """A record injected on purpose: where it went and what its dead letter's reason must start with."""

    key: str
    topic: str
    kind: str
    reason: str
    readers: tuple[str, ...]
    sent: bool = False
    # A contradicting receipt line needs the line it contradicts: (warehouse, sku, quantity, reference) sent first.
    contradicts: tuple[str, str, int, str] | None = None


@dataclass
class Ledger:
    """Everything the driver sent and how it was answered."""

    run: str
    orders: list[OrderSpec] = field(default_factory=list)
    receipts: dict[tuple[str, str], int] = field(default_factory=dict)  # units received per (warehouse, sku)
    poison: list[PoisonRecord] = field(default_factory=list)
    unanswered: list[str] = field(default_factory=list)  # calls that got no answer within the deadline

    def receive(self, warehouse: str, sku: str, quantity: int) -> None:
        self.receipts[(warehouse, sku)] = self.receipts.get((warehouse, sku), 0) + quantity

    def as_json(self) -> dict[str, Any]:
        by_scenario: dict[str, int] = {}
        by_via: dict[str, int] = {}
        for order in self.orders:
            by_scenario[order.scenario] = by_scenario.get(order.scenario, 0) + 1
            by_via[order.via] = by_via.get(order.via, 0) + 1
        return {
            "run": self.run,
            "orders": len(self.orders),
            "accepted": sum(o.accepted for o in self.orders),
            "by_scenario": by_scenario,
            "by_intake": by_via,
            "cancellations": sum(o.cancel_after is not None for o in self.orders),
            "receipt_units": sum(self.receipts.values()),
            "poison": [asdict(p) for p in self.poison],
            "unanswered": self.unanswered,
        }


# ---- drawing the run from the seed ----


def draw_orders(rng: random.Random, catalogue: Catalogue, count: int, window: float, peak: int = 0) -> list[OrderSpec]:
    """`count` orders spread over the window, and `peak` more all within a second at PEAK_AT of it, on the Kafka
    intake (as a marketplace's catch-up would send them): more than the order path's high mark, so what follows it
    waits (shared/backbone/peak.py) while the faults go on."""
    names, weights = zip(*SCENARIOS.items(), strict=True)
    specs = []
    for number in range(count):
        scenario = rng.choices(names, weights)[0]
        at = window * number / count + rng.uniform(0, window / count)
        specs.append(_order(rng, catalogue, number, scenario, at))
    for number in range(count, count + peak):
        spec = _order(rng, catalogue, number, rng.choices(names, weights)[0], window * PEAK_AT + rng.uniform(0, 1))
        if spec.via != "kafka":
            spec.via, spec.channel = "kafka", "marketplace"  # a marketplace ships from any warehouse (splits too)
        specs.append(spec)
    return specs


def _order(rng: random.Random, catalogue: Catalogue, number: int, scenario: str, at: float) -> OrderSpec:
    common = catalogue.common
    via = "kafka" if scenario == "early_cancel" else rng.choices(("http", "kafka", "shopify"), (60, 22, 18))[0]
    channel = {"http": rng.choice(HTTP_CHANNELS), "kafka": rng.choice(("marketplace", "pos")), "shopify": "shopify"}[
        via
    ]
    if scenario == "split" and channel == "pos":  # a point of sale ships from one warehouse only
        channel = "webshop" if via == "http" else "marketplace"
    external_id = f"chaos-{catalogue.run}-{number}"
    lines = [(sku, rng.randint(1, 3)) for sku in rng.sample(common, rng.randint(1, 3))]
    country = rng.choice(COUNTRIES)
    spec = OrderSpec(number, scenario, via, channel, external_id, lines, country, at)
    match scenario:
        case "split":
            spec.lines = [(catalogue.only_ams, rng.randint(1, 2)), (catalogue.only_fra, rng.randint(1, 2))]
        case "backorder":
            spec.lines = [(rng.choice(catalogue.waiting), rng.randint(1, 3)), *lines[: rng.randint(0, 1)]]
        case "short":
            spec.lines, spec.country = [(rng.choice(catalogue.short), rng.randint(1, 2))], "NL"
        case "cancel_whole" | "early_cancel":
            spec.lines = [(rng.choice(catalogue.held), rng.randint(1, 3))]
            spec.cancel_after = rng.uniform(0.0, 3.0) if scenario == "early_cancel" else rng.uniform(0.2, 25.0)
        case "cancel_part":
            held = (rng.choice(catalogue.held), rng.randint(1, 2))
            spec.lines = [held, *lines[:1]]
            spec.cancel_after, spec.cancel_lines = rng.uniform(0.2, 25.0), [held]
        case "cancel_race":
            spec.cancel_after = rng.uniform(0.0, 6.0)
            if len(lines) > 1 and rng.random() < 0.5:
                spec.cancel_lines = lines[:1]
        case "rejected":
            spec.lines = [*lines[:1], (f"UNKNOWN-{catalogue.run}-{number}", 1)]
    return spec


def receipt_plan(
    rng: random.Random, catalogue: Catalogue, specs: list[OrderSpec], window: float
) -> list[tuple[float, str, str, int, str]]:
    """(at, warehouse, sku, quantity, reference) receipts of the backordered SKUs, about three quarters of what
    the orders ask for, arriving during the window."""
    wanted: dict[str, int] = {}
    for spec in specs:
        for sku, quantity in spec.lines:
            if sku in catalogue.waiting:
                wanted[sku] = wanted.get(sku, 0) + quantity
    plan: list[tuple[float, str, str, int, str]] = []
    for sku, units in sorted(wanted.items()):
        left = int(units * RECEIPT_SHARE)
        while left > 0:
            quantity = min(left, rng.randint(2, 8))
            left -= quantity
            at = rng.uniform(window * 0.1, window)
            plan.append((at, rng.choice(WAREHOUSES), sku, quantity, f"chaos-{catalogue.run}-r{len(plan)}"))
    return sorted(plan)


POISON_KINDS = ("not_json", "nested", "tombstone", "schema", "null_event_id", "unknown_tracking", "contradiction")
INBOUND = (
    topics.ORDERS_SUBMITTED,
    topics.CANCEL_REQUESTS,
    topics.CATALOG_PRODUCTS,
    topics.INVENTORY_ADJUSTMENTS,
    topics.WAREHOUSE_EVENTS,
    topics.CARRIER_EVENTS,
)


def draw_poison(rng: random.Random, catalogue: Catalogue, count: int, window: float) -> list[tuple[float, Any]]:
    """(at, (record, value, headers)) of the poison records: every kind at least once."""
    drawn = []
    for n in range(count):
        kind = POISON_KINDS[n] if n < len(POISON_KINDS) else rng.choice(POISON_KINDS)
        drawn.append((rng.uniform(0, window), _poison(rng, catalogue, n, kind)))
    return sorted(drawn, key=lambda item: item[0])


def _poison(rng: random.Random, catalogue: Catalogue, n: int, kind: str) -> tuple[PoisonRecord, Any, Any]:
    key = f"poison-{catalogue.run}-{n}"
    topic = rng.choice(INBOUND)
    headers: list[tuple[str, bytes | None]] = []
    value: bytes | None
    match kind:
        case "not_json":
            value, reason = b"\xff\xfe this is not JSON", "not JSON"
        case "nested":
            value, reason = b"[" * 50_000, "not JSON: nested too deeply"
        case "tombstone":
            value, reason = None, "empty record (tombstone)"
        case "schema":
            value, reason = json.dumps({"what": "no contract looks like this"}).encode(), "schema:"
        case "null_event_id":
            topic = topics.CATALOG_PRODUCTS
            product = {"sku": f"POISON-{catalogue.run}-{n}", "name": "never", "weight_grams": 1, "active": True}
            value, headers, reason = json.dumps(product).encode(), [("event_id", None)], "event_id header is null"
        case "unknown_tracking":
            topic = topics.CARRIER_EVENTS
            event = {"tracking_number": f"NOSUCH{n:08d}", "carrier": "postnl", "kind": "in_transit"}
            value = json.dumps({**event, "occurred_at": datetime.now(UTC).isoformat()}).encode()
            reason = "handler failed: LookupError"
        case _:  # contradiction: a receipt line under a reference already applied with another quantity
            topic = topics.INVENTORY_ADJUSTMENTS
            sku, reference = f"RCPT-{catalogue.run}-{n}", f"chaos-{catalogue.run}-conflict-{n}"
            key = f"ams:{sku}"
            value = json.dumps(_receipt("ams", sku, 2, reference)).encode()
            reason = "handler failed: AdjustmentConflict"
            return (
                PoisonRecord(key, topic.name, kind, reason, topic.readers, contradicts=("ams", sku, 1, reference)),
                value,
                headers,
            )
    return PoisonRecord(key, topic.name, kind, reason, topic.readers), value, headers


def _receipt(warehouse: str, sku: str, quantity: int, reference: str) -> dict[str, Any]:
    return {"warehouse_id": warehouse, "sku": sku, "kind": "receipt", "quantity": quantity, "reference": reference}


# ---- documents ----


def order_document(spec: OrderSpec, run: str) -> dict[str, Any]:
    price = Decimal("12.50")
    total = sum((price * quantity for _, quantity in spec.lines), SHIPPING)
    paid = total if spec.scenario != "rejected" or spec.number % 2 else total - 5
    return {
        "channel": spec.channel,
        "external_id": spec.external_id,
        "placed_at": datetime.now(UTC).isoformat(),
        "currency": "EUR",
        "customer": {"email": f"chaos-{run}-{spec.number}@example.test", "name": f"Customer {spec.number}"},
        "shipping_address": {
            "name": f"Customer {spec.number}",
            "line1": f"Street {spec.number}",
            "line2": f"Run {run}",  # another run the same day is not a burst to the risk rules
            "city": "City",
            "postal_code": f"{1000 + spec.number % 9000}",
            "country": spec.country,
        },
        "service_level": ("standard", "express", "overnight")[spec.number % 3],
        "lines": [{"sku": sku, "quantity": quantity, "unit_price": str(price)} for sku, quantity in spec.lines],
        "shipping_price": str(SHIPPING),
        "payment": {"status": "paid", "amount": str(paid)},
    }


# ---- sending ----


class Unanswered(Exception):
    """A call the pipeline did not answer within the deadline."""


class Outside:
    """The outside world's connections: HTTP to both capture instances, and a Kafka producer per outside party."""

    def __init__(self, local: LocalStack, capture_urls: list[str]) -> None:
        self.local = local
        self.capture_urls = capture_urls
        self.http = httpx.AsyncClient(timeout=15, auth=DevelopmentKeys(local.keys_file))
        self.producers: dict[str, AIOKafkaProducer] = {}
        self.gate = asyncio.Semaphore(24)

    async def start(self) -> None:
        # Only parties that write a topic: an idempotent producer needs a write grant (purchasing only reads).
        for party in (p for p in kafka_access.OUTSIDE_PARTIES if kafka_access.writes(p)):
            producer = AIOKafkaProducer(
                **self.local.access(party).client_options(),
                enable_idempotence=True,
                linger_ms=5,
                request_timeout_ms=15000,
            )
            await _retrying(producer.start, "start a producer")
            self.producers[party] = producer

    async def close(self) -> None:
        await self.http.aclose()
        for producer in self.producers.values():
            await producer.stop()

    async def post(self, path: str, number: int, what: str, **request: Any) -> httpx.Response:
        """POST to a capture instance (the other one on the next try) until it answers with anything but a 5xx,
        a 429 or no answer at all."""
        deadline = time.monotonic() + CALL_DEADLINE
        attempt = 0
        while True:
            url = self.capture_urls[(number + attempt) % len(self.capture_urls)]
            attempt += 1
            try:
                async with self.gate:
                    response = await self.http.post(url + path, **request)
                if response.status_code < 500 and response.status_code != 429:
                    return response
                problem = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                problem = exc.__class__.__name__
            if time.monotonic() > deadline:
                raise Unanswered(f"{what}: {problem} after {attempt} attempts")
            await asyncio.sleep(min(5.0, 0.2 * attempt) * (0.5 + random.random()))

    async def publish(
        self, topic: topics.Topic, key: str, value: bytes | None, headers: list[tuple[str, bytes | None]] | None = None
    ) -> None:
        producer = self.producers[kafka_access.principal(topic.writer)]
        await _retrying(
            lambda: producer.send_and_wait(topic.name, value, key=key.encode(), headers=headers),
            f"publish {key} to {topic.name}",
        )


async def _retrying(call: Callable[[], Awaitable[Any]], what: str) -> Any:
    deadline = time.monotonic() + CALL_DEADLINE
    attempt = 0
    while True:
        attempt += 1
        try:
            return await call()
        except (KafkaError, OSError, TimeoutError) as exc:
            if time.monotonic() > deadline:
                raise Unanswered(f"{what}: {exc.__class__.__name__} after {attempt} attempts") from exc
            await asyncio.sleep(min(5.0, 0.2 * attempt) * (0.5 + random.random()))


class Driver:
    """Sends the run's load as drawn, keeping the ledger."""

    def __init__(self, seed: int, run: str, outside: Outside) -> None:
        self.rng = random.Random(f"load-{seed}")
        self.catalogue = Catalogue(run)
        self.ledger = Ledger(run)
        self.outside = outside
        self.started_at = time.monotonic()

    async def seed_stock(self) -> None:
        """The catalogue and the stock the run starts with."""
        for sku in self.catalogue.products:
            product = {"sku": sku, "name": f"Product {sku}", "weight_grams": 450, "active": True}
            await self.outside.publish(topics.CATALOG_PRODUCTS, sku, json.dumps(product).encode())
        for warehouse, sku, quantity in self.catalogue.initial_stock():
            await self._receive(warehouse, sku, quantity, f"chaos-{self.ledger.run}-seed")

    async def _receive(self, warehouse: str, sku: str, quantity: int, reference: str) -> None:
        body = json.dumps(_receipt(warehouse, sku, quantity, reference)).encode()
        await self.outside.publish(topics.INVENTORY_ADJUSTMENTS, f"{warehouse}:{sku}", body)
        self.ledger.receive(warehouse, sku, quantity)

    def now(self) -> float:
        return time.monotonic() - self.started_at

    async def run(self, orders: int, window: float, poison: int, peak: int = 0) -> Ledger:
        self.started_at = time.monotonic()
        specs = draw_orders(self.rng, self.catalogue, orders, window, peak)
        self.ledger.orders = specs
        receipts = receipt_plan(self.rng, self.catalogue, specs, window)
        poisons = draw_poison(self.rng, self.catalogue, poison, window)
        work = [
            *(self._at(spec.at, functools.partial(self._order, spec)) for spec in specs),
            *(self._at(at, functools.partial(self._receive, w, sku, n, ref)) for at, w, sku, n, ref in receipts),
            *(self._at(at, functools.partial(self._poison, *p)) for at, p in poisons),
        ]
        await asyncio.gather(*work)
        return self.ledger

    async def _at(self, at: float, action: Callable[[], Awaitable[None]]) -> None:
        await asyncio.sleep(max(0.0, at - self.now()))
        try:
            await action()
        except Unanswered as exc:
            self.ledger.unanswered.append(str(exc))
            print(f"  [{self.now():6.1f}s] not answered: {exc}", flush=True)

    async def _order(self, spec: OrderSpec) -> None:
        if spec.scenario == "early_cancel":  # the channel's cancel request travels ahead of its order
            await self._cancel(spec)
            await asyncio.sleep(spec.cancel_after or 0.0)
        await self._submit(spec)
        if spec.cancel_after is not None and spec.scenario != "early_cancel":
            await asyncio.sleep(spec.cancel_after)
            await self._cancel(spec)

    async def _submit(self, spec: OrderSpec) -> None:
        run = self.ledger.run
        if spec.via == "kafka":
            body = json.dumps(order_document(spec, run)).encode()
            await self.outside.publish(topics.ORDERS_SUBMITTED, f"{spec.channel}:{spec.external_id}", body)
            spec.accepted = True
            spec.answers.append("published")
            return
        if spec.via == "shopify":
            shopify_id = 10**12 + int(hashlib.sha256(spec.external_id.encode()).hexdigest()[:10], 16)
            spec.external_id = f"{DEVELOPMENT_SHOP}:{shopify_id}"
            raw = json.dumps(shopify.orders_create(order_document(spec, run), shopify_id)).encode()
            request: dict[str, Any] = {"content": raw, "headers": shopify.signed_headers(raw, str(uuid.uuid4()))}
            path = shopify.WEBHOOK_PATH
        else:
            request, path = {"json": order_document(spec, run)}, "/v1/orders"
        response = await self.outside.post(path, spec.number, f"order {spec.number}", **request)
        spec.answers.append(str(response.status_code))
        if response.status_code == 202:
            spec.accepted = True
            spec.order_id = response.json()["order_id"]
        else:
            self.ledger.unanswered.append(f"order {spec.number} refused: {response.status_code} {response.text[:300]}")

    async def _cancel(self, spec: OrderSpec) -> None:
        lines = None if spec.cancel_lines is None else [{"sku": s, "quantity": q} for s, q in spec.cancel_lines]
        if spec.via == "kafka":
            request = {"channel": spec.channel, "external_id": spec.external_id, "reason": "chaos: changed my mind"}
            record = json.dumps(request | ({"lines": lines} if lines else {})).encode()
            await self.outside.publish(topics.CANCEL_REQUESTS, f"{spec.channel}:{spec.external_id}", record)
            spec.cancel_outcome = "published"
            return
        if spec.order_id is None:
            return
        body = {"reason": "chaos: changed my mind"} | ({"lines": lines} if lines else {})
        response = await self.outside.post(
            f"/v1/orders/{spec.order_id}/cancel", spec.number, f"cancel {spec.number}", json=body
        )
        spec.cancel_outcome = str(response.status_code)

    async def _poison(self, record: PoisonRecord, value: bytes | None, headers: Any) -> None:
        self.ledger.poison.append(record)
        if record.contradicts is not None:  # the line it contradicts goes first, on the same partition
            await self._receive(*record.contradicts)
        await self.outside.publish(topics.BY_NAME[record.topic], record.key, value, headers or None)
        record.sent = True
