"""Available-to-promise per warehouse for dashboards and low-stock alerts, refreshed periodically.

Aggregates, not per-SKU series: SKUs at or below a threshold, SKUs with nothing available and units
available, per configured warehouse. That keeps one series per warehouse whatever the size of the
catalogue; which SKUs are low is a question for `oms inventory show`, not for Prometheus labels.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import asyncpg

from shared.reference.warehouses import Warehouse

from . import repository
from .metrics import STOCK_AVAILABLE, STOCK_LOW_THRESHOLD, STOCK_SKUS_LOW, STOCK_SKUS_OUT

log = logging.getLogger(__name__)
# Rows of warehouses missing from the configuration are summed here rather than labelled by their id.
UNCONFIGURED = "unconfigured"


class StockLevels:
    def __init__(self, pool: asyncpg.Pool, warehouses: Sequence[Warehouse], threshold: int, every: float) -> None:
        self.pool = pool
        self.warehouses = [w.id for w in warehouses]
        self.threshold = threshold
        self.every = every

    async def run(self) -> None:
        STOCK_LOW_THRESHOLD.set(self.threshold)
        while True:
            try:
                await self.refresh()
            except Exception as exc:  # the database may be away for a while; the gauges keep their last values
                log.warning("stock levels not refreshed (%s)", exc.__class__.__name__)
            await asyncio.sleep(self.every)

    async def refresh(self) -> None:
        async with self.pool.acquire() as conn:
            rows = await repository.stock_levels(conn, self.threshold)
        totals = {w: [0, 0, 0] for w in [*self.warehouses, UNCONFIGURED]}
        for row in rows:
            total = totals[row["warehouse_id"] if row["warehouse_id"] in totals else UNCONFIGURED]
            total[0] += row["low"]
            total[1] += row["out"]
            total[2] += row["available"]
        for warehouse, (low, out, available) in totals.items():
            STOCK_SKUS_LOW.labels(warehouse).set(low)
            STOCK_SKUS_OUT.labels(warehouse).set(out)
            STOCK_AVAILABLE.labels(warehouse).set(available)
