"""Risk assessment of an order at intake, from the configured rules (deploy/config/risk.json, OMS_RISK_RULES_FILE):
velocity per e-mail, shipping address, payment reference and IP over rolling windows, blocklists, a first order of
high value, a billing country other than the shipping one, risky destinations, and the channel's own signal. Each
rule that fires adds its score and names the hold type it asks for; the score gives the level and the
recommendation (accept, investigate, cancel), and anything but accept puts the order on hold, one hold per type
asked for. Pure: the intake reads from the database what was seen before and passes it in."""

from __future__ import annotations

import hashlib
import ipaddress
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.contracts.events import Address, HoldType, SubmittedOrder

from .credit import CreditLimits

HOLD_TYPES: tuple[HoldType, ...] = ("fraud", "credit", "address", "payment")
Dimension = Literal["email", "address", "payment", "ip"]
Level = Literal["low", "medium", "high"]
Recommendation = Literal["accept", "investigate", "cancel"]
EVER = datetime(1970, 1, 1, tzinfo=UTC)  # "since" of a look-up over the whole history (a first-time customer)


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Velocity(_Rule):
    """Orders (and their amounts) per e-mail, address, payment reference or IP within a rolling window, this one
    included: over `max_orders` or over `max_amount` fires."""

    per: Dimension
    window_hours: float = Field(gt=0, le=24 * 366)
    max_orders: int | None = Field(default=None, ge=1)
    max_amount: Decimal | None = Field(default=None, gt=0)
    score: int = Field(ge=0, le=100)
    hold: HoldType = "fraud"

    @model_validator(mode="after")
    def _a_limit(self) -> Velocity:
        if self.max_orders is None and self.max_amount is None:
            raise ValueError(f"velocity per {self.per}: give max_orders, max_amount or both")
        return self

    @property
    def window(self) -> timedelta:
        return timedelta(hours=self.window_hours)


Match = Literal["exact", "normalised"]


class Listed(_Rule):
    value: str = Field(min_length=1)
    match: Match = "normalised"


class ListedAddress(_Rule):
    line1: str = Field(min_length=1)
    line2: str | None = None
    postal_code: str = Field(min_length=1)
    country: str = Field(pattern=r"^[A-Z]{2}$")
    match: Match = "normalised"


class Blocklist(_Rule):
    """E-mails (exact: the same address; normalised: case, dots and +tags of Gmail ignored), e-mail domains
    (exact: that domain; normalised: it and its subdomains) and addresses (shipping or billing; exact: the same
    fields; normalised: case, accents, punctuation, spaces and common abbreviations ignored)."""

    emails: tuple[Listed, ...] = ()
    domains: tuple[Listed, ...] = ()
    addresses: tuple[ListedAddress, ...] = ()
    score: int = Field(default=100, ge=0, le=100)
    hold: HoldType = "fraud"


class FirstTimeCustomer(_Rule):
    """A customer's first order (no earlier one from the same e-mail) above this amount."""

    above: Decimal = Field(gt=0)
    score: int = Field(ge=0, le=100)
    hold: HoldType = "fraud"


class CountryMismatch(_Rule):
    score: int = Field(ge=0, le=100)
    hold: HoldType = "fraud"


class Destination(_Rule):
    country: str = Field(pattern=r"^[A-Z]{2}$")
    postal_prefix: str | None = None


class RiskyDestinations(_Rule):
    """Places parcels should not go without a look: a country, or postal codes of a country starting so
    (freight forwarders, known drop points)."""

    places: tuple[Destination, ...] = ()
    score: int = Field(default=30, ge=0, le=100)
    hold: HoldType = "address"


class ChannelSignal(_Rule):
    """The channel's own recommendation (Shopify's order risk): the score it adds when it says investigate or
    cancel."""

    investigate: int = Field(default=40, ge=0, le=100)
    cancel: int = Field(default=90, ge=0, le=100)
    hold: HoldType = "fraud"


DEFAULT_TIME_LIMITS: dict[HoldType, float] = {"fraud": 72.0, "address": 48.0, "payment": 24.0, "credit": 168.0}


