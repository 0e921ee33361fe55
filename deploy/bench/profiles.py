"""Where each service spends its CPU: py-spy samples a process while a burst flows through, saving a
speedscope profile (open it at speedscope.app), and `summarise` says which kinds of work and which functions
take the samples."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import signal
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .results import ProfileSummary

SAMPLES_PER_SECOND = 100

# The kind of work a sample is doing: that of its innermost frame whose file says (frames of the interpreter
# itself, its object headers and libc are passed over, up to the frame that called them); garbage collection
# and system calls are recognised by name. Native frames (C, Cython) are in the stacks: uvloop's loop and
# libuv, asyncpg's protocol and codecs, pydantic-core, the json accelerator.
CATEGORIES = (
    ("PostgreSQL client (asyncpg, its protocol and codecs)", ("/asyncpg/",)),
    ("Kafka client (aiokafka)", ("/aiokafka/",)),
    ("pydantic validation and serialisation", ("/pydantic/", "/pydantic_core/")),
    ("JSON", ("/json/", "_json.c", "/orjson/")),
    ("e-mail composition and SMTP", ("/email/", "/smtplib.py", "/aiosmtplib/", "/aiosmtpd/")),
    ("templates (Jinja2)", ("/jinja2/", "/templates/")),
    ("HTTP server (uvicorn, starlette, fastapi)", ("/uvicorn/", "/starlette/", "/fastapi/", "/httptools/")),
    ("HTTP client (httpx)", ("/httpx/", "/httpcore/", "/h11/")),
    ("metrics (prometheus_client)", ("/prometheus_client/",)),
    ("logging", ("/logging/", "/shared/backbone/logs.py")),
    ("event loop (uvloop, libuv, asyncio)", ("/uvloop/", "/libuv", "/asyncio/", "_asynciomodule.c", "/selectors.py")),
    ("project code (services, shared, deploy)", ("/services/", "/shared/", "/deploy/")),
)
GARBAGE_COLLECTION = "garbage collection"
SYSTEM_CALLS = "system calls (socket reads and writes)"
SYSCALL_NAMES = frozenset({"read", "write", "send", "recv", "sendto", "recvfrom", "sendmsg", "recvmsg", "writev"})
UNKNOWN = "other (unattributed native code)"
PROJECT_DIRS = ("services", "shared", "deploy")


@dataclass(frozen=True)
class Frame:
    name: str
    file: str

    def label(self, repo: Path) -> str:
        return f"{self.name} ({short_path(self.file, repo)})"


def short_path(file: str, repo: Path) -> str:
    if "site-packages/" in file:
        return file.split("site-packages/", 1)[1]
    with contextlib.suppress(ValueError):
        return str(Path(file).relative_to(repo))
    return "/".join(Path(file).parts[-2:])


def category(innermost_first: list[Frame]) -> str:
    if any(frame.name.startswith("gc_collect") for frame in innermost_first):
        return GARBAGE_COLLECTION
    if innermost_first[0].name in SYSCALL_NAMES and "libc.so" in innermost_first[0].file:
        return SYSTEM_CALLS
    for frame in innermost_first:
        for name, marks in CATEGORIES:
            if any(mark in frame.file for mark in marks):
                return name
    return UNKNOWN


def in_project(file: str, repo: Path) -> bool:
    if "site-packages/" in file:
        return False
    try:
        relative = Path(file).relative_to(repo)
    except ValueError:
        return False
    return relative.parts[0] in PROJECT_DIRS


def summarise(document: dict[str, Any], process: str, file: str, repo: Path, top: int = 8) -> ProfileSummary:
    """Shares of samples by kind of work, by function (the innermost frame: time in the function itself), and
    by the innermost project function on the stack (the project code that did the work or made the call)."""
    frames = [Frame(f["name"], f.get("file") or "") for f in document["shared"]["frames"]]
    kinds: Counter[str] = Counter()
    own: Counter[Frame] = Counter()
    caller: Counter[Frame] = Counter()
    total = 0
    for profile in document["profiles"]:
        for stack in profile["samples"]:
            if not stack:
                continue
            total += 1
            # speedscope stacks run from the outermost frame to the innermost
            innermost_first = [frames[i] for i in reversed(stack)]
            kinds[category(innermost_first)] += 1
            own[innermost_first[0]] += 1
            project = next((f for f in innermost_first if in_project(f.file, repo)), None)
            if project is not None:
                caller[project] += 1
    if total == 0:
        return ProfileSummary(process, file, 0, [], [], [])
    return ProfileSummary(
        process,
        file,
        total,
        [(name, n / total) for name, n in kinds.most_common()],
        [(frame.label(repo), n / total) for frame, n in own.most_common(top)],
        [(frame.label(repo), n / total) for frame, n in caller.most_common(top)],
    )


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(found).exists():
        raise RuntimeError("py-spy not found: install the bench extra (make bench does: pip install -e '.[bench]')")
    return found


class Recorder:
    """py-spy attached to one process until stopped; it writes its profile when interrupted."""

    def __init__(self, process: str, pid: int, output: Path) -> None:
        self.process, self.pid, self.output = process, pid, output
        self.proc: asyncio.subprocess.Process | None = None
        self.log = output.with_suffix(".log")

    async def start(self) -> None:
        self.output.parent.mkdir(parents=True, exist_ok=True)
        argv = [py_spy(), "record", "--pid", str(self.pid), "--format", "speedscope", "--output", str(self.output)]
        # --native: C and Cython frames too, which needs py-spy to pause the process at each sample (so the
        # profiled burst is not the measured one); --gil: only the thread running Python code, as with --native
        # a thread waiting for the network or a lock would be sampled too; --nolineno: one frame per function.
        argv += ["--rate", str(SAMPLES_PER_SECOND), "--native", "--gil", "--nolineno"]
        with self.log.open("wb") as log:
            self.proc = await asyncio.create_subprocess_exec(*argv, stdout=log, stderr=log)

    async def stop(self) -> bool:
        """True when the profile was written."""
        if self.proc is None:
            return False
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(self.proc.wait(), 60)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        written = self.output.exists()
        if written:
            self.log.unlink(missing_ok=True)
        return written

    def summary(self, repo: Path, relative_to: Path) -> ProfileSummary:
        document = json.loads(self.output.read_text())
        return summarise(document, self.process, str(self.output.relative_to(relative_to)), repo)
