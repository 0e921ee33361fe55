"""The one supervisor of the local stack's processes (Kafka, the SMTP sink, Prometheus, the services, the
simulator): start a program detached with its log and pid file, tell whether it still runs, signal, stop and
kill it, show the end of its log.

A pid file is believed only while that process lives and its command line names what was started (pids get
reused), so a stale file never makes a stranger look like ours, nor gets it signalled. A child this process
started is reaped when seen exited, and its exit status kept."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

READY_TIMEOUT = 90.0
# How the stack shares one machine's cores: the order path first. What only follows it (notifications, returns,
# KPIs) and the SMTP sink that stands in for the mail relay run at this lower CPU priority (a niceness), so a batch
# on its way to a pick task does not wait for a core behind a customer's e-mail. A priority, not a limit: they get
# every core the order path leaves idle, and keep pace with it below the machine's limit (docs/benchmarks/
# findings.md, rounds 26 and 33). Kafka and PostgreSQL serve both; the simulator's warehouses and carriers, whose
# reports an order waits for, keep the normal priority (deploy/local/processes.py).
BEHIND_THE_ORDER_PATH = 19
# Without CAP_SYS_ADMIN the kernel takes one change of a session's group niceness every 100 ms, machine-wide.
GROUP_NICENESS_TRIES = 30
# Children started by this process, by pid: polled (which reaps them) to keep their exit status.
_children: dict[int, subprocess.Popen[bytes]] = {}


class StackError(Exception):
    """A component failed to start or stop; the message carries the tail of its log."""


def log_tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return f"  ({path} not readable)"
    # Kafka logs whole partition lists on one line: cut them, the stack trace matters more.
    return f"--- last lines of {path} ---\n" + "\n".join(line[:400] for line in text)


def fail(message: str, *logs: Path) -> NoReturn:
    raise StackError("\n".join([message, *(log_tail(p) for p in logs)]))


def port_taken(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


@dataclass(frozen=True)
class Supervised:
    """A program the stack runs, known by its pid file and by what its command line contains (`marker`)."""

    name: str
    pid_file: Path
    log_file: Path
    marker: str

    def pid(self) -> int | None:
        """Its pid while it runs as started; None when it exited, or the pid file names another program."""
        try:
            pid = int(self.pid_file.read_text())
        except (OSError, ValueError):
            return None
        child = _children.get(pid)
        if child is not None and child.poll() is not None:
            return None
        if child is None:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)  # reap it if it is an exited child of ours, so it does not look alive
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return None
        # A child of ours that is exiting shows an empty command line while it still holds its ports.
        return pid if self.marker.encode() in cmdline or (child is not None and not cmdline) else None

    def exit_status(self) -> int | None:
        """How it ended (negative: the signal that ended it), if this process started it and it has ended."""
        with contextlib.suppress(OSError, ValueError):
            child = _children.get(int(self.pid_file.read_text()))
            if child is not None:
                return child.poll()
        return None

    def spawn(self, argv: list[str], cwd: Path, env: Mapping[str, str] | None = None, niceness: int = 0) -> int:
        """Start it detached (its own session, output to its log) and record its pid; with a niceness, at that
        lower CPU priority (set before it runs, so every thread it starts has it; its session's too)."""
        if niceness:
            argv = ["nice", "-n", str(niceness), *argv]
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as out:
            child = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env=None if env is None else dict(env),
                start_new_session=True,
            )
        _children[child.pid] = child
        if niceness:
            set_group_niceness(child.pid, niceness)
        _wait_for_command_line(child.pid)
        self.pid_file.write_text(str(child.pid))
        return child.pid

    def signal(self, sig: signal.Signals) -> int | None:
        pid = self.pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        return pid

    def stop(self, timeout: float) -> int | None:
        """SIGTERM, then SIGKILL after timeout; returns the pid that was stopped, if it ran."""
        pid = self.signal(signal.SIGTERM)
        if pid is not None and not _exited(pid, timeout):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            _exited(pid, 30)
        self.pid_file.unlink(missing_ok=True)
        return pid

    def kill(self) -> int | None:
        """SIGKILL, as a crash would end it, and wait until it has exited (its ports closed); the pid, if it ran."""
        pid = self.signal(signal.SIGKILL)
        if pid is not None:
            _exited(pid, 30)
        return pid

    def tail(self, lines: int = 25) -> str:
        return log_tail(self.log_file, lines)


def _exited(pid: int, timeout: float) -> bool:
    """Wait until the process has exited: reaped if it is our child, else gone or a zombie (which holds no port)."""
    deadline = time.monotonic() + timeout
    while True:
        child = _children.get(pid)
        if child is not None:
            done = child.poll() is not None
        else:
            try:
                done = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
            except OSError:
                done = True
        if done:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


@atexit.register
def _leave_children_running() -> None:
    """They are detached on purpose and outlive this process: nothing to wait for, nothing leaked."""
    for child in _children.values():
        if child.returncode is None:
            child.returncode = 0


def set_group_niceness(pid: int, niceness: int) -> None:
    """Give the session the process leads the same niceness as the process, so that it counts between programs.

    A kernel that groups each session's processes for the scheduler (autogroup, on by default in most
    distributions' kernels) shares the cores between those groups as equals, and a process's own niceness orders
    it only against the rest of its session. Every program here runs in a session of its own, so without this a
    niceness of 19 took nothing from a follower's share: it ran beside the order path as an equal (round 33).
    Nothing where the kernel has no such groups (the niceness alone then orders the processes) or will not take it:
    the bench's report shows each group's niceness."""
    group = Path(f"/proc/{pid}/autogroup")
    for _ in range(GROUP_NICENESS_TRIES):
        try:
            group.write_text(f"{niceness}\n")
            return
        except BlockingIOError:  # another session's group was changed within the last 100 ms
            time.sleep(0.1)
        except OSError:  # no autogroups in this kernel, the process already gone, or not permitted
            return


def group_niceness(pid: int) -> int | None:
    """The niceness of the scheduling group of the process's session; None where the kernel has no such groups."""
    try:
        return int(Path(f"/proc/{pid}/autogroup").read_text().split()[-1])  # "/autogroup-41 nice 19"
    except (OSError, ValueError, IndexError):
        return None


def _wait_for_command_line(pid: int, timeout: float = 2.0) -> None:
    """Popen returns as soon as exec has begun; for a moment after, /proc/<pid>/cmdline is still empty, and the
    process would pass for a dead one. Wait until the kernel shows its command line."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if Path(f"/proc/{pid}/cmdline").read_bytes():
                return
        except OSError:
            return  # already gone: the caller's liveness check will say so, with the log
        time.sleep(0.001)


async def wait_until(
    ready: Callable[[], Awaitable[bool]],
    what: str,
    alive: Callable[[], bool],
    logs: tuple[Path, ...],
    limit: float = READY_TIMEOUT,
) -> None:
    """Poll `ready` until it holds; fail with the logs' tails when the process died or the limit passed."""
    deadline = time.monotonic() + limit
    while not await ready():
        if not alive():
            fail(f"{what} exited during start-up", *logs)
        if time.monotonic() > deadline:
            fail(f"{what} not ready after {limit:.0f} s", *logs)
        await asyncio.sleep(0.25)


@dataclass
class _Clock:
    start: float = 0.0


_clock = _Clock(time.monotonic())


def restart_clock() -> None:
    _clock.start = time.monotonic()


def say(message: str) -> None:
    """The stack's narration on stdout, timed from the start of the command."""
    print(f"[{time.monotonic() - _clock.start:5.1f}s] {message}", flush=True)
