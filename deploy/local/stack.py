"""Start and stop the real local infrastructure: Kafka (KRaft, one node), PostgreSQL and an SMTP sink.

    python -m deploy.local.stack up|down [--purge]|status

Everything runs as plain processes on 127.0.0.1 (no Docker). Where, and with which passwords, is the local
stack's settings (deploy/local/settings.py), read once by the command line and passed down. `up` and `down` are
idempotent.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import mailbox
import os
import shlex
import shutil
import smtplib
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka.admin import NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code

from deploy.local.settings import REPO, LocalStack
from deploy.local.supervisor import StackError, Supervised, fail, port_taken, restart_clock, say, wait_until
from shared.backbone import auth, kafka_access, ports
from shared.backbone.db import migrate, service_migrations
from shared.contracts.topics import SERVICES, TOPICS

KAFKA_VERSION = "4.1.2"
SCRAM_MARKER = "scram-admin"
HOST = ports.HOST
# Channels the local stack issues API keys for (the demo, the simulator and the tests use them).
DEVELOPMENT_CHANNELS = ("webshop", "marketplace", "pos", "b2b")


# --- Kafka -----------------------------------------------------------------------------------------------


def _kafka(cfg: LocalStack) -> Supervised:
    return Supervised("kafka", cfg.kafka_dir / "kafka.pid", cfg.kafka_dir / "logs" / "kafka.out", "kafka.Kafka")


def _smtp(cfg: LocalStack) -> Supervised:
    return Supervised("smtp", cfg.state / "smtp.pid", cfg.state / "smtp.log", "aiosmtpd")


def _kafka_libs(cfg: LocalStack) -> Path:
    return cfg.cache / f"kafka-{KAFKA_VERSION}" / "libs"


def _ensure_jars(cfg: LocalStack) -> None:
    if all((_kafka_libs(cfg) / f"{jar}-{KAFKA_VERSION}.jar").exists() for jar in ("kafka_2.13", "kafka-tools")):
        say(f"kafka jars: cached in {_kafka_libs(cfg)}")
        return
    say(f"kafka jars: collecting Kafka {KAFKA_VERSION} with maven into {_kafka_libs(cfg)}")
    _kafka_libs(cfg).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="libs-", dir=_kafka_libs(cfg).parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; the cache is an ordinary shared directory
    cmd = ["mvn", "-q", "-B", "dependency:copy-dependencies", f"-Dkafka.version={KAFKA_VERSION}"]
    cmd.append(f"-DoutputDirectory={tmp}")
    result = subprocess.run(cmd, cwd=REPO / "deploy" / "local" / "kafka", capture_output=True, text=True, check=False)
    if result.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise StackError(f"maven could not fetch the Kafka jars:\n{(result.stdout + result.stderr)[-3000:]}")
    shutil.rmtree(_kafka_libs(cfg), ignore_errors=True)  # a partial copy from an interrupted older layout
    tmp.rename(_kafka_libs(cfg))
    say("kafka jars: collected")


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


def _log4j2(appender: str, target: str, level: str) -> str:
    quiet = "\n".join(f"logger.q{i}.name = {name}\nlogger.q{i}.level = WARN" for i, name in enumerate(NOISY_LOGGERS))
    return LOG4J2.format(appender=appender, target=target, level=level, quiet=quiet)


def _write_kafka_config(cfg: LocalStack) -> None:
    (cfg.kafka_dir / "logs").mkdir(parents=True, exist_ok=True)
    properties = cfg.kafka_dir / "server.properties"
    properties.touch(mode=0o600)
    properties.write_text(
        SERVER_PROPERTIES.format(
            host=HOST,
            port=cfg.ports.kafka,
            cport=cfg.ports.kafka_controller,
            data=cfg.kafka_dir / "data",
            admin_password=cfg.kafka_passwords[kafka_access.ADMIN],
        )
    )
    for name in (kafka_access.ADMIN, *kafka_access.PRINCIPALS):
        # For Kafka's own command-line tools: --command-config .stack/kafka/clients/<principal>.properties
        client = cfg.kafka_dir / "clients" / f"{name}.properties"
        client.parent.mkdir(mode=0o700, exist_ok=True)
        client.touch(mode=0o600)
        client.write_text(cfg.access(name).properties())
    (cfg.kafka_dir / "log4j2.properties").write_text(
        _log4j2("File", "appender.out.fileName = ${sys:kafka.logs.dir}/server.log", "INFO")
    )
    # The tools print the cluster id on stdout: their logging must go to stderr and stay quiet.
    (cfg.kafka_dir / "tools-log4j2.properties").write_text(
        _log4j2("Console", "appender.out.target = SYSTEM_ERR", "WARN")
    )


def java_command(cfg: LocalStack, log_config: str, main: str, *args: str, jvm: tuple[str, ...] = ()) -> list[str]:
    java_home = os.environ.get("JAVA_HOME")
    java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    if java is None:
        raise StackError("java not found (Kafka needs Java 17+): install it or set JAVA_HOME")
    return [
        java,
        *jvm,
        f"-Dlog4j2.configurationFile={cfg.kafka_dir / log_config}",
        "-cp",
        f"{_kafka_libs(cfg)}/*",
        main,
        *args,
    ]


def _storage_tool(cfg: LocalStack, *args: str) -> str:
    cmd = java_command(cfg, "tools-log4j2.properties", "kafka.tools.StorageTool", *args)
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=cfg.kafka_dir, check=False)
    if result.returncode != 0:
        raise StackError(f"StorageTool {args[0]} failed:\n{result.stdout}{result.stderr}")
    return result.stdout.strip()


def _format_kafka(cfg: LocalStack) -> None:
    if (cfg.kafka_dir / "data" / "meta.properties").exists():
        if not (cfg.kafka_dir / "data" / SCRAM_MARKER).exists():
            fail("the Kafka data predates SCRAM authentication: `python -m deploy.local.stack down --purge` resets it")
        return
    id_file = cfg.kafka_dir / "cluster.id"
    if not id_file.exists():
        id_file.write_text(_storage_tool(cfg, "random-uuid").splitlines()[-1])
    properties = str(cfg.kafka_dir / "server.properties")
    # The broker authenticates to itself as admin: that credential must exist before it starts.
    admin = f"SCRAM-SHA-256=[name={kafka_access.ADMIN},password={cfg.kafka_passwords[kafka_access.ADMIN]}]"
    cluster = id_file.read_text().strip()
    _storage_tool(cfg, "format", "-t", cluster, "-c", properties, "--ignore-formatted", "--add-scram", admin)
    (cfg.kafka_dir / "data" / SCRAM_MARKER).touch()
    say("kafka: storage formatted")


def _access_spec(cfg: LocalStack) -> str:
    """Every principal with its password and its grants, for deploy/local/kafka/KafkaAccess.java."""
    users = [f"user {name} {cfg.kafka_passwords[name]}" for name in kafka_access.PRINCIPALS]
    return "\n".join([*users, *(grant.spec() for grant in kafka_access.all_grants())]) + "\n"


def _apply_access(cfg: LocalStack) -> None:
    """Principals and ACLs, applied when they differ from what was applied last (a JVM start costs seconds)."""
    spec = _access_spec(cfg)
    digest = hashlib.sha256(spec.encode()).hexdigest()
    applied = cfg.kafka_dir / "data" / "access.sha256"
    if applied.exists() and applied.read_text() == digest:
        return
    tool = REPO / "deploy" / "local" / "kafka" / "KafkaAccess.java"
    admin = str(cfg.kafka_dir / "clients" / f"{kafka_access.ADMIN}.properties")
    cmd = java_command(cfg, "tools-log4j2.properties", str(tool), admin)
    result = subprocess.run(cmd, input=spec, capture_output=True, text=True, cwd=cfg.kafka_dir, check=False)
    if result.returncode != 0:
        raise StackError(f"applying Kafka principals and ACLs failed:\n{result.stdout}{result.stderr[-3000:]}")
    applied.write_text(digest)
    say(f"kafka access: {result.stdout.strip()}")


async def _kafka_ready(cfg: LocalStack) -> bool:
    if not port_taken(HOST, cfg.ports.kafka):
        return False
    admin = cfg.access().admin(request_timeout_ms=5000)
    try:
        await admin.start()
        cluster = await admin.describe_cluster()
        return any(b["node_id"] == 1 for b in cluster["brokers"])
    except Exception:  # any failure here only means "not yet"
        return False
    finally:
        await admin.close()


def _kafka_alive(cfg: LocalStack) -> bool:
    return _kafka(cfg).pid() is not None


def _kafka_logs(cfg: LocalStack) -> tuple[Path, ...]:
    return cfg.kafka_dir / "logs" / "server.log", cfg.kafka_dir / "logs" / "kafka.out"


async def _start_kafka(cfg: LocalStack) -> None:
    logs = cfg.kafka_dir / "logs"
    pid = _kafka(cfg).pid()
    started = pid is None
    if pid is None:
        if port_taken(HOST, cfg.ports.kafka) or port_taken(HOST, cfg.ports.kafka_controller):
            fail(
                f"port {cfg.ports.kafka} or {cfg.ports.kafka_controller} is taken by another process; "
                "set OMS_KAFKA_PORT / OMS_KAFKA_CONTROLLER_PORT"
            )
        await asyncio.to_thread(_write_kafka_config, cfg)
        await asyncio.to_thread(_format_kafka, cfg)
        cmd = java_command(
            cfg,
            "log4j2.properties",
            "kafka.Kafka",
            str(cfg.kafka_dir / "server.properties"),
            jvm=("-Xms256m", "-Xmx768m", "-XX:+UseG1GC", f"-Dkafka.logs.dir={logs}"),
        )
        pid = _kafka(cfg).spawn(cmd, cfg.kafka_dir)
        say(f"kafka: started pid {pid}, waiting for {cfg.kafka_bootstrap}")
    await wait_until(lambda: _kafka_ready(cfg), "kafka", lambda: _kafka_alive(cfg), _kafka_logs(cfg))
    say(f"kafka: {'ready' if started else 'already running'} on {cfg.kafka_bootstrap} (pid {pid})")


async def _topic_partitions(admin: Any) -> dict[str, list[dict[str, Any]]]:
    return {t["topic"]: t["partitions"] for t in await admin.describe_topics()}


async def _create_topics(cfg: LocalStack) -> None:
    admin = cfg.access().admin(request_timeout_ms=30000)
    found: dict[str, list[dict[str, Any]]] = {}

    async def leaders_elected() -> bool:
        # Leaders are elected just after creation: wait for them so the first produce does not fail.
        found.update(await _topic_partitions(admin))
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
        missing = [NewTopic(t.name, t.partitions, 1) for t in TOPICS if t.name not in existing]
        if missing:
            response = await admin.create_topics(missing, timeout_ms=30000)
            for topic, code, *rest in response.topic_errors:
                if code and for_code(code) is not TopicAlreadyExistsError:
                    fail(f"could not create topic {topic}: {for_code(code).__name__} {rest}")
        for check, what in ((leaders_elected, "topic leaders"), (coordinator_ready, "group coordinator")):
            await wait_until(check, what, lambda: _kafka_alive(cfg), _kafka_logs(cfg), 30)
    finally:
        await admin.close()
    wrong = [
        f"{t.name} has {len(found[t.name])} partitions, not {t.partitions}"
        for t in TOPICS
        if len(found[t.name]) != t.partitions
    ]
    if wrong:
        fail("topics differ from shared/contracts/topics.py (`down --purge` resets them): " + "; ".join(wrong))
    say(f"topics: {len(TOPICS)} present ({len(missing)} created)")


# --- PostgreSQL ------------------------------------------------------------------------------------------


def _as_root() -> bool:
    return os.geteuid() == 0


def _pg_base(cfg: LocalStack) -> Path:
    """Where the cluster lives: <state>/pg, or the /tmp directory recorded in <state>/pg/location."""
    location = cfg.state / "pg" / "location"
    return Path(location.read_text().strip()) if location.exists() else cfg.state / "pg"


def _traversable_by_others(path: Path) -> bool:
    return all(p.stat().st_mode & 0o001 for p in (path, *path.parents) if p.exists())


def _choose_pg_base(cfg: LocalStack) -> Path:
    (cfg.state / "pg").mkdir(parents=True, exist_ok=True)
    if not _as_root() or _traversable_by_others(cfg.state / "pg") or (cfg.state / "pg" / "location").exists():
        return _pg_base(cfg)
    # The postgres user cannot reach the state dir (e.g. under /root): keep the cluster in /tmp instead.
    base = Path(f"/tmp/oms-pg-{hashlib.sha256(str(cfg.state).encode()).hexdigest()[:8]}")  # noqa: S108
    base.mkdir(mode=0o755, exist_ok=True)
    if base.is_symlink() or base.stat().st_uid != 0:  # a predictable /tmp name: refuse one planted by others
        fail(f"{base} exists and is not root's own directory")
    (cfg.state / "pg" / "location").write_text(f"{base}\n")
    return base


def _pg(cfg: LocalStack, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a PostgreSQL binary; initdb, pg_ctl and postgres refuse root, so run them as postgres then."""
    argv = [str(cfg.pg_bin / tool), *args]
    if _as_root():
        argv = ["runuser", "-u", "postgres", "--", *argv]
    result = subprocess.run(argv, capture_output=True, text=True, cwd=_pg_base(cfg), timeout=120, check=False)
    if check and result.returncode != 0:
        fail(
            f"{tool} {args[0] if args else ''} failed:\n{result.stdout}{result.stderr}",
            _pg_base(cfg) / "log" / "postgres.log",
        )
    return result


