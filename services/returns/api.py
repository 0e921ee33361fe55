"""Returns' HTTP API: a channel asks to return units of one of its orders (`POST /v1/orders/{id}/returns`), reads
its returns and the order's refunds (of returns and of order changes); operators list them and approve or reject those
under review. Thin: decode, one handler call in one transaction, the outcome mapped to a status code with every
reason."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Body, Depends, HTTPException, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from shared.backbone import aftercommit
from shared.backbone.answers import (
    AUTHENTICATED,
    OPERATOR_ONLY,
    WITH_A_BODY,
    Answers,
    either,
    invalid_or,
    not_found,
    refused,
)
from shared.backbone.auth import OPERATORS_ONLY, Authenticated, Caller, forbidden, operator
from shared.backbone.http import Listing
from shared.backbone.runtime import Runtime
from shared.contracts.events import PricedLine, Resolution, ReturnLine, Storable

from . import domain, repository
from .answers import RefundsOfOrder, ReturnAnswer, ReturnRates, Returns, ReturnsOfOrder, ReturnView
from .handlers import Outcome, ReturnsHandlers

# authorised 201, under review 202, rejected by the policy 409 (with its reasons, the return recorded).
DECIDED = {domain.AUTHORISED: 201, domain.REVIEW: 202, domain.REJECTED: 409}


class ReturnBody(Storable):
    """The units to take back with a reason code each, the customer's note, the resolution wanted, and the
    channel's own id of the request (a repeat with the same id gets the first answer)."""

    model_config = ConfigDict(extra="forbid")
    lines: list[ReturnLine] = Field(min_length=1, max_length=100)
    note: str | None = Field(default=None, max_length=1000)
    resolution: Resolution = "refund"
    exchange_for: list[PricedLine] | None = Field(default=None, min_length=1, max_length=100)
    request_id: str | None = Field(default=None, min_length=1, max_length=128)


class Decision(Storable):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(default="decided by an operator", min_length=1, max_length=500)


class ReturnsQuery(Listing):
    status: domain.Status | None = None


class RatesQuery(Listing):
    by: Literal["channel", "sku"] = "channel"


class ReturnRefusal(BaseModel):
    """A request or decision refused, with each reason."""

    detail: str
    reasons: list[str]


RETURN = "The return as it stands"
UNKNOWN_ORDER = not_found("An order returns does not know (yet)")
REQUEST_ANSWERS: Answers = {
    200: {
        "model": ReturnAnswer,
        "description": f"{RETURN}: a repeat of a request (same request_id), answered as first",
    },
    201: {"model": ReturnAnswer, "description": f"{RETURN}: authorised, with its RMA"},
    202: {"model": ReturnAnswer, "description": f"{RETURN}: under review by an operator"},
    409: either(
        f"{RETURN}, rejected by the returns policy with its reasons; or, in a ReturnRefusal's shape, refused before it"
        " was recorded",
        ReturnAnswer.__name__,
        ReturnRefusal.__name__,
    ),
    **UNKNOWN_ORDER,
    **invalid_or("A body that does not fit the schema, or lines that do not fit the order", ReturnRefusal),
    **AUTHENTICATED,
    **WITH_A_BODY,
}
DECISION_ANSWERS: Answers = {
    200: {"model": ReturnAnswer, "description": f"{RETURN} after the decision"},
    **not_found("No such return"),
    409: refused(ReturnRefusal, "The return is not under review"),
    **invalid_or("A body that does not fit the schema", ReturnRefusal),
    **OPERATOR_ONLY,
    **WITH_A_BODY,
}


