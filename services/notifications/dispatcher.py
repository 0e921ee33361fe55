"""Renders messages and sends them: each message the consumer recorded is rendered once its recipient is known,
with a delivery per channel, and those deliveries are sent with the retries that are due, recording every attempt.

Rendering runs outside any transaction: the messages are read without a lock, rendered, and then claimed and kept in
one statement (a template run inside a transaction, in a process at a low CPU priority, held the database's oldest
snapshot for seconds, which keeps every table's old row versions from being cleaned up; docs/benchmarks/findings.md,
rounds 41 and 42). Deliveries are leased: new ones by the statement that keeps their message, retries and expired
leases by one statement of their own. They are handed over outside any transaction (a slow mail server or webhook
cannot hold a database session open past its idle timeout, which would lose the record of what was sent), and their
outcomes recorded by one more statement (round 43), waiting for a database that is away rather than sending again.
Only a crash between the hand-off and that record sends a message twice, once the lease has run out; its stable
Message-ID (email header, X-OMS-Message-Id) lets the receiver tell.
A failed delivery backs off exponentially and is given up after the configured number of attempts; one
that cannot succeed as things stand (an address the mail server cannot carry) is set aside at once as
undeliverable, with the reason. One failing channel or message never holds up the others."""

from __future__ import annotations

import asyncio
import logging
import math
import time

import asyncpg
import httpx

from shared.backbone.consumer import backoff
from shared.backbone.dispatch import run_dispatch
from shared.backbone.failures import Failure, classify, describe
from shared.backbone.metrics import count
from shared.contracts.envelope import now

from . import domain, repository
from .channels import EmailChannel, Outcome, WebhookChannel
from .metrics import DELIVERIES, NOTIFICATIONS_SENT
from .planning import Planner, Waiting, key_of
from .settings import NotificationSettings

log = logging.getLogger(__name__)
UNCONFIGURED = "endpoint no longer configured"
AFTER_FAILURE = {"gave_up": "given up", "undeliverable": "set aside as undeliverable"}


class Handoff:
    """Deliveries the planning created and leased, for this instance's dispatcher to send at once. Held only in
    memory: if the process ends first, they are sent by whichever instance finds their lease run out."""

    def __init__(self) -> None:
        self.wake = asyncio.Event()
        self._rows: list[asyncpg.Record] = []
        self._leased_until = math.inf

    def give(self, rows: list[asyncpg.Record], leased_until: float) -> None:
        self._rows.extend(rows)
        self._leased_until = min(self._leased_until, leased_until)
        self.wake.set()

    def take(self) -> tuple[list[asyncpg.Record], float]:
        """What was handed over since the last take, and when the earliest of their leases ends."""
        rows, leased_until = self._rows, self._leased_until
        self._rows, self._leased_until = [], math.inf
        return rows, leased_until


class Planning:
    """Renders the messages whose recipient is known (woken by the consumer's inserts), keeps each with a pending
    delivery per channel, and hands those deliveries, leased to this instance, to its dispatcher."""

    def __init__(self, settings: NotificationSettings, pool: asyncpg.Pool, planner: Planner, handoff: Handoff) -> None:
        self.settings = settings
        self.pool = pool
        self.planner = planner
        self.handoff = handoff

    async def run(self) -> None:
        await run_dispatch(self.settings, f"{self.settings.db_role}_messages", self.step, repository.BATCH)

    async def step(self) -> int:
        """How many messages were kept: those another instance kept meanwhile are not counted, so that two
        instances reading the same oldest messages do not both go round again at once."""
        async with self.pool.acquire() as conn:
            rows = await repository.unplanned(conn)
        if not rows:
            return 0
        planned, unrenderable = self.planner.plan(Waiting(key_of(row), row["facts"], dict(row)) for row in rows)
        # Taken before the deliveries' lease starts, so this instance's bound on it ends no later than the lease.
        leased_until = time.monotonic() + self.settings.delivery_lease_seconds
        async with self.pool.acquire() as conn:
            await repository.set_aside(conn, unrenderable)
            fresh = await repository.keep_rendered(conn, planned, self.settings.delivery_lease_seconds)
        if fresh:
            self.handoff.give(fresh, leased_until)
        return len({key_of(row) for row in fresh})