def _pg_owned_dirs(base: Path) -> tuple[Path, Path, Path]:
    data, run, logs = base / "data", base / "run", base / "log"
    # The socket directory is postgres's own: no other local user may even reach the socket.
    for path, mode in ((data, 0o700), (run, 0o700), (logs, 0o755)):
        path.mkdir(parents=True, exist_ok=True)
        if _as_root():
            shutil.chown(path, "postgres", "postgres")
        path.chmod(mode)
    return data, run, logs


def _initdb(cfg: LocalStack, base: Path, data: Path) -> None:
    if (data / "PG_VERSION").exists():
        return
    pwfile = base / "admin.pw"
    pwfile.write_text(cfg.pg_admin_password + "\n")
    pwfile.chmod(0o600)
    if _as_root():
        shutil.chown(pwfile, "postgres", "postgres")
    try:
        # C collation: byte order, no dependency on the glibc locale data (and its version changes).
        auth = ("--auth-local=scram-sha-256", "--auth-host=scram-sha-256", f"--pwfile={pwfile}")
        _pg(cfg, "initdb", "-D", str(data), "-U", "oms", *auth, "-E", "UTF8", "--locale=C")
    finally:
        pwfile.unlink(missing_ok=True)
    say("postgres: cluster initialised")


PG_HBA = """\
# Written by deploy/local/stack.py at every start: a SCRAM password for every connection, nothing trusted.
local   all  all                 scram-sha-256
host    all  all  127.0.0.1/32   scram-sha-256
host    all  all  ::1/128        scram-sha-256
"""