def returns_api(runtime: Runtime, handlers: ReturnsHandlers) -> APIRouter:
    router = APIRouter()

    async def answer(conn: Any, outcome: Outcome, decided: int | None = None) -> JSONResponse:
        """The return as it stands; a request's outcome in the status code (DECIDED), or `decided` for an
        operator's decision that was taken."""
        if outcome.verdict == "unknown":
            return JSONResponse({"detail": "no such order or return"}, status_code=404)
        if outcome.verdict in ("invalid", "refused"):
            code = 422 if outcome.verdict == "invalid" else 409
            return JSONResponse(
                {"detail": "; ".join(outcome.reasons), "reasons": list(outcome.reasons)}, status_code=code
            )
        assert outcome.return_id is not None
        view = await repository.return_view(conn, outcome.return_id)
        assert view is not None
        body = {**view, "duplicate": outcome.verdict == "duplicate"}
        status = 200 if body["duplicate"] else decided or DECIDED.get(view["status"], 200)
        return JSONResponse(body, status_code=status)

    @router.post("/v1/orders/{order_id}/returns", status_code=201, responses=REQUEST_ANSWERS)
    async def request_return(
        caller: Authenticated, order_id: UUID, body: Annotated[ReturnBody, Body()]
    ) -> JSONResponse:
        async with runtime.pool.acquire() as conn, aftercommit.transaction(conn):
            channel = await repository.channel_of(conn, order_id)
            if channel is None:
                raise HTTPException(404, "no such order (or not yet known to returns)")
            if not caller.may_act_for(channel):
                raise forbidden("this API key acts for another channel")
            key = None if body.request_id is None else f"{channel}:{body.request_id}"
            request = domain.Request(tuple(body.lines), body.note, body.resolution, tuple(body.exchange_for or ()))
            outcome = await handlers.request(conn, order_id, request, key, "api", cause=None)
            return await answer(conn, outcome)

    @router.get(
        "/v1/returns/rates",
        dependencies=[OPERATORS_ONLY],
        responses={200: {"model": ReturnRates}, **OPERATOR_ONLY},
    )
    async def return_rates(query: Annotated[RatesQuery, Query()]) -> dict[str, Any]:
        """Units returned per unit shipped, by channel or by SKU, the highest first (before /{return_id})."""
        async with runtime.pool.acquire() as conn:
            return {"by": query.by, "rates": await repository.return_rates(conn, query.by, query.limit)}

    @router.get(
        "/v1/returns/{return_id}",
        responses={200: {"model": ReturnView}, **not_found("No such return"), **AUTHENTICATED},
    )
    async def show_return(caller: Authenticated, return_id: UUID) -> dict[str, Any]:
        async with runtime.pool.acquire() as conn:
            view = await repository.return_view(conn, return_id)
            channel = None if view is None else await repository.channel_of(conn, UUID(view["order_id"]))
        if view is None:
            raise HTTPException(404, "no such return")
        if channel is not None and not caller.may_act_for(channel):
            raise forbidden("this API key acts for another channel")
        return view

    async def refuse_unknown_or_other_channels(conn: Any, order_id: UUID, caller: Caller) -> None:
        """404 for an order returns does not know, 403 for another channel's (operators may act on any)."""
        channel = await repository.channel_of(conn, order_id)
        if channel is None:
            raise HTTPException(404, "no such order (or not yet known to returns)")
        if not caller.may_act_for(channel):
            raise forbidden("this API key acts for another channel")

    @router.get(
        "/v1/orders/{order_id}/returns",
        responses={200: {"model": ReturnsOfOrder}, **UNKNOWN_ORDER, **AUTHENTICATED},
    )
    async def returns_of_order(caller: Authenticated, order_id: UUID) -> dict[str, Any]:
        async with runtime.pool.acquire() as conn:
            await refuse_unknown_or_other_channels(conn, order_id, caller)
            found = await repository.list_returns(conn, None, order_id, 1000)
        return {"order_id": str(order_id), "returns": found}

    @router.get(
        "/v1/orders/{order_id}/refunds",
        responses={200: {"model": RefundsOfOrder}, **UNKNOWN_ORDER, **AUTHENTICATED},
    )
    async def refunds_of_order(caller: Authenticated, order_id: UUID) -> dict[str, Any]:
        """Every refund of the order: of its returns' units and of changes that lowered its total."""
        async with runtime.pool.acquire() as conn:
            await refuse_unknown_or_other_channels(conn, order_id, caller)
            found = await repository.refunds_of_order(conn, order_id)
        return {"order_id": str(order_id), "refunds": found}

    @router.get(
        "/v1/returns",
        dependencies=[OPERATORS_ONLY],
        responses={200: {"model": Returns}, **OPERATOR_ONLY},
    )
    async def list_returns(query: Annotated[ReturnsQuery, Query()]) -> dict[str, Any]:
        async with runtime.pool.acquire() as conn:
            return {"returns": await repository.list_returns(conn, query.status, None, query.limit)}

    async def review(caller: Caller, return_id: UUID, approve: bool, body: Decision | None) -> JSONResponse:
        reason = (body or Decision()).reason
        async with runtime.pool.acquire() as conn, aftercommit.transaction(conn):
            outcome = await handlers.review(conn, return_id, approve, f"operator:{caller.key_id}", reason)
            return await answer(conn, outcome, decided=200)

    @router.post("/v1/returns/{return_id}/{verdict}", responses=DECISION_ANSWERS)
    async def decide(
        caller: Annotated[Caller, Depends(operator)],
        return_id: UUID,
        verdict: Literal["approve", "reject"],
        body: Annotated[Decision | None, Body()] = None,
    ) -> JSONResponse:
        return await review(caller, return_id, verdict == "approve", body)

    return router