class Dispatcher:
    def __init__(
        self, settings: NotificationSettings, pool: asyncpg.Pool, email: EmailChannel, handoff: Handoff
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.email = email
        self.handoff = handoff
        self.webhooks: WebhookChannel | None = None

    async def run(self) -> None:
        timeout = httpx.Timeout(self.settings.webhook_timeout_seconds)
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client:
            self.webhooks = WebhookChannel(self.settings, client)
            # Woken by the planning's hand-overs; retries and leases run out are found by the poll.
            await run_dispatch(self.settings, None, self.step, repository.BATCH, self.handoff.wake)

    async def step(self) -> int:
        # Taken before this step's leases: the earliest end of every lease sent bounds how long outcomes may wait to
        # be recorded.
        leased_until = time.monotonic() + self.settings.delivery_lease_seconds
        async with self.pool.acquire() as conn:
            due = await repository.lease_due(conn, self.settings.delivery_lease_seconds)
        # Taken last: when the database is away, what was handed over waits in memory for the next step.
        handed, handed_until = self.handoff.take()
        await self.send([*handed, *due], min(leased_until, handed_until))
        return len(due)

    async def send(self, due: list[asyncpg.Record], leased_until: float) -> None:
        if not due:
            return
        emails = [row for row in due if row["channel"] == "email"]
        others = [row for row in due if row["channel"] != "email"]
        by_email, by_webhook = await asyncio.gather(
            self.email.send(emails), asyncio.gather(*(self._send_webhook(row) for row in others))
        )
        await self._record_all(list(zip([*emails, *others], [*by_email, *by_webhook], strict=True)), leased_until)

    async def _record_all(self, outcomes: list[tuple[asyncpg.Record, Outcome]], leased_until: float) -> None:
        """Record what the hand-offs did; while the lease lasts, a database that is away is waited for: the messages
        went out, and recording them late is better than sending them again. Counted once recorded."""
        attempts = [self._attempt(row, outcome) for row, outcome in outcomes]
        attempt = 0
        while True:
            try:
                async with self.pool.acquire() as conn:
                    await repository.record_attempts(conn, attempts)
                break
            except Exception as exc:
                attempt += 1
                if classify(exc) is Failure.PERMANENT or time.monotonic() + backoff(attempt) > leased_until:
                    raise
                log.warning(
                    "outcomes of %d deliveries not recorded yet (%s), retry %d", len(outcomes), describe(exc), attempt
                )
                await asyncio.sleep(backoff(attempt))
        for (row, _), recorded in zip(outcomes, attempts, strict=True):
            count(DELIVERIES.labels(recorded.channel, row["kind"], recorded.result))
            if recorded.result == "sent" and recorded.channel == "email":
                count(NOTIFICATIONS_SENT.labels(row["kind"]))

    async def _send_webhook(self, row: asyncpg.Record) -> Outcome:
        endpoint = self.settings.endpoint(row["channel"])
        if endpoint is None or self.webhooks is None:
            return Outcome(UNCONFIGURED, now(), 0)
        return await self.webhooks.send(endpoint, row, row["attempts"] + 1)

    def _attempt(self, row: asyncpg.Record, outcome: Outcome) -> repository.Attempt:
        """What the attempt did and what follows (retried when, or given up), with its log line."""
        attempt = row["attempts"] + 1
        retry_in = None
        retries = outcome.error is not None and not outcome.undeliverable  # undeliverable: trying again cannot help
        if retries and outcome.error != UNCONFIGURED and attempt < self.settings.max_attempts:
            retry_in = domain.retry_delay(attempt, self.settings.retry_base_seconds, self.settings.retry_max_seconds)
        recorded = repository.Attempt(
            key_of(row),
            row["channel"],
            attempt,
            outcome.started_at,
            outcome.error,
            outcome.duration_ms,
            retry_in,
            undeliverable=outcome.undeliverable,
        )
        if outcome.error is not None:
            log.warning(
                "%s of order %s via %s failed (attempt %d, %s): %s",
                row["kind"],
                row["order_id"],
                row["channel"],
                attempt,
                f"retry in {retry_in:.1f}s" if retry_in is not None else AFTER_FAILURE[recorded.result],
                outcome.error,
            )
        return recorded