def _write_hba(data: Path) -> None:
    """Also for clusters initialised before local connections needed a password."""
    hba = data / "pg_hba.conf"
    hba.write_text(PG_HBA)
    hba.chmod(0o600)
    if _as_root():
        shutil.chown(hba, "postgres", "postgres")


def _pg_running(cfg: LocalStack) -> bool:
    data = _pg_base(cfg) / "data"
    if not (data / "PG_VERSION").exists():
        return False
    return _pg(cfg, "pg_ctl", "-D", str(data), "status", check=False).returncode == 0


def _start_postgres(cfg: LocalStack) -> None:
    base = _choose_pg_base(cfg)
    if _pg_running(cfg):
        say(f"postgres: already running on {HOST}:{cfg.ports.postgres}")
        return
    if port_taken(HOST, cfg.ports.postgres):
        fail(f"port {cfg.ports.postgres} is taken by another process; set OMS_PG_PORT")
    data, run, logs = _pg_owned_dirs(base)
    _initdb(cfg, base, data)
    _write_hba(data)
    options = (
        f"-p {cfg.ports.postgres} -k {shlex.quote(str(run))} -c listen_addresses={HOST} -c max_connections=200"
        " -c fsync=on -c password_encryption=scram-sha-256"
    )
    _pg(cfg, "pg_ctl", "-D", str(data), "-l", str(logs / "postgres.log"), "-o", options, "-w", "-t", "60", "start")
    say(f"postgres: started on {HOST}:{cfg.ports.postgres}")


