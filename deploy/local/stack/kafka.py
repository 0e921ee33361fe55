"""The broker: one KRaft node from the official jars (collected with Maven into the cache), configured for SCRAM
and ACLs, on loopback. configure, start, ready, stop and kill it; `start` is what `up` does, from the same
configuration and data, so a broker killed by a fault comes back as it was."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from deploy.local.settings import REPO, LocalStack
from deploy.local.supervisor import StackError, Supervised, fail, port_taken, say, wait_until
from shared.backbone import kafka_access

VERSION = "4.1.2"
SCRAM_MARKER = "scram-admin"

SERVER_PROPERTIES = """\
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@{host}:{cport}
# Clients authenticate with SCRAM-SHA-256 (shared/backbone/kafka_access.py) and may do only what an ACL allows. The
# controller listener stays PLAINTEXT on loopback: KRaft cannot check SCRAM there (the credentials live in the
# metadata it serves), so its unauthenticated peer, the broker itself, is a super user.
listeners=CLIENT://{host}:{port},CONTROLLER://{host}:{cport}
advertised.listeners=CLIENT://{host}:{port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=CLIENT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,CLIENT:SASL_PLAINTEXT
sasl.enabled.mechanisms=SCRAM-SHA-256
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-256
listener.name.client.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule \
  required username="admin" password="{admin_password}";
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:admin;User:ANONYMOUS
log.dirs={data}
num.partitions=6
auto.create.topics.enable=false
# One node: every internal topic must be satisfied by one replica, or groups and transactions fail.
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
"""

LOG4J2 = """\
status = warn
shutdownHook = disable
appender.out.type = {appender}
appender.out.name = OUT
{target}
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = {level}
rootLogger.appenderRef.out.ref = OUT
{quiet}
"""
# Per-partition chatter and the ~400-line config dumps (AbstractConfig) would drown the useful lines.
NOISY_LOGGERS = (
    "kafka.request.logger",
    "kafka.controller",
    "state.change.logger",
    "kafka.log.LogCleaner",
    "kafka.authorizer.logger",
    "kafka.cluster.Partition",
    "kafka.log.LogManager",
    "org.apache.kafka.common.config.AbstractConfig",
    "org.apache.kafka.controller",
    "org.apache.kafka.coordinator.common.runtime",
    "org.apache.kafka.raft",
    "org.apache.kafka.storage.internals.log",
)


def process(local: LocalStack) -> Supervised:
    return Supervised("kafka", local.kafka_dir / "kafka.pid", local.kafka_dir / "logs" / "kafka.out", "kafka.Kafka")


def logs(local: LocalStack) -> tuple[Path, ...]:
    return local.kafka_dir / "logs" / "server.log", local.kafka_dir / "logs" / "kafka.out"


def libs(local: LocalStack) -> Path:
    return local.cache / f"kafka-{VERSION}" / "libs"


def ensure_jars(local: LocalStack) -> None:
    target = libs(local)
    if all((target / f"{jar}-{VERSION}.jar").exists() for jar in ("kafka_2.13", "kafka-tools")):
        say(f"kafka jars: cached in {target}")
        return
    say(f"kafka jars: collecting Kafka {VERSION} with maven into {target}")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="libs-", dir=target.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; the cache is an ordinary shared directory
    cmd = ["mvn", "-q", "-B", "dependency:copy-dependencies", f"-Dkafka.version={VERSION}"]
    cmd.append(f"-DoutputDirectory={tmp}")
    result = subprocess.run(cmd, cwd=REPO / "deploy" / "local" / "kafka", capture_output=True, text=True, check=False)
    if result.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise StackError(f"maven could not fetch the Kafka jars:\n{(result.stdout + result.stderr)[-3000:]}")
    shutil.rmtree(target, ignore_errors=True)  # a partial copy from an interrupted older layout
    tmp.rename(target)
    say("kafka jars: collected")


def java_command(local: LocalStack, log_config: str, main: str, *args: str, jvm: tuple[str, ...] = ()) -> list[str]:
    """A JVM on the broker's jars: the broker itself, its tools (StorageTool, ProducerPerformance), KafkaAccess."""
    java_home = os.environ.get("JAVA_HOME")
    java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    if java is None:
        raise StackError("java not found (Kafka needs Java 17+): install it or set JAVA_HOME")
    return [
        java,
        *jvm,
        f"-Dlog4j2.configurationFile={local.kafka_dir / log_config}",
        "-cp",
        f"{libs(local)}/*",
        main,
        *args,
    ]


def _log4j2(appender: str, target: str, level: str) -> str:
    quiet = "\n".join(f"logger.q{i}.name = {name}\nlogger.q{i}.level = WARN" for i, name in enumerate(NOISY_LOGGERS))
    return LOG4J2.format(appender=appender, target=target, level=level, quiet=quiet)


