"""Reading the services' /metrics the way Prometheus does, for the demo and the tests: samples, the change
between two scrapes, and quantiles estimated from histogram buckets as PromQL's histogram_quantile does."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

# (sample name, sorted label pairs) -> value
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): float(sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def exported_names(text: str) -> set[str]:
    """Every sample name a /metrics page can carry, including families that have no sample yet."""
    names: set[str] = set()
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "summary": ("_sum", "_count")}
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names.update(family.name + suffix for suffix in suffixes.get(family.type, ()))
        names.update(sample.name for sample in family.samples)
    return names


def delta(after: Samples, before: Samples) -> Samples:
    return {key: value - before.get(key, 0.0) for key, value in after.items()}


def total(samples: Samples, name: str, **labels: str) -> float:
    """Sum of the samples of a name whose labels include the given ones."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= set(ls))


def by_label(samples: Samples, name: str, label: str) -> dict[str, float]:
    sums: dict[str, float] = {}
    for (n, labels), value in samples.items():
        if n == name:
            key = dict(labels).get(label, "")
            sums[key] = sums.get(key, 0.0) + value
    return sums


def buckets(samples: Samples, histogram: str) -> list[tuple[float, float]]:
    """(upper bound, cumulative count) of a histogram, summed over its other labels, by upper bound."""
    counts: dict[float, float] = {}
    for (name, labels), value in samples.items():
        if name == f"{histogram}_bucket":
            bound = float(dict(labels)["le"])
            counts[bound] = counts.get(bound, 0.0) + value
    return sorted(counts.items())


@dataclass(frozen=True)
class Estimate:
    """A quantile interpolated within the bucket (lower, upper] that holds it: the true value lies in there."""

    value: float
    lower: float
    upper: float


def quantile(q: float, cumulative: list[tuple[float, float]]) -> Estimate | None:
    """histogram_quantile(q): linear interpolation inside the bucket where the q-th observation falls."""
    if not cumulative or cumulative[-1][1] <= 0:
        return None
    rank = q * cumulative[-1][1]
    lower, below = 0.0, 0.0
    for upper, count in cumulative:
        if count >= rank:
            if math.isinf(upper):  # beyond the last finite bound: all we know is "more than lower"
                return Estimate(lower, lower, upper)
            share = (rank - below) / (count - below) if count > below else 1.0
            return Estimate(lower + (upper - lower) * share, lower, upper)
        lower, below = upper, count
    return None


def count_of(cumulative: list[tuple[float, float]]) -> int:
    return int(cumulative[-1][1]) if cumulative else 0


def merge(*pages: Mapping[tuple[str, tuple[tuple[str, str], ...]], float]) -> Samples:
    """Samples of several services in one map (the services' label sets differ, so nothing collides
    except unlabelled families every service exports; those are summed)."""
    merged: Samples = {}
    for page in pages:
        for key, value in page.items():
            merged[key] = merged.get(key, 0.0) + value
    return merged
