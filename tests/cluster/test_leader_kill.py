"""The three-broker cluster loses the broker that leads most of the intake and pick-task partitions, by SIGKILL,
while orders flow: the other two take over its partitions and the pipeline goes on, no order is lost or doubled,
and the broker, started again, catches up until every partition has its three replicas in sync. The pause the
kill causes is measured and printed (docs/kafka-cluster.md keeps the figures).

Run with `make test-cluster` (OMS_KAFKA_BROKERS=3); the invariants are the fault-injection suite's (deploy/chaos)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from typing import Any

import asyncpg
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError

from deploy.chaos import evidence, run
from deploy.chaos.faults import AdminSession
from deploy.chaos.load import Driver, Outside
from deploy.chaos.settle import quiesce
from deploy.local import mailsink, stack
from deploy.local.client import PipelineClient, admin_client
from shared.contracts import topics
from tests.cluster.flow import Flow, pause_around
from tests.local import LOCAL
from tests.waiting import eventually

RATE = 5.0  # orders per second
FLOW_SECONDS = 60.0
KILL_AFTER = 20.0  # seconds into the flow
CARRIED_ON = 25  # orders submitted after the kill that must be delivered while the broker is down
LED = (topics.ORDERS_SUBMITTED.name, topics.PICK_TASKS.name)


async def partitions_of(names: list[str] | None = None) -> list[dict[str, Any]]:
    """Every partition (of these topics, else of all, internal ones included) with its topic, leader and ISR; none
    while the cluster does not answer (the admin client may ask the dead broker until the metadata drops it)."""
    try:
        async with admin_client(LOCAL.access()) as admin:
            described = await admin.describe_topics(names)
    except KafkaError:
        return []
    return [{"topic": t["topic"], **p} for t in described for p in t["partitions"]]


def leaders(found: list[dict[str, Any]]) -> Counter[int]:
    return Counter(p["leader"] for p in found)


async def min_insync_replicas(topic: str) -> str:
    async with admin_client(LOCAL.access()) as admin:
        [response] = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic, {"min.insync.replicas": None})]
        )
    [resource] = response.to_object()["resources"]
    [entry] = resource["config_entries"]
    return str(entry["config_value"])


async def test_killing_the_leading_broker_mid_flow_loses_and_doubles_no_order(pipeline, db: asyncpg.Pool) -> None:
    # given the cluster of three, every registered topic on three nodes of which two must acknowledge a write
    assert stack.running(LOCAL) and len(stack.kafka.nodes(LOCAL)) == 3
    registered = await partitions_of([t.name for t in topics.TOPICS])
    assert {len(p["replicas"]) for p in registered} == {3}, "a topic is not on three brokers"
    assert {len(p["isr"]) for p in registered} == {3}, "a replica is out of sync before the test"
    assert await min_insync_replicas(topics.ORDERS_SUBMITTED.name) == "2"
    # and the pipeline running, with a catalogue and stock of the run's own
    run_id = uuid.uuid4().hex[:8]
    began_epoch = time.time()
    topic_start = await evidence.end_offsets(LOCAL.access(), evidence.watched_topics())
    outside = Outside(LOCAL, [LOCAL.http_url("capture")])
    await outside.start()
    admin = AdminSession(LOCAL)
    victim = 0
    try:
        driver = Driver(0, run_id, outside)
        await driver.seed_stock()
        client = PipelineClient(LOCAL)
        await client.wait_caught_up("oms-capture", [topics.CATALOG_PRODUCTS.name], timeout=120)
        await client.wait_caught_up(
            "oms-allocation", [topics.CATALOG_PRODUCTS.name, topics.INVENTORY_ADJUSTMENTS.name], timeout=120
        )
        flow = Flow(driver, RATE)

        async with flow.watched(db):
            # when orders flow at a steady rate
            sending = asyncio.create_task(flow.send(FLOW_SECONDS))
            await asyncio.sleep(KILL_AFTER)
            # and the broker leading most intake and pick-task partitions is killed with SIGKILL
            led = leaders(await partitions_of(list(LED)))
            victim = min(led, key=lambda node_id: (-led[node_id], node_id))
            killed_at = time.monotonic()
            assert stack.kafka.kill(LOCAL, {victim}) is not None
            print(
                f"\nkilled broker {victim} at {KILL_AFTER:.0f} s, leader of {led[victim]} of {sum(led.values())}"
                f" intake and pick-task partitions ({dict(led)})",
                flush=True,
            )

            # then the other two lead every partition, with two replicas in sync
            moved = await eventually(
                lambda: partitions_of(list(LED)),
                lambda found: found and all(p["leader"] not in (victim, -1) and victim not in p["isr"] for p in found),
                timeout=60,
                every=0.5,  # each look is a new SCRAM login: look often enough, not so often it loads the brokers
            )
            leaders_moved = time.monotonic() - killed_at
            assert {len(p["isr"]) for p in moved} == {2}
            # and orders submitted after the kill go all the way to delivered while the broker is down
            await eventually(lambda: flow.delivered_after(killed_at), lambda n: n >= CARRIED_ON, timeout=120, every=0.5)
            assert stack.kafka.pid(LOCAL, victim) is None
            carried_on = time.monotonic() - killed_at

            # when the killed broker is started again
            restarted_at = time.monotonic()
            await stack.kafka.start(LOCAL, {victim})
            # then it catches up: every partition, the internal topics' too, has its three replicas in sync
            await eventually(
                partitions_of, lambda found: found and all(len(p["isr"]) == 3 for p in found), timeout=180, every=1.0
            )
            caught_up = time.monotonic() - restarted_at
            await sending
            # and every order of the run is delivered
            await eventually(lambda: len(flow.delivered), lambda n: n == len(flow.submitted), timeout=240, every=1.0)

        pause = pause_around(flow, killed_at)
        print(
            f"leader kill: {len(flow.submitted)} orders at {RATE:.0f}/s; partitions moved {leaders_moved:.1f} s after"
            f" the kill; {CARRIED_ON} orders submitted after the kill delivered {carried_on:.1f} s after it;"
            f" {pause.describe()}; the restarted broker in sync on every partition {caught_up:.1f} s after its start",
            flush=True,
        )
        quiet = await quiesce(admin, LOCAL.access(), f"chaos-{run_id}-%@example.test", 180)
        assert quiet.reached, f"the pipeline did not settle: {quiet.last}"
    finally:
        await outside.close()
        await admin.close()
        if victim and stack.kafka.pid(LOCAL, victim) is None:  # the stack stays whole for whatever runs next
            await stack.kafka.start(LOCAL, {victim})

    # and nothing is lost or doubled: every order delivered once, one pick task and one parcel each, the books
    # balance, one email per order and kind, no dead letter (the fault-injection suite's invariants)
    conn = await asyncpg.connect(LOCAL.pg_dsn(), password=LOCAL.pg_admin_password)
    try:
        found = await evidence.gather(
            conn, LOCAL.access(), run_id, topic_start, LOCAL.maildir, LOCAL.state / mailsink.REPEATS_FILE, began_epoch
        )
        steps = await conn.fetch(
            "SELECT t.order_id::text, t.status, count(*) AS n FROM capture.order_timeline t"
            " WHERE t.order_id = ANY($1::uuid[]) GROUP BY 1, 2",
            [o.order_id for o in found.capture],
        )
    finally:
        await conn.close()
    checks = run.check(driver.ledger, found)
    for check in checks:
        print(f"  {check.name}: {check.checked} checked, {len(check.violations)} violations, {check.counts}")
    assert all(check.ok for check in checks), [(c.name, c.violations[:5]) for c in checks if not c.ok]
    assert Counter(o.status for o in found.capture) == {"delivered": len(flow.submitted)}
    doubled = [(s["order_id"], s["status"], s["n"]) for s in steps if s["n"] != 1]
    assert not doubled, f"a step of an order's timeline recorded twice: {doubled[:5]}"
    tasks = Counter(t.order_id for t in found.pick_tasks)
    assert set(tasks.values()) == {1} and len(tasks) == len(flow.submitted), "pick tasks doubled or missing"
    assert all(t.shipped for t in found.pick_tasks)
    released = Counter(r.pick_task_id for r in found.pick_task_records if r.type == "PickTaskReleased")
    republished = sum(released.values()) - len(released)
    print(f"  pick-task records published again (the same task, which the warehouse ignores): {republished}")