async def _wait_postgres(cfg: LocalStack) -> None:
    async def ready() -> bool:
        isready = [str(cfg.pg_bin / "pg_isready"), "-q", "-h", HOST, "-p", str(cfg.ports.postgres)]
        proc = await asyncio.create_subprocess_exec(*isready)
        return await proc.wait() == 0

    await wait_until(ready, "postgres", lambda: _pg_running(cfg), (_pg_base(cfg) / "log" / "postgres.log",))


async def _admin_connect(cfg: LocalStack, database: str) -> asyncpg.Connection:
    return await asyncpg.connect(cfg.pg_dsn("oms", database), password=cfg.pg_admin_password)


async def _create_db_objects(cfg: LocalStack) -> None:
    conn = await _admin_connect(cfg, "postgres")
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = 'oms'"):
            await conn.execute("CREATE DATABASE oms")
    finally:
        await conn.close()
    conn = await _admin_connect(cfg, "oms")
    try:
        await conn.execute("REVOKE ALL ON SCHEMA public FROM PUBLIC")
        await conn.execute("REVOKE CONNECT, TEMPORARY ON DATABASE oms FROM PUBLIC")
        for service in SERVICES:
            if not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", service):
                await conn.execute(f'CREATE ROLE "{service}" LOGIN')
            # Utility statements take no bind parameters: let the server quote the password (%L).
            await conn.execute(
                await conn.fetchval(
                    "SELECT format('ALTER ROLE %I WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION "
                    "NOBYPASSRLS PASSWORD %L', $1::text, $2::text)",
                    service,
                    cfg.db_password(service),
                )
            )
            await conn.execute(f'GRANT CONNECT ON DATABASE oms TO "{service}"')
            await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{service}" AUTHORIZATION "{service}"')
        await conn.execute(auth.SCHEMA_FILE.read_text())
        for service in SERVICES:
            await conn.execute(f'GRANT USAGE ON SCHEMA auth TO "{service}"')
            await conn.execute(f'GRANT SELECT ON auth.api_keys TO "{service}"')
        await _development_keys(cfg, conn)
    finally:
        await conn.close()
    say(f"postgres: database oms, roles and schemas for {', '.join(SERVICES)}; API keys in {cfg.keys_file}")


