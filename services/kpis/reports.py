"""The KPI report for a period: the facts of the orders placed in it read from the database, their shipments priced
by the cost model, and the KPIs worked out (domain), for all orders or per channel."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg

from shared.backbone.db import Conn
from shared.reference.rates import ShippingRules

from . import domain, repository
from .costs import CostModel, order_cost


@dataclass(frozen=True)
class Reporting:
    rules: domain.Rules
    shipping: ShippingRules
    cost: CostModel

    async def facts(
        self, conn: Conn, since: datetime, until: datetime, only: Collection[UUID] | None = None
    ) -> list[domain.OrderFacts]:
        """The facts of the orders placed in [since, until), or of those of them in `only`."""
        rows = await repository.facts(conn, since, until, only)
        skus = sorted({sku for r in rows for s in r["shipments"] for sku in s["lines"]})
        weights = await repository.weights(conn, skus)
        return [self._order(r, weights) for r in rows]

    def _order(self, row: asyncpg.Record, weights: dict[str, int]) -> domain.OrderFacts:
        shipments = row["shipments"]
        promises = [date.fromisoformat(s["promised"]) for s in shipments if s["promised"]]
        return domain.OrderFacts(
            order_id=row["order_id"],
            channel=row["channel"],
            placed_at=row["placed_at"],
            ordered=row["ordered"],
            first_outcome=row["outcome"],
            first_reserved=row["reserved"] or {},
            held_at=row["held_at"],
            hold_ended_at=row["hold_ended_at"],
            ready_at=max((datetime.fromisoformat(s["shipped_at"]) for s in shipments), default=None),
            delivered_at=row["delivered_at"],
            promised=max(promises, default=None),
            units_shipped=sum(n for s in shipments for n in s["lines"].values()),
            units_cancelled=row["units_cancelled"],
            document_exception=row["document_exception"],
            returned=row["returned"],
            damaged=row["damaged"],
            cancelled=row["cancelled"],
            cost=order_cost(self.shipping, self.cost, row["ship_country"], shipments, weights) if shipments else None,
            changes_requested=row["changes_requested"],
            changes_applied=row["changes_applied"],
            changes_refused=row["changes_refused"],
            due_back={c: Decimal(v) for c, v in row["due_back"].items()},
            refunded={c: Decimal(v) for c, v in row["refunded"].items()},
            changed_to=row["changed_to"],
        )

    async def report(self, conn: Conn, since: datetime, until: datetime, by: str | None) -> dict[str, Any]:
        orders = await self.facts(conn, since, until)
        rejected = await repository.rejections(conn, since, until)
        key = (lambda o: o.channel) if by == "channel" else None
        return {
            "since": since.isoformat(),
            "until": until.isoformat(),
            "by": by,
            "currency": self.cost.currency,
            "groups": domain.grouped(orders, self.rules, key, rejected),
        }