class RiskRules(_Rule):
    velocity: tuple[Velocity, ...] = ()
    blocklist: Blocklist = Blocklist()
    first_time_customer: FirstTimeCustomer | None = None
    country_mismatch: CountryMismatch | None = None
    risky_destinations: RiskyDestinations = RiskyDestinations()
    channel_signal: ChannelSignal = ChannelSignal()
    # Score (0..100) from which the level is medium or high, and the recommendation investigate or cancel.
    medium_at: int = Field(default=25, ge=1, le=100)
    high_at: int = Field(default=50, ge=1, le=100)
    investigate_at: int = Field(default=50, ge=1, le=100)
    cancel_at: int = Field(default=90, ge=1, le=100)
    # Credit limits of business accounts (an order over its account's limit goes on a credit hold).
    credit: CreditLimits = CreditLimits()
    # A hold older than this is cancelled, and the customer told.
    time_limits_hours: dict[HoldType, float] = Field(default_factory=lambda: dict(DEFAULT_TIME_LIMITS))

    @model_validator(mode="after")
    def _ordered(self) -> RiskRules:
        if not (self.medium_at <= self.high_at and self.investigate_at <= self.cancel_at):
            raise ValueError("thresholds must rise: medium_at <= high_at, investigate_at <= cancel_at")
        missing = [t for t in HOLD_TYPES if t not in self.time_limits_hours]
        if missing or any(hours <= 0 for hours in self.time_limits_hours.values()):
            raise ValueError(f"time_limits_hours: a positive limit for every hold type ({', '.join(HOLD_TYPES)})")
        return self

    def time_limit(self, hold: HoldType) -> timedelta:
        return timedelta(hours=self.time_limits_hours[hold])


# ---- normalisation ----

ABBREVIATIONS = {
    "street": "st",
    "straat": "str",
    "strasse": "str",
    "avenue": "ave",
    "road": "rd",
    "boulevard": "blvd",
    "drive": "dr",
    "lane": "ln",
    "apartment": "apt",
    "suite": "ste",
    "north": "n",
    "south": "s",
    "east": "e",
    "west": "w",
}
GMAIL = frozenset({"gmail.com", "googlemail.com"})


def _plain(text: str) -> str:
    """Lower case, without accents, punctuation as spaces, spaces collapsed."""
    decomposed = unicodedata.normalize("NFKD", text.casefold().replace("ß", "ss"))
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^0-9a-z]+", " ", bare).split())


def normalised_email(email: str) -> str:
    """The mailbox an address reaches: case ignored, a +tag dropped, and Gmail's dots and domains folded."""
    local, _, domain = email.strip().lower().rpartition("@")
    local = local.split("+", 1)[0]
    domain = domain.rstrip(".")
    if domain in GMAIL:
        local, domain = local.replace(".", ""), "gmail.com"
    return f"{local}@{domain}"


def email_domain(email: str) -> str:
    return email.strip().lower().rpartition("@")[2].rstrip(".")


def normalised_address(line1: str, line2: str | None, postal_code: str, country: str) -> str:
    """One address however it is typed: case, accents, punctuation, spaces and common street words ignored."""
    words = [ABBREVIATIONS.get(w, w) for w in _plain(f"{line1} {line2 or ''}").split()]
    return f"{country.upper()}|{_plain(postal_code).replace(' ', '')}|{' '.join(words)}"


def _exact_address(line1: str, line2: str | None, postal_code: str, country: str) -> tuple[str, ...]:
    return (line1.strip().casefold(), (line2 or "").strip().casefold(), postal_code.strip().casefold(), country.upper())


def _address_key(address: Address) -> str:
    return normalised_address(address.line1, address.line2, address.postal_code, address.country)


def normalised_ip(ip: str) -> str | None:
    """The address, or for IPv6 its /64 network (one customer's line); None when it is not an IP address."""
    try:
        parsed = ipaddress.ip_address(ip.strip())
    except ValueError:
        return None
    if parsed.version == 6:
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


def _digest(dimension: Dimension, value: str) -> str:
    # Keys are kept as digests: the velocity history holds no e-mail or address in clear.
    return hashlib.sha256(f"{dimension}:{value}".encode()).hexdigest()


def keys(order: SubmittedOrder) -> dict[Dimension, str]:
    """What the order is counted by, per dimension it has: the digest of its normalised e-mail, shipping address,
    payment reference and IP."""
    found: dict[Dimension, str] = {
        "email": _digest("email", normalised_email(order.customer.email)),
        "address": _digest("address", _address_key(order.shipping_address)),
    }
    if order.payment.reference:
        found["payment"] = _digest("payment", order.payment.reference.strip())
    if order.client_ip and (ip := normalised_ip(order.client_ip)) is not None:
        found["ip"] = _digest("ip", ip)
    return found


# ---- what was seen before ----

Lookup = tuple[Dimension, str, datetime]  # (dimension, key, since)


@dataclass(frozen=True)
class Seen:
    orders: int = 0
    amount: Decimal = Decimal(0)

    def __add__(self, other: Seen) -> Seen:
        return Seen(self.orders + other.orders, self.amount + other.amount)


