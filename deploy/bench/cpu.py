"""CPU seconds used so far by each component of the running pipeline, read from /proc: every service process,
the simulator, the Kafka JVM, every process of the stack's PostgreSQL cluster, the SMTP sink, this process,
and the tools it ran meanwhile. Two snapshots around a phase give its CPU cost per component."""

from __future__ import annotations

import contextlib
import os
import resource
from dataclasses import dataclass
from pathlib import Path

from deploy.local import processes, stack
from deploy.local.settings import LocalStack
from deploy.local.supervisor import group_niceness

from .measures import ProcessTimes, machine_busy, machine_steal, process_times

TICKS = os.sysconf("SC_CLK_TCK")


def times(pid: int) -> ProcessTimes | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        return process_times(Path(f"/proc/{pid}/stat").read_text(), TICKS)
    return None


def live_children(parent: int) -> list[ProcessTimes]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (t := times(int(entry.name))) is not None and t.ppid == parent:
            found.append(t)
    return found


@dataclass(frozen=True)
class Pipeline:
    """The pids to read, found once the pipeline runs."""

    pids: dict[str, int]
    postmaster: int

    @classmethod
    def find(cls, local: LocalStack, more: list[processes.Process] | None = None) -> Pipeline:
        """`more`: further instances of the services (named `<service>-<n>`), counted with their service."""
        pids = {p.name: p.pid() for p in [*processes.everything(local), *(more or [])]}
        pids.update({name: pid for name, pid, _ in stack.components(local)})
        missing = sorted(name for name, pid in pids.items() if pid is None)
        if missing:
            raise RuntimeError(f"not running: {', '.join(missing)}")
        postmaster = pids.pop("postgres")
        assert postmaster is not None
        return cls({name: pid for name, pid in pids.items() if pid is not None}, postmaster)

    def priorities(self) -> dict[str, str]:
        """Each process's niceness now, by name (the stack's PostgreSQL: its postmaster's), and after a slash its
        session's scheduling group's where the kernel groups sessions (it is the group's that counts between
        programs, each in a session of its own)."""
        shown = {}
        for name, pid in [*self.pids.items(), ("postgres", self.postmaster)]:
            if (found := times(pid)) is not None:
                group = group_niceness(pid)
                shown[name] = f"{found.niceness}" if group is None else f"{found.niceness}/{group}"
        return shown

    def snapshot(self) -> dict[str, float]:
        """CPU seconds so far per component, `machine` for the whole machine (every core, every process) and
        `steal` for the time the host ran other machines instead."""
        seconds: dict[str, float] = {}
        for name, pid in self.pids.items():
            found = times(pid)
            component = name.rpartition("-")[0] if name.rpartition("-")[2].isdigit() else name
            seconds[component] = seconds.get(component, 0.0) + (found.own if found else 0.0)
        # A backend that exits is reaped by the postmaster, which then counts its time as its children's:
        # live backends plus the postmaster's own and reaped children's time cover every backend.
        postmaster = times(self.postmaster)
        seconds["postgres"] = (postmaster.own + postmaster.children if postmaster else 0.0) + sum(
            t.own for t in live_children(self.postmaster)
        )
        own = times(os.getpid())
        seconds["bench"] = own.own if own else 0.0
        reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
        seconds["tools"] = reaped.ru_utime + reaped.ru_stime
        proc_stat = Path("/proc/stat").read_text()
        seconds["machine"] = machine_busy(proc_stat, TICKS)
        seconds["steal"] = machine_steal(proc_stat, TICKS)
        return seconds
