"""The KPI report for operators (`oms kpi`): GET /v1/kpis over the orders placed in [since, until), for all of them
or per channel."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.exceptions import RequestValidationError
from pydantic import BeforeValidator

from shared.backbone.auth import OPERATORS_ONLY
from shared.backbone.http import StrictQuery
from shared.backbone.runtime import Runtime
from shared.contracts.envelope import now
from shared.contracts.events import Moment

from .answers import KPIS_ANSWERS
from .reports import Reporting

LONGEST = timedelta(days=366)
DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]")


def date_time_text(value: object) -> object:
    """An RFC 3339 date-time, as the document says: pydantic would also read a number (`until=0.5`) as seconds since
    1970, a report on a period nobody asked for."""
    if isinstance(value, str) and not DATE_TIME.match(value):
        raise ValueError("a date and time (RFC 3339, e.g. 2026-11-02T00:00:00Z)")
    return value


# A moment the database can take (1970 to 9999 in UTC: year 1 at +14:00 was not), given as text.
Bound = Annotated[Moment, BeforeValidator(date_time_text)]


class Period(StrictQuery):
    """The orders placed from `since` (default: a day before `until`) up to `until` (default: now), for all of them or
    per channel with `by=channel`; a misspelt parameter must not quietly report on something else."""

    since: Bound | None = None
    until: Bound | None = None
    by: Literal["channel"] | None = None


def kpis_api(runtime: Runtime, reporting: Reporting) -> APIRouter:
    router = APIRouter()

    # The 200's shape is declared (answers.py) but not made the response model: the report goes out as built.
    @router.get("/v1/kpis", dependencies=[OPERATORS_ONLY], responses=KPIS_ANSWERS)
    async def kpis(period: Annotated[Period, Query()]) -> dict[str, Any]:
        """The KPIs of the orders placed in the period (docs/kpis.md defines each figure)."""
        end = period.until or now()
        start = period.since or end - timedelta(days=1)
        if not start < end or end - start > LONGEST:
            # Refused in FastAPI's own words (each error under `detail`), as the document declares every 422.
            where = "since" if period.since is not None else "until"
            message = f"since must come before until, at most {LONGEST.days} days before"
            raise RequestValidationError([{"type": "value_error", "loc": ("query", where), "msg": message}])
        async with runtime.pool.acquire() as conn:
            return await reporting.report(conn, start, end, period.by)

    return router