def lookups(order_keys: Mapping[Dimension, str], rules: RiskRules, at: datetime) -> set[Lookup]:
    """The counts an order's assessment needs from the history: one per velocity rule it has a key for, and
    whether its e-mail was seen ever (a first-time customer)."""
    wanted: set[Lookup] = {(v.per, order_keys[v.per], at - v.window) for v in rules.velocity if v.per in order_keys}
    if rules.first_time_customer is not None:
        wanted.add(("email", order_keys["email"], EVER))
    return wanted


@dataclass
class Tally:
    """The history read from the database, plus the orders of the batch assessed so far (they count for the
    next ones: a burst read in one batch is still a burst), kept per (dimension, key)."""

    history: Mapping[Lookup, Seen]
    batch: dict[tuple[Dimension, str], list[tuple[Decimal, datetime]]] = field(default_factory=dict)

    def seen(self, lookup: Lookup) -> Seen:
        dimension, key, since = lookup
        earlier = [Seen(1, amount) for amount, at in self.batch.get((dimension, key), []) if at >= since]
        return sum(earlier, self.history.get(lookup, Seen()))

    def add(self, order_keys: Mapping[Dimension, str], amount: Decimal, at: datetime) -> None:
        for dimension, key in order_keys.items():
            self.batch.setdefault((dimension, key), []).append((amount, at))


# ---- the assessment ----


@dataclass(frozen=True)
class Fired:
    """A rule that fired: its name, the score it adds, the hold type it asks for, why, and the facts."""

    rule: str
    score: int
    hold: HoldType
    reason: str
    facts: Mapping[str, Any]


@dataclass(frozen=True)
class Assessment:
    score: int
    level: Level
    recommendation: Recommendation
    fired: tuple[Fired, ...]

    @property
    def holds(self) -> dict[HoldType, str]:
        """The holds the order goes on (none when accepted): per type asked for, the reasons of its rules."""
        if self.recommendation == "accept":
            return {}
        reasons: dict[HoldType, list[str]] = {}
        for rule in self.fired:
            if rule.score > 0:
                reasons.setdefault(rule.hold, []).append(rule.reason)
        return {hold: "; ".join(found) for hold, found in reasons.items()}

    def document(self) -> list[dict[str, Any]]:
        """The rules that fired, as stored and shown."""
        return [
            {"rule": f.rule, "score": f.score, "hold": f.hold, "reason": f.reason, "facts": dict(f.facts)}
            for f in self.fired
        ]


def assess(
    order: SubmittedOrder,
    total: Decimal,
    order_keys: Mapping[Dimension, str],
    tally: Tally,
    rules: RiskRules,
    at: datetime,
) -> Assessment:
    """Score the order against every rule; `tally` says what was seen before it (the batch's earlier orders too)."""
    fired = [
        *_velocity(total, order_keys, tally, rules, at),
        *_blocklisted(order, rules.blocklist),
        *_first_time(total, order_keys, tally, rules),
        *_country_mismatch(order, rules),
        *_risky_destination(order, rules.risky_destinations),
        *_channel_signal(order, rules.channel_signal),
    ]
    score = min(100, sum(f.score for f in fired))
    level: Level = "high" if score >= rules.high_at else "medium" if score >= rules.medium_at else "low"
    recommendation: Recommendation = (
        "cancel" if score >= rules.cancel_at else "investigate" if score >= rules.investigate_at else "accept"
    )
    return Assessment(score, level, recommendation, tuple(fired))


def assess_all(
    orders: Iterable[tuple[SubmittedOrder, Decimal, Mapping[Dimension, str], bool]],
    history: Mapping[Lookup, Seen],
    rules: RiskRules,
    at: datetime,
) -> list[Assessment | None]:
    """`assess` for orders read together, in the order given, each counting every one before it; (order, total,
    its keys, whether to assess it): an order not assessed (rejected, an exchange) still counts for the next."""
    tally = Tally(history)
    found: list[Assessment | None] = []
    for order, total, order_keys, assessed in orders:
        found.append(assess(order, total, order_keys, tally, rules, at) if assessed else None)
        tally.add(order_keys, total, at)
    return found


NOUNS: Mapping[Dimension, str] = {
    "email": "e-mail",
    "address": "shipping address",
    "payment": "payment reference",
    "ip": "IP address",
}


