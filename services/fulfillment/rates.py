"""The shipping rules fulfillment decides with; the model lives in shared.reference.rates, which returns also
reads (return labels come from the same rate table)."""

from shared.reference.rates import Calendar, Carrier, CarrierService, ShippingRules, TrackingFormat, WeightBand

__all__ = ["Calendar", "Carrier", "CarrierService", "ShippingRules", "TrackingFormat", "WeightBand"]
