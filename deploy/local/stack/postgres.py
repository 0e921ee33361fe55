"""The PostgreSQL 15 cluster: SCRAM for every connection (nothing trusted), its socket directory postgres's own,
on loopback. configure, start, ready, stop and kill it; `start` is what `up` does, on the same data directory, so a
cluster stopped by a fault (an immediate shutdown, as a crash) recovers as it would in production.

initdb, pg_ctl and postgres refuse root: as root they run as the postgres user, on a directory it can reach
(<state>/pg, or a root-owned directory in /tmp when the state directory is out of its reach)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shlex
import shutil
import subprocess
from pathlib import Path

from deploy.local.settings import LocalStack
from deploy.local.stack import certificates
from deploy.local.supervisor import fail, port_taken, say, wait_until

PG_HBA = """\
# Written by deploy/local/stack/postgres.py at every start: a SCRAM password for every connection, nothing trusted.
local   all  all                 scram-sha-256
host    all  all  127.0.0.1/32   scram-sha-256
host    all  all  ::1/128        scram-sha-256
"""


def _as_root() -> bool:
    return os.geteuid() == 0


def base(local: LocalStack) -> Path:
    """Where the cluster lives: <state>/pg, or the /tmp directory recorded in <state>/pg/location."""
    location = local.state / "pg" / "location"
    return Path(location.read_text().strip()) if location.exists() else local.state / "pg"


def data_dir(local: LocalStack) -> Path:
    return base(local) / "data"


def socket_dir(local: LocalStack) -> Path:
    return base(local) / "run"


def log_file(local: LocalStack) -> Path:
    return base(local) / "log" / "postgres.log"


def _traversable_by_others(path: Path) -> bool:
    return all(p.stat().st_mode & 0o001 for p in (path, *path.parents) if p.exists())


def _choose_base(local: LocalStack) -> Path:
    (local.state / "pg").mkdir(parents=True, exist_ok=True)
    if not _as_root() or _traversable_by_others(local.state / "pg") or (local.state / "pg" / "location").exists():
        return base(local)
    # The postgres user cannot reach the state dir (e.g. under /root): keep the cluster in /tmp instead.
    chosen = Path(f"/tmp/oms-pg-{hashlib.sha256(str(local.state).encode()).hexdigest()[:8]}")  # noqa: S108
    chosen.mkdir(mode=0o755, exist_ok=True)
    if chosen.is_symlink() or chosen.stat().st_uid != 0:  # a predictable /tmp name: refuse one planted by others
        fail(f"{chosen} exists and is not root's own directory")
    (local.state / "pg" / "location").write_text(f"{chosen}\n")
    return chosen


def run_tool(local: LocalStack, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a PostgreSQL binary; initdb, pg_ctl and postgres refuse root, so run them as postgres then."""
    argv = [str(local.pg_bin / tool), *args]
    if _as_root():
        argv = ["runuser", "-u", "postgres", "--", *argv]
    result = subprocess.run(argv, capture_output=True, text=True, cwd=base(local), timeout=120, check=False)
    if check and result.returncode != 0:
        fail(f"{tool} {args[0] if args else ''} failed:\n{result.stdout}{result.stderr}", log_file(local))
    return result


def _owned_dirs(cluster: Path) -> tuple[Path, Path, Path]:
    data, run, logs = cluster / "data", cluster / "run", cluster / "log"
    # The socket directory is postgres's own: no other local user may even reach the socket.
    for path, mode in ((data, 0o700), (run, 0o700), (logs, 0o755)):
        path.mkdir(parents=True, exist_ok=True)
        if _as_root():
            shutil.chown(path, "postgres", "postgres")
        path.chmod(mode)
    return data, run, logs


def _initdb(local: LocalStack, cluster: Path, data: Path) -> None:
    if (data / "PG_VERSION").exists():
        return
    pwfile = cluster / "admin.pw"
    pwfile.write_text(local.pg_admin_password + "\n")
    pwfile.chmod(0o600)
    if _as_root():
        shutil.chown(pwfile, "postgres", "postgres")
    try:
        # C collation: byte order, no dependency on the glibc locale data (and its version changes).
        auth = ("--auth-local=scram-sha-256", "--auth-host=scram-sha-256", f"--pwfile={pwfile}")
        run_tool(local, "initdb", "-D", str(data), "-U", "oms", *auth, "-E", "UTF8", "--locale=C")
    finally:
        pwfile.unlink(missing_ok=True)
    say("postgres: cluster initialised")


