"""The broker: one KRaft node from the official jars (collected with Maven into the cache), configured for SCRAM
and ACLs, on loopback; or, with OMS_KAFKA_BROKERS=3, a cluster of three such nodes. configure, start, ready, stop
and kill them (all, or one node); `start` is what `up` does, from the same configuration and data, so a node
killed by a fault comes back as it was.

Each node of the cluster is broker and controller at once (combined mode, as the compose stack runs them): three
JVMs rather than six on a small machine, and a quorum of three controllers that survives the loss of one. The
price is that losing a node may also cost the active controller, whose election then adds to the pause; a large
production cluster runs its controllers apart. Topics get three replicas and min.insync.replicas=2: a write is
acknowledged once two nodes hold it, so one node may die at any moment without losing or blocking a write.

One broker lives in <state>/kafka (data, logs, pid file), each node of the cluster in <state>/kafka/node-<n>: the two
shapes never share data, and `stop` stops whichever runs."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from deploy.local.settings import DEVELOPMENT_KEYSTORE_PASSWORD, REPO, LocalStack
from deploy.local.stack import certificates
from deploy.local.supervisor import READY_TIMEOUT, StackError, Supervised, fail, port_taken, say, wait_until
from shared.backbone import kafka_access

VERSION = "4.1.2"
SCRAM_MARKER = "scram-admin"

SERVER_PROPERTIES = """\
process.roles=broker,controller
node.id={node_id}
controller.quorum.voters={voters}
# Clients authenticate with SCRAM-SHA-256 (shared/backbone/kafka_access.py) and may do only what an ACL allows. The
# controller listener stays PLAINTEXT on loopback: KRaft cannot check SCRAM there (the credentials live in the
# metadata it serves), so its unauthenticated peer, the broker itself, is a super user.
# TLS is the same SCRAM over TLS with the stack's own CA (deploy/local/stack/certificates.py), as production's
# listeners are: for the tests of the clients' TLS; the pipeline's clients use CLIENT on loopback.
listeners=CLIENT://{host}:{port},CONTROLLER://{host}:{cport},TLS://{host}:{tport}
advertised.listeners=CLIENT://{host}:{port},TLS://{host}:{tport}
controller.listener.names=CONTROLLER
inter.broker.listener.name=CLIENT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,CLIENT:SASL_PLAINTEXT,TLS:SASL_SSL
listener.name.tls.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.tls.ssl.keystore.type=PKCS12
listener.name.tls.ssl.keystore.location={keystore}
listener.name.tls.ssl.keystore.password={keystore_password}
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
# A replica on every node (one, or three of which two must acknowledge a write); the internal topics too: on one node
# they must make do with one replica, or groups and transactions fail.
default.replication.factor={replication}
min.insync.replicas={min_isr}
offsets.topic.replication.factor={replication}
transaction.state.log.replication.factor={replication}
transaction.state.log.min.isr={min_isr}
share.coordinator.state.topic.replication.factor={replication}
share.coordinator.state.topic.min.isr={min_isr}
group.initial.rebalance.delay.ms=0
# Threads for a broker that shares two cores with the whole pipeline (Kafka's defaults, 3 and 8, suit a machine of its
# own): fewer threads to switch between, the same requests served (docs/benchmarks/findings.md, round 12).
num.network.threads=1
num.io.threads=2
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


@dataclass(frozen=True)
class Node:
    """One KRaft node of the stack's Kafka (broker and controller in one process) and where it keeps its things."""

    id: int
    port: int
    controller_port: int
    tls_port: int
    home: Path  # its configuration, data, logs and pid file

    @property
    def name(self) -> str:
        # The one broker is "kafka", as it always was; the cluster's nodes are kafka-1, kafka-2 and kafka-3.
        return f"kafka-{self.id}" if self.home.name.startswith("node-") else "kafka"

    @property
    def data(self) -> Path:
        return self.home / "data"

    @property
    def properties(self) -> Path:
        return self.home / "server.properties"

    @property
    def logs(self) -> tuple[Path, ...]:
        return self.home / "logs" / "server.log", self.home / "logs" / "kafka.out"

    @property
    def process(self) -> Supervised:
        # Its own configuration file in the command line tells this node's JVM from another node's.
        return Supervised(self.name, self.home / "kafka.pid", self.logs[1], str(self.properties))


