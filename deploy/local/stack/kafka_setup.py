"""What the broker holds, brought in line with the topic registry at every `up`: the topics with their partitions
and settings, and the principals with their ACLs (shared/backbone/kafka_access.py, applied by
deploy/local/kafka/KafkaAccess.java)."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code

from deploy.local.settings import REPO, LocalStack
from deploy.local.stack import kafka
from deploy.local.supervisor import StackError, fail, say, wait_until
from shared.backbone import kafka_access
from shared.contracts.topics import TOPICS, Topic

# Leaders elected and the group coordinator's 50 partitions created: seconds on one idle broker, up to a minute for
# three replicas each on a busy machine.
SETTLE_TIMEOUT = 90.0


async def create_topics(
    local: LocalStack, replication: int | None = None, alive: Callable[[], bool] | None = None
) -> None:
    """Every registered topic with its partitions, on `replication` brokers (by default one per local node: the
    local cluster's, like the compose stack's, gets 3, and min.insync.replicas 2 from the brokers' configuration);
    refuses a topic whose partitions differ from the registry's. `alive` tells whether the brokers still run (the
    local nodes' processes unless given)."""
    running = alive or (lambda: kafka.running(local))
    copies = kafka.replication(local) if replication is None else replication
    admin = local.access().admin(request_timeout_ms=30000)
    found: dict[str, list[dict[str, Any]]] = {}

    async def leaders_elected() -> bool:
        # Leaders are elected just after creation: wait for them so the first produce does not fail.
        found.update({t["topic"]: t["partitions"] for t in await admin.describe_topics()})
        return all(p["leader"] >= 0 for t in TOPICS for p in found.get(t.name, [{"leader": -1}]))

    async def coordinator_ready() -> bool:
        # The first consumer group creates __consumer_offsets (50 partitions); doing it here spares the
        # first test a burst of GROUP_COORDINATOR_NOT_AVAILABLE.
        try:
            await admin.find_coordinator("oms-stack-warm-up")
        except KafkaError:
            return False
        return True

    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(t.name, t.partitions, copies, topic_configs=t.config) for t in TOPICS if t.name not in existing
        ]
        if missing:
            response = await admin.create_topics(missing, timeout_ms=30000)
            for topic, code, *rest in response.topic_errors:
                if code and for_code(code) is not TopicAlreadyExistsError:
                    fail(f"could not create topic {topic}: {for_code(code).__name__} {rest}")
        realigned = await _align_settings(admin, [t for t in TOPICS if t.name in existing])
        for check, what in ((leaders_elected, "topic leaders"), (coordinator_ready, "group coordinator")):
            await wait_until(check, what, running, kafka.logs(local), SETTLE_TIMEOUT)
    finally:
        await admin.close()
    wrong = [
        f"{t.name} has {len(found[t.name])} partitions, not {t.partitions}"
        for t in TOPICS
        if len(found[t.name]) != t.partitions
    ]
    if wrong:
        fail("topics differ from shared/contracts/topics.py (`down --purge` resets them): " + "; ".join(wrong))
    say(
        f"topics: {len(TOPICS)} present ({len(missing)} created"
        + (f"; settings brought in line: {', '.join(realigned)}" if realigned else "")
        + ")"
    )


async def _align_settings(admin: AIOKafkaAdminClient, topics: list[Topic]) -> list[str]:
    """Give topics made before the registry gave them their settings (a retention added later, or changed) the
    registry's: a new topic gets them at creation, an existing one would otherwise keep the cluster's defaults for
    good. Only the settings the registry names are compared; a topic that differs is given exactly those (the
    protocol's AlterConfigs sets a topic's whole list of overrides, so one set by hand beside them goes too: the
    registry owns these topics). Returns the topics changed."""
    wanted = {t.name: t.config for t in topics if t.config}
    if not wanted:
        return []
    described = await admin.describe_configs(
        [
            ConfigResource(ConfigResourceType.TOPIC, name, configs=dict.fromkeys(config))
            for name, config in wanted.items()
        ]
    )
    found: dict[str, dict[str, str]] = {}
    for response in described:
        for code, message, _type, name, entries, *_ in response.resources:
            if code:
                fail(f"could not read the settings of topic {name}: {for_code(code).__name__} {message}")
            found[name] = {entry[0]: entry[1] for entry in entries}
    differing = sorted(
        name for name, config in wanted.items() if any(found[name].get(k) != v for k, v in config.items())
    )
    if differing:
        altered = await admin.alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name, configs=wanted[name]) for name in differing]
        )
        for response in altered:
            for code, message, _type, name in response.resources:
                if code:
                    fail(f"could not set the settings of topic {name}: {for_code(code).__name__} {message}")
    return differing


def _access_spec(local: LocalStack) -> str:
    """Every principal with its password and its grants, for deploy/local/kafka/KafkaAccess.java."""
    users = [f"user {name} {local.kafka_passwords[name]}" for name in kafka_access.PRINCIPALS]
    return "\n".join([*users, *(grant.spec() for grant in kafka_access.all_grants())]) + "\n"


def applied_access(local: LocalStack) -> Path:
    """Where the digest of the access last applied is kept: beside the first node's data, which holds it."""
    return kafka.nodes(local)[0].data / "access.sha256"


def apply_access(local: LocalStack, force: bool = False) -> None:
    """Principals and ACLs, applied when they differ from what was applied last (a JVM start costs seconds); with
    force always, and not remembered (brokers whose data this state directory does not hold: their digest would
    make a later native `up` skip its own broker's access)."""
    spec = _access_spec(local)
    digest = hashlib.sha256(spec.encode()).hexdigest()
    applied = applied_access(local)
    if not force and applied.exists() and applied.read_text() == digest:
        return
    tool = REPO / "deploy" / "local" / "kafka" / "KafkaAccess.java"
    admin = str(local.kafka_dir / "clients" / f"{kafka_access.ADMIN}.properties")
    cmd = kafka.java_command(local, "tools-log4j2.properties", str(tool), admin)
    result = subprocess.run(cmd, input=spec, capture_output=True, text=True, cwd=local.kafka_dir, check=False)
    if result.returncode != 0:
        raise StackError(f"applying Kafka principals and ACLs failed:\n{result.stdout}{result.stderr[-3000:]}")
    if not force:
        applied.write_text(digest)
    say(f"kafka access: {result.stdout.strip()}")
