"""Where a parcel goes, roughly, and how far that is from a warehouse. Pure: tables and arithmetic.

The approximation, stated once: a destination is a single point, the centroid of its country (the
population-weighted middle where the geographic one would mislead), refined for NL and DE by the first
digit of the postal code, whose zones are geographic in both. The distance is the great-circle distance
(haversine, earth radius 6371 km) from the warehouse's coordinates to that point: no roads, ferries,
borders or carrier networks. An unknown country has no point; routing then falls back to warehouse priority.
The ship-to region is not used: it is free text in most channels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

EARTH_RADIUS_KM = 6371.0


@dataclass(frozen=True)
class Location:
    latitude: float
    longitude: float


COUNTRY_CENTROIDS: dict[str, Location] = {
    code: Location(lat, lon)
    for code, lat, lon in (
        ("AT", 47.6, 14.1),
        ("BE", 50.6, 4.6),
        ("BG", 42.7, 25.3),
        ("CA", 45.5, -75.0),  # where most Canadians live, not the middle of the map
        ("CH", 46.8, 8.2),
        ("CY", 35.0, 33.2),
        ("CZ", 49.8, 15.5),
        ("DE", 51.1, 10.4),
        ("DK", 55.7, 10.5),
        ("EE", 58.7, 25.0),
        ("ES", 40.2, -3.6),
        ("FI", 61.5, 24.5),
        ("FR", 46.6, 2.4),
        ("GB", 52.6, -1.5),
        ("GR", 39.1, 22.0),
        ("HR", 45.1, 15.2),
        ("HU", 47.2, 19.4),
        ("IE", 53.2, -8.2),
        ("IT", 42.8, 12.6),
        ("LT", 55.2, 23.9),
        ("LU", 49.8, 6.1),
        ("LV", 56.9, 24.6),
        ("MT", 35.9, 14.4),
        ("NL", 52.2, 5.3),
        ("NO", 60.5, 9.5),
        ("PL", 52.0, 19.1),
        ("PT", 39.6, -8.0),
        ("RO", 45.9, 24.9),
        ("SE", 59.7, 16.0),
        ("SI", 46.1, 14.8),
        ("SK", 48.7, 19.7),
        ("US", 39.8, -98.6),
    )
}

# First digit of the postal code -> the middle of that postal zone.
POSTAL_ZONES: dict[str, dict[str, Location]] = {
    "NL": {
        "1": Location(52.4, 4.9),  # Amsterdam, Noord-Holland
        "2": Location(52.1, 4.4),  # The Hague, Leiden, Haarlem
        "3": Location(52.0, 4.8),  # Rotterdam, Utrecht
        "4": Location(51.55, 4.3),  # Zeeland, West Brabant
        "5": Location(51.5, 5.4),  # Eindhoven, 's-Hertogenbosch
        "6": Location(51.5, 5.9),  # Limburg, Nijmegen, Arnhem
        "7": Location(52.3, 6.5),  # Overijssel, Achterhoek
        "8": Location(52.9, 5.8),  # Friesland, Flevoland, Zwolle
        "9": Location(53.1, 6.7),  # Groningen, Drenthe
    },
    "DE": {
        "0": Location(51.0, 13.0),  # Dresden, Leipzig
        "1": Location(52.7, 13.4),  # Berlin, Brandenburg
        "2": Location(53.6, 9.8),  # Hamburg, Bremen, Schleswig-Holstein
        "3": Location(52.0, 10.0),  # Hanover, Kassel, Magdeburg
        "4": Location(51.6, 7.3),  # Ruhr, Düsseldorf, Münster
        "5": Location(50.6, 7.0),  # Cologne, Bonn, Koblenz
        "6": Location(49.9, 8.3),  # Frankfurt, Mainz, Saarland
        "7": Location(48.6, 9.0),  # Stuttgart, Karlsruhe, Freiburg
        "8": Location(48.1, 11.5),  # Munich, Augsburg
        "9": Location(49.7, 11.2),  # Nuremberg, Würzburg
    },
}


def destination(country: str, postal_code: str | None = None) -> Location | None:
    """The point a parcel for this country and postal code is taken to go to; None when unknown."""
    zones = POSTAL_ZONES.get(country, {})
    prefix = (postal_code or "").strip()[:1]
    return zones.get(prefix) or COUNTRY_CENTROIDS.get(country)


def distance_km(a: Location, b: Location) -> float:
    """Great-circle distance on a spherical earth."""
    lat1, lat2 = math.radians(a.latitude), math.radians(b.latitude)
    dlat = lat2 - lat1
    dlon = math.radians(b.longitude - a.longitude)
    h = math.sin(dlat / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(dlon / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(h))