async def _development_keys(cfg: LocalStack, conn: asyncpg.Connection) -> None:
    """Keys for the local stack's channels and one operator key, written to the state dir (mode 0600) for the
    demo, the tests and `oms`; issued again when the database no longer knows them (after a purge)."""
    with contextlib.suppress(OSError, ValueError):
        known = json.loads(cfg.keys_file.read_text())
        tokens = [known["operator"], *known["channels"].values()]
        ids = [t.split("_")[1] for t in tokens]
        if set(known["channels"]) >= set(DEVELOPMENT_CHANNELS) and all([await auth.active(conn, i) for i in ids]):
            return
    channels = {c: (await auth.issue(conn, "channel", c, "local development")).token for c in DEVELOPMENT_CHANNELS}
    operator = (await auth.issue(conn, "operator", None, "local development")).token
    cfg.keys_file.touch(mode=0o600)
    cfg.keys_file.write_text(json.dumps({"operator": operator, "channels": channels}, indent=2) + "\n")


async def _migrate_all(cfg: LocalStack) -> None:
    applied: list[str] = []
    for service in SERVICES:
        conn = await asyncpg.connect(cfg.pg_dsn(service), password=cfg.db_password(service))
        try:
            names = await migrate(conn, service, service_migrations(service))
            applied += [f"{service}.{name}" for name in names]
        finally:
            await conn.close()
    say(f"migrations: {len(applied)} applied" + (f" ({', '.join(applied)})" if applied else ""))


# --- SMTP sink -------------------------------------------------------------------------------------------


def _smtp_ready(cfg: LocalStack) -> bool:
    try:
        with smtplib.SMTP(HOST, cfg.ports.smtp, timeout=2) as smtp:
            return smtp.noop()[0] == 250
    except (OSError, smtplib.SMTPException):
        return False