def _write_hba(data: Path) -> None:
    """Also for clusters initialised before local connections needed a password."""
    hba = data / "pg_hba.conf"
    hba.write_text(PG_HBA)
    hba.chmod(0o600)
    if _as_root():
        shutil.chown(hba, "postgres", "postgres")


def _write_certificate(local: LocalStack, data: Path) -> None:
    """This host's certificate and key from the stack's CA (deploy/local/stack/certificates.py), where the server
    looks for them (ssl=on): the stack's own clients speak plaintext (LocalStack.pg_dsn, the services without a CA),
    the tests of TLS clients verify the server against the CA."""
    made = certificates.ensure(local)
    for source, name in ((made.certificate, "server.crt"), (made.key, "server.key")):
        target = data / name
        target.write_bytes(source.read_bytes())
        target.chmod(0o600)  # the server refuses a key others may read
        if _as_root():
            shutil.chown(target, "postgres", "postgres")


def configure(local: LocalStack) -> None:
    """The cluster's directories, initialised once (administrator `oms` with its password), pg_hba.conf and the
    server's certificate."""
    data, _, _ = _owned_dirs(_choose_base(local))
    _initdb(local, base(local), data)
    _write_hba(data)
    _write_certificate(local, data)


def running(local: LocalStack) -> bool:
    if not (data_dir(local) / "PG_VERSION").exists():
        return False
    return run_tool(local, "pg_ctl", "-D", str(data_dir(local)), "status", check=False).returncode == 0


def pid(local: LocalStack) -> int | None:
    """The postmaster's pid while the cluster runs."""
    if not running(local):
        return None
    try:
        return int((data_dir(local) / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


async def ready(local: LocalStack) -> bool:
    """The server accepts connections (pg_isready)."""
    isready = [str(local.pg_bin / "pg_isready"), "-q", "-h", local.host, "-p", str(local.ports.postgres)]
    proc = await asyncio.create_subprocess_exec(*isready)
    return await proc.wait() == 0


TUNING = Path(__file__).resolve().parents[2] / "config" / "postgres.conf"


def tuning() -> dict[str, str]:
    """The settings of deploy/config/postgres.conf (`name = value` lines), shared with the container image."""
    lines = (line.split("#", 1)[0].strip() for line in TUNING.read_text().splitlines())
    return {name.strip(): value.strip() for name, _, value in (line.partition("=") for line in lines if line)}


def _start_cluster(local: LocalStack) -> None:
    _choose_base(local)
    if running(local):
        say(f"postgres: already running on {local.host}:{local.ports.postgres}")
        return
    if port_taken(local.host, local.ports.postgres):
        fail(f"port {local.ports.postgres} is taken by another process; set OMS_PG_PORT")
    configure(local)
    options = (
        f"-p {local.ports.postgres} -k {shlex.quote(str(socket_dir(local)))} -c listen_addresses={local.host}"
        " -c max_connections=200 -c fsync=on -c password_encryption=scram-sha-256 -c ssl=on "
        + " ".join(f"-c {name}={value}" for name, value in tuning().items())
    )
    data = str(data_dir(local))
    run_tool(local, "pg_ctl", "-D", data, "-l", str(log_file(local)), "-o", options, "-w", "-t", "60", "start")
    say(f"postgres: started on {local.host}:{local.ports.postgres}")


async def start(local: LocalStack) -> None:
    """Start the cluster unless it runs, and wait until it accepts connections."""
    await asyncio.to_thread(_start_cluster, local)
    await wait_until(lambda: ready(local), "postgres", lambda: running(local), (log_file(local),))


def stop(local: LocalStack) -> bool:
    """A fast shutdown (sessions ended, a checkpoint written); whether it ran."""
    return _shutdown(local, "fast")


def kill(local: LocalStack) -> bool:
    """An immediate shutdown, as a crash: no checkpoint, the next start recovers from the WAL; whether it ran."""
    return _shutdown(local, "immediate")


def _shutdown(local: LocalStack, mode: str) -> bool:
    if not running(local):
        return False
    run_tool(local, "pg_ctl", "-D", str(data_dir(local)), "-m", mode, "-w", "stop")
    return True
