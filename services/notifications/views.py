"""Read-only views for operators (the `oms` command): the messages of an order and their delivery state.
Kinds, states and times only: neither the recipient's address nor the message text."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import FastAPI

from shared.backbone.auth import OPERATORS_ONLY
from shared.backbone.runtime import Runtime

from . import repository
from .answers import MESSAGES_ANSWERS


def add_views(app: FastAPI, runtime: Runtime) -> None:
    @app.get("/v1/orders/{order_id}/messages", dependencies=[OPERATORS_ONLY], responses=MESSAGES_ANSWERS)
    async def messages_of_order(order_id: UUID) -> dict[str, Any]:
        async with runtime.pool.acquire() as conn:
            messages = await repository.order_messages(conn, order_id)
        return {"order_id": str(order_id), "messages": messages}
