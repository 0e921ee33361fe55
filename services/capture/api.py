"""Capture's HTTP API: the generic order intake, Shopify's orders/create webhook, cancel requests, the order view,
and operators' work on orders on hold (list, show, release, cancel). Thin: decode, one handler call in one
transaction, map the outcome to a status code."""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Callable, Coroutine
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Body, Depends, HTTPException, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from prometheus_client import Counter
from pydantic import ConfigDict, Field

from shared.backbone import aftercommit
from shared.backbone.auth import (
    BEARER,
    OPERATORS_ONLY,
    Authenticated,
    Caller,
    authenticated_caller,
    forbidden,
    operator,
)
from shared.backbone.http import Listing, json_body
from shared.backbone.runtime import Runtime
from shared.contracts.events import HoldType, ItemQuantity, OrderChange, Storable, SubmittedOrder

from . import repository, shopify
from .answers import (
    CANCEL_ANSWERS,
    CHANGE_ANSWERS,
    HELD_CANCEL_ANSWERS,
    HOLDS_ANSWERS,
    HOLDS_LIST_ANSWERS,
    RELEASE_ANSWERS,
    SUBMIT_ANSWERS,
    VIEW_ANSWERS,
    WEBHOOK_ANSWERS,
)
from .change_handlers import ChangeOutcome
from .handlers import Accepted, CancelOutcome, CaptureHandlers, HoldOutcome
from .metrics import INTAKE_BUSY
from .settings import CaptureSettings
from .submissions import Busy, Submissions, WebhookDelivery

log = logging.getLogger(__name__)
SHOPIFY_WEBHOOKS = Counter("oms_shopify_webhooks_total", "Shopify webhook deliveries by outcome.", ["outcome"])
REQUEST_STATUS = {"accepted": 202, "duplicate": 202, "refused": 409, "invalid": 422, "unknown": 404}


class CancelBody(Storable):
    """`lines` to cancel part of the order (omit to cancel all of it), and why."""

    model_config = ConfigDict(extra="forbid")
    lines: list[ItemQuantity] | None = Field(default=None, min_length=1, max_length=1000)
    reason: str = Field(default="customer request", min_length=1, max_length=500)


class ReleaseBody(Storable):
    """The holds to release (omit to release every one), and a note for the timeline."""

    model_config = ConfigDict(extra="forbid")
    hold_types: list[HoldType] | None = Field(default=None, min_length=1, max_length=4)
    note: str | None = Field(default=None, min_length=1, max_length=500)


class HeldCancelBody(Storable):
    """Why the order is cancelled: the customer is told these words."""

    model_config = ConfigDict(extra="forbid")
    reason: str = Field(default="we could not confirm your order", min_length=1, max_length=500)


class HoldsQuery(Listing):
    """Which orders on hold to list: those with a hold of this type (any when omitted), at most `limit`."""

    hold_type: HoldType | None = None


HOLD_STATUS = {"released": 200, "cancelled": 200, "refused": 409, "invalid": 422, "unknown": 404}


def accepted(outcome: Accepted, status_code: int = 202) -> JSONResponse:
    body = {"order_id": str(outcome.order_id), "status": outcome.status, "duplicate": outcome.duplicate}
    return JSONResponse(body, status_code=status_code)


def request_answer(outcome: CancelOutcome | ChangeOutcome, accepted: Callable[[], dict[str, Any]]) -> JSONResponse:
    """The answer to a cancel or change request: the reasons when it was refused or invalid, else what `accepted`
    adds (the request's state); 202, 409, 422 or 404 by its verdict."""
    body: dict[str, Any] = {"order_id": str(outcome.order_id) if outcome.order_id else None, "status": outcome.status}
    if outcome.verdict == "unknown":
        body["detail"] = "no such order"
    elif outcome.verdict in ("refused", "invalid"):
        body["detail"] = "; ".join(outcome.reasons)
        body["reasons"] = list(outcome.reasons)
    else:
        body |= {**accepted(), "duplicate": outcome.verdict == "duplicate"}
    return JSONResponse(body, status_code=REQUEST_STATUS[outcome.verdict])


def cancel_response(outcome: CancelOutcome) -> JSONResponse:
    return request_answer(outcome, lambda: {"cancellation": outcome.request_state})


def change_response(outcome: ChangeOutcome) -> JSONResponse:
    def accepted() -> dict[str, Any]:
        change = outcome.change or {}
        return {
            "change_id": change["change_id"],
            "version": change["version"],
            "state": change["state"],
            "verdict": change["verdict"],
            "notes": list(change["notes"]),
            **{k: str(change[k]) for k in ("total_before", "total_after", "to_pay", "due_back")},
        }

    return request_answer(outcome, accepted)