def nodes(local: LocalStack, brokers: int | None = None) -> list[Node]:
    """The nodes of the stack's Kafka: `brokers` of them, by default as many as it is configured for."""
    count = local.ports.kafka_brokers if brokers is None else brokers
    found = []
    for node_id in range(1, count + 1):
        port, controller_port = local.ports.kafka_node_ports(node_id)
        home = local.kafka_dir if count == 1 else local.kafka_dir / f"node-{node_id}"
        found.append(Node(node_id, port, controller_port, local.ports.kafka_tls_port(node_id), home))
    return found


def node(local: LocalStack, node_id: int) -> Node:
    return next(n for n in nodes(local) if n.id == node_id)


def replication(local: LocalStack) -> int:
    """Replicas of each topic: one per node."""
    return local.ports.kafka_brokers


def logs(local: LocalStack) -> tuple[Path, ...]:
    return tuple(path for n in nodes(local) for path in n.logs)


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


def server_properties(local: LocalStack, each: Node) -> str:
    """A node's configuration: its place in the quorum of every node, and a replica of each topic on every node."""
    copies = replication(local)
    return SERVER_PROPERTIES.format(
        node_id=each.id,
        voters=",".join(f"{n.id}@{local.host}:{n.controller_port}" for n in nodes(local)),
        host=local.host,
        port=each.port,
        cport=each.controller_port,
        tport=each.tls_port,
        keystore=certificates.Certificates.of(local).keystore,
        keystore_password=DEVELOPMENT_KEYSTORE_PASSWORD,
        data=each.data,
        admin_password=local.kafka_passwords[kafka_access.ADMIN],
        replication=copies,
        min_isr=max(1, copies - 1),
    )


def configure(local: LocalStack) -> None:
    """Each node's and the tools' configuration, a client properties file per principal, and each node's storage
    formatted with the admin credential (kept when formatted already)."""
    certificates.ensure(local)
    for each in nodes(local):
        (each.home / "logs").mkdir(parents=True, exist_ok=True)
        each.properties.touch(mode=0o600)
        each.properties.write_text(server_properties(local, each))
    configure_clients(local)
    (local.kafka_dir / "log4j2.properties").write_text(
        _log4j2("File", "appender.out.fileName = ${sys:kafka.logs.dir}/server.log", "INFO")
    )
    for each in nodes(local):
        _format(local, each)


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


def _format(local: LocalStack, each: Node) -> None:
    if (each.data / "meta.properties").exists():
        if not (each.data / SCRAM_MARKER).exists():
            fail("the Kafka data predates SCRAM authentication: `python -m deploy.local.stack down --purge` resets it")
        return
    id_file = local.kafka_dir / "cluster.id"
    if not id_file.exists():
        id_file.write_text(_storage_tool(local, "random-uuid").splitlines()[-1])
    # The broker authenticates to itself as admin: that credential must exist before it starts.
    admin = f"SCRAM-SHA-256=[name={kafka_access.ADMIN},password={local.kafka_passwords[kafka_access.ADMIN]}]"
    cluster = id_file.read_text().strip()
    properties = str(each.properties)
    _storage_tool(local, "format", "-t", cluster, "-c", properties, "--ignore-formatted", "--add-scram", admin)
    (each.data / SCRAM_MARKER).touch()
    say(f"{each.name}: storage formatted")


def _chosen(local: LocalStack, only: Collection[int] | None) -> list[Node]:
    return [n for n in nodes(local) if only is None or n.id in only]


def pid(local: LocalStack, node_id: int = 1) -> int | None:
    """The pid of a node (the first by default), while it runs."""
    return node(local, node_id).process.pid()


def running(local: LocalStack) -> bool:
    """Every node runs."""
    return all(n.process.pid() is not None for n in nodes(local))


async def ready(local: LocalStack, only: Collection[int] | None = None) -> bool:
    """Every node (or those in `only`) answers: a metadata request names it (its port opens a little before)."""
    wanted = _chosen(local, only)
    if not all(port_taken(local.host, n.port) for n in wanted):
        return False
    admin = local.access().admin(request_timeout_ms=5000)
    try:
        await admin.start()
        cluster = await admin.describe_cluster()
        return {n.id for n in wanted} <= {b["node_id"] for b in cluster["brokers"]}
    except Exception:  # any failure here only means "not yet"
        return False
    finally:
        await admin.close()


