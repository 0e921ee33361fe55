"""What a fault-injection run does to the stack, on a stack of its own (own ports, own state): each component
killed as a crash would (Kafka and the SMTP sink with SIGKILL, PostgreSQL with an immediate shutdown) is seen as
down, and started again exactly as `up` starts it, on the same data."""

import asyncpg
from aiokafka.admin import NewTopic

from deploy.local import stack
from deploy.local.settings import LocalStack
from tests.local import LOCAL
from tests.scenario import free_port


def own_stack(state) -> LocalStack:
    """The session's settings but for the ports (free ones: every port the stack has, also one added later) and the
    state directory."""
    inherited = {k: v for k, v in LOCAL.environment().items() if k != "OMS_KAFKA_BOOTSTRAP"}  # its own broker's
    ports = {name: str(free_port()) for name in inherited if name.endswith("_PORT")}
    return LocalStack.from_env({**inherited, **ports, "OMS_STATE_DIR": str(state)})


async def test_kafka_postgres_and_the_smtp_sink_come_back_on_their_data_after_being_killed(tmp_path) -> None:
    local = own_stack(tmp_path / "stack")
    assert local.kafka_bootstrap != LOCAL.kafka_bootstrap
    topic = "faults.kept"
    try:
        # given the three components running, a topic on the broker and a committed row in the database
        await stack.kafka.start(local)
        await stack.postgres.start(local)
        await stack.smtp.start(local)
        assert stack.running(local)
        admin = local.access().admin()
        await admin.start()
        try:
            await admin.create_topics([NewTopic(topic, 2, 1)])
        finally:
            await admin.close()
        conn = await asyncpg.connect(local.pg_dsn(database="postgres"), password=local.pg_admin_password)
        await conn.execute("CREATE TABLE kept (note text); INSERT INTO kept VALUES ('before the crash')")
        await conn.close()

        # when the broker is killed with SIGKILL, then it is down, and started as `up` does it serves its topics
        killed = stack.kafka.kill(local)
        assert killed is not None and not stack.kafka.running(local) and not await stack.kafka.ready(local)
        await stack.kafka.start(local)
        assert stack.kafka.pid(local) not in (None, killed)
        admin = local.access().admin()
        await admin.start()
        try:
            assert topic in await admin.list_topics()
        finally:
            await admin.close()

        # when PostgreSQL shuts down immediately (no checkpoint), then it is down, and started again it has the row
        assert stack.postgres.kill(local)
        assert not stack.postgres.running(local) and not await stack.postgres.ready(local)
        await stack.postgres.start(local)
        conn = await asyncpg.connect(local.pg_dsn(database="postgres"), password=local.pg_admin_password)
        try:
            assert await conn.fetchval("SELECT note FROM kept") == "before the crash"
        finally:
            await conn.close()

        # when the SMTP sink is killed, then it is down, and started again it answers
        killed = stack.smtp.kill(local)
        assert killed is not None and not stack.smtp.running(local) and not await stack.smtp.ready(local)
        await stack.smtp.start(local)
        assert stack.smtp.pid(local) not in (None, killed) and await stack.smtp.ready(local)
        assert stack.running(local)
    finally:
        stack.down(local, purge=True)
    assert not stack.running(local) and not local.state.exists()
