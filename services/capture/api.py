"""Capture's HTTP API: the generic order intake, Shopify's orders/create webhook, cancel requests and the
order view. Thin: decode, one handler call in one transaction, map the outcome to a status code."""

from __future__ import annotations

import json
import logging
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Body, HTTPException, Request
from fastapi.responses import JSONResponse
from prometheus_client import Counter
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from shared.backbone import aftercommit
from shared.backbone.auth import Authenticated, Caller, forbidden
from shared.backbone.runtime import Runtime
from shared.contracts.events import ItemQuantity, SubmittedOrder, storable

from . import repository, shopify
from .answers import CANCEL_ANSWERS, SUBMIT_ANSWERS, VIEW_ANSWERS
from .handlers import Accepted, CancelOutcome, CaptureHandlers
from .settings import CaptureSettings

log = logging.getLogger(__name__)
SHOPIFY_WEBHOOKS = Counter("oms_shopify_webhooks_total", "Shopify webhook deliveries by outcome.", ["outcome"])
CANCEL_STATUS = {"accepted": 202, "duplicate": 202, "refused": 409, "invalid": 422, "unknown": 404}


class CancelBody(BaseModel):
    """`lines` to cancel part of the order (omit to cancel all of it), and why."""

    model_config = ConfigDict(extra="forbid")
    lines: list[ItemQuantity] | None = Field(default=None, min_length=1, max_length=1000)
    reason: Annotated[str, AfterValidator(storable)] = Field(default="customer request", min_length=1, max_length=500)


def accepted(outcome: Accepted, status_code: int = 202) -> JSONResponse:
    body = {"order_id": str(outcome.order_id), "status": outcome.status, "duplicate": outcome.duplicate}
    return JSONResponse(body, status_code=status_code)


def cancel_response(outcome: CancelOutcome) -> JSONResponse:
    body: dict[str, Any] = {"order_id": str(outcome.order_id) if outcome.order_id else None, "status": outcome.status}
    if outcome.verdict == "unknown":
        body["detail"] = "no such order"
    elif outcome.verdict in ("refused", "invalid"):
        body["detail"] = "; ".join(outcome.reasons)
        body["reasons"] = list(outcome.reasons)
    else:
        body["cancellation"] = outcome.request_state
        body["duplicate"] = outcome.verdict == "duplicate"
    return JSONResponse(body, status_code=CANCEL_STATUS[outcome.verdict])


def order_api(runtime: Runtime, handlers: CaptureHandlers, settings: CaptureSettings) -> APIRouter:
    router = APIRouter()

    async def refuse_other_channels(conn: Any, order_id: UUID, caller: Caller) -> None:
        """403 for another channel's order (operators may act on any); an unknown order is the caller's answer."""
        channel = await repository.channel_of(conn, order_id)
        if channel is not None and not caller.may_act_for(channel):
            raise forbidden("this API key acts for another channel")

    @router.post("/v1/orders", status_code=202, responses=SUBMIT_ANSWERS)
    async def submit_order(caller: Authenticated, order: Annotated[SubmittedOrder, Body()]) -> JSONResponse:
        if caller.channel != order.channel:
            raise forbidden(f"this API key submits orders of channel {caller.channel or '(none: operator)'} only")
        if order.original_order_id is not None:
            raise forbidden("original_order_id: exchange orders are opened by the returns service, not submitted")
        async with runtime.pool.acquire() as conn, aftercommit.transaction(conn):
            return accepted(await handlers.intake(conn, order, cause=None))

    @router.get("/v1/orders/{order_id}", responses=VIEW_ANSWERS, response_model=None)
    async def get_order(caller: Authenticated, order_id: UUID) -> dict[str, Any]:
        async with runtime.pool.acquire() as conn:
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

    @router.post("/v1/channels/shopify/orders", status_code=202)
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
        if webhook_id is not None:
            async with runtime.pool.acquire() as conn:
                known = await repository.order_of_webhook(conn, webhook_id)
            if known is not None:
                SHOPIFY_WEBHOOKS.labels("duplicate").inc()
                return accepted(Accepted(*known, duplicate=True))
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
        async with runtime.pool.acquire() as conn, aftercommit.transaction(conn):
            outcome = await handlers.intake(conn, order, cause=None)
            if webhook_id is not None:
                await repository.record_webhook(conn, webhook_id, shop.strip().lower(), outcome.order_id)
        SHOPIFY_WEBHOOKS.labels("duplicate" if outcome.duplicate else "accepted").inc()
        return accepted(outcome)

    return router