def _other_shape(local: LocalStack) -> list[Node]:
    return nodes(local, 3 if local.ports.kafka_brokers == 1 else 1)


def listed(local: LocalStack) -> list[Node]:
    """The nodes configured, and those of the other shape while they run (started with another OMS_KAFKA_BROKERS):
    what `status` shows."""
    return [*nodes(local), *(n for n in _other_shape(local) if n.process.pid() is not None)]


def _refuse_the_other_shape(local: LocalStack) -> None:
    """One broker and a cluster share ports: only one of them runs at a time."""
    others = _other_shape(local)
    if any(n.process.pid() is not None for n in others):
        fail(
            f"this stack's Kafka runs with {len(others)} broker(s), not OMS_KAFKA_BROKERS={local.ports.kafka_brokers}:"
            " `python -m deploy.local.stack down` first (the data of each shape is kept apart)"
        )


async def start(local: LocalStack, only: Collection[int] | None = None) -> None:
    """Start every node (or those in `only`) that does not run, and wait until each one is ready."""
    chosen = _chosen(local, only)
    _refuse_the_other_shape(local)
    stopped = [n for n in chosen if n.process.pid() is None]
    for each in stopped:
        ports = (each.port, each.controller_port, each.tls_port)
        if any(port_taken(local.host, port) for port in ports):
            fail(
                f"port {' or '.join(map(str, ports))} is taken by another process; "
                "set OMS_KAFKA_PORT / OMS_KAFKA_CONTROLLER_PORT / OMS_KAFKA_TLS_PORT"
            )
    if stopped:
        await asyncio.to_thread(configure, local)
    for each in stopped:  # all before waiting: a node of a cluster serves once a quorum of controllers runs
        cmd = java_command(
            local,
            "log4j2.properties",
            "kafka.Kafka",
            str(each.properties),
            # The throughput collector: on two shared cores the broker took about 15% more CPU with G1 (its threads,
            # and longer request handling and compiling); its live heap is small, so the parallel collector's pauses
            # are short.
            jvm=("-Xms256m", "-Xmx768m", "-XX:+UseParallelGC", f"-Dkafka.logs.dir={each.home / 'logs'}"),
        )
        started = each.process.spawn(cmd, each.home)
        say(f"{each.name}: started pid {started}, waiting for {local.host}:{each.port}")
    ids = {n.id for n in chosen}
    await wait_until(
        lambda: ready(local, ids),
        "kafka",
        lambda: all(n.process.pid() is not None for n in chosen),
        tuple(path for n in chosen for path in n.logs),
        # Three JVMs starting on the same cores, or a node recovering its logs and catching up after a crash, take
        # longer than one broker on a busy machine (seen: 55 s for the three, 38 s for one node, at load 30).
        READY_TIMEOUT if len(nodes(local)) == 1 else 2 * READY_TIMEOUT,
    )
    for each in chosen:
        was = "ready" if each in stopped else "already running"
        say(f"{each.name}: {was} on {local.host}:{each.port} (pid {each.process.pid()})")


def stop(local: LocalStack) -> int | None:
    """SIGTERM (a controlled shutdown) to every node of either shape at once, SIGKILL after 30 s; the pid of the
    first node stopped, if one ran."""
    running_nodes = [n for n in [*nodes(local), *_other_shape(local)] if n.process.pid() is not None]
    for each in running_nodes:  # together: a node left alone without a quorum cannot finish its shutdown
        each.process.signal(signal.SIGTERM)
    pids = [each.process.stop(30) for each in running_nodes]
    return next((p for p in pids if p is not None), None)


def kill(local: LocalStack, only: Collection[int] | None = None) -> int | None:
    """SIGKILL every node (or those in `only`), as a crash would end it, and wait until each is gone; the pid of the
    first node killed, if one ran."""
    pids = [each.process.kill() for each in _chosen(local, only)]
    return next((p for p in pids if p is not None), None)