def configure(local: LocalStack) -> None:
    """The broker's and the tools' configuration, a client properties file per principal, and formatted storage
    with the admin credential (kept when formatted already)."""
    (local.kafka_dir / "logs").mkdir(parents=True, exist_ok=True)
    properties = local.kafka_dir / "server.properties"
    properties.touch(mode=0o600)
    properties.write_text(
        SERVER_PROPERTIES.format(
            host=local.host,
            port=local.ports.kafka,
            cport=local.ports.kafka_controller,
            data=local.kafka_dir / "data",
            admin_password=local.kafka_passwords[kafka_access.ADMIN],
        )
    )
    configure_clients(local)
    (local.kafka_dir / "log4j2.properties").write_text(
        _log4j2("File", "appender.out.fileName = ${sys:kafka.logs.dir}/server.log", "INFO")
    )
    _format(local)


def configure_clients(local: LocalStack) -> None:
    """A client properties file per principal and the tools' logging: what Kafka's own tools (and KafkaAccess.java)
    need to reach this stack's brokers, wherever those run."""
    for name in (kafka_access.ADMIN, *kafka_access.PRINCIPALS):
        # For Kafka's own command-line tools: --command-config .stack/kafka/clients/<principal>.properties
        client = local.kafka_dir / "clients" / f"{name}.properties"
        client.parent.mkdir(parents=True, mode=0o700, exist_ok=True)
        client.touch(mode=0o600)
        client.write_text(local.access(name).properties())
    # The tools print the cluster id on stdout: their logging must go to stderr and stay quiet.
    (local.kafka_dir / "tools-log4j2.properties").write_text(
        _log4j2("Console", "appender.out.target = SYSTEM_ERR", "WARN")
    )


def _storage_tool(local: LocalStack, *args: str) -> str:
    cmd = java_command(local, "tools-log4j2.properties", "kafka.tools.StorageTool", *args)
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=local.kafka_dir, check=False)
    if result.returncode != 0:
        raise StackError(f"StorageTool {args[0]} failed:\n{result.stdout}{result.stderr}")
    return result.stdout.strip()


def _format(local: LocalStack) -> None:
    data = local.kafka_dir / "data"
    if (data / "meta.properties").exists():
        if not (data / SCRAM_MARKER).exists():
            fail("the Kafka data predates SCRAM authentication: `python -m deploy.local.stack down --purge` resets it")
        return
    id_file = local.kafka_dir / "cluster.id"
    if not id_file.exists():
        id_file.write_text(_storage_tool(local, "random-uuid").splitlines()[-1])
    properties = str(local.kafka_dir / "server.properties")
    # The broker authenticates to itself as admin: that credential must exist before it starts.
    admin = f"SCRAM-SHA-256=[name={kafka_access.ADMIN},password={local.kafka_passwords[kafka_access.ADMIN]}]"
    cluster = id_file.read_text().strip()
    _storage_tool(local, "format", "-t", cluster, "-c", properties, "--ignore-formatted", "--add-scram", admin)
    (data / SCRAM_MARKER).touch()
    say("kafka: storage formatted")


def pid(local: LocalStack) -> int | None:
    return process(local).pid()


def running(local: LocalStack) -> bool:
    return pid(local) is not None


async def ready(local: LocalStack) -> bool:
    """The broker answers a metadata request naming itself (its port opens a little before that)."""
    if not port_taken(local.host, local.ports.kafka):
        return False
    admin = local.access().admin(request_timeout_ms=5000)
    try:
        await admin.start()
        cluster = await admin.describe_cluster()
        return any(b["node_id"] == 1 for b in cluster["brokers"])
    except Exception:  # any failure here only means "not yet"
        return False
    finally:
        await admin.close()


async def start(local: LocalStack) -> None:
    """Start the broker unless it runs, and wait until it is ready."""
    started = pid(local)
    if started is None:
        if port_taken(local.host, local.ports.kafka) or port_taken(local.host, local.ports.kafka_controller):
            fail(
                f"port {local.ports.kafka} or {local.ports.kafka_controller} is taken by another process; "
                "set OMS_KAFKA_PORT / OMS_KAFKA_CONTROLLER_PORT"
            )
        await asyncio.to_thread(configure, local)
        cmd = java_command(
            local,
            "log4j2.properties",
            "kafka.Kafka",
            str(local.kafka_dir / "server.properties"),
            jvm=("-Xms256m", "-Xmx768m", "-XX:+UseG1GC", f"-Dkafka.logs.dir={local.kafka_dir / 'logs'}"),
        )
        started = process(local).spawn(cmd, local.kafka_dir)
        say(f"kafka: started pid {started}, waiting for {local.kafka_bootstrap}")
        was = "ready"
    else:
        was = "already running"
    await wait_until(lambda: ready(local), "kafka", lambda: running(local), logs(local))
    say(f"kafka: {was} on {local.kafka_bootstrap} (pid {started})")


def stop(local: LocalStack) -> int | None:
    """SIGTERM (a controlled shutdown), SIGKILL after 30 s; the pid stopped, if it ran."""
    return process(local).stop(30)


def kill(local: LocalStack) -> int | None:
    """SIGKILL, as a crash would end it, and wait until it is gone; the pid killed, if it ran."""
    return process(local).kill()