class OrderIntakeRoute(APIRoute):
    """POST /v1/orders, documented by its endpoint's signature like any route (the caller's key, the order as the
    body) but answered without FastAPI's resolution of that signature, which took a third of capture's time per
    order at 500 orders/s over HTTP: the key checked by the same dependency functions, called directly, and the
    order validated from the body's bytes in one pass."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        submit_order = self.endpoint
        assert list(inspect.signature(submit_order).parameters) == ["caller", "order"], "called as (caller, order)"

        async def handle(request: Request) -> Response:
            caller = await authenticated_caller(request, await BEARER(request))
            order = await json_body(request, SubmittedOrder)
            response: Response = await submit_order(caller, order)
            return response

        return handle


ORDERS_PATH = "/v1/orders"
SHOPIFY_PATH = "/v1/channels/shopify/orders"
# The paths that take new orders, with the channel the path names (the API's orders name theirs in the body).
INTAKES: dict[str, str | None] = {ORDERS_PATH: None, SHOPIFY_PATH: shopify.CHANNEL}


def order_api(
    runtime: Runtime, handlers: CaptureHandlers, submissions: Submissions, settings: CaptureSettings
) -> APIRouter:
    router = APIRouter()

    async def submit(order: SubmittedOrder, webhook: WebhookDelivery | None = None) -> Accepted:
        """Into the next round; 503 with Retry-After when the queue is full (nothing taken)."""
        try:
            return await submissions.submit(order, webhook)
        except Busy as busy:
            INTAKE_BUSY.labels(order.channel).inc()
            raise HTTPException(503, str(busy), headers=busy.headers) from None

    async def refuse_other_channels(conn: Any, order_id: UUID, caller: Caller) -> None:
        """403 for another channel's order (operators may act on any); an unknown order is the caller's answer."""
        channel = await repository.channel_of(conn, order_id)
        if channel is not None and not caller.may_act_for(channel):
            raise forbidden("this API key acts for another channel")

    async def submit_order(caller: Authenticated, order: Annotated[SubmittedOrder, Body()]) -> JSONResponse:
        if caller.channel != order.channel:
            raise forbidden(f"this API key submits orders of channel {caller.channel or '(none: operator)'} only")
        if order.original_order_id is not None:
            raise forbidden("original_order_id: exchange orders are opened by the returns service, not submitted")
        return accepted(await submit(order))

    router.add_api_route(
        ORDERS_PATH,
        submit_order,
        methods=["POST"],
        status_code=202,
        responses=SUBMIT_ANSWERS,
        route_class_override=OrderIntakeRoute,
    )

    @router.get("/v1/orders/{order_id}", responses=VIEW_ANSWERS, response_model=None)
    async def get_order(caller: Authenticated, order_id: UUID) -> dict[str, Any]:
        # One snapshot: read statement by statement, a step committed in between could be in one part of the view
        # (the change applied) and missing from another (its timeline step).
        async with runtime.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            await refuse_other_channels(conn, order_id, caller)
            view = await repository.order_view(conn, order_id)
        if view is None:
            raise HTTPException(404, "no such order")
        return view

    @router.post("/v1/orders/{order_id}/cancel", status_code=202, responses=CANCEL_ANSWERS)
    async def cancel_order(
        caller: Authenticated, order_id: UUID, body: Annotated[CancelBody | None, Body()] = None
    ) -> JSONResponse:
        request = body or CancelBody()
        async with runtime.pool.acquire() as conn, aftercommit.transaction(conn):
            await refuse_other_channels(conn, order_id, caller)
            outcome = await handlers.cancel(conn, order_id, request.lines, request.reason, "api", cause=None)
        return cancel_response(outcome)

    @router.post("/v1/orders/{order_id}/changes", status_code=202, responses=CHANGE_ANSWERS)
    async def change_order(
        caller: Authenticated, order_id: UUID, change: Annotated[OrderChange, Body()]
    ) -> JSONResponse:
        """A new shipping address, service level or line quantities; idempotent by `change_id`."""
        async with runtime.pool.acquire() as conn, aftercommit.transaction(conn):
            await refuse_other_channels(conn, order_id, caller)
            outcome = await handlers.changes.change(conn, order_id, change, "api", cause=None)
        return change_response(outcome)

    @router.post(SHOPIFY_PATH, status_code=202, responses=WEBHOOK_ANSWERS)
    async def shopify_order(request: Request) -> JSONResponse:
        """Shopify's orders/create webhook, verified on the raw body before anything is parsed."""
        raw = await request.body()
        shop = request.headers.get("x-shopify-shop-domain", "")
        webhook_id = request.headers.get("x-shopify-webhook-id", "")[:200] or None
        secret = settings.shopify_secret(shop)
        if secret is None or not shopify.signature_valid(raw, request.headers.get("x-shopify-hmac-sha256"), secret):
            SHOPIFY_WEBHOOKS.labels("bad_signature").inc()
            # The body is not logged: it is unauthenticated and full of personal data.
            log.warning(
                "shopify webhook refused: %s (shop %r, webhook id %r, %d bytes)",
                "unknown shop" if secret is None else "signature missing or wrong",
                shop[:100],
                (webhook_id or "")[:100],
                len(raw),
            )
            return JSONResponse({"detail": "webhook signature missing or invalid"}, status_code=401)
        if (topic := request.headers.get("x-shopify-topic")) != shopify.ORDERS_CREATE:
            SHOPIFY_WEBHOOKS.labels("unmapped").inc()
            reason = f"topic {str(topic)[:60]!r} is not handled here, only {shopify.ORDERS_CREATE}"
            return JSONResponse({"detail": reason, "reasons": [reason]}, status_code=422)
        try:
            order = shopify.to_order(json.loads(raw), settings.shopify_service_levels)
            # Shopify order ids are per shop: the verified shop's domain names them, so no shop can claim
            # (or find as a duplicate) another shop's order.
            order = order.model_copy(update={"external_id": shopify.external_id(shop, order.external_id)})
        except (ValueError, UnicodeDecodeError) as exc:
            SHOPIFY_WEBHOOKS.labels("unmapped").inc()
            reasons = exc.reasons if isinstance(exc, shopify.MappingProblems) else ["the body is not JSON"]
            return JSONResponse({"detail": "; ".join(reasons), "reasons": reasons}, status_code=422)
        delivery = None if webhook_id is None else WebhookDelivery(webhook_id, shop.strip().lower())
        outcome = await submit(order, delivery)  # refused when busy: counted in oms_intake_busy_total{channel}
        SHOPIFY_WEBHOOKS.labels("duplicate" if outcome.duplicate else "accepted").inc()
        return accepted(outcome)

    async def hold_answer(conn: Any, outcome: HoldOutcome) -> JSONResponse:
        if outcome.verdict == "unknown":
            return JSONResponse({"detail": "no such order"}, status_code=404)
        if outcome.verdict in ("refused", "invalid"):
            refusal = {"detail": "; ".join(outcome.reasons), "reasons": list(outcome.reasons)}
            return JSONResponse(refusal, status_code=HOLD_STATUS[outcome.verdict])
        assert outcome.order_id is not None
        body: dict[str, Any] = {
            "order_id": str(outcome.order_id),
            "status": outcome.status,
            "released": list(outcome.released),
            "remaining": list(outcome.remaining),
            "holds": await repository.holds_view(conn, outcome.order_id),
        }
        return JSONResponse(jsonable_encoder(body), status_code=HOLD_STATUS[outcome.verdict])

    @router.get("/v1/holds", dependencies=[OPERATORS_ONLY], responses=HOLDS_LIST_ANSWERS)
    async def list_holds(query: Annotated[HoldsQuery, Query()]) -> dict[str, Any]:
        """Orders on hold, the longest held first, with their holds and risk assessment; an unknown parameter is
        refused (422) rather than ignored, so a misspelt filter cannot list everything."""
        async with runtime.pool.acquire() as conn:
            return {"orders": await repository.orders_on_hold(conn, query.hold_type, query.limit)}

    @router.get("/v1/orders/{order_id}/holds", dependencies=[OPERATORS_ONLY], responses=HOLDS_ANSWERS)
    async def order_holds(order_id: UUID) -> dict[str, Any]:
        """The order's holds (those ended too, with who ended them and when) and its risk assessment."""
        async with runtime.pool.acquire() as conn:
            status = await repository.status_of(conn, order_id)
            if status is None:
                raise HTTPException(404, "no such order")
            return {
                "order_id": str(order_id),
                "status": status,
                "risk": await repository.risk_view(conn, order_id),
                "holds": await repository.holds_view(conn, order_id),
            }

    @router.post("/v1/orders/{order_id}/holds/release", responses=RELEASE_ANSWERS)
    async def release_holds(
        caller: Annotated[Caller, Depends(operator)],
        order_id: UUID,
        body: Annotated[ReleaseBody | None, Body()] = None,
    ) -> JSONResponse:
        request = body or ReleaseBody()
        async with runtime.pool.acquire() as conn, aftercommit.transaction(conn):
            outcome = await handlers.release(
                conn, order_id, request.hold_types, f"operator:{caller.key_id}", request.note
            )
            return await hold_answer(conn, outcome)

    @router.post("/v1/orders/{order_id}/holds/cancel", responses=HELD_CANCEL_ANSWERS)
    async def cancel_held_order(
        caller: Annotated[Caller, Depends(operator)],
        order_id: UUID,
        body: Annotated[HeldCancelBody | None, Body()] = None,
    ) -> JSONResponse:
        request = body or HeldCancelBody()
        async with runtime.pool.acquire() as conn, aftercommit.transaction(conn):
            outcome = await handlers.cancel_held(conn, order_id, request.reason, f"operator:{caller.key_id}")
            return await hold_answer(conn, outcome)

    return router
