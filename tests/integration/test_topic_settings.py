"""`up` brings an existing topic's settings in line with the registry: a topic made before the registry gave it a
retention (or another one) does not keep the cluster's default for good."""

from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from deploy.local.stack import kafka_setup
from shared.contracts.topics import INTAKE_QUEUE
from tests.local import LOCAL


async def retention_of(admin, topic: str) -> str:
    (response,) = await admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, topic, {"retention.ms": None})]
    )
    ((_code, _message, _type, _name, entries),) = response.resources
    return str({entry[0]: entry[1] for entry in entries}["retention.ms"])


async def test_up_gives_an_existing_topic_the_retention_the_registry_names(stack) -> None:
    admin = LOCAL.access().admin()
    await admin.start()
    try:
        # given the reports' topic as an older stack left it: no retention of its own, the cluster's default
        await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, INTAKE_QUEUE.name, {})])
        assert await retention_of(admin, INTAKE_QUEUE.name) != "3600000"

        # when the stack's topics are brought in line, as every `up` does
        await kafka_setup.create_topics(LOCAL, alive=lambda: True)

        # then it keeps the hour the registry names
        assert INTAKE_QUEUE.retention_ms == 3_600_000
        assert await retention_of(admin, INTAKE_QUEUE.name) == "3600000"
    finally:
        await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, INTAKE_QUEUE.name, INTAKE_QUEUE.config)])
        await admin.close()
