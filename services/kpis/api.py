"""The KPI report for operators (`oms kpi`): GET /v1/kpis over the orders placed in [since, until), for all of them
or per channel."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import AwareDatetime

from shared.backbone.auth import OPERATORS_ONLY
from shared.backbone.runtime import Runtime
from shared.contracts.envelope import now

from .reports import Reporting

LONGEST = timedelta(days=366)
PARAMETERS = {"since", "until", "by"}


def kpis_api(runtime: Runtime, reporting: Reporting) -> APIRouter:
    router = APIRouter()

    @router.get("/v1/kpis", dependencies=[OPERATORS_ONLY])
    async def kpis(
        request: Request,
        since: Annotated[AwareDatetime | None, Query()] = None,
        until: Annotated[AwareDatetime | None, Query()] = None,
        by: Annotated[Literal["channel"] | None, Query()] = None,
    ) -> dict[str, Any]:
        """The KPIs of the orders placed from `since` (default: a day before `until`) up to `until` (default: now),
        per channel with `by=channel` (docs/kpis.md defines each figure)."""
        unknown = sorted(set(request.query_params) - PARAMETERS)
        if unknown:  # a misspelt parameter must not quietly report on something else
            raise HTTPException(422, f"unknown query parameters: {', '.join(unknown)}")
        end = until or now()
        start = since or end - timedelta(days=1)
        if not start < end or end - start > LONGEST:
            raise HTTPException(422, f"since must come before until, at most {LONGEST.days} days before")
        async with runtime.pool.acquire() as conn:
            return await reporting.report(conn, start, end, by)

    return router