def _velocity(
    total: Decimal, order_keys: Mapping[Dimension, str], tally: Tally, rules: RiskRules, at: datetime
) -> Iterable[Fired]:
    for rule in rules.velocity:
        if rule.per not in order_keys:
            continue
        seen = tally.seen((rule.per, order_keys[rule.per], at - rule.window)) + Seen(1, total)
        over_count = rule.max_orders is not None and seen.orders > rule.max_orders
        over_amount = rule.max_amount is not None and seen.amount > rule.max_amount
        if over_count or over_amount:
            window = f"{rule.window_hours:g} h"
            what = f"{seen.orders} orders" if over_count else f"{seen.amount} in orders"
            limit = f"at most {rule.max_orders}" if over_count else f"at most {rule.max_amount}"
            facts = {
                "orders": seen.orders,
                "amount": str(seen.amount),
                "window_hours": rule.window_hours,
                "max_orders": rule.max_orders,
                "max_amount": None if rule.max_amount is None else str(rule.max_amount),
            }
            reason = f"{what} from this {NOUNS[rule.per]} in {window} ({limit})"
            yield Fired(f"velocity.{rule.per}", rule.score, rule.hold, reason, facts)


def _blocklisted(order: SubmittedOrder, blocklist: Blocklist) -> Iterable[Fired]:
    email = order.customer.email
    for listed in blocklist.emails:
        same = (
            normalised_email(email) == normalised_email(listed.value)
            if listed.match == "normalised"
            else email.strip().lower() == listed.value.strip().lower()
        )
        if same:
            facts = {"list": "emails", "match": listed.match}
            yield Fired("blocklist.email", blocklist.score, blocklist.hold, "the e-mail is on the blocklist", facts)
            break
    domain = email_domain(email)
    for listed in blocklist.domains:
        wanted = listed.value.strip().lower().rstrip(".")
        if domain == wanted or (listed.match == "normalised" and domain.endswith(f".{wanted}")):
            facts = {"list": "domains", "domain": wanted, "match": listed.match}
            reason = f"the e-mail's domain {wanted} is on the blocklist"
            yield Fired("blocklist.domain", blocklist.score, blocklist.hold, reason, facts)
            break
    for which, address in (("shipping", order.shipping_address), ("billing", order.billing_address)):
        if address is not None and any(_same_address(address, listed) for listed in blocklist.addresses):
            facts = {"list": "addresses", "address": which}
            reason = f"the {which} address is on the blocklist"
            yield Fired(f"blocklist.{which}_address", blocklist.score, blocklist.hold, reason, facts)


def _same_address(address: Address, listed: ListedAddress) -> bool:
    if listed.match == "exact":
        return _exact_address(address.line1, address.line2, address.postal_code, address.country) == _exact_address(
            listed.line1, listed.line2, listed.postal_code, listed.country
        )
    return _address_key(address) == normalised_address(listed.line1, listed.line2, listed.postal_code, listed.country)


def _first_time(total: Decimal, order_keys: Mapping[Dimension, str], tally: Tally, rules: RiskRules) -> Iterable[Fired]:
    rule = rules.first_time_customer
    if rule is None or total <= rule.above or tally.seen(("email", order_keys["email"], EVER)).orders:
        return
    facts = {"total": str(total), "above": str(rule.above)}
    yield Fired("first_time_high_value", rule.score, rule.hold, f"a first order of {total}, over {rule.above}", facts)


def _country_mismatch(order: SubmittedOrder, rules: RiskRules) -> Iterable[Fired]:
    rule, billing = rules.country_mismatch, order.billing_address
    if rule is None or billing is None or billing.country == order.shipping_address.country:
        return
    facts = {"billing": billing.country, "shipping": order.shipping_address.country}
    reason = f"billed in {billing.country}, shipped to {order.shipping_address.country}"
    yield Fired("country_mismatch", rule.score, rule.hold, reason, facts)


def _risky_destination(order: SubmittedOrder, rule: RiskyDestinations) -> Iterable[Fired]:
    address = order.shipping_address
    postal = _plain(address.postal_code).replace(" ", "")
    for place in rule.places:
        prefix = _plain(place.postal_prefix or "").replace(" ", "")
        if place.country == address.country and postal.startswith(prefix):
            where = place.country + (f" {place.postal_prefix}…" if place.postal_prefix else "")
            facts = {"country": place.country, "postal_prefix": place.postal_prefix}
            yield Fired("risky_destination", rule.score, rule.hold, f"ships to a risky destination ({where})", facts)
            return


def _channel_signal(order: SubmittedOrder, rule: ChannelSignal) -> Iterable[Fired]:
    if order.channel_risk in ("investigate", "cancel"):
        score = rule.investigate if order.channel_risk == "investigate" else rule.cancel
        reason = f"the channel recommends: {order.channel_risk}"
        yield Fired("channel_signal", score, rule.hold, reason, {"recommendation": order.channel_risk})
