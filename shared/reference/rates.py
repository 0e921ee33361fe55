"""The shipping rules as configured (deploy/config/carriers.json), read by fulfillment (carrier choice at
packing) and returns (return labels): business calendar, promise per service level,
carriers with their zones, services, transit times, weight-banded prices and tracking number formats.

Plain validated data, no I/O: the settings read the file, the domain decides with what is here.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shared.contracts.events import ServiceLevel

TRACKING_NUMBER_SLOT = "{tracking_number}"


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Calendar(Rule):
    """Business days: Monday to Friday in `timezone`, except `holidays` (warehouses and carriers alike)."""

    timezone: str
    holidays: frozenset[date] = frozenset()

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        ZoneInfo(value)  # raises for an unknown zone name
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class WeightBand(Rule):
    up_to_grams: int = Field(gt=0)
    price: Decimal = Field(ge=0)


class CarrierService(Rule):
    code: str = Field(pattern=r"^[a-z0-9-]+$")
    transit_days: dict[str, int] = Field(description="business days from hand-over to delivery, per zone")
    rates: dict[str, tuple[WeightBand, ...]] = Field(description="price per weight band (ascending), per zone")

    @model_validator(mode="after")
    def _bands_ascend(self) -> CarrierService:
        for zone, bands in self.rates.items():
            limits = [b.up_to_grams for b in bands]
            if not limits or limits != sorted(set(limits)):
                raise ValueError(f"{self.code}: weight bands of zone {zone} must be non-empty and ascending")
            if zone not in self.transit_days:
                raise ValueError(f"{self.code}: zone {zone} has rates but no transit time")
        return self

    def price(self, zone: str, weight_grams: int) -> Decimal | None:
        """The price of the first band the weight fits in; None when the service does not take it."""
        return next((b.price for b in self.rates.get(zone, ()) if weight_grams <= b.up_to_grams), None)


class TrackingFormat(Rule):
    """luhn: prefix + 11 digits + Luhn digit; s10: UPU S10 (2 letters, 8 digits, mod-11 digit, country);
    ups: `1Z` + 6-character shipper + 2-digit service + 7 digits + weighted mod-10 digit."""

    scheme: Literal["luhn", "s10", "ups"]
    prefix: str = Field(pattern=r"^[A-Z0-9]*$")
    suffix: str = Field(default="", pattern=r"^[A-Z]*$")

    @model_validator(mode="after")
    def _fits_scheme(self) -> TrackingFormat:
        shapes = {"luhn": (2, 0), "s10": (2, 2), "ups": (10, 0)}
        if (len(self.prefix), len(self.suffix)) != shapes[self.scheme]:
            raise ValueError(f"{self.scheme} needs a prefix/suffix of lengths {shapes[self.scheme]}")
        if self.scheme == "ups" and not self.prefix.startswith("1Z"):
            raise ValueError("ups tracking numbers start with 1Z")
        return self


class Carrier(Rule):
    code: str = Field(pattern=r"^[a-z0-9-]+$")
    name: str
    tracking: TrackingFormat
    tracking_url: str = Field(description=f"link for the customer, with {TRACKING_NUMBER_SLOT} in it")
    zones: dict[str, frozenset[str]] = Field(description="zone name -> destination countries (ISO alpha-2)")
    services: tuple[CarrierService, ...]

    @model_validator(mode="after")
    def _consistent(self) -> Carrier:
        if TRACKING_NUMBER_SLOT not in self.tracking_url:
            raise ValueError(f"{self.code}: tracking_url needs {TRACKING_NUMBER_SLOT}")
        for service in self.services:
            unknown = set(service.rates) - set(self.zones)
            if unknown:
                raise ValueError(f"{self.code}.{service.code}: unknown zones {sorted(unknown)}")
        services = [s.code for s in self.services]
        if len(services) != len(set(services)):
            raise ValueError(f"{self.code}: service codes must be unique")
        seen: dict[str, str] = {}
        for zone, countries in self.zones.items():
            for country in countries:
                if country in seen:
                    raise ValueError(f"{self.code}: {country} is in zones {seen[country]} and {zone}")
                seen[country] = zone
        return self

    def zone_of(self, country: str) -> str | None:
        return next((zone for zone, countries in self.zones.items() if country in countries), None)

    def tracking_link(self, tracking_number: str) -> str:
        return self.tracking_url.replace(TRACKING_NUMBER_SLOT, tracking_number)


class ShippingRules(Rule):
    calendar: Calendar
    promise_business_days: dict[ServiceLevel, int] = Field(
        description="business days from the day a shipment leaves the warehouse to the promised delivery"
    )
    carriers: tuple[Carrier, ...]

    @model_validator(mode="after")
    def _complete(self) -> ShippingRules:
        missing = {"standard", "express", "overnight"} - set(self.promise_business_days)
        if missing:
            raise ValueError(f"no promise for service levels {sorted(missing)}")
        codes = [c.code for c in self.carriers]
        if len(codes) != len(set(codes)):
            raise ValueError("carrier codes must be unique")
        return self

    def carrier(self, code: str) -> Carrier | None:
        return next((c for c in self.carriers if c.code == code), None)