async def _start_smtp(cfg: LocalStack) -> None:
    pid = _smtp(cfg).pid()
    if pid is None:
        if port_taken(HOST, cfg.ports.smtp):
            fail(f"port {cfg.ports.smtp} is taken by another process; set OMS_SMTP_PORT")
        mailbox.Maildir(cfg.maildir, create=True)
        handler = ("-c", "aiosmtpd.handlers.Mailbox", str(cfg.maildir))
        # -u: offer SMTPUTF8, so mail to internationalised mailboxes (jörg@…) can be delivered.
        cmd = [sys.executable, "-m", "aiosmtpd", "-n", "-u", "-l", f"{HOST}:{cfg.ports.smtp}", *handler]
        pid = _smtp(cfg).spawn(cmd, cfg.state)

    async def ready() -> bool:
        return await asyncio.to_thread(_smtp_ready, cfg)

    await wait_until(ready, "smtp sink", lambda: _smtp(cfg).pid() is not None, (_smtp(cfg).log_file,), 30)
    say(f"smtp: ready on {HOST}:{cfg.ports.smtp} (pid {pid}), maildir {cfg.maildir}")


# --- commands --------------------------------------------------------------------------------------------


async def up(cfg: LocalStack) -> None:
    """Start whatever is not running yet and bring topics, roles, schemas and migrations up to date."""
    restart_clock()
    cfg.state.mkdir(parents=True, exist_ok=True)
    await asyncio.to_thread(_ensure_jars, cfg)
    await _start_kafka(cfg)
    await _create_topics(cfg)
    await asyncio.to_thread(_apply_access, cfg)
    await asyncio.to_thread(_start_postgres, cfg)
    await _wait_postgres(cfg)
    await _create_db_objects(cfg)
    await _migrate_all(cfg)
    await _start_smtp(cfg)
    say(
        f"stack up: kafka {cfg.kafka_bootstrap}, postgres {HOST}:{cfg.ports.postgres}/oms, "
        f"smtp {HOST}:{cfg.ports.smtp}, state {cfg.state}"
    )


def down(cfg: LocalStack, purge: bool = False) -> None:
    """Stop the SMTP sink, Kafka and PostgreSQL; with purge also delete their data."""
    restart_clock()
    stopped = []
    if _smtp(cfg).stop(10):
        stopped.append("smtp")
        say("smtp: stopped")
    if _kafka(cfg).stop(30):
        stopped.append("kafka")
        say("kafka: stopped")
    if _pg_running(cfg):
        _pg(cfg, "pg_ctl", "-D", str(_pg_base(cfg) / "data"), "-m", "fast", "-w", "stop")
        stopped.append("postgres")
        say("postgres: stopped")
    if not stopped:
        say("nothing was running")
    if purge:
        pg_base = _pg_base(cfg)
        shutil.rmtree(cfg.state, ignore_errors=True)
        shutil.rmtree(pg_base, ignore_errors=True)
        say(f"purged {cfg.state}" + ("" if pg_base.is_relative_to(cfg.state) else f" and {pg_base}"))


def components(cfg: LocalStack) -> list[tuple[str, int | None, str]]:
    """(name, pid when running, address) of each piece of the stack."""
    kafka = _kafka(cfg).pid()
    smtp = _smtp(cfg).pid()
    pg_pid: int | None = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        if _pg_running(cfg):
            pg_pid = int((_pg_base(cfg) / "data" / "postmaster.pid").read_text().split()[0])
    return [
        ("kafka", kafka, cfg.kafka_bootstrap),
        ("postgres", pg_pid, f"{HOST}:{cfg.ports.postgres}"),
        ("smtp", smtp, f"{HOST}:{cfg.ports.smtp}"),
    ]


def running(cfg: LocalStack) -> bool:
    return all(pid for _, pid, _ in components(cfg))


def status(cfg: LocalStack) -> None:
    for name, pid, address in components(cfg):
        state = f"running  pid {pid:<7}" if pid else "stopped           "
        print(f"{name:<9} {state} {address}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.local.stack", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("up", help="start Kafka, PostgreSQL and the SMTP sink")
    commands.add_parser("down", help="stop them").add_argument(
        "--purge", action="store_true", help="also delete Kafka and PostgreSQL data"
    )
    commands.add_parser("status", help="show what runs")
    args = parser.parse_args(argv)
    local = LocalStack.from_env()
    try:
        if args.command == "up":
            asyncio.run(up(local))
        elif args.command == "down":
            down(local, purge=args.purge)
        else:
            status(local)
    except (StackError, subprocess.SubprocessError, OSError, asyncpg.PostgresError) as exc:
        print(f"stack {args.command} failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
