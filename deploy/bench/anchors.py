"""What this machine's PostgreSQL and Kafka do on their own, measured in the same run as the pipeline, so the
pipeline's figures read as a share of them: pgbench `-N` and an order-sized write transaction on the stack's
PostgreSQL (in a database of their own, `bench`), and Kafka's ProducerPerformance on the stack's broker (on a
topic of its own, deleted afterwards)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import tempfile
from pathlib import Path

from aiokafka.admin import NewTopic

from deploy.local import stack
from deploy.local.settings import LocalStack
from deploy.local.stack.postgres_setup import admin_connect
from shared.backbone import kafka_access

from . import orders
from .measures import ProducerFigures, pgbench_tps, producer_performance
from .results import ORDER_TRANSACTION, PGBENCH_N, PRODUCER_PERFORMANCE, Anchor

DATABASE = "bench"
TOPIC = "bench.producer-performance"
CLIENTS = 8
THREADS = 2
PGBENCH_SCALE = 4
RECORD_BYTES = 1024

ORDER_TABLES = """
CREATE TABLE bench_orders (
    order_id    uuid PRIMARY KEY,
    document    jsonb NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE bench_outbox (
    id         bigserial PRIMARY KEY,
    topic      text NOT NULL,
    key        text NOT NULL,
    payload    jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
"""


def order_transaction_script() -> str:
    """One order row and one outbox row of about 1 KB each, committed together, as capture's intake does."""
    order = orders.order("anchor", "anchor", 1, orders.catalogue("anchor", 20))
    # pgbench reads `:name` as a variable even inside a literal: no time of day in this document.
    document = json.dumps({**order, "placed_at": "2026-12-02"}).replace("'", "''")
    if re.search(r":\w", document):
        raise ValueError("the order-sized transaction's document must not contain ':' before a word character")
    return (
        "BEGIN;\n"
        f"INSERT INTO bench_orders (order_id, document) VALUES (gen_random_uuid(), '{document}');\n"
        f"INSERT INTO bench_outbox (topic, key, payload) VALUES ('oms.orders.validated', 'order', '{document}');\n"
        "END;\n"
    )


async def _run(argv: list[str], env: dict[str, str] | None = None) -> str:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=env
    )
    out, _ = await proc.communicate()
    text = out.decode(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"{Path(argv[0]).name} failed ({proc.returncode}):\n{text[-3000:]}")
    return text


async def _as_admin(cfg: LocalStack, database: str, statement: str) -> None:
    conn = await admin_connect(cfg, database)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def postgres(cfg: LocalStack, seconds: float) -> list[Anchor]:
    # A database of its own, new (a run stopped half-way may have left one)
    await _as_admin(cfg, "postgres", f"DROP DATABASE IF EXISTS {DATABASE}")
    await _as_admin(cfg, "postgres", f"CREATE DATABASE {DATABASE}")
    await _as_admin(cfg, DATABASE, ORDER_TABLES)

    pgbench = str(cfg.pg_bin / "pgbench")
    env = {**os.environ, "PGPASSWORD": cfg.pg_admin_password, "PGSSLMODE": "disable"}  # as the pipeline's sessions
    where = ["-h", cfg.host, "-p", str(cfg.ports.postgres), "-U", "oms"]
    load = ["-c", str(CLIENTS), "-j", str(THREADS), "-T", f"{round(seconds)}", "-M", "prepared"]
    await _run([pgbench, "-i", "-q", "-s", str(PGBENCH_SCALE), *where, DATABASE], env)
    tps_n = pgbench_tps(await _run([pgbench, "-N", *load, *where, DATABASE], env))
    with tempfile.NamedTemporaryFile("w", suffix=".sql") as script:
        script.write(order_transaction_script())
        script.flush()
        tps_order = pgbench_tps(await _run([pgbench, "-n", "-f", script.name, *load, *where, DATABASE], env))
    # Its tables gone with it: left, autovacuum analyzed them (0.5 CPU-s a run) in the middle of a later phase.
    await _as_admin(cfg, "postgres", f"DROP DATABASE {DATABASE}")
    settings = f"{CLIENTS} clients, {THREADS} threads, {round(seconds)} s, prepared statements, fsync on"
    return [
        Anchor(ORDER_TRANSACTION, tps_order, "tps", settings),
        Anchor(PGBENCH_N, tps_n, "tps", f"{settings}, scale {PGBENCH_SCALE}"),
    ]


async def kafka(cfg: LocalStack, records: int) -> tuple[Anchor, ProducerFigures]:
    admin = cfg.access().admin(request_timeout_ms=30000)
    await admin.start()
    try:
        if TOPIC not in await admin.list_topics():
            await admin.create_topics([NewTopic(TOPIC, 6, 1)], timeout_ms=30000)
        client_file = cfg.kafka_dir / "clients" / f"{kafka_access.ADMIN}.properties"
        argv = stack.kafka.java_command(
            cfg,
            "tools-log4j2.properties",
            "org.apache.kafka.tools.ProducerPerformance",
            *("--topic", TOPIC, "--num-records", str(records), "--record-size", str(RECORD_BYTES)),
            *("--throughput", "-1", "--producer.config", str(client_file), "--producer-props", "acks=all"),
        )
        figures = producer_performance(await _run(argv))
    finally:
        await admin.delete_topics([TOPIC], timeout_ms=30000)
        await admin.close()
    settings = (
        f"{records:,} records, 6 partitions, one producer, idempotent, default batching;"
        f" latency p50 {figures.p50_ms:.0f} ms, p99 {figures.p99_ms:.0f} ms"
    )
    return Anchor(PRODUCER_PERFORMANCE, figures.records_per_second, "records/s", settings), figures
