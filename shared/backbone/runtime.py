"""What every service runs besides its handlers: the pool, the producer, the outbox relay, the consumer,
and the HTTP surface for operations (/healthz, /readyz, /metrics). Services call `service_app` from their
single wiring point, `create_app(settings)`; nothing connects at import time."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import asyncpg
import uvicorn
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from shared.backbone import inbox, logs, snapshots
from shared.backbone.auth import ApiKeys
from shared.backbone.collector import settle_collector
from shared.backbone.consumer import BatchPreparation, EventConsumer, Routes
from shared.backbone.db import create_pool
from shared.backbone.dlq import DeadLetters
from shared.backbone.http import CorrelationId, answer_invalid_requests, answer_wrong_methods
from shared.backbone.kafka import guard_client, make_producer
from shared.backbone.metrics import DB_POOL_CONNECTIONS, DB_POOL_MAX, EVENT_LOOP_HELD
from shared.backbone.outbox import OutboxRelay
from shared.backbone.peak import OrderPathWatch
from shared.backbone.settings import CommonSettings
from shared.contracts.topics import ORDER_PATH, check_reads, measures_the_order_path, topic_of

log = logging.getLogger(__name__)


class Runtime:
    def __init__(self, settings: CommonSettings, waiting_at_intake: Callable[[], int] = lambda: 0) -> None:
        """`waiting_at_intake`: the orders taken at this instance's HTTP intake and not yet written (capture's), which
        its watch of the order path counts."""
        self.settings = settings
        self.waiting_at_intake = waiting_at_intake
        self._pool: asyncpg.Pool | None = None
        self._producer: AIOKafkaProducer | None = None
        self._watch: OrderPathWatch | None = None
        self.consumers: list[EventConsumer] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.api_keys = ApiKeys.over(lambda: self.pool, settings.api_rate_per_second)

    @property
    def pool(self) -> asyncpg.Pool:
        assert self._pool is not None, "runtime not started"
        return self._pool

    @property
    def producer(self) -> AIOKafkaProducer:
        assert self._producer is not None, "runtime not started"
        return self._producer

    @property
    def order_path_watch(self) -> OrderPathWatch | None:
        """What tells this service's follow-up work to wait for the order path (none without follow-up consumers)."""
        return self._watch

    async def start(
        self,
        routes: Routes,
        extra: Mapping[str, Callable[[], Awaitable[None]]],
        prepare: BatchPreparation | None = None,
        idempotent_by_keys: bool = False,
    ) -> None:
        guard_client()
        self._pool = await create_pool(self.settings)
        self._producer = make_producer(self.settings)
        await self._producer.start()
        self._spawn("event-loop-watch", lambda: watch_event_loop(EVENT_LOOP_HELD.labels(self.settings.service).observe))
        self._spawn("outbox-relay", OutboxRelay(self.settings, self.pool, self.producer).run)
        self._spawn("snapshot-watch", lambda: snapshots.watch(self.settings, self.pool))
        if routes:
            check_reads(self.settings.service, routes)
            dead_letters = DeadLetters(
                self.settings.service,
                self.producer,
                self.pool,
                max_record_bytes=self.settings.kafka_max_record_bytes,
                send_timeout=self.settings.kafka_send_timeout_seconds,
            )
            paces = by_pace(self.settings.service, routes)
            watch = self._order_path_watch()
            if watch is not None and (watch.measures or any(not order_path for order_path, _ in paces)):
                self._spawn("order path watch", watch.run)
                self._watch = watch
            for order_path, mine in paces:
                consumer = EventConsumer(
                    self.settings, self.pool, dead_letters, mine, prepare, idempotent_by_keys, order_path, watch
                )
                self.consumers.append(consumer)
                self._spawn("consumer" if order_path else "follow-up consumer", consumer.run)
            self._spawn("inbox-retention", lambda: inbox.keep_retention(self.settings, self.pool))
        for name, loop in extra.items():
            self._spawn(name, loop)

    def _order_path_watch(self) -> OrderPathWatch | None:
        """The service's watch of the order path; the one that measures it (capture) reports it to the others."""
        if self.settings.peak_backlog_high <= 0:
            return None
        if not measures_the_order_path(self.settings.service):
            return OrderPathWatch(self.settings)
        return OrderPathWatch(self.settings, lambda: self.producer, self.waiting_at_intake)

    def _spawn(self, name: str, loop: Callable[[], Awaitable[None]]) -> None:
        async def guarded() -> None:
            await loop()

        task = asyncio.create_task(guarded(), name=name)
        task.add_done_callback(self._on_task_done)
        self.tasks.append(task)

    @staticmethod
    def _on_task_done(task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        # A background loop must never end while the service runs: stop the process so its supervisor restarts it.
        log.critical("background task %s ended: %r; stopping", task.get_name(), task.exception())
        os.kill(os.getpid(), signal.SIGTERM)

    async def stop(self) -> None:
        for task in self.tasks:
            task.remove_done_callback(self._on_task_done)
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._producer is not None:
            await self._producer.stop()
        if self._pool is not None:
            await self._pool.close()

    def report_pool(self) -> None:
        """Pool gauges, read when Prometheus scrapes (asyncpg keeps the counts; nothing to track)."""
        if self._pool is None:
            return
        size, idle = self._pool.get_size(), self._pool.get_idle_size()
        DB_POOL_CONNECTIONS.labels(self.settings.service, "in_use").set(size - idle)
        DB_POOL_CONNECTIONS.labels(self.settings.service, "idle").set(idle)
        DB_POOL_MAX.labels(self.settings.service).set(self._pool.get_max_size())

    async def ready(self) -> dict[str, bool]:
        checks = {"database": False, "consumer": all(consumer.reassignments.joined for consumer in self.consumers)}
        with contextlib.suppress(Exception):
            checks["database"] = await asyncio.wait_for(self.pool.fetchval("SELECT true"), 2.0) is True
        return checks


LOOP_TICK = 0.05


async def watch_event_loop(observe: Callable[[float], None], tick: float = LOOP_TICK) -> None:
    """Observes how late a short timer fires: one task's Python work holding the loop delays every other (a
    request's answer, the order path's batch), and shows here before it shows in the latencies."""
    loop = asyncio.get_running_loop()
    while True:
        due = loop.time() + tick
        await asyncio.sleep(tick)
        observe(max(0.0, loop.time() - due))


def by_pace(service: str, routes: Routes) -> list[tuple[bool, Routes]]:
    """The routes a service's consumer of the order path takes (True), and those a consumer of what follows takes:
    two members of the service's group when it has both, each paced for its own (KafkaSettings.pacing). One group
    keeps the committed offsets and ACLs as they were; the two commit to the database as two instances would."""
    path = ORDER_PATH.get(service)
    split = [(pace, {p: h for p, h in routes.items() if (topic_of(p) == path) == pace}) for pace in (True, False)]
    return [(pace, mine) for pace, mine in split if mine]


def service_app(
    runtime: Runtime,
    routes: Callable[[], Routes],
    *,
    background: Mapping[str, Callable[[], Awaitable[None]]] | None = None,
    prepare: BatchPreparation | None = None,
    idempotent_by_keys: bool = False,
    title: str,
) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await runtime.start(routes(), background or {}, prepare, idempotent_by_keys)
        try:
            yield
        finally:
            await runtime.stop()

    # The services report to Prometheus; FastAPI's own OpenTelemetry would look for a provider on every request.
    app = FastAPI(title=title, lifespan=lifespan, telemetry={"tracing": False, "metrics": False, "logs": False})
    app.state.api_keys = runtime.api_keys
    app.add_middleware(CorrelationId)
    answer_invalid_requests(app)
    answer_wrong_methods(app)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz(response: Response) -> dict[str, Any]:
        checks = await runtime.ready()
        if not all(checks.values()):
            response.status_code = 503
        return {"ready": all(checks.values()), "checks": checks}

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        runtime.report_pool()
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app


LISTEN_BACKLOG = 8192


def serve(app: FastAPI, settings: CommonSettings) -> None:
    logs.configure(settings.service, settings.environment)
    settle_collector()
    uvicorn.run(
        app,
        host=settings.http_host,
        port=settings.http_port,
        access_log=False,
        log_config=None,
        loop="uvloop",
        http="httptools",
        # Connections waiting to be accepted while the loop finishes a batch: past the backlog the kernel drops
        # them, and a client that had sent its request sees a reset (uvicorn's default is 2048; the kernel caps
        # it at net.core.somaxconn).
        backlog=LISTEN_BACKLOG,
        timeout_keep_alive=settings.http_keep_alive_seconds,
    )
