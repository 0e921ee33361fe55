"""Structured logs: one JSON object per line in production, a readable line in development and tests.

Every line carries the order id, event id and correlation id of the work in hand when they are known: the
shared consumer binds them for each record it handles, the HTTP layer binds a correlation id per request
(and capture the order id once it has one). Ids only: log calls must not pass personal data (names, emails,
addresses), and nothing here adds any.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

CONTEXT_FIELDS = ("order_id", "event_id", "correlation_id")
_context: ContextVar[dict[str, str] | None] = ContextVar("oms_log_context", default=None)


def _ids() -> dict[str, str]:
    return _context.get() or {}


def bind(**ids: UUID | str | None) -> None:
    """Add ids to the context of the current task (an HTTP request, a consumed record)."""
    _context.set({**_ids(), **{k: str(v) for k, v in ids.items() if v is not None}})


@contextlib.contextmanager
def bound(**ids: UUID | str | None) -> Iterator[None]:
    """Ids for the duration of a block, restored afterwards."""
    token = _context.set({**_ids(), **{k: str(v) for k, v in ids.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


def current() -> dict[str, str]:
    return dict(_ids())


class ContextFilter(logging.Filter):
    """Copies the bound ids onto each record, so formatters (and handlers of other libraries) see them."""

    def filter(self, record: logging.LogRecord) -> bool:
        ids = _ids()
        for name in CONTEXT_FIELDS:
            setattr(record, name, ids.get(name))
        return True


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class ReadableFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__(f"%(asctime)s {service} %(levelname)s %(name)s: %(message)s%(ids)s")

    def format(self, record: logging.LogRecord) -> str:
        ids = [
            f"{name.removesuffix('_id')}={getattr(record, name)}"
            for name in CONTEXT_FIELDS
            if getattr(record, name, None)
        ]
        record.ids = f"  [{' '.join(ids)}]" if ids else ""
        return super().format(record)


def configure(service: str, environment: str, level: str | None = None) -> None:
    """Set up the root logger of a service process: JSON in production, readable elsewhere."""
    handler = logging.StreamHandler()
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter(service) if environment == "production" else ReadableFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level or os.environ.get("OMS_LOG_LEVEL", "INFO"))
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
